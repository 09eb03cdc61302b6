// tests/encoders/conformer_config_test.cpp: encoders/conformer_config.cpp: sizes, frame arithmetic, JSON and
// validation.
#include "encoders/conformer.h"

#include "llm/error.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

TEST(ConformerConfig, PaperSizeIsAboutOneBillion) {
  const auto c = ConformerConfig::paper_1b();
  EXPECT_EQ(c.n_mels, 80);
  EXPECT_EQ(c.stack, 4);
  EXPECT_EQ(c.n_layers, 24);
  EXPECT_EQ(c.d_model, 1536);
  EXPECT_EQ(c.ffn_dim, 4096);
  EXPECT_EQ(c.n_heads, 24);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.conv_kernel, 7);
  EXPECT_EQ(c.conv_norm, "layer_norm");
  EXPECT_NEAR(static_cast<double>(c.n_params()), 1.0e9, 0.05e9);  // paper-spec.md §2.2: ≈ 41.7M x 24
}

TEST(ConformerConfig, ParamCountMatchesTheModule) {
  for (const std::string norm : {"layer_norm", "batch_norm"}) {
    auto c = ConformerConfig::tiny();
    c.conv_norm = norm;
    c.n_layers = 3;
    c.conv_kernel = 5;
    ConformerEncoder enc(c, torch::kFloat32);
    int64_t n = 0;
    for (const auto& p : enc->parameters()) n += p.numel();
    EXPECT_EQ(n, c.n_params()) << norm;
  }
}

TEST(ConformerConfig, FrameArithmetic) {
  const auto c = ConformerConfig::paper_1b();
  EXPECT_EQ(c.output_frames(3000), 750);  // 30 s of 10 ms frames -> 40 ms frames
  EXPECT_EQ(c.output_frames(101), 26);
  EXPECT_EQ(c.output_frames(4), 1);
  EXPECT_EQ(c.output_frames(1), 1);
  EXPECT_EQ(c.output_frames(0), 0);
  // 750 frames: 24·750·(2·2·1536·4096 + 7·1536² + 7·1536) + 24·2·750²·1536 MACs + the input projection.
  const double macs = 24.0 * 750 * (2.0 * 2 * 1536 * 4096 + 7.0 * 1536 * 1536 + 7.0 * 1536) +
                      24.0 * 2 * 750 * 750 * 1536 + 750.0 * 320 * 1536;
  EXPECT_NEAR(c.flops(3000), 2 * macs, 1e-6 * macs);
  EXPECT_NEAR(c.flops(2999), c.flops(3000), 1.0);  // padded to the same 750 frames
}

void expect_config_error(const nlohmann::json& j, const std::string& key) {
  try {
    ConformerConfig::from_json(j, "enc.json");
    ADD_FAILURE() << "accepted " << j.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("enc.json"), std::string::npos) << e.what();
  }
}

TEST(ConformerConfig, JsonRoundTrip) {
  auto c = ConformerConfig::tiny();
  c.conv_norm = "batch_norm";
  c.rope_theta = 500.0;
  c.norm_eps = 1e-6;
  const auto back = ConformerConfig::from_json(c.to_json(), "x");
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.d_model, 32);
  EXPECT_EQ(back.conv_norm, "batch_norm");
  EXPECT_EQ(back.rope_theta, 500.0);
  EXPECT_EQ(ConformerConfig::from_json(ConformerConfig::paper_1b().to_json(), "x").n_params(),
            ConformerConfig::paper_1b().n_params());
}

TEST(ConformerConfig, UnknownAndMissingKeysAreNamed) {
  auto j = ConformerConfig::tiny().to_json();
  j["n_head"] = 4;  // a typo must not fall back to a default
  expect_config_error(j, "n_head");
  j = ConformerConfig::tiny().to_json();
  j.erase("ffn_dim");
  expect_config_error(j, "ffn_dim");
  expect_config_error(nlohmann::json::array(), "<root>");
}

TEST(ConformerConfig, InvalidValuesAreNamed) {
  const auto base = ConformerConfig::tiny().to_json();  // d_model 32
  auto with = [&](const std::string& key, const nlohmann::json& v) {
    auto j = base;
    j[key] = v;
    return j;
  };
  expect_config_error(with("conv_kernel", 6), "conv_kernel");     // even: no "same" padding
  expect_config_error(with("n_heads", 3), "n_heads");             // 32 % 3 != 0
  expect_config_error(with("n_heads", 32), "n_heads");            // head dim 1: odd, RoPE needs pairs
  expect_config_error(with("conv_norm", "group_norm"), "conv_norm");
  expect_config_error(with("d_model", -8), "d_model");
  expect_config_error(with("stack", 0), "stack");
  expect_config_error(with("stack", "4"), "stack");                // wrong JSON type
  expect_config_error(with("n_layers", 2.5), "n_layers");
  expect_config_error(with("rope_theta", -1.0), "rope_theta");
  expect_config_error(with("norm_eps", 0.0), "norm_eps");
  EXPECT_NO_THROW(ConformerConfig::from_json(with("n_heads", 16), "enc.json"));  // head dim 2
}

}  // namespace
}  // namespace llama_mm
