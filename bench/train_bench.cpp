// bench/train_bench.cpp: `llama-mm bench train`: optimizer steps of image-caption adapter training (the paper's
// image adapter: projector + cross-attention layers trained, vision encoder and LLM frozen) on a random Mllama
// preset: samples/s, tokens/s, and model FLOP utilisation against this machine's measured matmul rate (CPU) or
// the device's bf16 peak (CUDA).
#include "bench/bench.h"

#include "adapters/adapters.h"
#include "train/train.h"

#include <iostream>

namespace llama_mm::bench {

namespace {

// Forward matmul FLOPs of one caption step, counted from the shapes (2 per multiply-add).
double forward_flops(const MllamaConfig& cfg, int64_t batch, int64_t seq, int64_t tiles) {
  const auto& v = cfg.vision;
  const auto& t = cfg.text;
  const double P = static_cast<double>(v.num_patches()), Dv = static_cast<double>(v.hidden_size);
  const double vis_tokens = static_cast<double>(batch * v.max_num_tiles) * P;  // every tile slot is computed
  const double vis_layers = static_cast<double>(v.num_hidden_layers + v.num_global_layers);
  const double vision = vis_tokens * vis_layers * 2 * (4 * Dv * Dv + 2 * Dv * static_cast<double>(v.intermediate_size)) +
                        vis_layers * 2 * 2 * static_cast<double>(batch * v.max_num_tiles) * P * P * Dv;
  const double D = static_cast<double>(t.hidden_size), I = static_cast<double>(t.intermediate_size);
  const double kv = D * static_cast<double>(t.num_key_value_heads) / t.num_attention_heads;
  const double tok = static_cast<double>(batch * seq);
  const double layer = tok * 2 * (2 * D * D + 2 * D * kv + 3 * D * I) + 2 * 2 * tok * static_cast<double>(seq) * D;
  const double n_img = static_cast<double>(tiles) * P;  // tokens a cross layer attends to (valid tiles)
  const double cross = tok * 2 * (2 * D * D + 3 * D * I) + static_cast<double>(batch) * n_img * 2 * 2 * D * kv +
                       2 * 2 * tok * n_img * D;
  const double projector = vis_tokens * 2 * static_cast<double>(v.vision_output_dim) * D;
  const double head = tok * 2 * D * static_cast<double>(t.vocab_size);
  return vision + projector + static_cast<double>(t.num_hidden_layers) * layer +
         static_cast<double>(cfg.n_cross_layers()) * cross + head;
}

}  // namespace

TrainBenchResult run_train_bench(const TrainBenchParams& p) {
  TrainBenchResult r;
  r.threads = configure_threads(p.threads);
  const std::string mllama_preset = p.preset == "tiny" ? "tiny" : p.preset == "paper-8b" ? "11b" : p.preset == "paper-70b" ? "90b" : "";
  if (mllama_preset.empty())
    throw Error(ErrorKind::Usage, "bench train: --preset must be tiny, paper-8b or paper-70b, not '" + p.preset + "'");
  MllamaConfig cfg = MllamaConfig::preset(mllama_preset);
  if (p.layers > 0 && p.layers < cfg.n_layers_total()) {  // the first `layers` layers of the interleaved stack
    std::vector<int64_t> cross;
    for (int64_t c : cfg.cross_attention_layers)
      if (c < p.layers) cross.push_back(c);
    cfg.cross_attention_layers = cross;
    cfg.text.num_hidden_layers = p.layers - static_cast<int64_t>(cross.size());
  }
  if (cfg.n_cross_layers() == 0) throw Error(ErrorKind::Usage, "bench train: --layers leaves no cross-attention layer");
  const bool cuda = torch::cuda::is_available();
  const auto device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  r.device = cuda ? "cuda" : "cpu";
  r.model = "preset " + p.preset + " (" + std::to_string(cfg.n_layers_total()) + " text layers, " +
            std::to_string(cfg.n_cross_layers()) + " cross)";
  std::cerr << "bench: building " << r.model << ", fp32 weights on " << r.device << "\n";
  MllamaForConditionalGeneration model(cfg, torch::kFloat32);
  model->to(device);  // before the weights are drawn: on a GPU they are drawn there
  init_random_mllama_weights(*model, p.seed);
  model->eval();
  for (auto& prm : model->parameters()) prm.set_requires_grad(false);
  train::NamedParams params;
  for (auto& prm : model->multi_modal_projector->named_parameters()) params.emplace_back("projector." + prm.key(), prm.value());
  for (size_t c = 0; c < model->cross_layers.size(); ++c)
    for (auto& prm : model->cross_layers[c]->named_parameters())
      params.emplace_back("cross." + std::to_string(c) + "." + prm.key(), prm.value());
  for (auto& [name, prm] : params) prm.set_requires_grad(true), r.n_trainable += prm.numel();
  for (auto& prm : model->parameters()) r.n_params += prm.numel();

  // A batch of images of `tiles` tiles each (the processor's real path) and captions of `seq` tokens.
  auto pc = media::MllamaImageProcessorConfig::llama_3_2_vision();
  pc.size = {cfg.vision.image_size, cfg.vision.image_size};
  pc.max_image_tiles = cfg.vision.max_num_tiles;
  media::MllamaImageProcessor processor(pc);
  media::Image img;
  img.width = static_cast<int>(cfg.vision.image_size * (p.tiles >= 2 ? 2 : 1));
  img.height = static_cast<int>(cfg.vision.image_size * (p.tiles >= 4 ? 2 : 1));
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
  const auto one = processor.preprocess(img);
  r.tiles = static_cast<int>(one.tiles.size(0));
  auto images = processor.pack(std::vector<std::vector<media::ProcessedImage>>(p.batch, {one}));
  images.pixel_values = images.pixel_values.to(device);
  images.aspect_ratio_ids = images.aspect_ratio_ids.to(device);
  images.aspect_ratio_mask = images.aspect_ratio_mask.to(device);
  auto gen = at::detail::createCPUGenerator(p.seed);
  auto tokens = torch::randint(0, cfg.text.vocab_size, {p.batch, p.seq}, gen, torch::kInt64);
  tokens.select(1, 1).fill_(cfg.image_token_index);
  auto targets = tokens.roll(-1, 1).clone();
  targets.narrow(1, 0, 2).fill_(train::kIgnoreTarget);
  targets.select(1, p.seq - 1).fill_(train::kIgnoreTarget);
  tokens = tokens.to(device);
  targets = targets.to(device);

  train::AdamW optimizer(params, train::OptimizerConfig{});
  auto step = [&] {
    int64_t n = 0;
    auto loss = train::image_caption_loss_sum(*model, images, tokens, targets, n);
    (loss / static_cast<double>(n)).backward();
    train::clip_grad_norm(params, 1.0);
    optimizer.step(1e-5);
    optimizer.zero_grad();
    if (cuda) torch::cuda::synchronize();
  };
  std::cerr << "bench: warm-up step\n";
  step();
  auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < p.steps; ++s) {
    step();
    std::cerr << "bench: step " << s + 1 << "/" << p.steps << "\n";
  }
  r.step_ms = seconds_since(t0) * 1000.0 / p.steps;
  r.batch = p.batch;
  r.seq = p.seq;
  r.samples_per_s = p.batch / (r.step_ms / 1000.0);
  r.tokens_per_s = static_cast<double>(p.batch * p.seq) / (r.step_ms / 1000.0);
  // Forward + backward ≈ 3 forwards (the 6·N·D convention), over every weight the step touches.
  r.model_gflop = 3.0 * forward_flops(cfg, p.batch, p.seq, r.tiles) / 1e9;
  r.achieved_gflops = r.model_gflop / (r.step_ms / 1000.0);
  if (cuda) {
    r.peak_gflops = p.peak_tflops * 1000.0;
    r.peak_source = "--peak-tflops";
  } else {
    const int64_t d = cfg.text.hidden_size;
    r.peak_gflops = measure_matmul_gflops(std::max<int64_t>(p.batch * p.seq, 256), d, d, torch::kFloat32);
    r.peak_source = "measured fp32 matmul";
  }
  r.mfu_percent = r.peak_gflops > 0 ? 100.0 * r.achieved_gflops / r.peak_gflops : 0.0;
  return r;
}

}  // namespace llama_mm::bench
