// llm/sequence.h: one generation's life after its prompt: sampling the next token from the logits, eos, stop
// strings, n_predict, the context end, cancellation, and streaming the text as it becomes final. generate()
// drives one Sequence over a TokenDecoder; the server's batched loop (BatchGenerator) drives many, so a request
// decodes the same tokens and streams the same pieces either way.
//
//   Sequence seq(tok, prompt, params, eos, on_text);
//   while (seq.advance(logits, n_past, n_ctx)) logits = decoder.feed(seq.last_token());
//   GenerateResult r = seq.finish();
#pragma once

#include "llm/generator.h"

#include <chrono>
#include <string>
#include <vector>

namespace llama_mm {

class Sequence {
 public:
  Sequence(const Tokenizer& tok, const std::vector<int32_t>& prompt, const GenerateParams& params,
           std::vector<int64_t> eos, TextCallback on_text);

  // Marks the end of the prefill (its time is timings.prompt_ms). Called once, before the first advance().
  void prefilled();
  // Samples a token from logits [V] (fp32) of the last fed position. n_past/n_ctx: positions the cache holds now
  // and can hold. Returns true when last_token() must be fed and advance() called again; false when the
  // sequence has ended (stop reason set).
  bool advance(const torch::Tensor& logits, int64_t n_past, int64_t n_ctx);
  // Ends the sequence early with this stop reason (a client gone, a deadline passed).
  void stop(const std::string& reason);
  bool done() const { return done_; }
  int32_t last_token() const { return result_.tokens.back(); }
  // Flushes the text and returns the result; call once, after done() or stop().
  GenerateResult finish();

 private:
  using Clock = std::chrono::steady_clock;
  const Tokenizer& tok_;
  GenerateParams params_;
  std::vector<int64_t> eos_;
  TextCallback on_text_;
  Sampler sampler_;
  std::vector<int32_t> history_;
  TokenStreamDecoder stream_;  // yields complete UTF-8 only
  std::string text_;           // all generated text so far
  size_t emitted_ = 0;         // bytes of text_ already passed to on_text_
  bool done_ = false;
  GenerateResult result_;
  Clock::time_point t0_, t1_;
};

}  // namespace llama_mm
