// adapters/speech_adapter.cpp: the speech adapter (paper-spec.md §2.4).
#include "adapters/speech_adapter.h"

#include "llm/config_json.h"
#include "llm/cpu_linear.h"
#include "llm/error.h"

namespace llama_mm {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

SpeechAdapterConfig SpeechAdapterConfig::paper(int64_t encoder_dim, int64_t llm_dim) {
  SpeechAdapterConfig c;
  c.encoder_dim = encoder_dim;
  c.llm_dim = llm_dim;
  return c;
}

SpeechAdapterConfig SpeechAdapterConfig::tiny(int64_t encoder_dim, int64_t llm_dim) {
  SpeechAdapterConfig c;
  c.encoder_dim = encoder_dim;
  c.llm_dim = llm_dim;
  c.d_model = 64;
  c.n_heads = 4;
  c.ffn_dim = 128;
  return c;
}

json SpeechAdapterConfig::to_json() const {
  return {{"encoder_dim", encoder_dim}, {"d_model", d_model},         {"n_heads", n_heads},
          {"ffn_dim", ffn_dim},         {"conv_kernel", conv_kernel}, {"conv_stride", conv_stride},
          {"llm_dim", llm_dim},         {"rope_theta", rope_theta},   {"norm_eps", norm_eps}};
}

SpeechAdapterConfig SpeechAdapterConfig::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(j,
                                {"encoder_dim", "d_model", "n_heads", "ffn_dim", "conv_kernel", "conv_stride",
                                 "llm_dim", "rope_theta", "norm_eps"},
                                origin);
  SpeechAdapterConfig c, d;
  auto positive = [&](const char* key, int64_t dflt) { return config_json::get_positive(j, key, origin, dflt); };
  c.encoder_dim = positive("encoder_dim", d.encoder_dim);
  c.d_model = positive("d_model", d.d_model);
  c.n_heads = positive("n_heads", d.n_heads);
  c.ffn_dim = positive("ffn_dim", d.ffn_dim);
  c.conv_kernel = positive("conv_kernel", d.conv_kernel);
  c.conv_stride = positive("conv_stride", d.conv_stride);
  c.llm_dim = positive("llm_dim", d.llm_dim);
  c.rope_theta = get<double>(j, "rope_theta", origin, d.rope_theta);
  c.norm_eps = get<double>(j, "norm_eps", origin, d.norm_eps);
  if (c.d_model % c.n_heads != 0 || (c.d_model / c.n_heads) % 2 != 0)
    fail(origin, "n_heads", "d_model / n_heads must be an even integer (RoPE)");
  if (c.conv_kernel % 2 == 0) fail(origin, "conv_kernel", "must be odd");
  if (!(c.rope_theta > 1)) fail(origin, "rope_theta", "must be > 1");
  if (!(c.norm_eps > 0)) fail(origin, "norm_eps", "must be positive");
  return c;
}

int64_t SpeechAdapterConfig::n_params() const {
  const int64_t D = d_model;
  return D * encoder_dim * conv_kernel + D          // conv
         + 2 * 2 * D                                // two LayerNorms
         + 4 * (D * D + D)                          // attention
         + (D * ffn_dim + ffn_dim) + (ffn_dim * D + D)  // FFN
         + (llm_dim * D + llm_dim)                  // out_proj
         + 2 * llm_dim;                             // boundary embeddings
}

int64_t SpeechAdapterConfig::output_frames(int64_t n) const {
  const int64_t pad = conv_kernel / 2;
  return n <= 0 ? 0 : (n + 2 * pad - conv_kernel) / conv_stride + 1;
}

double SpeechAdapterConfig::flops(int64_t n) const {
  const double T = static_cast<double>(output_frames(n)), D = static_cast<double>(d_model);
  const double macs = T * (D * encoder_dim * conv_kernel + 4 * D * D + 2 * D * ffn_dim + llm_dim * D) +
                      2 * T * T * D;  // scores and weighted values
  return 2 * macs;
}

SpeechAdapterImpl::SpeechAdapterImpl(const SpeechAdapterConfig& cfg, torch::Dtype dtype) : cfg_(cfg) {
  const auto opts = torch::TensorOptions().dtype(dtype);
  conv_weight = register_parameter("conv_weight", torch::empty({cfg.d_model, cfg.encoder_dim, cfg.conv_kernel}, opts));
  conv_bias = register_parameter("conv_bias", torch::empty({cfg.d_model}, opts));
  attn_norm = register_module("attn_norm", LayerNorm(cfg.d_model, cfg.norm_eps, dtype));
  attn = register_module("attn", RotarySelfAttention(cfg.d_model, cfg.n_heads, cfg.rope_theta, true, dtype));
  ffn_norm = register_module("ffn_norm", LayerNorm(cfg.d_model, cfg.norm_eps, dtype));
  ffn = register_module("ffn", FeedForward(cfg.d_model, cfg.ffn_dim, dtype));
  out_proj = register_module("out_proj", Linear(cfg.d_model, cfg.llm_dim, true, dtype));
  boundary = register_parameter("boundary", torch::empty({2, cfg.llm_dim}, opts));
}

SpeechAdapterOutput SpeechAdapterImpl::forward(const torch::Tensor& hidden, const torch::Tensor& lengths,
                                               const ActivationHook& hook) {
  TORCH_CHECK(hidden.dim() == 3 && hidden.size(2) == cfg_.encoder_dim, "speech adapter: expected [B, T, ",
              cfg_.encoder_dim, "], got ", hidden.sizes());
  const int64_t B = hidden.size(0), T = hidden.size(1);
  const auto dtype = conv_weight.scalar_type();
  auto len = lengths.defined() ? lengths.to(torch::kInt64).to(hidden.device())
                               : torch::full({B}, T, torch::TensorOptions().dtype(torch::kInt64).device(hidden.device()));
  // Frames past each length must not reach the conv window of the last valid output.
  auto x = hidden.to(dtype) * valid_mask(len, T).unsqueeze(-1).to(dtype);
  // Conv1d as a GEMM: windows [B, T', E, k] flatten in Conv1d's weight order (e, k).
  const int64_t k = cfg_.conv_kernel, pad = k / 2;
  x = torch::constant_pad_nd(x, {0, 0, pad, pad});
  auto windows = x.unfold(1, k, cfg_.conv_stride);  // [B, T', E, k]
  const int64_t To = windows.size(1);
  auto h = project(windows.reshape({B, To, cfg_.encoder_dim * k}), conv_weight.view({cfg_.d_model, -1}), conv_bias);
  auto out_len = torch::div(len + 2 * pad - k, cfg_.conv_stride, "floor") + 1;
  const auto valid = valid_mask(out_len, To);
  if (hook) hook("adapter.conv", h);
  h = h + attn->forward(attn_norm->forward(h), valid);
  h = h + ffn->forward(ffn_norm->forward(h));
  if (hook) hook("adapter.layer", h);
  h = out_proj->forward(h) * valid.unsqueeze(-1).to(dtype);
  if (hook) hook("adapter.out", h);
  return {h, out_len};
}

}  // namespace llama_mm
