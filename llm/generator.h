// llm/generator.h: autoregressive generation over a LlamaForCausalLM with a preallocated KV cache.
//
// Basic usage:
//   auto model = llama_mm::load_llama(dir);
//   auto tok = llama_mm::Tokenizer::from_file(dir);
//   llama_mm::GenerateParams gp;                 // default_generate_params()
//   gp.n_predict = 64;
//   auto r = llama_mm::generate(*model, tok, prompt_ids, gp, [](const std::string& piece) {
//     std::cout << piece << std::flush; return true;   // false stops generation
//   });
// Stops on any eos id, on a stop string (the text stops before it), at n_predict or at the context end.
#pragma once

#include "llm/llama_model.h"
#include "llm/sampler.h"
#include "llm/tokenizer.h"

#include <functional>
#include <string>
#include <vector>

namespace llama_mm {

struct GenerateParams {
  int n_predict = 128;              // maximum new tokens; < 0: until eos or the context is full
  int64_t n_ctx = 4096;             // KV cache length (prompt + generation); capped at max_position_embeddings
  int64_t n_batch = 512;            // prompt tokens per forward pass during prefill (bounds attention memory)
  SamplingParams sampling;
  std::vector<std::string> stop;    // stop strings, matched on the decoded text
  std::vector<int64_t> eos_ids;     // empty: the model config's eos_token_id(s)
  bool ignore_eos = false;          // keep going past eos (benchmarks)
};
GenerateParams default_generate_params();

struct GenerateTimings {
  int64_t n_images = 0;         // images encoded before the prefill (multimodal models)
  double image_encode_ms = 0;   // their encoder + projector + cross K/V time, not part of prompt_ms
  int64_t n_video_frames = 0;   // video frames encoded before the prefill (video adapters)
  double video_encode_ms = 0;   // their encoder + projector + aggregator + cross K/V time
  int64_t n_prompt = 0;
  double prompt_ms = 0;
  int64_t n_generated = 0;
  double generate_ms = 0;  // decode steps after the first token
  double prompt_tok_per_s() const { return prompt_ms > 0 ? n_prompt * 1000.0 / prompt_ms : 0; }
  double generate_tok_per_s() const;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (the eos id, if one ended generation, is included)
  std::string text;             // decoded generated text, cut before a matched stop string
  std::string stop_reason;      // "eos", "stop", "length", "context", "cancelled" or "deadline"
  GenerateTimings timings;
};

// on_text receives complete UTF-8 pieces as they become final (text that might begin a stop string is
// held back until it is known not to); returning false cancels. May be empty.
using TextCallback = std::function<bool(const std::string& piece)>;

GenerateResult generate(LlamaForCausalLMImpl& model, const Tokenizer& tok, const std::vector<int32_t>& prompt,
                        const GenerateParams& params, const TextCallback& on_text = {});

// A decoder with its own cache as the generation loop sees it; other model kinds (Mllama) implement it.
class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  // Feeds tokens [1, T] int64 at the next positions and returns the last position's fp32 logits [1, 1, V].
  virtual torch::Tensor feed(const torch::Tensor& tokens) = 0;
  virtual int64_t n_past() const = 0;  // positions consumed so far
  virtual int64_t n_ctx() const = 0;   // positions the cache holds
  virtual torch::Device device() const = 0;
};

// The sampling loop over any TokenDecoder: prefill `prompt` in params.n_batch chunks, then sample until
// one of `eos`, a stop string, n_predict or the end of the context. The caller validates the prompt.
GenerateResult generate(TokenDecoder& dec, const Tokenizer& tok, const std::vector<int32_t>& prompt,
                        const GenerateParams& params, const std::vector<int64_t>& eos,
                        const TextCallback& on_text = {});

// Throws InputDecode when the prompt is empty, does not leave room in n_ctx, or has ids outside [0, n_ids).
void check_prompt(const std::vector<int32_t>& prompt, int64_t n_ctx, int64_t max_n_ctx, int64_t n_ids);

}  // namespace llama_mm
