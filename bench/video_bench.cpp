// bench/video_bench.cpp: the video path's costs: sampling frames by seeking against decoding every frame (the
// cost seeking avoids), the vision encoder per frame and the temporal aggregator (adapters/video_adapter.h).
#include "adapters/adapters.h"
#include "bench/bench.h"
#include "media/media.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace llama_mm::bench {

namespace {

// A 1080p25 H.264 file of `minutes` with 2 s GOPs (a usual streaming encode), made once with the ffmpeg CLI.
std::string make_bench_video(int minutes) {
  namespace fs = std::filesystem;
  const auto path = fs::temp_directory_path() / ("llama-mm-bench-1080p25-" + std::to_string(minutes) + "min-g50.mp4");
  if (fs::exists(path)) return path.string();
  const auto part = path.string() + ".part.mp4";
  std::cerr << "bench: making " << path.string() << " with the ffmpeg CLI (" << minutes
            << " min of 1080p H.264; takes a few minutes once)\n";
  const std::string cmd = "ffmpeg -v error -stats -nostdin -y -f lavfi -i testsrc2=s=1920x1080:r=25 -t " +
                          std::to_string(minutes * 60) +
                          " -c:v libx264 -preset ultrafast -g 50 -keyint_min 50 -pix_fmt yuv420p '" + part + "'";
  if (std::system(cmd.c_str()) != 0)
    throw Error(ErrorKind::Usage, "bench: the ffmpeg CLI failed to make the benchmark video (is ffmpeg installed?)");
  fs::rename(part, path);
  return path.string();
}

double aggregator_flop(const TemporalAggregatorConfig& c, int64_t frames, int64_t tokens_per_frame) {
  double total = 0;
  for (int64_t f0 = 0; f0 < frames; f0 += c.aggregation) {
    const double N = static_cast<double>(std::min(c.aggregation, frames - f0) * tokens_per_frame) + c.num_latents;
    const double L = static_cast<double>(c.num_latents), D = static_cast<double>(c.dim),
                 I = static_cast<double>(c.heads * c.head_dim);
    const double layer = 2 * L * D * I + 2 * 2 * N * D * I + 2 * 2 * L * N * I + 2 * L * I * D +
                         2 * 2 * L * D * (c.ffn_mult * D);
    total += c.depth * layer;
  }
  return total;
}

}  // namespace

