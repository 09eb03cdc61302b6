// adapters/speech_model.cpp: speech encoder + adapter, their adapter file, and generation with speech clips.
#include "adapters/speech_model.h"

#include "llm/config_json.h"
#include "llm/error.h"
#include "llm/weight_loader.h"

namespace llama_mm {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

namespace {

constexpr int32_t kStartOffset = 250, kEndOffset = 251, kPlaceholderOffset = 252;  // from <|begin_of_text|>

}  // namespace

SpeechTokens SpeechTokens::choose(const Tokenizer& tok) {
  const auto bos = tok.token_id("<|begin_of_text|>");
  if (!bos) throw Error(ErrorKind::ModelLoad, "speech tokens: the tokenizer has no <|begin_of_text|> token");
  SpeechTokens t{*bos + kStartOffset, *bos + kEndOffset, *bos + kPlaceholderOffset};
  for (int32_t id : {t.start, t.end, t.placeholder}) {
    const bool reserved = id < tok.n_vocab() && tok.is_special(id) &&
                          tok.token_bytes(id).rfind("<|reserved_special_token_", 0) == 0;
    if (!reserved)
      throw Error(ErrorKind::ModelLoad, "speech tokens: id " + std::to_string(id) +
                                            " is not a reserved Llama 3 special token in this tokenizer");
  }
  return t;
}

void SpeechTokens::check(const Tokenizer& tok, const std::string& origin) const {
  for (int32_t id : {start, end, placeholder})
    if (id < 0 || id >= tok.n_vocab() || !tok.is_special(id))
      throw Error(ErrorKind::ModelLoad, origin + ": speech token id " + std::to_string(id) +
                                            " is not a special token of the base model's tokenizer");
}

json SpeechTokens::to_json() const { return {{"start", start}, {"end", end}, {"placeholder", placeholder}}; }

SpeechTokens SpeechTokens::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(j, {"start", "end", "placeholder"}, origin, "tokens.");
  SpeechTokens t;
  t.start = get<int32_t>(j, "start", origin, std::nullopt, "tokens.start");
  t.end = get<int32_t>(j, "end", origin, std::nullopt, "tokens.end");
  t.placeholder = get<int32_t>(j, "placeholder", origin, std::nullopt, "tokens.placeholder");
  if (t.start < 0 || t.end < 0 || t.placeholder < 0)
    fail(origin, "tokens", "start, end and placeholder must be token ids (>= 0)");
  if (t.start == t.end || t.start == t.placeholder || t.end == t.placeholder)
    fail(origin, "tokens", "start, end and placeholder must be three different ids");
  return t;
}

SpeechModelConfig SpeechModelConfig::preset(const std::string& name, int64_t llm_dim) {
  SpeechModelConfig c;
  if (name == "tiny") {
    c.encoder = ConformerConfig::tiny();
    c.adapter = SpeechAdapterConfig::tiny(c.encoder.d_model, llm_dim);
  } else if (name == "paper") {
    c.encoder = ConformerConfig::paper_1b();
    c.adapter = SpeechAdapterConfig::paper(c.encoder.d_model, llm_dim);
  } else {
    throw Error(ErrorKind::Usage, "unknown speech preset '" + name + "' (expected tiny or paper)");
  }
  return c;
}

json SpeechModelConfig::to_json() const {
  return {{"frontend", frontend.to_json()},
          {"encoder", encoder.to_json()},
          {"adapter", adapter.to_json()},
          {"tokens", tokens.to_json()},
          {"max_segment_seconds", max_segment_seconds}};
}

