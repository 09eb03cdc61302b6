// llm/batch_generator.h: continuous batching. Several generations share one decode loop (one thread) and one
// KV cache with a row per slot:
//   - a job waits in a bounded FIFO until a slot is free;
//   - its prompt is prefilled alone, one n_batch chunk per loop turn, so running jobs keep decoding meanwhile;
//   - then its next token is decoded together with every other running job's in one forward pass per step
//     (LlamaForCausalLMImpl::hidden_rows), each row at its own position.
// Sampling, stop strings and streaming are Sequence's, so a job yields generate()'s tokens for the same prompt and
// parameters (batched matrix products may sum in another order; greedy output is tested to be unchanged).
//
//   BatchGenerator gen(*model, tok, /*slots=*/4, /*queue=*/64, /*n_ctx=*/4096);
//   BatchJob job;
//   job.prompt = ids; job.params = params; job.eos = model->config().eos_token_ids;
//   job.on_done = [](GenerateResult r) { ... };  job.on_error = [](const std::string& e) { ... };
//   gen.submit(std::move(job));   // false: the queue is full
//
// Callbacks run on the loop thread and must not block. Thread-safety: every public member may be called from any
// thread; the model is only read, so generations with their own caches (generate()) may run beside it.
#pragma once

#include "llm/generator.h"
#include "llm/llama_model.h"
#include "llm/tokenizer.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace llama_mm {

// What the loop has done so far (a consistent snapshot; the counters only grow).
struct BatchStats {
  int slots = 0, running = 0, waiting = 0;
  int64_t steps = 0, step_rows = 0;  // decode steps and the rows (tokens) they carried: rows / steps = mean batch
  double decode_seconds = 0;         // wall time inside decode steps (forward pass, sampling, streaming)
  int64_t prefill_tokens = 0;        // prompt positions prefilled
  double prefill_seconds = 0;        // wall time inside prefill chunks
};

struct BatchJob {
  std::vector<int32_t> prompt;  // checked by the caller (check_prompt with the generator's n_ctx)
  // [1, T, D] in the model dtype: the prompt's embeddings with media spliced in (speech); undefined: embed(prompt).
  torch::Tensor prompt_embeds;
  // The adapter layers of this sequence for its tokens at positions [pos, pos + T) (Mllama cross-attention of its
  // own images); empty: none. Whatever it refers to must live until on_done/on_error.
  std::function<LayerInterleave(int64_t pos, int64_t T)> interleave;
  GenerateParams params;  // sampling, n_predict, stop, n_batch; n_ctx is the generator's
  std::vector<int64_t> eos;
  TextCallback on_text;  // streamed pieces; returning false cancels
  // Polled every step: a non-empty stop reason ("cancelled", "deadline") ends the job at once.
  std::function<std::string()> should_stop;
  // Exactly one of these is called, once.
  std::function<void(GenerateResult)> on_done;
  std::function<void(const std::string& error)> on_error;
};

class BatchGenerator {
 public:
  BatchGenerator(LlamaForCausalLMImpl& model, const Tokenizer& tok, int slots, int queue_capacity, int64_t n_ctx);
  ~BatchGenerator();  // shutdown()

  // Queues a job; false when queue_capacity jobs are already waiting, or after shutdown.
  bool submit(BatchJob job);
  bool full() const;  // a submit now would be refused
  // Stops taking jobs; returns once every queued and running job has finished.
  void shutdown();

  int slots() const { return slots_; }
  int64_t n_ctx() const { return n_ctx_; }
  int running() const { return running_; }
  int waiting() const;
  BatchStats stats() const;

 private:
  struct Active;
  void loop();
  void prefill(Active& a);
  void decode(std::vector<Active*>& batch);

  LlamaForCausalLMImpl& model_;
  const Tokenizer& tok_;
  const int slots_, capacity_;
  const int64_t n_ctx_;
  KVCache cache_;  // [slots, G, n_ctx, Dh] per layer

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BatchJob> queue_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Active>> active_;  // loop thread only
  std::vector<bool> row_busy_;                   // loop thread only
  std::atomic<int> running_{0};
  BatchStats totals_;  // steps, rows, tokens and seconds; guarded by mu_
  std::thread thread_;
};

}  // namespace llama_mm
