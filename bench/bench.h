// bench/bench.h: benchmarks behind `llama-mm bench ...`. They print figures and ratios; tests never
// assert on their timings.
#pragma once

#include "llm/llm.h"

#include <optional>
#include <string>

namespace llama_mm::bench {

// Sustained read bandwidth of this machine in GB/s (1e9 bytes/s): `threads` threads summing a
// `bytes`-sized buffer, best of `reps` passes.
double measure_read_bandwidth(int threads, size_t bytes = size_t(1) << 30, int reps = 5);

struct GenerateBenchParams {
  std::string model_dir;      // a checkpoint directory, or empty with `preset`
  std::string preset;         // "tiny", "1b", "8b": random weights built in memory
  std::optional<torch::Dtype> dtype;  // default: the checkpoint's dtype, bf16 for presets
  int n_prompt = 512;
  int n_gen = 128;
  int threads = 0;            // 0: all cores
  uint64_t seed = 42;
};

struct GenerateBenchResult {
  std::string model;          // what was measured
  std::string dtype;
  int64_t n_params = 0;
  int threads = 0;
  int n_prompt = 0, n_gen = 0;
  double prefill_tok_per_s = 0, decode_tok_per_s = 0;
  double weight_bytes_per_token = 0;    // bytes of weights one decode step reads
  double machine_bandwidth_gbs = 0;     // measured by this bench
  double decode_bandwidth_gbs = 0;      // decode_tok_per_s × weight_bytes_per_token
  double bandwidth_percent = 0;         // decode_bandwidth_gbs / machine_bandwidth_gbs
};

// Progress goes to stderr.
GenerateBenchResult run_generate_bench(const GenerateBenchParams& params);

}  // namespace llama_mm::bench
