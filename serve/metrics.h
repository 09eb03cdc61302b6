// serve/metrics.h: the counters and histograms behind GET /metrics, in the Prometheus text format (names after
// llama.cpp's and vLLM's: requests, prompt and generated tokens, time to first token, end-to-end latency, slots
// busy, queue depth, decode steps and prefill and decode seconds, media items and encode seconds per modality). Thread-safe.
#pragma once

#include "llm/batch_generator.h"

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace llama_mm::serve {

class Metrics {
 public:
  void request(const std::string& endpoint, int status);
  void tokens(int64_t prompt, int64_t generated);
  void time_to_first_token(double seconds);
  void latency(double seconds);
  void media(const std::string& modality, int64_t items, double encode_seconds);
  // The exposition text; the slot gauges and decode-loop counters are the caller's snapshot of the loop.
  std::string render(const BatchStats& loop) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<int64_t> counts;  // per bound, plus +Inf
    double sum = 0;
    int64_t n = 0;
    void observe(double x);
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  int64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  std::map<std::string, std::pair<int64_t, double>> media_;  // modality -> (items, seconds)
  Histogram ttft_{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, {}, 0, 0};
  Histogram latency_{{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}, {}, 0, 0};
};

}  // namespace llama_mm::serve