VideoBenchResult run_video_bench(const VideoBenchParams& p) {
  torch::NoGradGuard no_grad;
  VideoBenchResult r;
  r.threads = configure_threads(p.threads);
  r.file = p.video_file.empty() ? make_bench_video(p.make_minutes) : p.video_file;
  const auto info = media::probe_video_file(r.file);
  r.codec = info.codec, r.width = info.width, r.height = info.height, r.duration_s = info.duration_s;

  std::cerr << "bench: decoding every frame of " << r.file << "\n";
  auto t0 = std::chrono::steady_clock::now();
  r.all_frames = media::decode_all_frames(r.file);
  r.decode_all_ms = seconds_since(t0) * 1e3;
  for (auto [mode, name] : {std::pair{media::SeekMode::Exact, "exact"}, {media::SeekMode::KeyFrame, "keyframe"},
                            {media::SeekMode::Auto, "auto"}}) {
    std::cerr << "bench: sampling " << p.frames << " frames (" << name << ")\n";
    VideoBenchResult::Sampling s;
    t0 = std::chrono::steady_clock::now();
    auto v = media::sample_video_file(r.file, {p.frames, mode}, {}, [&](media::VideoFrame&&) { ++s.frames; });
    s.ms = seconds_since(t0) * 1e3;
    s.mode = std::string(name) + (mode == media::SeekMode::Auto
                                      ? (v.seek == media::SeekMode::KeyFrame ? " (chose keyframe)" : " (chose exact)")
                                      : "");
    s.decoded = v.frames_decoded, s.seeks = v.seeks;
    s.percent_of_all = 100.0 * s.ms / r.decode_all_ms;
    r.sampling.push_back(s);
  }
  if (p.preset.empty()) return r;

  // The vision encoder on `encode_frames` frames of `tiles` tiles, then the aggregator on `frames` frames.
  const auto cfg = MllamaConfig::preset(p.preset);
  const std::string video_preset = p.preset == "tiny" ? "tiny" : p.preset == "11b" ? "paper-8b" : "paper-70b";
  const auto vcfg = VideoAdapterConfig::preset(video_preset, cfg);
  r.model = "preset " + p.preset + " + video adapter " + video_preset;
  r.dtype = dtype_name(p.dtype);
  const auto& vc = cfg.vision;
  const int64_t T = vc.max_num_tiles, S = vc.image_size;
  if (p.tiles < 1 || p.tiles > T) throw Error(ErrorKind::Usage, "--tiles must be in 1.." + std::to_string(T));
  MllamaVisionModel vision{nullptr};
  Linear projector{nullptr};
  if (p.encode_frames > 0) {
    vision = MllamaVisionModel(vc, p.dtype);
    projector = Linear(vc.vision_output_dim, cfg.text.hidden_size, true, p.dtype);
    init_random_mllama_weights(*vision, p.seed);
    init_random_mllama_weights(*projector, p.seed + 1);
  }
  TemporalAggregator aggregator(vcfg.aggregator, p.dtype);
  init_random_mllama_weights(*aggregator, p.seed + 2);
  int64_t ar_id = 0;
  for (size_t i = 0; i < vc.supported_aspect_ratios.size() && ar_id == 0; ++i)
    if (vc.supported_aspect_ratios[i][0] * vc.supported_aspect_ratios[i][1] == p.tiles) ar_id = i + 1;
  if (ar_id == 0) throw Error(ErrorKind::Usage, "--tiles " + std::to_string(p.tiles) + ": no supported aspect ratio");
  r.tokens_per_frame = p.tiles * vc.num_patches();
  r.latents = vcfg.aggregator.num_latents;
  r.groups = vcfg.aggregator.n_groups(p.frames);
  const int64_t D = cfg.text.hidden_size;
  auto gen = at::detail::createCPUGenerator(p.seed);
  // The aggregator's input: `frames` encoded frames (an encoded one repeated; values do not change the cost), or
  // random states when the encoder is not timed.
  torch::Tensor frame_states = torch::empty({1, r.tokens_per_frame, D}).normal_(0, 1, gen).to(p.dtype);
  if (p.encode_frames > 0) {
    const int64_t n_enc = p.encode_frames;
    auto pixels = torch::zeros({1, n_enc, T, vc.num_channels, S, S});
    pixels.narrow(2, 0, p.tiles).normal_(0, 1, gen);
    auto ar_ids = torch::full({1, n_enc}, ar_id, torch::kInt64);
    auto ar_mask = torch::zeros({1, n_enc, T}, torch::kInt64);
    ar_mask.narrow(2, 0, p.tiles).fill_(1);
    std::cerr << "bench: vision encoder on " << n_enc << " frames of " << p.tiles << " tiles\n";
    t0 = std::chrono::steady_clock::now();
    auto out = projector(vision->forward(pixels, ar_ids, ar_mask).narrow(2, 0, p.tiles));
    r.encoder_ms_per_frame = seconds_since(t0) * 1e3 / n_enc;
    frame_states = out.reshape({n_enc, r.tokens_per_frame, D}).narrow(0, 0, 1);
  }
  auto frames = frame_states.expand({p.frames, -1, -1}).contiguous();
  r.aggregator_gflop = aggregator_flop(vcfg.aggregator, p.frames, r.tokens_per_frame) / 1e9;
  std::cerr << "bench: temporal aggregator on " << p.frames << " frames x " << r.tokens_per_frame << " tokens ("
            << r.aggregator_gflop << " GFLOP)\n";
  t0 = std::chrono::steady_clock::now();
  aggregator->forward(frames);
  r.aggregator_ms = seconds_since(t0) * 1e3;
  r.aggregator_gflops = r.aggregator_gflop / (r.aggregator_ms / 1e3);
  return r;
}

}  // namespace llama_mm::bench
