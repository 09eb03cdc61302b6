// cli/bench_command.cpp: `llama-mm bench generate` (prefill/decode throughput and bandwidth use) and
// `llama-mm bench caption` (image encode time and matmul rate, caption throughput), `llama-mm bench transcribe`
// (speech encode time per second of audio and matmul rate); `bench caption --video` (frame sampling against
// decoding every frame, encoder per frame, temporal aggregator); `bench train` (image-adapter training steps);
// `bench serve` (concurrent streaming clients against the real server).
#include "bench/bench.h"
#include "cli/commands.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {
struct BenchOptions {
  bench::GenerateBenchParams p;
  bool json = false;
};

nlohmann::json batched_json(const bench::GenerateBenchResult& r) {
  auto j = nlohmann::json::array();
  for (const auto& [rows, tps] : r.batched_tok_per_s)
    j.push_back({{"sequences", rows}, {"tok_per_s", tps}, {"vs_one_stream", tps / r.decode_tok_per_s}});
  return j;
}

int run_bench_generate(const BenchOptions& o) {
  auto p = o.p;
  if (p.model_dir.empty() == p.preset.empty())
    throw Error(ErrorKind::Usage, "bench generate: give exactly one of -m/--model and --preset");
  if (p.n_prompt < 1 || p.n_gen < 0)
    throw Error(ErrorKind::Usage, "bench generate: -p must be >= 1 and -n >= 0");
  if (p.threads.empty()) p.threads = {0};
  if (p.formats.empty()) p.formats = {""};
  const auto rows = bench::run_generate_bench(p);
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows)
      out.push_back({{"model", r.model},
                     {"device", r.device},
                     {"format", r.format},
                     {"n_params", r.n_params},
                     {"threads", r.threads},
                     {"n_prompt", r.n_prompt},
                     {"n_gen", r.n_gen},
                     {"prefill_tok_per_s", r.prefill_tok_per_s},
                     {"decode_tok_per_s", r.decode_tok_per_s},
                     {"weight_bytes_per_token", r.weight_bytes_per_token},
                     {"machine_bandwidth_gbs", r.machine_bandwidth_gbs},
                     {"decode_bandwidth_gbs", r.decode_bandwidth_gbs},
                     {"bandwidth_percent", r.bandwidth_percent},
                     {"batched", batched_json(r)},
                     {"libtorch", compat::torch_version()}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  const auto& first = rows.front();
  std::printf("model: %s (%.3f B params) on %s, prefill %d tokens, decode %d tokens, LibTorch %s\n",
              first.model.c_str(), first.n_params / 1e9, first.device.c_str(), first.n_prompt, first.n_gen,
              compat::torch_version().c_str());
  std::printf("%-9s %7s %14s %13s %9s %14s %12s %10s %10s\n", "format", "threads", "prefill tok/s", "decode tok/s",
              "vs first", "MB/token", "decode GB/s", "machine", "share");
  for (const auto& r : rows)
    std::printf("%-9s %7d %14.2f %13.2f %8.2fx %14.1f %12.2f %10.2f %9.1f%%\n", r.format.c_str(), r.threads,
                r.prefill_tok_per_s, r.decode_tok_per_s, r.decode_tok_per_s / first.decode_tok_per_s,
                r.weight_bytes_per_token / 1e6, r.decode_bandwidth_gbs, r.machine_bandwidth_gbs, r.bandwidth_percent);
  for (const auto& r : rows)
    for (const auto& [n, tps] : r.batched_tok_per_s)
      std::printf("batched decode: %-9s %d threads, %d sequences: %.2f tok/s = %.2fx one stream\n", r.format.c_str(),
                  r.threads, n, tps, tps / r.decode_tok_per_s);
  return 0;
}
struct CaptionBenchOptions {
  bench::CaptionBenchParams p;
  std::string dtype;
  bool json = false, vision_only = false;
  bool video = false;
  bench::VideoBenchParams v;
};

int run_bench_video(const CaptionBenchOptions& o) {
  auto p = o.v;
  if (!o.p.model_dir.empty()) throw Error(ErrorKind::Usage, "bench caption --video: use --preset, not -m");
  p.preset = o.p.preset;
  p.tiles = o.p.tiles;
  p.threads = o.p.threads;
  if (!o.dtype.empty()) p.dtype = parse_dtype(o.dtype);
  const auto r = bench::run_video_bench(p);
  nlohmann::json sampling = nlohmann::json::array();
  for (const auto& s : r.sampling)
    sampling.push_back({{"mode", s.mode}, {"ms", s.ms}, {"frames", s.frames}, {"decoded", s.decoded},
                        {"seeks", s.seeks}, {"percent_of_decoding_all", s.percent_of_all}});
  if (o.json) {
    nlohmann::json j = {{"file", r.file},
                        {"codec", r.codec},
                        {"width", r.width},
                        {"height", r.height},
                        {"duration_s", r.duration_s},
                        {"threads", r.threads},
                        {"all_frames", r.all_frames},
                        {"decode_all_ms", r.decode_all_ms},
                        {"sampling", sampling},
                        {"libtorch", compat::torch_version()}};
    if (!r.model.empty())
      j.update({{"model", r.model},
                {"dtype", r.dtype},
                {"tokens_per_frame", r.tokens_per_frame},
                {"encoder_ms_per_frame", r.encoder_ms_per_frame},
                {"aggregator_ms", r.aggregator_ms},
                {"aggregator_gflop", r.aggregator_gflop},
                {"aggregator_gflops", r.aggregator_gflops}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("video:          %s: %s %dx%d, %.1f s, %lld frames; %d threads\n", r.file.c_str(), r.codec.c_str(),
              r.width, r.height, r.duration_s, static_cast<long long>(r.all_frames), r.threads);
  std::printf("decode all:     %10.1f ms (%.1f frames/s)\n", r.decode_all_ms, r.all_frames / (r.decode_all_ms / 1e3));
  for (const auto& s : r.sampling)
    std::printf("sample %-24s %8.1f ms for %lld frames = %.2f%% of decoding all (%lld decoded, %d seeks)\n",
                (s.mode + ":").c_str(), s.ms, static_cast<long long>(s.frames), s.percent_of_all,
                static_cast<long long>(s.decoded), s.seeks);
  if (!r.model.empty()) {
    std::printf("model:          %s (%s)\n", r.model.c_str(), r.dtype.c_str());
    if (r.encoder_ms_per_frame > 0)
      std::printf("encoder:        %10.1f ms per frame (%d tiles, %lld tokens)\n", r.encoder_ms_per_frame, p.tiles,
                  static_cast<long long>(r.tokens_per_frame));
    std::printf("aggregator:     %10.1f ms for %d frames -> %lld effective frames of %lld latents, %.1f GFLOP, "
                "%.1f GFLOP/s\n",
                r.aggregator_ms, p.frames, static_cast<long long>(r.groups), static_cast<long long>(r.latents),
                r.aggregator_gflop, r.aggregator_gflops);
  }
  return 0;
}

int run_bench_caption(const CaptionBenchOptions& o) {
  if (o.video) return run_bench_video(o);
  auto p = o.p;
  if (p.model_dir.empty() == p.preset.empty())
    throw Error(ErrorKind::Usage, "bench caption: give exactly one of -m/--model and --preset (or --video)");
  if (!o.dtype.empty()) p.dtype = parse_dtype(o.dtype);
  // Random 11B/90B text weights do not fit a small machine: those presets time the vision side unless --full.
  p.text = !o.vision_only && (p.preset.empty() || p.preset == "tiny" || p.text);
  if (p.n_prompt < 2 || p.n_gen < 1) throw Error(ErrorKind::Usage, "bench caption: -p must be >= 2 and -n >= 1");
  const auto r = bench::run_caption_bench(p);
  if (o.json) {
    nlohmann::json j = {{"model", r.model},
                        {"dtype", r.dtype},
                        {"threads", r.threads},
                        {"tiles", r.tiles},
                        {"max_tiles", r.max_tiles},
                        {"tokens_per_tile", r.tokens_per_tile},
                        {"encode_ms", r.encode_ms},
                        {"encode_ms_per_tile", r.encode_ms_per_tile},
                        {"encode_gflop", r.encode_gflop},
                        {"encode_gflops", r.encode_gflops},
                        {"matmul_gflops", r.matmul_gflops},
                        {"matmul_percent", r.matmul_percent},
                        {"prefill_tok_per_s", r.prefill_tok_per_s},
                        {"decode_tok_per_s", r.decode_tok_per_s},
                        {"caption_ms", r.caption_ms},
                        {"device", r.device},
                        {"libtorch", compat::torch_version()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model:          %s (%s) on %s, %d threads, LibTorch %s\n", r.model.c_str(), r.dtype.c_str(),
              r.device.c_str(), r.threads, compat::torch_version().c_str());
  std::printf("image:          %d of %d tiles valid, %lld tokens per tile (all %d tiles are encoded)\n", r.tiles,
              r.max_tiles, static_cast<long long>(r.tokens_per_tile), r.max_tiles);
  std::printf("encode:         %10.1f ms per image, %.1f ms per tile, %.1f GFLOP\n", r.encode_ms, r.encode_ms_per_tile,
              r.encode_gflop);
  std::printf("encode rate:    %10.1f GFLOP/s = %.1f%% of the measured %s matmul rate (%.1f GFLOP/s)\n",
              r.encode_gflops, r.matmul_percent, r.dtype.c_str(), r.matmul_gflops);
  if (r.prefill_tok_per_s > 0)
    std::printf("caption:        prefill %.2f tok/s, decode %.2f tok/s, %.1f ms end to end\n", r.prefill_tok_per_s,
                r.decode_tok_per_s, r.caption_ms);
  else
    std::printf("caption:        text side not run (vision only; see bench generate for the decoder)\n");
  return 0;
}

struct TranscribeBenchOptions {
  bench::TranscribeBenchParams p;
  std::string dtype = "bf16";
  bool json = false;
};

int run_bench_transcribe(const TranscribeBenchOptions& o) {
  auto p = o.p;
  p.dtype = parse_dtype(o.dtype);
  const auto r = bench::run_transcribe_bench(p);
  if (o.json) {
    nlohmann::json j = {{"model", r.model},
                        {"dtype", r.dtype},
                        {"threads", r.threads},
                        {"n_params", r.n_params},
                        {"seconds", r.seconds},
                        {"mel_frames", r.mel_frames},
                        {"encoder_frames", r.encoder_frames},
                        {"adapter_vectors", r.adapter_vectors},
                        {"frontend_ms", r.frontend_ms},
                        {"encoder_ms", r.encoder_ms},
                        {"adapter_ms", r.adapter_ms},
                        {"ms_per_audio_second", r.ms_per_audio_second},
                        {"gflop", r.gflop},
                        {"gflops", r.gflops},
                        {"matmul_gflops", r.matmul_gflops},
                        {"matmul_percent", r.matmul_percent},
                        {"libtorch", compat::torch_version()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model:          %s, %.1f M parameters (%s), %d threads, LibTorch %s\n", r.model.c_str(),
              r.n_params / 1e6, r.dtype.c_str(), r.threads, compat::torch_version().c_str());
  std::printf("audio:          %.1f s -> %lld mel frames -> %lld encoder frames -> %lld adapter vectors\n", r.seconds,
              static_cast<long long>(r.mel_frames), static_cast<long long>(r.encoder_frames),
              static_cast<long long>(r.adapter_vectors));
  std::printf("time:           log-mel %.1f ms, encoder %.1f ms, adapter %.1f ms = %.1f ms per second of audio\n",
              r.frontend_ms, r.encoder_ms, r.adapter_ms, r.ms_per_audio_second);
  std::printf("encode rate:    %.1f GFLOP in %.1f ms = %.1f GFLOP/s = %.1f%% of the measured %s matmul rate "
              "(%.1f GFLOP/s)\n",
              r.gflop, r.encoder_ms + r.adapter_ms, r.gflops, r.matmul_percent, r.dtype.c_str(), r.matmul_gflops);
  return 0;
}

struct TrainBenchOptions {
  bench::TrainBenchParams p;
  bool json = false;
};

int run_bench_train(const TrainBenchOptions& o) {
  if (o.p.batch < 1 || o.p.seq < 4 || o.p.steps < 1 || (o.p.tiles != 1 && o.p.tiles != 2 && o.p.tiles != 4))
    throw Error(ErrorKind::Usage, "bench train: --batch >= 1, --seq >= 4, --steps >= 1 and --tiles 1, 2 or 4");
  const auto r = bench::run_train_bench(o.p);
  if (o.json) {
    nlohmann::json j = {{"model", r.model},           {"device", r.device},
                        {"threads", r.threads},       {"n_params", r.n_params},
                        {"n_trainable", r.n_trainable}, {"batch", r.batch},
                        {"seq", r.seq},               {"tiles", r.tiles},
                        {"step_ms", r.step_ms},       {"samples_per_s", r.samples_per_s},
                        {"tokens_per_s", r.tokens_per_s}, {"model_gflop", r.model_gflop},
                        {"achieved_gflops", r.achieved_gflops}, {"peak_gflops", r.peak_gflops},
                        {"peak_source", r.peak_source}, {"mfu_percent", r.mfu_percent},
                        {"libtorch", compat::torch_version()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model:          %s, %.1f M parameters, %.1f M trained (projector + cross-attention), fp32 weights, "
              "%s, %d threads, LibTorch %s\n",
              r.model.c_str(), r.n_params / 1e6, r.n_trainable / 1e6, r.device.c_str(), r.threads,
              compat::torch_version().c_str());
  std::printf("step:           %lld captions x %lld tokens, images of %d tiles: %.1f ms per optimizer step\n",
              static_cast<long long>(r.batch), static_cast<long long>(r.seq), r.tiles, r.step_ms);
  std::printf("throughput:     %.2f samples/s, %.0f tokens/s\n", r.samples_per_s, r.tokens_per_s);
  std::printf("utilisation:    %.1f GFLOP per step (3 x forward) = %.1f GFLOP/s = %.1f%% of %.1f GFLOP/s (%s)\n",
              r.model_gflop, r.achieved_gflops, r.mfu_percent, r.peak_gflops, r.peak_source.c_str());
  return 0;
}

struct ServeBenchOptions {
  bench::ServeBenchParams p;
  bool json = false;
};

int run_bench_serve(const ServeBenchOptions& o) {
  if (o.p.model_dir.empty()) throw Error(ErrorKind::Usage, "bench serve: -m/--model is required");
  for (int c : o.p.clients)
    if (c < 1 || c > 256) throw Error(ErrorKind::Usage, "bench serve: --clients counts must be in [1, 256]");
  const auto r = bench::run_serve_bench(o.p);
  const double base = r.rounds.empty() ? 0 : r.rounds.front().tok_per_s;
  const double loop_base = r.rounds.empty() ? 0 : r.rounds.front().loop_decode_tok_per_s;
  if (o.json) {
    nlohmann::json rounds = nlohmann::json::array();
    for (const auto& x : r.rounds)
      rounds.push_back({{"clients", x.clients}, {"requests", x.requests}, {"prompt_tokens", x.prompt_tokens},
                        {"tokens", x.tokens}, {"wall_s", x.wall_s}, {"tok_per_s", x.tok_per_s},
                        {"ratio_to_first_round", base > 0 ? x.tok_per_s / base : 0},
                        {"decode_tok_per_s", x.decode_tok_per_s}, {"ttft_p50_ms", x.ttft_p50_ms},
                        {"ttft_p99_ms", x.ttft_p99_ms}, {"latency_p50_ms", x.latency_p50_ms},
                        {"latency_p99_ms", x.latency_p99_ms}, {"mean_batch", x.mean_batch},
                        {"loop_decode_tok_per_s", x.loop_decode_tok_per_s},
                        {"loop_decode_ratio_to_first_round", loop_base > 0 ? x.loop_decode_tok_per_s / loop_base : 0},
                        {"prefill_s", x.prefill_s}});
    std::cout << nlohmann::json{{"model", r.model}, {"dtype", r.dtype}, {"threads", r.threads}, {"slots", r.slots},
                                {"rounds", rounds}, {"libtorch", compat::torch_version()}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("model: %s (%s), %d threads, %d slots, LibTorch %s; %d-word prompts, %d tokens per answer (greedy, "
              "ignore_eos), %d requests per client\n",
              r.model.c_str(), r.dtype.c_str(), r.threads, r.slots, compat::torch_version().c_str(), o.p.n_prompt,
              o.p.n_gen, o.p.requests_per_client);
  std::printf("%8s %9s %8s %10s %7s %12s %17s %21s %10s %16s %9s\n", "clients", "requests", "tokens", "tok/s",
              "ratio", "decode tok/s", "TTFT p50/p99 ms", "latency p50/p99 ms", "mean batch", "loop decode tok/s",
              "prefill s");
  for (const auto& x : r.rounds)
    std::printf("%8d %9d %8lld %10.2f %6.2fx %12.2f %8.0f/%-8.0f %10.0f/%-10.0f %10.2f %9.2f %5.2fx %9.2f\n", x.clients,
                x.requests, static_cast<long long>(x.tokens), x.tok_per_s, base > 0 ? x.tok_per_s / base : 0,
                x.decode_tok_per_s, x.ttft_p50_ms, x.ttft_p99_ms, x.latency_p50_ms, x.latency_p99_ms, x.mean_batch,
                x.loop_decode_tok_per_s, loop_base > 0 ? x.loop_decode_tok_per_s / loop_base : 0, x.prefill_s);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Action& action) {
  auto* bench_cmd = app.add_subcommand("bench", "Benchmarks (figures on stdout)");
  bench_cmd->require_subcommand(1);
  auto o = std::make_shared<BenchOptions>();
  auto* gen = bench_cmd->add_subcommand("generate", "Prefill and decode throughput of the text decoder");
  gen->add_option("-m,--model", o->p.model_dir, "Model directory");
  gen->add_option("--preset", o->p.preset, "Random-weight preset instead of a model: tiny, 1b, 8b");
  gen->add_option("--device", o->p.device, "cpu or cuda[:N] (default: cuda when available)");
  gen->add_option("--dtype", o->p.formats,
                  "Weight formats, side by side: f32 or bf16, optionally then q8, e.g. bf16,q8 (default: checkpoint "
                  "dtype; bf16 for presets)")
      ->delimiter(',');
  gen->add_option("-p,--n-prompt", o->p.n_prompt, "Prompt tokens")->capture_default_str();
  gen->add_option("-n,--n-gen", o->p.n_gen, "Generated tokens")->capture_default_str();
  gen->add_option("-t,--threads", o->p.threads, "CPU thread counts, each measured, e.g. 1,2 (0: all cores)")
      ->delimiter(',');
  gen->add_option("--batch", o->p.batch_rows,
                  "Also decode this many sequences at once (the server's batched step), e.g. 4,8; tok/s summed")
      ->delimiter(',');
  gen->add_flag("--json", o->json, "Print the figures as a JSON array, one object per format and thread count");
  gen->callback([o, &action] { action = [o] { return run_bench_generate(*o); }; });

  auto c = std::make_shared<CaptionBenchOptions>();
  c->p.text = false;  // --full sets it for the large presets
  auto* cap = bench_cmd->add_subcommand("caption", "Image encode time and rate, caption prefill/decode (Llama 3.2 Vision)");
  cap->add_option("-m,--model", c->p.model_dir, "Mllama model directory");
  cap->add_option("--preset", c->p.preset, "Random-weight preset instead of a model: tiny, 11b, 90b");
  cap->add_option("--device", c->p.device, "cpu or cuda[:N] (default: cuda when available)");
  cap->add_option("--dtype", c->dtype, "f32 or bf16 (default: checkpoint dtype; bf16 for presets)");
  cap->add_option("--tiles", c->p.tiles, "Valid tiles of the benchmark image (1..max_num_tiles)")->capture_default_str();
  cap->add_option("--reps", c->p.reps, "Timed image encodes (best reported)")->capture_default_str();
  cap->add_flag("--full", c->p.text, "Also build the text side of a large preset and time prefill/decode");
  cap->add_flag("--vision-only", c->vision_only, "Time the image encode only");
  cap->add_option("-p,--n-prompt", c->p.n_prompt, "Caption prompt tokens")->capture_default_str();
  cap->add_option("-n,--n-gen", c->p.n_gen, "Caption tokens generated")->capture_default_str();
  cap->add_option("-t,--threads", c->p.threads, "CPU threads (0: all cores)")->capture_default_str();
  cap->add_flag("--json", c->json, "Print the figures as JSON");
  cap->add_flag("--video", c->video, "Video: frame sampling vs decoding every frame; with --preset also the vision "
                                     "encoder per frame and the temporal aggregator");
  cap->add_option("--video-file", c->v.video_file, "Video to sample (default: make a 1080p H.264 file with ffmpeg)");
  cap->add_option("--minutes", c->v.make_minutes, "Length of the made video")->capture_default_str();
  cap->add_option("--frames", c->v.frames, "Frames sampled (and aggregated)")->capture_default_str();
  cap->add_option("--encode-frames", c->v.encode_frames, "Frames timed through the vision encoder (0: skip)")->capture_default_str();
  cap->callback([c, &action] { action = [c] { return run_bench_caption(*c); }; });

  auto tr = std::make_shared<TranscribeBenchOptions>();
  auto* trc = bench_cmd->add_subcommand("transcribe", "Speech encoder + adapter time per second of audio and rate");
  trc->add_option("--preset", tr->p.preset, "Random-weight speech model: tiny, paper-8b, paper-70b")->capture_default_str();
  trc->add_option("--dtype", tr->dtype, "f32 or bf16")->capture_default_str();
  trc->add_option("--seconds", tr->p.seconds, "Seconds of audio")->capture_default_str();
  trc->add_option("--reps", tr->p.reps, "Timed runs (best reported)")->capture_default_str();
  trc->add_option("-t,--threads", tr->p.threads, "CPU threads (0: all cores)")->capture_default_str();
  trc->add_flag("--json", tr->json, "Print the figures as JSON");
  trc->callback([tr, &action] { action = [tr] { return run_bench_transcribe(*tr); }; });

  auto tb = std::make_shared<TrainBenchOptions>();
  auto* trn = bench_cmd->add_subcommand("train", "Image-adapter training steps: samples/s and model FLOP utilisation");
  trn->add_option("--preset", tb->p.preset, "Random-weight model: tiny, paper-8b (11B Vision), paper-70b (90B)")
      ->capture_default_str();
  trn->add_option("--layers", tb->p.layers, "Only the first N layers of the text stack (0: all)")->capture_default_str();
  trn->add_option("--batch", tb->p.batch, "Captions per step")->capture_default_str();
  trn->add_option("--seq", tb->p.seq, "Tokens per caption")->capture_default_str();
  trn->add_option("--tiles", tb->p.tiles, "Tiles per image: 1, 2 or 4")->capture_default_str();
  trn->add_option("--steps", tb->p.steps, "Timed optimizer steps (after one warm-up)")->capture_default_str();
  trn->add_option("--peak-tflops", tb->p.peak_tflops, "CUDA: the device's dense bf16 peak, for MFU")->capture_default_str();
  trn->add_option("-t,--threads", tb->p.threads, "CPU threads (0: all cores)")->capture_default_str();
  trn->add_flag("--json", tb->json, "Print the figures as JSON");
  trn->callback([tb, &action] { action = [tb] { return run_bench_train(*tb); }; });

  auto sb = std::make_shared<ServeBenchOptions>();
  auto* srv = bench_cmd->add_subcommand("serve", "Concurrent streaming clients against `serve`: tokens/s, TTFT, latency");
  srv->add_option("-m,--model", sb->p.model_dir, "Model directory (init-model --preset 1b makes a random one)");
  srv->add_option("--dtype", sb->p.dtype, "f32, bf16 or q8 (default: the checkpoint's)");
  srv->add_option("--clients", sb->p.clients, "Concurrent clients, one round each")->capture_default_str()->delimiter(',');
  srv->add_option("-p,--n-prompt", sb->p.n_prompt, "Prompt length in words")->capture_default_str();
  srv->add_option("-n,--n-gen", sb->p.n_gen, "Tokens per answer")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  srv->add_option("--requests", sb->p.requests_per_client, "Sequential requests per client per round")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  srv->add_option("-c,--ctx-size", sb->p.n_ctx, "Context per slot")->capture_default_str()->check(CLI::Range(16, 1 << 20));
  srv->add_option("-t,--threads", sb->p.threads, "CPU threads (0: all cores)")->capture_default_str();
  srv->add_flag("--json", sb->json, "Print the figures as JSON");
  srv->callback([sb, &action] { action = [sb] { return run_bench_serve(*sb); }; });
}

}  // namespace llama_mm::cli
