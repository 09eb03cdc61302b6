// serve/metrics.cpp: Prometheus text exposition (see metrics.h).
#include "serve/metrics.h"

#include <sstream>

namespace llama_mm::serve {

void Metrics::Histogram::observe(double x) {
  if (counts.empty()) counts.assign(bounds.size() + 1, 0);
  size_t i = 0;
  while (i < bounds.size() && x > bounds[i]) ++i;
  ++counts[i];
  sum += x;
  ++n;
}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::tokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  generated_tokens_ += generated;
}

void Metrics::time_to_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(seconds);
}

void Metrics::latency(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  latency_.observe(seconds);
}

void Metrics::media(const std::string& modality, int64_t items, double encode_seconds) {
  if (items == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& m = media_[modality];
  m.first += items;
  m.second += encode_seconds;
}

namespace {

void header(std::ostringstream& s, const char* name, const char* type, const char* help) {
  s << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

}  // namespace

std::string Metrics::render(const BatchStats& loop) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream s;
  header(s, "llama_mm_requests_total", "counter", "HTTP requests by endpoint and status.");
  for (const auto& [key, n] : requests_)
    s << "llama_mm_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  header(s, "llama_mm_prompt_tokens_total", "counter", "Prompt tokens processed, media tokens included.");
  s << "llama_mm_prompt_tokens_total " << prompt_tokens_ << "\n";
  header(s, "llama_mm_tokens_predicted_total", "counter", "Tokens generated.");
  s << "llama_mm_tokens_predicted_total " << generated_tokens_ << "\n";
  header(s, "llama_mm_slots_total", "gauge", "Generation slots (-np).");
  s << "llama_mm_slots_total " << loop.slots << "\n";
  header(s, "llama_mm_requests_processing", "gauge", "Generations running on a slot.");
  s << "llama_mm_requests_processing " << loop.running << "\n";
  header(s, "llama_mm_requests_waiting", "gauge", "Generations queued for a slot.");
  s << "llama_mm_requests_waiting " << loop.waiting << "\n";
  header(s, "llama_mm_decode_steps_total", "counter", "Batched decode steps (one forward pass each).");
  s << "llama_mm_decode_steps_total " << loop.steps << "\n";
  header(s, "llama_mm_decode_step_sequences_total", "counter",
         "Sequences carried by those steps (divided by the steps: the mean batch size).");
  s << "llama_mm_decode_step_sequences_total " << loop.step_rows << "\n";
  header(s, "llama_mm_decode_seconds_total", "counter",
         "Seconds inside decode steps (sequences / seconds: the loop's total decode tokens/s).");
  s << "llama_mm_decode_seconds_total " << loop.decode_seconds << "\n";
  header(s, "llama_mm_prefill_tokens_total", "counter", "Prompt positions prefilled by the decode loop.");
  s << "llama_mm_prefill_tokens_total " << loop.prefill_tokens << "\n";
  header(s, "llama_mm_prefill_seconds_total", "counter", "Seconds inside prefill chunks (decode steps wait meanwhile).");
  s << "llama_mm_prefill_seconds_total " << loop.prefill_seconds << "\n";
  header(s, "llama_mm_media_items_total", "counter", "Media items encoded, by modality.");
  for (const auto& [m, v] : media_) s << "llama_mm_media_items_total{modality=\"" << m << "\"} " << v.first << "\n";
  header(s, "llama_mm_media_encode_seconds_total", "counter", "Seconds spent decoding and encoding media, by modality.");
  for (const auto& [m, v] : media_)
    s << "llama_mm_media_encode_seconds_total{modality=\"" << m << "\"} " << v.second << "\n";
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    header(s, name, "histogram", help);
    int64_t cumulative = 0;
    for (size_t i = 0; i <= h.bounds.size(); ++i) {
      cumulative += h.counts.empty() ? 0 : h.counts[i];
      s << name << "_bucket{le=\"";
      if (i < h.bounds.size()) s << h.bounds[i];
      else s << "+Inf";
      s << "\"} " << cumulative << "\n";
    }
    s << name << "_sum " << h.sum << "\n" << name << "_count " << h.n << "\n";
  };
  histogram("llama_mm_time_to_first_token_seconds", "From the request's arrival to its first generated text.", ttft_);
  histogram("llama_mm_e2e_request_latency_seconds", "From the request's arrival to its last byte.", latency_);
  return s.str();
}

}  // namespace llama_mm::serve
