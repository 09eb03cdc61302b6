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

struct CaptionBenchParams {
  std::string model_dir;              // an Mllama checkpoint, or empty with `preset`
  std::string preset;                 // "tiny", "11b", "90b": random weights built in memory
  std::optional<torch::Dtype> dtype;  // default: the checkpoint's dtype, bf16 for presets
  int tiles = 4;                      // valid tiles of the benchmark image (the encoder always runs max_num_tiles)
  int reps = 1;                       // image encodes timed (best is reported), after one warm-up on small presets
  bool text = true;                   // also time prefill/decode of a caption (the full model; presets other
                                      // than tiny then need the whole model in memory)
  int n_prompt = 32, n_gen = 16;
  int threads = 0;
  uint64_t seed = 42;
};

struct CaptionBenchResult {
  std::string model, dtype;
  int threads = 0, tiles = 0, max_tiles = 0;
  int64_t tokens_per_tile = 0;        // P (padded: P' runs)
  double encode_ms = 0;               // one image: vision encoder + projector + cross K/V
  double encode_ms_per_tile = 0;      // encode_ms / max_tiles (every tile is computed)
  double encode_gflop = 0;            // matmul FLOPs of one image encode, counted from the shapes
  double encode_gflops = 0;           // achieved rate
  double matmul_gflops = 0;           // this machine's measured rate for an encoder-shaped GEMM in the model dtype
  double matmul_percent = 0;          // encode_gflops / matmul_gflops
  double prefill_tok_per_s = 0, decode_tok_per_s = 0;  // 0 when the text side was not run
};

CaptionBenchResult run_caption_bench(const CaptionBenchParams& params);

}  // namespace llama_mm::bench
