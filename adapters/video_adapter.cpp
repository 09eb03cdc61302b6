// adapters/video_adapter.cpp: video adapter = temporal aggregator + video cross layers (see video_adapter.h).
#include "adapters/video_adapter.h"

#include "adapters/mllama_model.h"
#include "llm/config_json.h"
#include "llm/error.h"
#include "llm/weight_loader.h"

#include <algorithm>

namespace llama_mm {

using nlohmann::json;

std::vector<int64_t> video_fusion_schedule(int64_t n_image_cross_layers) {
  const int64_t n = n_image_cross_layers;
  if (n <= 0) return {};
  const int64_t n_video = std::max<int64_t>(1, n / 4);
  const int64_t step = (n + n_video - 1) / n_video;
  std::vector<int64_t> out;
  for (int64_t i = n - 1; i >= 0 && static_cast<int64_t>(out.size()) < n_video; i -= step) out.push_back(i);
  std::reverse(out.begin(), out.end());
  return out;
}

VideoAdapterConfig VideoAdapterConfig::preset(const std::string& name, const MllamaConfig& base) {
  VideoAdapterConfig c;
  c.aggregator.dim = base.text.hidden_size;
  c.before_cross_layers = video_fusion_schedule(base.n_cross_layers());
  c.video_token_index = base.image_token_index + 1;
  if (name == "tiny") {
    c.aggregator.aggregation = 4;
    c.aggregator.num_latents = 8;
    c.aggregator.depth = 1;
    c.aggregator.heads = 2;
    c.aggregator.head_dim = 16;
    c.frames = 8;
  } else if (name == "paper-8b" || name == "paper-70b") {
    // One effective frame per 32 frames, as many latents as one image tile has tokens; 8 heads of 128; 2 layers.
    c.aggregator.aggregation = 32;
    c.aggregator.num_latents = base.vision.num_patches();
    c.aggregator.depth = 2;
    c.aggregator.heads = 8;
    c.aggregator.head_dim = 128;
    c.aggregator.ffn_mult = name == "paper-8b" ? 2 : 1;  // keeps the aggregator near the paper's budget (§1.2)
  } else {
    throw Error(ErrorKind::Usage, "unknown video adapter preset '" + name + "' (tiny, paper-8b, paper-70b)");
  }
  return c;
}

json VideoAdapterConfig::to_json() const {
  return {{"aggregator", aggregator.to_json()},
          {"before_cross_layers", before_cross_layers},
          {"video_token_index", video_token_index},
          {"frames", frames}};
}

VideoAdapterConfig VideoAdapterConfig::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(j, {"aggregator", "before_cross_layers", "video_token_index", "frames"}, origin);
  VideoAdapterConfig c;
  if (!j.contains("aggregator")) config_json::fail(origin, "aggregator", "missing required key");
  c.aggregator = TemporalAggregatorConfig::from_json(j["aggregator"], origin + " (aggregator)");
  c.before_cross_layers = config_json::get_ints(j, "before_cross_layers", origin, std::nullopt);
  if (c.before_cross_layers.empty()) config_json::fail(origin, "before_cross_layers", "must name at least one layer");
  for (size_t i = 0; i < c.before_cross_layers.size(); ++i)
    if (c.before_cross_layers[i] < 0 || (i > 0 && c.before_cross_layers[i] <= c.before_cross_layers[i - 1]))
      config_json::fail(origin, "before_cross_layers", "must be increasing indices >= 0");
  c.video_token_index = config_json::get_positive(j, "video_token_index", origin, std::nullopt);
  c.frames = config_json::get_positive(j, "frames", origin, std::nullopt);
  return c;
}

void VideoAdapterConfig::check_fits(const MllamaConfig& base, const std::string& origin) const {
  auto fail = [&](const std::string& what) { throw Error(ErrorKind::ModelLoad, origin + ": " + what); };
  if (aggregator.dim != base.text.hidden_size)
    fail("aggregator.dim " + std::to_string(aggregator.dim) + " differs from the model's hidden size " +
         std::to_string(base.text.hidden_size));
  if (before_cross_layers.back() >= base.n_cross_layers())
    fail("before_cross_layers names image cross layer " + std::to_string(before_cross_layers.back()) +
         " but the model has " + std::to_string(base.n_cross_layers()));
  if (video_token_index == base.image_token_index || video_token_index < base.text.vocab_size ||
      video_token_index >= base.n_embed_rows())
    fail("video_token_index " + std::to_string(video_token_index) + " is not one of the model's extra embedding rows (" +
         std::to_string(base.text.vocab_size) + ".." + std::to_string(base.n_embed_rows() - 1) + ", other than " +
         std::to_string(base.image_token_index) + ")");
}

int64_t VideoAdapterConfig::n_params(const LlamaConfig& text) const {
  const int64_t D = text.hidden_size, Dh = text.head_dim;
  const int64_t attn = D * text.num_attention_heads * Dh * 2 + D * text.num_key_value_heads * Dh * 2 + 2 * Dh;
  const int64_t block = attn + 3 * D * text.intermediate_size + 2 * D + 2;
  return aggregator.n_params() + static_cast<int64_t>(before_cross_layers.size()) * block;
}

VideoAdapterImpl::VideoAdapterImpl(const VideoAdapterConfig& cfg, const LlamaConfig& text, torch::Dtype dtype)
    : cfg_(cfg), dtype_(dtype) {
  aggregator = register_module("aggregator", TemporalAggregator(cfg.aggregator, dtype));
  auto list = torch::nn::ModuleList();
  for (size_t v = 0; v < cfg.before_cross_layers.size(); ++v) {
    cross_layers.push_back(CrossAttentionDecoderLayer(text, dtype));
    list->push_back(cross_layers.back());
  }
  register_module("cross_layers", list);
}

void init_random_video_adapter(VideoAdapterImpl& adapter, uint64_t seed, bool zero_gates) {
  init_random_mllama_weights(adapter, seed);  // the same rules by parameter name; gates in [0.3, 1]
  if (!zero_gates) return;
  torch::NoGradGuard no_grad;
  for (auto& layer : adapter.cross_layers) layer->cross_attn_attn_gate.zero_(), layer->cross_attn_mlp_gate.zero_();
}

void save_video_adapter(VideoAdapterImpl& adapter, const BaseModelInfo& base, const std::string& path) {
  write_adapter_module(adapter, "video", base, adapter.config().to_json(), path);
}

VideoAdapter load_video_adapter(const std::string& path, const BaseModelInfo& base, const MllamaConfig& base_cfg,
                                std::optional<torch::Dtype> dtype) {
  auto file = read_adapter_file(path, "video");
  check_base_compatible(file.header, base, path);
  auto cfg = parse_adapter_config<VideoAdapterConfig>(file, path);
  cfg.check_fits(base_cfg, path);
  const torch::Dtype file_dtype = adapter_weight_dtype(file, "aggregator.latents", path);
  VideoAdapter adapter(cfg, base_cfg.text, dtype.value_or(file_dtype));
  load_weights_strict(*adapter, *file.tensors, path);
  adapter->eval();
  return adapter;
}

}  // namespace llama_mm
