// llm/batch_generator.cpp: the continuous-batching loop (see batch_generator.h).
#include "llm/batch_generator.h"

#include "llm/sequence.h"

#include <algorithm>
#include <chrono>
#include <exception>

namespace llama_mm {

struct BatchGenerator::Active {
  Active(BatchJob j, const Tokenizer& tok, int64_t r)
      : job(std::move(j)), seq(tok, job.prompt, job.params, job.eos, job.on_text), row(r) {}
  BatchJob job;
  Sequence seq;
  int64_t row;
  int64_t n_past = 0;    // positions of this row's cache filled so far
  bool decoding = false;  // prefill finished: last_token() waits to be fed
  std::string error;
};

BatchGenerator::BatchGenerator(LlamaForCausalLMImpl& model, const Tokenizer& tok, int slots, int queue_capacity,
                               int64_t n_ctx)
    : model_(model),
      tok_(tok),
      slots_(std::max(1, slots)),
      capacity_(std::max(0, queue_capacity)),
      n_ctx_(n_ctx),
      cache_(model.config(), slots_, n_ctx, model.dtype(), model.lm_head_weight().device()),
      row_busy_(slots_, false),
      thread_([this] { loop(); }) {}

BatchGenerator::~BatchGenerator() { shutdown(); }

bool BatchGenerator::submit(BatchJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || static_cast<int>(queue_.size()) >= capacity_ + slots_ - running_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return true;
}

bool BatchGenerator::full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_ || static_cast<int>(queue_.size()) >= capacity_ + slots_ - running_;
}

int BatchGenerator::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

BatchStats BatchGenerator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BatchStats s = totals_;
  s.slots = slots_;
  s.running = running_;
  s.waiting = static_cast<int>(queue_.size());
  return s;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void BatchGenerator::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchGenerator::prefill(Active& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n_prompt = static_cast<int64_t>(a.job.prompt.size());
  const int64_t n = std::min<int64_t>(std::max<int64_t>(1, a.job.params.n_batch), n_prompt - a.n_past);
  const auto device = model_.lm_head_weight().device();
  torch::Tensor h;
  if (a.job.prompt_embeds.defined()) {
    h = a.job.prompt_embeds.narrow(1, a.n_past, n).to(device);
  } else {
    auto ids = torch::from_blob(a.job.prompt.data() + a.n_past, {1, n}, torch::kInt32).to(device, torch::kInt64);
    h = model_.embed(ids);
  }
  // The row's cache as a batch-1 cache: views of row a.row.
  KVCache row;
  row.n_ctx = n_ctx_;
  row.n_past = a.n_past;
  for (size_t l = 0; l < cache_.k.size(); ++l) {
    row.k.push_back(cache_.k[l].narrow(0, a.row, 1));
    row.v.push_back(cache_.v[l].narrow(0, a.row, 1));
  }
  ForwardOptions opts;
  if (a.job.interleave) opts.interleave = a.job.interleave(a.n_past, n);
  auto hidden = model_.hidden_from_embeds(h, &row, opts);
  a.n_past = row.n_past;
  if (a.n_past >= n_prompt) {
    a.seq.prefilled();
    a.decoding = a.seq.advance(model_.logits(hidden, false)[0][0], a.n_past, n_ctx_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  totals_.prefill_tokens += n;
  totals_.prefill_seconds += seconds_since(t0);
}

void BatchGenerator::decode(std::vector<Active*>& batch) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t B = static_cast<int64_t>(batch.size());
  std::vector<int64_t> rows, positions, tokens;
  std::vector<LayerInterleave> interleaves(B);
  bool any_interleave = false;
  for (int64_t b = 0; b < B; ++b) {
    rows.push_back(batch[b]->row);
    positions.push_back(batch[b]->n_past);
    tokens.push_back(batch[b]->seq.last_token());
    if (batch[b]->job.interleave) {
      interleaves[b] = batch[b]->job.interleave(batch[b]->n_past, 1);
      any_interleave = true;
    }
  }
  LayerInterleave interleave;
  if (any_interleave)  // each sequence's own adapter layers on its own row
    interleave = [&](int64_t layer, const torch::Tensor& h) {
      std::vector<torch::Tensor> parts;
      for (int64_t b = 0; b < B; ++b) {
        auto hb = h.narrow(0, b, 1);
        parts.push_back(interleaves[b] ? interleaves[b](layer, hb) : hb);
      }
      return torch::cat(parts, 0);
    };
  const auto device = model_.lm_head_weight().device();
  auto ids = torch::tensor(tokens, torch::kInt64).to(device).unsqueeze(1);  // [B, 1]
  auto logits = model_.logits(model_.hidden_rows(model_.embed(ids), cache_, rows, positions, interleave), false);
  for (int64_t b = 0; b < B; ++b) {
    auto& a = *batch[b];
    a.n_past += 1;
    a.decoding = a.seq.advance(logits[b][0], a.n_past, n_ctx_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  totals_.steps += 1;
  totals_.step_rows += B;
  totals_.decode_seconds += seconds_since(t0);
}

void BatchGenerator::loop() {
  torch::NoGradGuard no_grad;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return !active_.empty() || (!queue_.empty() && static_cast<int>(active_.size()) < slots_) ||
               (stopping_ && queue_.empty());
      });
      if (active_.empty() && queue_.empty() && stopping_) return;
      while (!queue_.empty() && static_cast<int>(active_.size()) < slots_) {
        const int64_t row = std::find(row_busy_.begin(), row_busy_.end(), false) - row_busy_.begin();
        row_busy_[row] = true;
        active_.push_back(std::make_unique<Active>(std::move(queue_.front()), tok_, row));
        queue_.pop_front();
        ++running_;
      }
    }
    // Stop requests first, then one prefill chunk per new job, then one decode step for all the others.
    std::vector<Active*> batch;
    for (auto& a : active_) {
      if (a->seq.done()) continue;
      if (a->job.should_stop) {
        const std::string reason = a->job.should_stop();
        if (!reason.empty()) {
          a->seq.stop(reason);
          continue;
        }
      }
      if (a->decoding) {
        batch.push_back(a.get());
        continue;
      }
      try {
        prefill(*a);
      } catch (const std::exception& e) {
        a->error = e.what();
        a->seq.stop("error");
      }
    }
    if (!batch.empty()) {
      try {
        decode(batch);
      } catch (const std::exception& e) {
        for (auto* a : batch) {
          a->error = e.what();
          a->seq.stop("error");
        }
      }
    }
    // Finished jobs report and free their rows.
    for (auto it = active_.begin(); it != active_.end();) {
      auto& a = **it;
      if (!a.seq.done()) {
        ++it;
        continue;
      }
      if (!a.error.empty()) {
        if (a.job.on_error) a.job.on_error(a.error);
      } else {
        auto r = a.seq.finish();
        if (a.job.on_done) a.job.on_done(std::move(r));
      }
      row_busy_[a.row] = false;
      --running_;
      it = active_.erase(it);
      cv_.notify_all();
    }
  }
}

}  // namespace llama_mm
