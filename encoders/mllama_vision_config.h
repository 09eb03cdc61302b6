// encoders/mllama_vision_config.h: the Llama 3.2 Vision image encoder's configuration, field for field as
// the `vision_config` object of a Hugging Face Mllama config.json (mllama-spec.md §2.1, §7).
// Keys HF omits take MllamaVisionConfig's class defaults (note image_size 448 there; real checkpoints say 560).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace llama_mm {

// Which encoder states intermediate_layers_indices selects (mllama-spec.md §2.4).
enum class IntermediateSemantics {
  InputOfLayer,   // Meta's reference, transformers 4.45–4.54, vLLM: the input of layer i (default)
  OutputOfLayer,  // transformers >= 4.56: the output of layer i
};

struct MllamaVisionConfig {
  int64_t hidden_size = 1280;
  int64_t attention_heads = 16;
  int64_t intermediate_size = 5120;
  int64_t num_hidden_layers = 32;  // local, ungated
  int64_t num_global_layers = 8;   // gated
  std::vector<int64_t> intermediate_layers_indices = {3, 7, 15, 23, 30};
  int64_t vision_output_dim = 7680;
  int64_t image_size = 448;  // tile side in pixels
  int64_t patch_size = 14;
  int64_t num_channels = 3;
  double norm_eps = 1e-5;
  int64_t max_num_tiles = 4;
  std::vector<std::array<int64_t, 2>> supported_aspect_ratios = {{1, 1}, {1, 2}, {1, 3}, {1, 4},
                                                                 {2, 1}, {2, 2}, {3, 1}, {4, 1}};
  IntermediateSemantics intermediate_semantics = IntermediateSemantics::InputOfLayer;

  // Parses a vision_config object; errors (ErrorKind::Config) name `origin` and the key as "vision_config.KEY".
  static MllamaVisionConfig from_json(const nlohmann::json& j, const std::string& origin);
  nlohmann::json to_json() const;

  int64_t head_dim() const { return hidden_size / attention_heads; }
  int64_t patches_per_side() const { return image_size / patch_size; }
  int64_t num_patches() const { return patches_per_side() * patches_per_side() + 1; }  // P: patches + CLS
  // P' - P. Never 0 (n² + 1 is never a multiple of 8), so the reference's npad == 0 quirk cannot arise.
  int64_t num_padding_patches() const { return (8 - num_patches() % 8) % 8; }
  int64_t max_aspect_ratio_id() const { return static_cast<int64_t>(supported_aspect_ratios.size()); }
};

}  // namespace llama_mm
