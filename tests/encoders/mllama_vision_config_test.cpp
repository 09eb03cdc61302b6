// Tests for encoders/mllama_vision_config.cpp: HF defaults, key aliases and errors that name the key.
#include "encoders/encoders.h"
#include "llm/error.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

using json = nlohmann::json;

std::string error_of(const json& j) {
  try {
    MllamaVisionConfig::from_json(j, "cfg.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    return e.what();
  }
  return "";
}

TEST(MllamaVisionConfig, MissingKeysTakeTheClassDefaults) {
  auto c = MllamaVisionConfig::from_json(json{{"image_size", 560}}, "cfg.json");
  EXPECT_EQ(c.hidden_size, 1280);
  EXPECT_EQ(c.attention_heads, 16);
  EXPECT_EQ(c.head_dim(), 80);
  EXPECT_EQ(c.num_patches(), 1601);
  EXPECT_EQ(c.num_padding_patches(), 7);
  EXPECT_EQ(c.max_aspect_ratio_id(), 8);
  EXPECT_EQ(c.intermediate_layers_indices, (std::vector<int64_t>{3, 7, 15, 23, 30}));
  EXPECT_EQ(c.intermediate_semantics, IntermediateSemantics::InputOfLayer);
  // The class default tile is 448 (1025 tokens), not the checkpoints' 560.
  EXPECT_EQ(MllamaVisionConfig::from_json(json::object(), "cfg.json").num_patches(), 1025);
}

TEST(MllamaVisionConfig, AcceptsBothHeadKeysAndRoundTrips) {
  auto a = MllamaVisionConfig::from_json(json{{"num_attention_heads", 20}, {"image_size", 560}}, "c");
  EXPECT_EQ(a.attention_heads, 20);
  auto b = MllamaVisionConfig::from_json(
      json{{"attention_heads", 16}, {"intermediate_semantics", "output_of_layer"}, {"image_size", 560}}, "c");
  EXPECT_EQ(b.intermediate_semantics, IntermediateSemantics::OutputOfLayer);
  auto c = MllamaVisionConfig::from_json(b.to_json(), "c");
  EXPECT_EQ(c.to_json(), b.to_json());
}

TEST(MllamaVisionConfig, ErrorsNameTheKey) {
  EXPECT_NE(error_of(json{{"hidden_size", "big"}}).find("'vision_config.hidden_size'"), std::string::npos);
  EXPECT_NE(error_of(json{{"vision_output_dim", 100}}).find("'vision_config.vision_output_dim'"), std::string::npos);
  EXPECT_NE(error_of(json{{"intermediate_layers_indices", {1, 40}}, {"vision_output_dim", 1280 * 3}})
                .find("'vision_config.intermediate_layers_indices'"),
            std::string::npos);
  EXPECT_NE(error_of(json{{"supported_aspect_ratios", {{2, 3}}}}).find("supported_aspect_ratios"), std::string::npos);
  EXPECT_NE(error_of(json{{"intermediate_semantics", "middle"}}).find("intermediate_semantics"), std::string::npos);
  EXPECT_NE(error_of(json{{"hidden_act", "relu"}}).find("'vision_config.hidden_act'"), std::string::npos);
  EXPECT_NE(error_of(json{{"image_size", 30}, {"patch_size", 7}}).find("'vision_config.patch_size'"),
            std::string::npos);
}

}  // namespace
}  // namespace llama_mm
