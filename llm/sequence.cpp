// llm/sequence.cpp: per-token bookkeeping of one generation (see sequence.h).
#include "llm/sequence.h"

#include <algorithm>

namespace llama_mm {

namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
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

Sequence::Sequence(const Tokenizer& tok, const std::vector<int32_t>& prompt, const GenerateParams& params,
                   std::vector<int64_t> eos, TextCallback on_text)
    : tok_(tok),
      params_(params),
      eos_(std::move(eos)),
      on_text_(std::move(on_text)),
      sampler_(params.sampling),
      history_(prompt),
      stream_(tok),
      t0_(Clock::now()) {
  result_.stop_reason = "length";
  result_.timings.n_prompt = static_cast<int64_t>(prompt.size());
  if (params_.n_predict == 0) done_ = true;
}

void Sequence::prefilled() {
  t1_ = Clock::now();
  result_.timings.prompt_ms = ms_between(t0_, t1_);
}

bool Sequence::advance(const torch::Tensor& logits, int64_t n_past, int64_t n_ctx) {
  if (done_) return false;
  const int32_t id = sampler_.sample(logits, history_);
  result_.tokens.push_back(id);
  history_.push_back(id);
  if (!params_.ignore_eos && std::find(eos_.begin(), eos_.end(), id) != eos_.end()) {
    result_.stop_reason = "eos";
    return !(done_ = true);
  }
  if (id < tok_.n_vocab()) text_ += stream_.push(id);  // a model may have more ids than its tokenizer
  // Stop strings: cut the text before the first match.
  size_t cut = std::string::npos;
  for (const auto& s : params_.stop)
    if (!s.empty()) cut = std::min(cut, text_.find(s, emitted_ > s.size() ? emitted_ - s.size() : 0));
  if (cut != std::string::npos) {
    text_.resize(cut);
    result_.stop_reason = "stop";
    return !(done_ = true);
  }
  const size_t ready = text_.size() - held_back(text_, params_.stop);
  if (on_text_ && ready > emitted_) {
    const bool go_on = on_text_(text_.substr(emitted_, ready - emitted_));
    emitted_ = ready;
    if (!go_on) {
      result_.stop_reason = "cancelled";
      return !(done_ = true);
    }
  }
  if (n_past >= n_ctx) {
    result_.stop_reason = "context";
    return !(done_ = true);
  }
  if (params_.n_predict >= 0 && static_cast<int>(result_.tokens.size()) >= params_.n_predict) return !(done_ = true);
  return true;
}

void Sequence::stop(const std::string& reason) {
  if (done_) return;
  result_.stop_reason = reason;
  done_ = true;
}

GenerateResult Sequence::finish() {
  if (t1_ == Clock::time_point{}) prefilled();
  const auto& reason = result_.stop_reason;
  if (reason != "stop") text_ += stream_.flush();  // an incomplete trailing character, if any
  if (on_text_ && text_.size() > emitted_ && reason != "cancelled")
    on_text_(text_.substr(emitted_));
  result_.text = text_;
  result_.timings.n_generated = static_cast<int64_t>(result_.tokens.size());
  result_.timings.generate_ms = ms_between(t1_, Clock::now());
  return std::move(result_);
}

}  // namespace llama_mm
