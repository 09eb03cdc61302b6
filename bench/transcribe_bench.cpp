// bench/transcribe_bench.cpp: the speech path's encoding cost (log-mel, Conformer encoder, speech adapter)
// per second of audio, and the achieved matmul rate against the machine's measured rate.
#include "adapters/adapters.h"
#include "bench/bench.h"

#include <chrono>
#include <cmath>
#include <iostream>

namespace llama_mm::bench {

TranscribeBenchResult run_transcribe_bench(const TranscribeBenchParams& p) {
  torch::NoGradGuard no_grad;
  TranscribeBenchResult r;
  r.threads = configure_threads(p.threads);
  int64_t llm_dim;
  std::string preset;
  if (p.preset == "tiny") preset = "tiny", llm_dim = 64;
  else if (p.preset == "paper-8b") preset = "paper", llm_dim = 4096;
  else if (p.preset == "paper-70b") preset = "paper", llm_dim = 8192;
  else throw Error(ErrorKind::Usage, "bench transcribe: --preset must be tiny, paper-8b or paper-70b");
  if (!(p.seconds > 0) || p.reps < 1) throw Error(ErrorKind::Usage, "bench transcribe: --seconds and --reps must be positive");
  auto cfg = SpeechModelConfig::preset(preset, llm_dim);
  r.model = "speech " + p.preset;
  r.dtype = dtype_name(p.dtype);
  r.n_params = cfg.n_params();
  r.seconds = p.seconds;
  std::cerr << "bench: building " << r.model << " (" << r.n_params / 1e6 << " M parameters, " << r.dtype << ")\n";
  SpeechModel model(cfg, p.dtype);
  init_random_speech_weights(*model, p.seed);
  model->eval();

  // A deterministic speech-like signal: a few modulated tones and a little noise.
  const int64_t n = static_cast<int64_t>(std::llround(p.seconds * media::kSpeechSampleRate));
  auto t = torch::arange(n, torch::kFloat32) / static_cast<double>(media::kSpeechSampleRate);
  auto wave = 0.3 * torch::sin(2 * M_PI * 220 * t) * (1 + torch::sin(2 * M_PI * 3 * t)) / 2 +
              0.1 * torch::sin(2 * M_PI * 1250 * t) + 0.01 * torch::randn({n}, torch::TensorOptions().dtype(torch::kFloat32));
  wave = wave.contiguous();

  // One untimed warm-up on the tiny model; the paper-sized one is slow enough that allocation noise is small.
  const int warmups = preset == "tiny" ? 1 : 0;
  r.frontend_ms = r.encoder_ms = r.adapter_ms = 1e300;
  for (int rep = 0; rep < warmups + p.reps; ++rep) {
    const bool timed = rep >= warmups;
    std::cerr << "bench: " << (timed ? "rep " + std::to_string(rep - warmups + 1) : std::string("warm-up")) << " on "
              << p.seconds << " s of audio\n";
    auto t0 = std::chrono::steady_clock::now();
    auto mel = media::log_mel_spectrogram(wave.data_ptr<float>(), n, cfg.frontend).unsqueeze(0);
    const double fe = 1000 * seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    auto enc = model->encoder->forward(mel, {});
    const double en = 1000 * seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    auto out = model->adapter->forward(enc.hidden, enc.lengths);
    const double ad = 1000 * seconds_since(t0);
    r.mel_frames = mel.size(1);
    r.encoder_frames = enc.hidden.size(1);
    r.adapter_vectors = out.embeds.size(1);
    if (!timed) continue;
    r.frontend_ms = std::min(r.frontend_ms, fe);
    r.encoder_ms = std::min(r.encoder_ms, en);
    r.adapter_ms = std::min(r.adapter_ms, ad);
  }
  r.ms_per_audio_second = (r.frontend_ms + r.encoder_ms + r.adapter_ms) / p.seconds;
  r.gflop = cfg.flops(r.mel_frames) / 1e9;
  r.gflops = r.gflop / ((r.encoder_ms + r.adapter_ms) / 1000.0);
  std::cerr << "bench: measuring the " << r.dtype << " matmul rate\n";
  r.matmul_gflops = measure_matmul_gflops(r.encoder_frames, cfg.encoder.d_model, cfg.encoder.ffn_dim, p.dtype);
  r.matmul_percent = 100.0 * r.gflops / r.matmul_gflops;
  return r;
}

}  // namespace llama_mm::bench
