// bench/bench.h: benchmarks behind `llama-mm bench ...`. They print figures and ratios; tests never
// assert on their timings.
#pragma once

#include "llm/llm.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace llama_mm::bench {

// Seconds elapsed since t0 (steady clock).
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sustained read bandwidth of this machine in GB/s (1e9 bytes/s): `threads` threads summing a
// `bytes`-sized buffer, best of `reps` passes.
double measure_read_bandwidth(int threads, size_t bytes = size_t(1) << 30, int reps = 5);

// A GPU's memory bandwidth in GB/s: device-to-device copies of a `bytes` buffer, counting the bytes read and
// the bytes written (as GPU vendors and benchmarks do), best of `reps` after a warm-up.
double measure_device_copy_bandwidth(torch::Device device, size_t bytes = size_t(2) << 30, int reps = 10);

// The device a benchmark runs on: "cpu", "cuda" (or "cuda:N"); empty: CUDA when available, else the CPU.
torch::Device resolve_device(const std::string& name);

// GFLOP/s of y = x·Wᵀ through the engine's projection path (llm/cpu_linear.h project) for an [m, k] x [n, k]
// problem in `dtype`, best of 3: "the measured matmul rate" the encoder benchmarks compare against.
double measure_matmul_gflops(int64_t m, int64_t k, int64_t n, torch::Dtype dtype);

struct GenerateBenchParams {
  std::string model_dir;      // a checkpoint directory, or empty with `preset`
  std::string preset;         // "tiny", "1b", "8b": random weights built in memory
  std::string device;         // see resolve_device(); on CUDA, threads only set the host side
  // Weight formats measured side by side on one model: at most one dtype ("f32", "bf16"; empty: the
  // checkpoint's, bf16 for presets), then optionally "q8" (that model quantized, llm/q8_linear.h).
  std::vector<std::string> formats{""};
  std::vector<int> threads{0};  // thread counts, each measured for every format; 0: all cores
  // Batched decode (the server's continuous batching, LlamaForCausalLM::hidden_rows): for each B here, n_gen steps
  // of B sequences at once, each attending to n_prompt cached positions (zeros: the cost does not depend on them).
  std::vector<int> batch_rows;
  int n_prompt = 512;
  int n_gen = 128;
  uint64_t seed = 42;
};

struct GenerateBenchResult {  // one (format, threads) row
  std::string model;          // what was measured
  std::string device;         // "cpu", "cuda"
  std::string format;         // "bfloat16", "float32", "q8"
  int64_t n_params = 0;
  int threads = 0;
  int n_prompt = 0, n_gen = 0;
  double prefill_tok_per_s = 0, decode_tok_per_s = 0;
  double weight_bytes_per_token = 0;    // bytes of weights one decode step reads
  double machine_bandwidth_gbs = 0;     // CPU: read bandwidth at this thread count, the mean of a measurement just
                                        // before and one just after the decode; CUDA: copy bandwidth
  double decode_bandwidth_gbs = 0;      // decode_tok_per_s × weight_bytes_per_token
  double bandwidth_percent = 0;         // decode_bandwidth_gbs / machine_bandwidth_gbs
  std::vector<std::pair<int, double>> batched_tok_per_s;  // (B, tokens per second summed over the B sequences)
};

// Every format × thread count, formats in the order given. Progress goes to stderr.
std::vector<GenerateBenchResult> run_generate_bench(const GenerateBenchParams& params);

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
  std::string device;                 // see resolve_device()
  uint64_t seed = 42;
};

struct CaptionBenchResult {
  std::string model, dtype, device;
  int threads = 0, tiles = 0, max_tiles = 0;
  int64_t tokens_per_tile = 0;        // P (padded: P' runs)
  double encode_ms = 0;               // one image: vision encoder + projector + cross K/V
  double encode_ms_per_tile = 0;      // encode_ms / max_tiles (every tile is computed)
  double encode_gflop = 0;            // matmul FLOPs of one image encode, counted from the shapes
  double encode_gflops = 0;           // achieved rate
  double matmul_gflops = 0;           // this machine's measured rate for an encoder-shaped GEMM in the model dtype
  double matmul_percent = 0;          // encode_gflops / matmul_gflops (CPU only: 0 on a GPU)
  double prefill_tok_per_s = 0, decode_tok_per_s = 0;  // 0 when the text side was not run
  double caption_ms = 0;              // the whole caption: image encode, prefill and n_gen tokens, end to end
};

CaptionBenchResult run_caption_bench(const CaptionBenchParams& params);

struct TranscribeBenchParams {
  std::string preset = "paper-8b";  // speech encoder + adapter: "tiny", "paper-8b", "paper-70b" (random weights)
  torch::Dtype dtype = torch::kBFloat16;
  double seconds = 30;              // audio length (one segment; the paper's segments are <= 60 s)
  int reps = 1;                     // timed runs after one warm-up (best is reported)
  int threads = 0;
  uint64_t seed = 42;
};

struct TranscribeBenchResult {
  std::string model, dtype;
  int threads = 0;
  int64_t n_params = 0;
  double seconds = 0;
  int64_t mel_frames = 0, encoder_frames = 0, adapter_vectors = 0;
  double frontend_ms = 0;             // log-mel
  double encoder_ms = 0, adapter_ms = 0;
  double ms_per_audio_second = 0;     // (front end + encoder + adapter) / seconds
  double gflop = 0, gflops = 0;       // encoder + adapter FLOPs and achieved rate
  double matmul_gflops = 0;           // measured rate of an encoder-shaped GEMM in the same dtype
  double matmul_percent = 0;
};

