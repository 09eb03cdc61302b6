// encoders/conformer_config.cpp: ConformerConfig presets, JSON and size arithmetic (paper-spec.md §2.2).
#include "encoders/conformer_config.h"

#include "llm/config_json.h"
#include "llm/error.h"

namespace llama_mm {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

ConformerConfig ConformerConfig::paper_1b() { return ConformerConfig{}; }

ConformerConfig ConformerConfig::tiny() {
  ConformerConfig c;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.ffn_dim = 64;
  return c;
}

json ConformerConfig::to_json() const {
  return {{"n_mels", n_mels},         {"stack", stack},       {"d_model", d_model},
          {"n_layers", n_layers},     {"n_heads", n_heads},   {"ffn_dim", ffn_dim},
          {"conv_kernel", conv_kernel}, {"rope_theta", rope_theta}, {"norm_eps", norm_eps},
          {"conv_norm", conv_norm}};
}

ConformerConfig ConformerConfig::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(j,
                                {"n_mels", "stack", "d_model", "n_layers", "n_heads", "ffn_dim", "conv_kernel",
                                 "rope_theta", "norm_eps", "conv_norm"},
                                origin);
  auto positive = [&](const char* key) { return config_json::get_positive(j, key, origin, std::nullopt); };
  ConformerConfig c;
  c.n_mels = positive("n_mels");
  c.stack = positive("stack");
  c.d_model = positive("d_model");
  c.n_layers = positive("n_layers");
  c.n_heads = positive("n_heads");
  c.ffn_dim = positive("ffn_dim");
  c.conv_kernel = positive("conv_kernel");
  c.rope_theta = get<double>(j, "rope_theta", origin, std::nullopt);
  c.norm_eps = get<double>(j, "norm_eps", origin, std::nullopt);
  c.conv_norm = get<std::string>(j, "conv_norm", origin, std::nullopt);
  if (c.d_model % c.n_heads != 0)
    fail(origin, "n_heads", std::to_string(c.n_heads) + " does not divide d_model " + std::to_string(c.d_model));
  if (c.head_dim() % 2 != 0)
    fail(origin, "n_heads", "head dim d_model / n_heads = " + std::to_string(c.head_dim()) + " must be even (RoPE)");
  if (c.conv_kernel % 2 == 0)
    fail(origin, "conv_kernel", "must be odd for \"same\" padding, got " + std::to_string(c.conv_kernel));
  if (!(c.rope_theta > 0)) fail(origin, "rope_theta", "must be positive");
  if (!(c.norm_eps > 0)) fail(origin, "norm_eps", "must be positive");
  if (c.conv_norm != "layer_norm" && c.conv_norm != "batch_norm")
    fail(origin, "conv_norm", "expected \"layer_norm\" or \"batch_norm\", got \"" + c.conv_norm + "\"");
  return c;
}

int64_t ConformerConfig::n_params() const {
  const int64_t D = d_model, F = ffn_dim, K = conv_kernel;
  const int64_t ffn = 2 * D + (D * F + F) + (F * D + D);                            // norm, up, down
  const int64_t attn = 2 * D + 4 * (D * D + D);                                     // attn_norm, q k v o
  const int64_t conv = 2 * D + (2 * D * D + 2 * D) + (D * K + D) + 2 * D + (D * D + D);  // norm pw1 dw norm pw2
  const int64_t layer = 2 * ffn + attn + conv + 2 * D;                              // + final_norm
  return 2 * n_mels + (n_mels * stack * D + D) + n_layers * layer;                  // stats, input_proj, layers
}

int64_t ConformerConfig::output_frames(int64_t n) const { return n <= 0 ? 0 : (n + stack - 1) / stack; }

double ConformerConfig::flops(int64_t n_mel_frames) const {
  const double T = static_cast<double>(output_frames(n_mel_frames)), D = static_cast<double>(d_model);
  const double F = static_cast<double>(ffn_dim), K = static_cast<double>(conv_kernel);
  // Multiply-adds per layer: two FFNs, q k v o, pointwise D->2D and D->D, depthwise; QKᵀ and PV.
  const double per_layer = T * (2 * 2 * D * F + 4 * D * D + 3 * D * D + D * K) + 2 * T * T * D;
  return 2 * (T * static_cast<double>(n_mels * stack) * D + static_cast<double>(n_layers) * per_layer);
}

}  // namespace llama_mm
