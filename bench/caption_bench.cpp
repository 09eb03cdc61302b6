// bench/caption_bench.cpp: Llama 3.2 Vision image encoding (vision encoder + projector + cross-attention K/V)
// and its achieved matmul rate against the machine's measured rate, plus caption prefill/decode throughput.
#include "adapters/adapters.h"
#include "bench/bench.h"
#include "llm/cpu_linear.h"

#include <chrono>
#include <iostream>

namespace llama_mm::bench {

CaptionBenchResult run_caption_bench(const CaptionBenchParams& p) {
  torch::NoGradGuard no_grad;
  CaptionBenchResult r;
  r.threads = configure_threads(p.threads);
  const auto device = resolve_device(p.device);
  r.device = device.str();
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  MllamaConfig cfg;
  MllamaForConditionalGeneration model{nullptr};
  MllamaVisionModel vision{nullptr};
  Linear projector{nullptr};
  torch::Dtype dtype;
  if (!p.model_dir.empty()) {
    std::cerr << "bench: loading " << p.model_dir << "\n";
    model = load_mllama(p.model_dir, p.dtype);
    model->to(device);
    cfg = model->config();
    r.model = p.model_dir;
  } else {
    cfg = MllamaConfig::preset(p.preset);
    r.model = "preset " + p.preset;
    std::cerr << "bench: building random preset '" << p.preset << "'" << (p.text ? "" : " (vision side only)") << "\n";
    if (p.text) {
      model = MllamaForConditionalGeneration(cfg, p.dtype.value_or(torch::kBFloat16));
      model->to(device);  // before the weights are drawn: on a GPU they are drawn there
      init_random_mllama_weights(*model, p.seed);
      model->eval();
    } else {
      dtype = p.dtype.value_or(torch::kBFloat16);
      vision = MllamaVisionModel(cfg.vision, dtype);
      projector = Linear(cfg.vision.vision_output_dim, cfg.text.hidden_size, true, dtype);
      vision->to(device);
      projector->to(device);
      init_random_mllama_weights(*vision, p.seed);
      init_random_mllama_weights(*projector, p.seed + 1);
    }
  }
  if (model) vision = model->vision_model, projector = model->multi_modal_projector;
  dtype = model ? model->dtype() : dtype;
  r.dtype = dtype_name(dtype);
  const auto& vc = cfg.vision;
  const int64_t T = vc.max_num_tiles, S = vc.image_size;
  if (p.tiles < 1 || p.tiles > T) throw Error(ErrorKind::Usage, "--tiles must be in 1.." + std::to_string(T));
  r.tiles = p.tiles;
  r.max_tiles = static_cast<int>(T);
  r.tokens_per_tile = vc.num_patches();

  // One image with `tiles` valid tiles, at the first supported aspect ratio with that many tiles.
  auto gen = at::detail::createCPUGenerator(p.seed);
  media::MllamaImageInputs images;
  images.pixel_values = torch::zeros({1, 1, T, vc.num_channels, S, S});
  images.pixel_values.narrow(2, 0, p.tiles).normal_(0, 1, gen);
  int64_t ar_id = 0;
  for (size_t i = 0; i < vc.supported_aspect_ratios.size() && ar_id == 0; ++i)
    if (vc.supported_aspect_ratios[i][0] * vc.supported_aspect_ratios[i][1] == p.tiles) ar_id = i + 1;
  if (ar_id == 0) throw Error(ErrorKind::Usage, "--tiles " + std::to_string(p.tiles) + ": no supported aspect ratio");
  images.aspect_ratio_ids = torch::full({1, 1}, ar_id, torch::kInt64);
  images.aspect_ratio_mask = torch::zeros({1, 1, T}, torch::kInt64);
  images.aspect_ratio_mask.narrow(2, 0, p.tiles).fill_(1);
  images.num_tiles = {{p.tiles}};

  // Vision encoder + projector (+ the cross layers' K/V when the full model is here).
  auto encode = [&] {
    auto out = vision->forward(images.pixel_values.to(device), images.aspect_ratio_ids.to(device),
                               images.aspect_ratio_mask.to(device));
    auto states = projector(out).reshape({1, -1, cfg.text.hidden_size});
    if (model && p.text)
      model->cross_context(states, torch::ones({1, 1, 1, T}, torch::dtype(torch::kInt64).device(device)));
    sync();
  };
  const int64_t L = T * (vc.num_patches() + vc.num_padding_patches());
  const double proj_flop = 2.0 * T * vc.num_patches() * vc.vision_output_dim * cfg.text.hidden_size;
  const double kv_flop = model && p.text ? 2.0 * 2 * T * vc.num_patches() * cfg.text.hidden_size *
                                     cfg.text.num_key_value_heads * cfg.text.head_dim * cfg.n_cross_layers()
                               : 0.0;
  r.encode_gflop = (static_cast<double>(vision->flops(1)) + proj_flop + kv_flop) / 1e9;
  if (r.encode_gflop < 100) {
    std::cerr << "bench: warm-up encode\n";
    encode();
  }
  double best = 1e30;
  for (int i = 0; i < std::max(1, p.reps); ++i) {
    std::cerr << "bench: encoding one image (" << r.encode_gflop << " GFLOP), rep " << i + 1 << "\n";
    auto t0 = std::chrono::steady_clock::now();
    encode();
    best = std::min(best, seconds_since(t0));
  }
  r.encode_ms = best * 1e3;
  r.encode_ms_per_tile = r.encode_ms / T;
  r.encode_gflops = r.encode_gflop / best;
  if (device.is_cpu()) {
    std::cerr << "bench: measuring the " << r.dtype << " matmul rate at the encoder's MLP shape\n";
    r.matmul_gflops = measure_matmul_gflops(L, vc.hidden_size, vc.intermediate_size, dtype);
    r.matmul_percent = 100.0 * r.encode_gflops / r.matmul_gflops;
  }

  if (model && p.text) {
    auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
    std::vector<int32_t> prompt = {static_cast<int32_t>(cfg.text.bos_token_id),
                                   static_cast<int32_t>(cfg.image_token_index)};
    auto ids = torch::randint(0, std::min<int64_t>(cfg.text.vocab_size, 256), {p.n_prompt - 2}, gen, torch::kInt64);
    for (int64_t i = 0; i < ids.size(0); ++i) prompt.push_back(static_cast<int32_t>(ids[i].item<int64_t>()));
    GenerateParams gp;
    gp.n_predict = p.n_gen;
    gp.ignore_eos = true;
    gp.sampling.temperature = 0;
    std::cerr << "bench: caption prefill of " << prompt.size() << " tokens, decode of " << p.n_gen << "\n";
    auto t0 = std::chrono::steady_clock::now();
    auto res = generate_mllama(*model, tok, prompt, images, gp);
    sync();
    r.caption_ms = seconds_since(t0) * 1e3;
    r.prefill_tok_per_s = res.timings.prompt_tok_per_s();
    r.decode_tok_per_s = res.timings.generate_tok_per_s();
  }
  return r;
}

}  // namespace llama_mm::bench
