// tests/adapters/speech_model_test.cpp: adapters/speech_model.cpp and speech_prompt.cpp: speech tokens, the
// adapter file round trip, frame arithmetic, and generation with speech against an independent full-forward path.
#include "adapters/speech_model.h"
#include "adapters/speech_prompt.h"

#include "llm/error.h"
#include "tensor_util.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama_mm {
namespace {

struct TinyStack {
  Tokenizer tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  LlamaForCausalLM llm{nullptr};
  SpeechModel speech{nullptr};
  TinyStack() {
    llm = LlamaForCausalLM(LlamaConfig::preset("tiny"), torch::kFloat32);
    init_random_weights(*llm, 11);
    auto cfg = SpeechModelConfig::preset("tiny", llm->config().hidden_size);
    cfg.tokens = SpeechTokens::choose(tok);
    speech = SpeechModel(cfg, torch::kFloat32);
    init_random_speech_weights(*speech, 12);
    speech->eval();
  }
  BaseModelInfo base() const { return BaseModelInfo::of(llm->config(), tok); }
};

std::vector<float> tone(double seconds, double hz) {
  std::vector<float> s(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < s.size(); ++i) s[i] = 0.5f * std::sin(2 * M_PI * hz * i / 16000.0);
  return s;
}

TEST(SpeechTokens, ReservedIdsCountedFromBeginOfText) {
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  const auto t = SpeechTokens::choose(tok);
  const int32_t bos = *tok.token_id("<|begin_of_text|>");
  EXPECT_EQ(t.start, bos + 250);
  EXPECT_EQ(t.end, bos + 251);
  EXPECT_EQ(t.placeholder, bos + 252);
  const auto real = test::llama31_tokenizer_json();
  if (std::filesystem::exists(real)) {
    const auto r = SpeechTokens::choose(Tokenizer::from_file(real.string()));
    EXPECT_EQ(r.start, 128250);
    EXPECT_EQ(r.placeholder, 128252);
  }
  EXPECT_EQ(SpeechTokens::from_json(t.to_json(), "x").to_json(), t.to_json());
  EXPECT_THROW(SpeechTokens::from_json({{"start", 1}, {"end", 1}, {"placeholder", 2}}, "x"), Error);
}

TEST(SpeechModelConfig, PaperFrameArithmeticAndJson) {
  auto c = SpeechModelConfig::preset("paper", 4096);
  c.tokens = {128250, 128251, 128252};
  EXPECT_EQ(c.frontend.n_frames(16000), 100);  // 1 s -> 100 mel frames (10 ms)
  const int64_t mel = c.frontend.n_frames(60 * 16000);
  EXPECT_EQ(mel, 6000);
  EXPECT_EQ(c.adapter.output_frames(c.encoder.output_frames(mel)), 750);  // 60 s -> 750 vectors (80 ms)
  EXPECT_GT(c.n_params(), 1'000'000'000);
  auto j = c.to_json();
  EXPECT_EQ(SpeechModelConfig::from_json(j, "x").to_json(), j);
  j["adapter"]["encoder_dim"] = 1024;
  try {
    SpeechModelConfig::from_json(j, "cfg");
    FAIL() << "mismatched widths accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter.encoder_dim"), std::string::npos) << e.what();
  }
  j = c.to_json();
  j["max_segment_secs"] = 30;
  EXPECT_THROW(SpeechModelConfig::from_json(j, "cfg"), Error);
}

TEST(SpeechModel, AdapterFileRoundTripAndBaseCheck) {
  TinyStack s;
  test::TempDir tmp;
  const auto path = (tmp / "speech.safetensors").string();
  save_speech_adapter(*s.speech, s.base(), path);
  auto loaded = load_speech_adapter(path, s.base());
  EXPECT_EQ(loaded->config().to_json(), s.speech->config().to_json());
  auto a = s.speech->named_parameters(), b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  auto other = s.base();
  other.vocab_size = 128256;
  try {
    load_speech_adapter(path, other);
    FAIL() << "loaded for another base";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 3);
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos) << e.what();
  }
  // bf16 on request.
  EXPECT_EQ(load_speech_adapter(path, s.base(), torch::kBFloat16)->adapter->out_proj->weight.scalar_type(),
            torch::kBFloat16);
}

