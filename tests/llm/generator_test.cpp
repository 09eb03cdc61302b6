// Tests for llm/generator.cpp: stop conditions, stop strings, streaming, context limits.
#include "llm/llm.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

struct Tiny {
  LlamaForCausalLM model{nullptr};
  Tokenizer tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  Tiny() {
    model = LlamaForCausalLM(LlamaConfig::preset("tiny"), torch::kFloat32);
    init_random_weights(*model, 5);
    model->eval();
  }
};

GenerateParams sampled(int n) {
  GenerateParams gp;
  gp.n_predict = n;
  gp.sampling.temperature = 1.0f;
  gp.sampling.top_k = 0;
  gp.sampling.min_p = 0;
  gp.sampling.top_p = 1.0f;
  gp.sampling.seed = 11;
  gp.eos_ids = {-1};   // never stops early: the random model may emit eos ids
  return gp;
}

TEST(Generator, DefaultsAndSeededReproducibility) {
  auto d = default_generate_params();
  EXPECT_EQ(d.n_predict, 128);
  EXPECT_EQ(d.n_ctx, 4096);
  EXPECT_EQ(d.n_batch, 512);
  Tiny t;
  const std::vector<int32_t> prompt = {256, 72, 105};
  auto a = generate(*t.model, t.tok, prompt, sampled(20)), b = generate(*t.model, t.tok, prompt, sampled(20));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 20u);
  EXPECT_EQ(a.stop_reason, "length");
  EXPECT_EQ(a.text, to_valid_utf8(t.tok.decode(a.tokens)));  // the bytes, made valid UTF-8 as HF decodes them
  EXPECT_EQ(a.timings.n_prompt, 3);
  // Chunked prefill gives the same continuation as a single pass.
  auto gp = sampled(20);
  gp.n_batch = 2;
  EXPECT_EQ(generate(*t.model, t.tok, prompt, gp).tokens, a.tokens);
}

TEST(Generator, StopStringCutsTextAndStreamingNeverLeaksIt) {
  Tiny t;
  const std::vector<int32_t> prompt = {256, 65};
  auto gp = sampled(40);
  // Only ordinary byte tokens, so text positions map to tokens simply.
  auto full = generate(*t.model, t.tok, prompt, gp);
  std::string text = full.text;
  ASSERT_GE(text.size(), 12u);
  const std::string stop = text.substr(6, 3);
  const size_t first = text.find(stop);
  gp.stop = {stop};
  std::string streamed;
  auto r = generate(*t.model, t.tok, prompt, gp, [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  EXPECT_EQ(r.stop_reason, "stop");
  EXPECT_EQ(r.text, text.substr(0, first));
  EXPECT_EQ(streamed, r.text);
}

TEST(Generator, EosStopsAndCallbackCancels) {
  Tiny t;
  const std::vector<int32_t> prompt = {256, 65};
  auto gp = sampled(10);
  auto first = generate(*t.model, t.tok, prompt, gp).tokens.at(0);
  gp.eos_ids = {first};
  auto r = generate(*t.model, t.tok, prompt, gp);
  EXPECT_EQ(r.stop_reason, "eos");
  EXPECT_EQ(r.tokens, std::vector<int32_t>{first});
  gp.ignore_eos = true;
  EXPECT_EQ(generate(*t.model, t.tok, prompt, gp).tokens.size(), 10u);

  gp = sampled(30);
  int calls = 0;
  auto c = generate(*t.model, t.tok, prompt, gp, [&](const std::string&) { return ++calls < 2; });
  EXPECT_EQ(c.stop_reason, "cancelled");
  EXPECT_LT(c.tokens.size(), 30u);
}

TEST(Generator, ContextLimits) {
  Tiny t;
  auto gp = sampled(100);
  gp.n_ctx = 8;
  const std::vector<int32_t> prompt(8, 65);
  try {
    generate(*t.model, t.tok, prompt, gp);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("8 tokens"), std::string::npos) << e.what();
  }
  auto r = generate(*t.model, t.tok, std::vector<int32_t>(5, 65), gp);
  EXPECT_EQ(r.stop_reason, "context");
  EXPECT_EQ(r.tokens.size(), 4u);  // positions 5, 6, 7 fed back; the 4th token has no room
  EXPECT_THROW(generate(*t.model, t.tok, {}, gp), Error);
  EXPECT_THROW(generate(*t.model, t.tok, {600}, gp), Error);  // outside the vocabulary
}

}  // namespace
}  // namespace llama_mm