SpeechModelConfig SpeechModelConfig::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(j, {"frontend", "encoder", "adapter", "tokens", "max_segment_seconds"}, origin);
  for (const char* key : {"frontend", "encoder", "adapter", "tokens"})
    if (!j.contains(key)) fail(origin, key, "missing required key");
  SpeechModelConfig c;
  c.frontend = media::LogMelConfig::from_json(j["frontend"], origin + " (frontend)");
  c.encoder = ConformerConfig::from_json(j["encoder"], origin + " (encoder)");
  c.adapter = SpeechAdapterConfig::from_json(j["adapter"], origin + " (adapter)");
  c.tokens = SpeechTokens::from_json(j["tokens"], origin);
  c.max_segment_seconds = get<double>(j, "max_segment_seconds", origin, 60.0);
  if (!(c.max_segment_seconds > 0)) fail(origin, "max_segment_seconds", "must be positive");
  if (c.frontend.n_mels != c.encoder.n_mels)
    fail(origin, "encoder.n_mels", "is " + std::to_string(c.encoder.n_mels) + " but the front end makes " +
                                       std::to_string(c.frontend.n_mels) + " mel bins");
  if (c.adapter.encoder_dim != c.encoder.d_model)
    fail(origin, "adapter.encoder_dim", "must equal encoder.d_model (" + std::to_string(c.encoder.d_model) + ")");
  return c;
}

double SpeechModelConfig::flops(int64_t n_mel_frames) const {
  return encoder.flops(n_mel_frames) + adapter.flops(encoder.output_frames(n_mel_frames));
}

int64_t SpeechModelConfig::n_params() const { return encoder.n_params() + adapter.n_params(); }

SpeechModelImpl::SpeechModelImpl(const SpeechModelConfig& cfg, torch::Dtype dtype) : cfg_(cfg), dtype_(dtype) {
  encoder = register_module("encoder", ConformerEncoder(cfg.encoder, dtype));
  adapter = register_module("adapter", SpeechAdapter(cfg.adapter, dtype));
}

SpeechAdapterOutput SpeechModelImpl::forward(const torch::Tensor& mel, const torch::Tensor& lengths,
                                             const ActivationHook& hook) {
  auto enc = encoder->forward(mel, lengths, hook);
  return adapter->forward(enc.hidden, enc.lengths, hook);
}

torch::Tensor SpeechModelImpl::embed_audio(const float* samples, int64_t n) {
  torch::NoGradGuard no_grad;
  auto mel = media::log_mel_spectrogram(samples, n, cfg_.frontend);
  if (mel.size(0) == 0)
    throw Error(ErrorKind::InputDecode, "audio of " + std::to_string(n) + " samples is too short for one mel frame");
  const auto device = adapter->conv_weight.device();
  auto out = forward(mel.unsqueeze(0).to(device), {});
  return out.embeds[0].narrow(0, 0, out.lengths[0].item<int64_t>());
}

void init_random_speech_weights(SpeechModelImpl& model, uint64_t seed) {
  init_random_conformer_weights(*model.encoder, seed);
  init_random_conformer_weights(*model.adapter, seed + 1);
}

void save_speech_adapter(SpeechModelImpl& model, const BaseModelInfo& base, const std::string& path) {
  write_adapter_module(model, "speech", base, model.config().to_json(), path);
}

SpeechModel load_speech_adapter(const std::string& path, const BaseModelInfo& base,
                                std::optional<torch::Dtype> dtype) {
  auto file = read_adapter_file(path, "speech");
  check_base_compatible(file.header, base, path);
  auto cfg = parse_adapter_config<SpeechModelConfig>(file, path);
  if (cfg.adapter.llm_dim != base.hidden_size)
    throw Error(ErrorKind::ModelLoad, path + ": adapter.llm_dim " + std::to_string(cfg.adapter.llm_dim) +
                                          " differs from the base hidden size " + std::to_string(base.hidden_size));
  const torch::Dtype file_dtype = adapter_weight_dtype(file, "adapter.out_proj.weight", path);
  SpeechModel model(cfg, dtype.value_or(file_dtype));
  load_weights_strict(*model, *file.tensors, path);
  model->eval();
  return model;
}