TEST(SpeechModel, EmbedAudioFrameRate) {
  TinyStack s;
  torch::NoGradGuard ng;
  const auto audio = tone(1.0, 440);
  auto v = s.speech->embed_audio(audio.data(), static_cast<int64_t>(audio.size()));
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{13, 64}));  // 100 mel -> 25 encoder frames -> 13 vectors
  EXPECT_TRUE(torch::isfinite(v).all().item<bool>());
}

// Greedy decoding by full causal forwards over explicit embeddings (no cache, no chunking): the reference.
std::vector<int32_t> reference_greedy(TinyStack& s, const std::vector<int32_t>& prompt, const torch::Tensor& clip, int n) {
  const auto& st = s.speech->config().tokens;
  std::vector<torch::Tensor> rows;
  size_t k = 0;
  for (int32_t id : prompt) {
    if (id == st.placeholder) rows.push_back(clip[k++]);
    else if (id == st.start) rows.push_back(s.speech->adapter->boundary[0]);
    else if (id == st.end) rows.push_back(s.speech->adapter->boundary[1]);
    else rows.push_back(s.llm->embed(torch::tensor({{static_cast<int64_t>(id)}}))[0][0]);
  }
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    auto h = torch::stack(rows).unsqueeze(0);
    auto logits = s.llm->logits(s.llm->hidden_from_embeds(h, nullptr), false);
    const auto next = static_cast<int32_t>(logits[0][-1].argmax().item<int64_t>());
    out.push_back(next);
    rows.push_back(s.llm->embed(torch::tensor({{static_cast<int64_t>(next)}}))[0][0]);
  }
  return out;
}

TEST(SpeechModel, GenerationWithSpeechMatchesAFullForwardReference) {
  TinyStack s;
  torch::NoGradGuard ng;
  const auto audio = tone(0.8, 300);
  auto clip = s.speech->embed_audio(audio.data(), static_cast<int64_t>(audio.size()));
  const auto prompt = encode_speech_prompt(s.tok, SpeechTask::Transcribe, "English",
                                           {{"Listen:", {}}, speech_part(s.tok, s.speech->config().tokens, clip.size(0))});
  GenerateParams gp = default_generate_params();
  gp.sampling.temperature = 0;
  gp.n_predict = 6;
  gp.ignore_eos = true;
  gp.n_batch = 5;  // prefill chunks cut through the speech run
  auto r = generate_with_speech(*s.llm, *s.speech, s.tok, prompt, {clip}, gp);
  EXPECT_EQ(r.tokens, reference_greedy(s, prompt, clip, 6));
  // The speech vectors reach the model: other audio, other logits.
  const auto other = tone(0.8, 2000);
  auto clip2 = s.speech->embed_audio(other.data(), static_cast<int64_t>(other.size()));
  ASSERT_EQ(clip2.size(0), clip.size(0));
  EXPECT_FALSE(torch::allclose(clip, clip2));
}

TEST(SpeechModel, PromptAndClipsMustAgree) {
  TinyStack s;
  auto clip = torch::zeros({4, 64});
  const auto& st = s.speech->config().tokens;
  auto prompt = encode_speech_prompt(s.tok, SpeechTask::Transcribe, "English", {speech_part(s.tok, st, 3)});
  GenerateParams gp = default_generate_params();
  gp.n_predict = 1;
  auto expect_input_error = [&](const std::vector<int32_t>& p, const std::vector<torch::Tensor>& clips) {
    try {
      generate_with_speech(*s.llm, *s.speech, s.tok, p, clips, gp);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InputDecode) << e.what();
    }
  };
  expect_input_error(prompt, {clip});        // 3 placeholders, 4 vectors
  expect_input_error(prompt, {});            // a run without a clip
  expect_input_error(prompt, {clip, clip});  // a clip without a run
  std::vector<int32_t> stray = {s.tok.token_id("<|begin_of_text|>").value(), st.placeholder};
  expect_input_error(stray, {});
}

}  // namespace
}  // namespace llama_mm