TranscribeBenchResult run_transcribe_bench(const TranscribeBenchParams& params);

struct VideoBenchParams {
  std::string video_file;          // empty: make one with the ffmpeg CLI (cached under the temp directory)
  int make_minutes = 10;           // the made file: minutes of 1080p25 H.264 with 2 s GOPs
  int frames = 64;                 // frames sampled
  std::string preset;              // "" (sampling only) or an Mllama preset ("tiny", "11b", "90b") whose vision
                                   // encoder and matching video adapter (tiny, paper-8b, paper-70b) are timed
  torch::Dtype dtype = torch::kBFloat16;
  int tiles = 4;                   // tiles per frame
  int encode_frames = 2;           // frames timed through the vision encoder (the per-frame figure); 0: not timed
                                   // (the aggregator then gets random states)
  int threads = 0;
  uint64_t seed = 42;
};

struct VideoBenchResult {
  std::string file, codec;
  int width = 0, height = 0;
  double duration_s = 0;
  int threads = 0;
  int64_t all_frames = 0;
  double decode_all_ms = 0;                      // decoding every frame (no RGB conversion)
  struct Sampling {
    std::string mode;
    double ms = 0;                               // decode + seek + RGB conversion of the sampled frames
    int64_t frames = 0, decoded = 0;
    int seeks = 0;
    double percent_of_all = 0;                   // ms / decode_all_ms
  };
  std::vector<Sampling> sampling;                // exact, keyframe, auto
  std::string model, dtype;                      // empty without a preset
  int64_t tokens_per_frame = 0, groups = 0, latents = 0;
  double encoder_ms_per_frame = 0;               // vision encoder + projector, one frame (0: not timed)
  double aggregator_ms = 0, aggregator_gflop = 0, aggregator_gflops = 0;
};

// Progress goes to stderr.
VideoBenchResult run_video_bench(const VideoBenchParams& params);

struct TrainBenchParams {
  std::string preset = "tiny";  // Mllama preset for image-adapter training: tiny, paper-8b (11B), paper-70b (90B)
  int layers = 0;               // > 0: only the first `layers` layers of the interleaved text stack (fits memory)
  int64_t batch = 4, seq = 128; // captions per step, tokens per caption
  int tiles = 4;                // tiles per image (1, 2 or 4)
  int steps = 3;                // timed steps after one warm-up
  double peak_tflops = 989.0;   // CUDA: the device's dense bf16 peak for MFU (H100 SXM: 989)
  int threads = 0;
  uint64_t seed = 42;
};

struct TrainBenchResult {
  std::string model, device;
  int threads = 0, tiles = 0;
  int64_t n_params = 0, n_trainable = 0, batch = 0, seq = 0;
  double step_ms = 0, samples_per_s = 0, tokens_per_s = 0;
  double model_gflop = 0;        // per step: 3 × forward matmul FLOPs
  double achieved_gflops = 0;
  double peak_gflops = 0;        // CPU: measured fp32 matmul rate; CUDA: peak_tflops
  std::string peak_source;
  double mfu_percent = 0;
};

// Progress goes to stderr.
TrainBenchResult run_train_bench(const TrainBenchParams& params);

struct ServeBenchParams {
  std::string model_dir;                // any model `llama-mm serve` takes (init-model makes random ones)
  std::string dtype;                    // "": the checkpoint's
  std::vector<int> clients = {1, 4, 8, 16};  // concurrent streaming clients per round; the server gets max() slots
  int n_prompt = 64;                    // prompt length in words
  int n_gen = 32;                       // tokens per answer (ignore_eos, greedy)
  int requests_per_client = 2;          // sequential requests of each client in a round
  int64_t n_ctx = 512;                  // context per slot
  int threads = 0;
};

struct ServeBenchRound {
  int clients = 0, requests = 0;
  int64_t prompt_tokens = 0, tokens = 0;  // per request, and generated in the whole round
  double wall_s = 0;
  double tok_per_s = 0;                   // generated tokens / wall time: what the server delivers
  double decode_tok_per_s = 0;            // the sum over concurrent streams of (tokens - 1) / (last - first token)
  double ttft_p50_ms = 0, ttft_p99_ms = 0, latency_p50_ms = 0, latency_p99_ms = 0;
  double mean_batch = 0;                  // sequences per decode step (from /metrics)
  // From the decode loop's own counters (/metrics): tokens of decode steps / seconds inside them, i.e. the total
  // decode rate without the time the steps waited for prefill chunks; and the seconds spent prefilling.
  double loop_decode_tok_per_s = 0, prefill_s = 0;
};

struct ServeBenchResult {
  std::string model, dtype;
  int threads = 0, slots = 0;
  std::vector<ServeBenchRound> rounds;
};

// Starts `llama-mm serve` in this process on a free loopback port and drives it over HTTP with streaming clients,
// round by round. Progress goes to stderr.
ServeBenchResult run_serve_bench(const ServeBenchParams& params);

}  // namespace llama_mm::bench