namespace {

// The Llama decoder with speech vectors at the prompt's placeholders (built once, fed in prefill chunks).
class SpeechTokenDecoder : public TokenDecoder {
 public:
  SpeechTokenDecoder(LlamaForCausalLMImpl& llm, int64_t n_ctx, torch::Tensor prompt_embeds)
      : llm_(llm),
        cache_(llm.config(), 1, n_ctx, llm.dtype(), device()),
        prompt_embeds_(std::move(prompt_embeds)) {}
  torch::Tensor feed(const torch::Tensor& tokens) override {
    const int64_t T = tokens.size(1), pos = cache_.n_past, n_prompt = prompt_embeds_.size(1);
    TORCH_CHECK(pos >= n_prompt || pos + T <= n_prompt, "a feed straddles the end of the speech prompt");
    auto h = pos < n_prompt ? prompt_embeds_.narrow(1, pos, T) : llm_.embed(tokens);
    return llm_.logits(llm_.hidden_from_embeds(h, &cache_), false);
  }
  int64_t n_past() const override { return cache_.n_past; }
  int64_t n_ctx() const override { return cache_.n_ctx; }
  torch::Device device() const override { return llm_.lm_head_weight().device(); }

 private:
  LlamaForCausalLMImpl& llm_;
  KVCache cache_;
  torch::Tensor prompt_embeds_;  // [1, n_prompt, D]
};

}  // namespace

torch::Tensor speech_prompt_embeds(LlamaForCausalLMImpl& llm, const SpeechModelImpl& speech,
                                   const std::vector<int32_t>& prompt, const std::vector<torch::Tensor>& clips) {
  torch::NoGradGuard no_grad;
  const auto& st = speech.config().tokens;
  const auto device = llm.lm_head_weight().device();
  auto ids = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), torch::kInt64).to(device);
  auto h = llm.embed(ids.unsqueeze(0)).clone();  // [1, T, D]
  const auto boundary = speech.adapter->boundary.to(device, llm.dtype());
  // Walk the prompt: every <start> must open a run of exactly clips[i].size(0) placeholders closed by <end>.
  size_t clip = 0;
  for (size_t t = 0; t < prompt.size(); ++t) {
    if (prompt[t] == st.placeholder || prompt[t] == st.end)
      throw Error(ErrorKind::InputDecode, "speech prompt: token " + std::to_string(prompt[t]) + " at position " +
                                              std::to_string(t) + " is outside a <speech start> … <end> run");
    if (prompt[t] != st.start) continue;
    if (clip >= clips.size())
      throw Error(ErrorKind::InputDecode, "speech prompt: more speech runs than the " +
                                              std::to_string(clips.size()) + " clips given");
    const int64_t n = clips[clip].size(0);
    const size_t first = t + 1, last = first + static_cast<size_t>(n);
    bool ok = last < prompt.size() && prompt[last] == st.end;
    for (size_t k = first; ok && k < last; ++k) ok = prompt[k] == st.placeholder;
    if (!ok)
      throw Error(ErrorKind::InputDecode, "speech prompt: clip " + std::to_string(clip) + " needs exactly " +
                                              std::to_string(n) + " placeholders between its start and end tokens");
    h[0][t] = boundary[0];
    h[0].narrow(0, first, n).copy_(clips[clip].to(device, llm.dtype()));
    h[0][last] = boundary[1];
    t = last;
    ++clip;
  }
  if (clip != clips.size())
    throw Error(ErrorKind::InputDecode, "speech prompt: " + std::to_string(clips.size()) + " clips given but " +
                                            std::to_string(clip) + " speech runs in the prompt");
  return h;
}

GenerateResult generate_with_speech(LlamaForCausalLMImpl& llm, const SpeechModelImpl& speech, const Tokenizer& tok,
                                    const std::vector<int32_t>& prompt, const std::vector<torch::Tensor>& clips,
                                    const GenerateParams& params, const TextCallback& on_text) {
  torch::NoGradGuard no_grad;
  const auto& cfg = llm.config();
  const int64_t n_ctx = std::min<int64_t>(params.n_ctx, cfg.max_position_embeddings);
  check_prompt(prompt, n_ctx, cfg.max_position_embeddings, cfg.vocab_size);
  auto h = speech_prompt_embeds(llm, speech, prompt, clips);
  SpeechTokenDecoder dec(llm, n_ctx, h);
  return generate(dec, tok, prompt, params, params.eos_ids.empty() ? cfg.eos_token_ids : params.eos_ids, on_text);
}

}  // namespace llama_mm
