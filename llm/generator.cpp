// llm/generator.cpp: prefill in n_batch chunks, then one token per step with the KV cache.
#include "llm/generator.h"

#include "llm/error.h"

#include <algorithm>
#include <chrono>

namespace llama_mm {

GenerateParams default_generate_params() { return GenerateParams{}; }

double GenerateTimings::generate_tok_per_s() const {
  // The first generated token comes out of the prefill; the decode rate counts the steps after it.
  return generate_ms > 0 && n_generated > 1 ? (n_generated - 1) * 1000.0 / generate_ms : 0;
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Length of the longest suffix of `text` that is a proper prefix of some stop string: that much text
// must be held back from streaming because the next token might complete a stop string.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  return hold;
}

}  // namespace

void check_prompt(const std::vector<int32_t>& prompt, int64_t n_ctx, int64_t max_n_ctx, int64_t n_ids) {
  if (prompt.empty()) throw Error(ErrorKind::InputDecode, "the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) >= n_ctx)
    throw Error(ErrorKind::InputDecode, "the prompt has " + std::to_string(prompt.size()) +
                                            " tokens, which does not fit the context of " + std::to_string(n_ctx) +
                                            " tokens (raise -c/--ctx-size, up to " + std::to_string(max_n_ctx) + ")");
  for (int32_t id : prompt)
    if (id < 0 || id >= n_ids)
      throw Error(ErrorKind::InputDecode, "prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                              std::to_string(n_ids) + ")");
}

namespace {
// The plain Llama decoder: one KV cache, batch 1.
class LlamaTokenDecoder : public TokenDecoder {
 public:
  LlamaTokenDecoder(LlamaForCausalLMImpl& model, int64_t n_ctx)
      : model_(model), cache_(model.config(), 1, n_ctx, model.dtype(), model.lm_head_weight().device()) {}
  torch::Tensor feed(const torch::Tensor& tokens) override { return model_.forward(tokens, &cache_); }
  int64_t n_past() const override { return cache_.n_past; }
  int64_t n_ctx() const override { return cache_.n_ctx; }
  torch::Device device() const override { return model_.lm_head_weight().device(); }

 private:
  LlamaForCausalLMImpl& model_;
  KVCache cache_;
};
}  // namespace

GenerateResult generate(LlamaForCausalLMImpl& model, const Tokenizer& tok, const std::vector<int32_t>& prompt,
                        const GenerateParams& params, const TextCallback& on_text) {
  torch::NoGradGuard no_grad;
  const auto& cfg = model.config();
  const int64_t n_ctx = std::min<int64_t>(params.n_ctx, cfg.max_position_embeddings);
  check_prompt(prompt, n_ctx, cfg.max_position_embeddings, cfg.vocab_size);
  LlamaTokenDecoder dec(model, n_ctx);
  return generate(dec, tok, prompt, params, params.eos_ids.empty() ? cfg.eos_token_ids : params.eos_ids, on_text);
}

GenerateResult generate(TokenDecoder& dec, const Tokenizer& tok, const std::vector<int32_t>& prompt,
                        const GenerateParams& params, const std::vector<int64_t>& eos, const TextCallback& on_text) {
  torch::NoGradGuard no_grad;
  const auto device = dec.device();
  GenerateResult r;
  Sampler sampler(params.sampling);
  std::vector<int32_t> history(prompt);

  auto t0 = Clock::now();
  torch::Tensor logits;
  const int64_t n_batch = std::max<int64_t>(1, params.n_batch);
  for (size_t i = 0; i < prompt.size(); i += n_batch) {
    const size_t n = std::min<size_t>(n_batch, prompt.size() - i);
    auto chunk = torch::from_blob(const_cast<int32_t*>(prompt.data() + i), {1, static_cast<int64_t>(n)}, torch::kInt32)
                     .to(device, torch::kInt64);
    logits = dec.feed(chunk);  // [1, 1, V]
  }
  r.timings.n_prompt = static_cast<int64_t>(prompt.size());
  r.timings.prompt_ms = ms_since(t0);

  TokenStreamDecoder stream(tok);  // yields complete UTF-8 only
  std::string text;                // all generated text so far
  size_t emitted = 0;              // bytes of `text` already passed to on_text
  auto t1 = Clock::now();
  r.stop_reason = "length";
  while (params.n_predict < 0 || static_cast<int>(r.tokens.size()) < params.n_predict) {
    const int32_t id = sampler.sample(logits[0][-1], history);
    r.tokens.push_back(id);
    history.push_back(id);
    if (!params.ignore_eos && std::find(eos.begin(), eos.end(), id) != eos.end()) {
      r.stop_reason = "eos";
      break;
    }
    if (id < tok.n_vocab()) text += stream.push(id);  // a model may have more ids than its tokenizer
    // Stop strings: cut the text before the first match.
    size_t cut = std::string::npos;
    for (const auto& s : params.stop)
      if (!s.empty()) cut = std::min(cut, text.find(s, emitted > s.size() ? emitted - s.size() : 0));
    if (cut != std::string::npos) {
      text.resize(cut);
      r.stop_reason = "stop";
      break;
    }
    const size_t ready = text.size() - held_back(text, params.stop);
    if (on_text && ready > emitted) {
      if (!on_text(text.substr(emitted, ready - emitted))) {
        emitted = ready;
        r.stop_reason = "cancelled";
        break;
      }
      emitted = ready;
    }
    if (dec.n_past() >= dec.n_ctx()) {
      r.stop_reason = "context";
      break;
    }
    auto next = torch::full({1, 1}, static_cast<int64_t>(id), torch::dtype(torch::kInt64).device(device));
    logits = dec.feed(next);
  }
  if (r.stop_reason != "stop") text += stream.flush();  // an incomplete trailing character, if any
  r.timings.n_generated = static_cast<int64_t>(r.tokens.size());
  r.timings.generate_ms = ms_since(t1);
  if (on_text && text.size() > emitted && r.stop_reason != "cancelled") on_text(text.substr(emitted));
  r.text = text;
  return r;
}

}  // namespace llama_mm
