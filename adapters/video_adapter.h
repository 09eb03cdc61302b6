// adapters/video_adapter.h: the paper's video adapter on top of Llama 3.2 Vision (paper-spec.md §1): the
// temporal aggregator (temporal_aggregator.h) and the video cross-attention layers. Meta released no weights:
// adapters come from `init-model --arch video-adapter` and the trainer.
//
// Placement (§1.3, a llama-mm choice recorded in the file): "video cross-attention layers before every fourth
// image cross-attention layer". video_fusion_schedule applies Meta's fusion-schedule rule to the list of image
// cross layers: for 8 of them (11B) video layers run right before image cross layers 3 and 7; for 20 (90B)
// before 3, 7, 11, 15, 19; always at least one. Inside one slot: video layer, image layer, frozen layer.
// A video layer is an image cross-attention block (cross_attention.h: RMSNorm, GQA with q/k norms, tanh gates,
// SwiGLU MLP), gates initialised to zero so the image model is unchanged until trained.
//
// Prompts: the video's place is marked by video_token_index, Mllama's embedding row after <|image|>
// (image_token_index + 1; its frozen embedding is used as is). Text after it attends to the video's effective
// frames, until the next video token (the image rule, cross_attention_mask.h).
//
// Adapter file (adapter_file.h, modality "video"): tensors "aggregator.*", "cross_layers.{v}.*" (the image
// block's names); config {"aggregator", "before_cross_layers", "video_token_index", "frames"}.
#pragma once

#include "adapters/adapter_file.h"
#include "adapters/cross_attention.h"
#include "adapters/mllama_config.h"
#include "adapters/temporal_aggregator.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace llama_mm {

// Indices (among the image cross layers) of the layers a video layer runs before: every fourth from the end,
// max(1, n / 4) of them.
std::vector<int64_t> video_fusion_schedule(int64_t n_image_cross_layers);

struct VideoAdapterConfig {
  TemporalAggregatorConfig aggregator;
  std::vector<int64_t> before_cross_layers;  // one per video layer, increasing
  int64_t video_token_index = 128257;
  int64_t frames = 64;  // frames sampled per video unless asked otherwise (the paper's SFT and inference)

  // "tiny" (tests), "paper-8b" / "paper-70b" (aggregation 32; sizes in docs/architecture.md) for `base`.
  static VideoAdapterConfig preset(const std::string& name, const MllamaConfig& base);
  nlohmann::json to_json() const;
  // Unknown keys and invalid values are ErrorKind::Config naming `origin` and the key.
  static VideoAdapterConfig from_json(const nlohmann::json& j, const std::string& origin);
  // ModelLoad error naming `origin` when it does not fit `base` (width, layer indices, token row).
  void check_fits(const MllamaConfig& base, const std::string& origin) const;
  int64_t n_params(const LlamaConfig& text) const;
};

class VideoAdapterImpl : public torch::nn::Module {
 public:
  VideoAdapterImpl(const VideoAdapterConfig& cfg, const LlamaConfig& text, torch::Dtype dtype);
  const VideoAdapterConfig& config() const { return cfg_; }
  torch::Dtype dtype() const { return dtype_; }

  TemporalAggregator aggregator{nullptr};
  std::vector<CrossAttentionDecoderLayer> cross_layers;

 private:
  VideoAdapterConfig cfg_;
  torch::Dtype dtype_;
};
TORCH_MODULE(VideoAdapter);

// Seeded random weights; gates zero (the paper's initialisation) unless zero_gates is false (tests and demos
// that need the video to change the output).
void init_random_video_adapter(VideoAdapterImpl& adapter, uint64_t seed, bool zero_gates);
void save_video_adapter(VideoAdapterImpl& adapter, const BaseModelInfo& base, const std::string& path);
// Loads an adapter file for `base` (check_base_compatible, check_fits) in `dtype` (default: the file's).
VideoAdapter load_video_adapter(const std::string& path, const BaseModelInfo& base, const MllamaConfig& base_cfg,
                                std::optional<torch::Dtype> dtype = std::nullopt);

}  // namespace llama_mm
