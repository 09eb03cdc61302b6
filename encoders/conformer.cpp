// encoders/conformer.cpp: the Conformer speech encoder (paper-spec.md §2.2). Shape legend in the header.
// ref: Gulati et al. 2020 (arXiv:2005.08100) Fig. 1-4; torchaudio v2.1.0 torchaudio/models/conformer.py
//      (ConformerLayer, _ConvolutionModule); NeMo v1.20.0 nemo/collections/asr/parts/submodules/conformer_modules.py
//      (ConformerLayer, ConformerConvolution: pad_mask applied before the depthwise conv).
#include "encoders/conformer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace llama_mm {

torch::Tensor valid_mask(const torch::Tensor& lengths, int64_t T) {
  auto pos = torch::arange(T, lengths.options().dtype(torch::kInt64));  // [T]
  return pos.unsqueeze(0) < lengths.to(torch::kInt64).unsqueeze(1);     // [B, T]
}

MacaronFeedForwardImpl::MacaronFeedForwardImpl(const ConformerConfig& cfg, torch::Dtype dtype) {
  norm = register_module("norm", LayerNorm(cfg.d_model, cfg.norm_eps, dtype));
  ff = register_module("ff", FeedForward(cfg.d_model, cfg.ffn_dim, dtype));
}

torch::Tensor MacaronFeedForwardImpl::forward(const torch::Tensor& x) { return ff(norm(x)); }

DepthwiseConv1dImpl::DepthwiseConv1dImpl(int64_t dim, int64_t kernel, torch::Dtype dtype) {
  TORCH_CHECK(kernel % 2 == 1, "DepthwiseConv1d: kernel ", kernel, " must be odd for \"same\" padding");
  weight = register_parameter("weight", torch::empty({dim, 1, kernel}, torch::dtype(dtype)));
  bias = register_parameter("bias", torch::empty({dim}, torch::dtype(dtype)));
}

torch::Tensor DepthwiseConv1dImpl::forward(const torch::Tensor& x) {
  const int64_t D = weight.size(0), pad = weight.size(2) / 2;
  // Conv1d reads [B, D, T']: the transposed view of the channel-last input (oneDNN on CPU, cuDNN on CUDA take
  // the strides as they are). The result is made channel-last and contiguous again for the norm that follows.
  auto y = torch::conv1d(x.to(torch::kFloat32).transpose(1, 2), weight.to(torch::kFloat32), bias.to(torch::kFloat32),
                         /*stride=*/1, /*padding=*/pad, /*dilation=*/1, /*groups=*/D);  // [B, D, T']
  return y.transpose(1, 2).contiguous().to(x.scalar_type());                           // [B, T', D]
}

ChannelNormImpl::ChannelNormImpl(int64_t dim, const std::string& kind, double eps_, torch::Dtype dtype)
    : batch_norm(kind == "batch_norm"), eps(eps_) {
  TORCH_CHECK(kind == "layer_norm" || kind == "batch_norm", "ChannelNorm: unknown kind \"", kind,
              "\" (expected layer_norm or batch_norm)");
  weight = register_parameter("weight", torch::ones({dim}, torch::dtype(dtype)));
  bias = register_parameter("bias", torch::zeros({dim}, torch::dtype(dtype)));
  if (batch_norm) {
    running_mean = register_buffer("running_mean", torch::zeros({dim}, torch::dtype(dtype)));
    running_var = register_buffer("running_var", torch::ones({dim}, torch::dtype(dtype)));
  }
}

torch::Tensor ChannelNormImpl::forward(const torch::Tensor& x) {
  const auto w = weight.to(torch::kFloat32), b = bias.to(torch::kFloat32);
  const auto xf = x.to(torch::kFloat32);
  if (!batch_norm) return torch::layer_norm(xf, {x.size(-1)}, w, b, eps).to(x.scalar_type());
  // BatchNorm1d in eval: (x - mean)/√(var + eps)·w + b, folded into one scale and shift per channel.
  const auto scale = w * torch::rsqrt(running_var.to(torch::kFloat32) + eps);  // [D]
  const auto shift = b - running_mean.to(torch::kFloat32) * scale;             // [D]
  return torch::addcmul(shift, xf, scale).to(x.scalar_type());
}

ConformerConvModuleImpl::ConformerConvModuleImpl(const ConformerConfig& cfg, torch::Dtype dtype) {
  const int64_t D = cfg.d_model;
  norm = register_module("norm", LayerNorm(D, cfg.norm_eps, dtype));
  pointwise1 = register_module("pointwise1", Linear(D, 2 * D, true, dtype));
  depthwise = register_module("depthwise", DepthwiseConv1d(D, cfg.conv_kernel, dtype));
  conv_norm = register_module("conv_norm", ChannelNorm(D, cfg.conv_norm, cfg.norm_eps, dtype));
  pointwise2 = register_module("pointwise2", Linear(D, D, true, dtype));
}

torch::Tensor ConformerConvModuleImpl::forward(const torch::Tensor& x, const torch::Tensor& valid) {
  auto h = torch::glu(pointwise1(norm(x)), -1);  // [B, T', 2D] -> [B, T', D]: first half · σ(second half)
  // Padded frames must not reach real frames through the kernel window (NeMo's pad_mask).
  if (valid.defined()) h = h.masked_fill(valid.logical_not().unsqueeze(-1), 0);
  h = torch::silu(conv_norm(depthwise(h)));  // [B, T', D]
  return pointwise2(h);
}

ConformerLayerImpl::ConformerLayerImpl(const ConformerConfig& cfg, torch::Dtype dtype) {
  ffn1 = register_module("ffn1", MacaronFeedForward(cfg, dtype));
  attn_norm = register_module("attn_norm", LayerNorm(cfg.d_model, cfg.norm_eps, dtype));
  attn = register_module("attn", RotarySelfAttention(cfg.d_model, cfg.n_heads, cfg.rope_theta, true, dtype));
  conv = register_module("conv", ConformerConvModule(cfg, dtype));
  ffn2 = register_module("ffn2", MacaronFeedForward(cfg, dtype));
  final_norm = register_module("final_norm", LayerNorm(cfg.d_model, cfg.norm_eps, dtype));
}

torch::Tensor ConformerLayerImpl::forward(const torch::Tensor& x_in, const torch::Tensor& valid) {
  // Out-of-place residual adds (alpha = ½ for the Macaron halves) keep the layer differentiable.
  auto x = torch::add(x_in, ffn1(x_in), 0.5);
  x = torch::add(x, attn(attn_norm(x), valid));
  x = torch::add(x, conv(x, valid));
  x = torch::add(x, ffn2(x), 0.5);
  return final_norm(x);
}

ConformerEncoderImpl::ConformerEncoderImpl(const ConformerConfig& cfg, torch::Dtype dtype) : cfg_(cfg) {
  const auto opts = torch::dtype(dtype);
  feature_mean = register_parameter("feature_mean", torch::zeros({cfg.n_mels}, opts), /*requires_grad=*/false);
  feature_std = register_parameter("feature_std", torch::ones({cfg.n_mels}, opts), /*requires_grad=*/false);
  input_proj = register_module("input_proj", Linear(cfg.n_mels * cfg.stack, cfg.d_model, true, dtype));
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    layers.push_back(ConformerLayer(cfg, dtype));
    list->push_back(layers.back());
  }
}

ConformerOutput ConformerEncoderImpl::forward(const torch::Tensor& mel, const torch::Tensor& lengths,
                                              const ActivationHook& hook) {
  const int64_t M = cfg_.n_mels, S = cfg_.stack;
  TORCH_CHECK(mel.dim() == 3 && mel.size(2) == M && mel.size(0) > 0 && mel.size(1) > 0,
              "ConformerEncoder: expected mel [B >= 1, T >= 1, ", M, "], got ", mel.sizes());
  const int64_t B = mel.size(0), T = mel.size(1), To = cfg_.output_frames(T);
  const auto device = input_proj->weight.device();
  const auto dtype = input_proj->weight.scalar_type();
  // CPU: fp32 residual stream (bf16 weights are widened inside Linear anyway; see the header).
  const auto act = device.is_cpu() ? torch::kFloat32 : dtype;
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor len;
  if (lengths.defined()) {
    TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == B, "ConformerEncoder: lengths must be [", B, "], got ",
                lengths.sizes());
    len = lengths.to(i64);
    TORCH_CHECK(len.min().item<int64_t>() >= 0 && len.max().item<int64_t>() <= T,
                "ConformerEncoder: lengths must lie in [0, ", T, "], got ", lengths);
  } else {
    len = torch::full({B}, T, i64);
  }

  // Per-bin normalisation in fp32, padded mel frames zeroed, T padded to T'·S, S frames stacked frame-major.
  auto x = (mel.to(device, torch::kFloat32) - feature_mean.to(torch::kFloat32)) / feature_std.to(torch::kFloat32);
  x = x.masked_fill(valid_mask(len, T).logical_not().unsqueeze(-1), 0);           // [B, T, M]
  x = torch::constant_pad_nd(x, {0, 0, 0, To * S - T}).view({B, To, S * M});      // [B, T', S·M]
  auto h = input_proj(x.to(act));                                                  // [B, T', D]
  auto out_len = torch::div(len + (S - 1), S, "floor");                            // [B]
  const auto valid = valid_mask(out_len, To);                                      // [B, T']
  // Without padding (one utterance, or equal lengths) the layers skip every mask.
  const auto layer_valid = valid.all().item<bool>() ? torch::Tensor() : valid;
  if (hook) hook("conformer.input_proj", h);
  for (size_t i = 0; i < layers.size(); ++i) {
    h = layers[i]->forward(h, layer_valid);
    if (hook) hook("conformer.layer." + std::to_string(i), h);
  }
  return {h.masked_fill(valid.logical_not().unsqueeze(-1), 0).to(dtype), out_len};
}

void init_random_conformer_weights(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  auto fill = [&](const std::string& name, torch::Tensor& t) {
    auto f32 = torch::empty(t.sizes(), torch::kFloat32);
    const bool is_norm = name.find("norm") != std::string::npos;
    if (ends_with(name, "feature_std") || ends_with(name, "running_var") || (is_norm && ends_with(name, "weight")))
      f32.fill_(1.0);
    else if (ends_with(name, "feature_mean") || ends_with(name, "running_mean") || ends_with(name, "bias"))
      f32.zero_();
    else if (t.dim() >= 2)
      f32.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(t.numel() / std::max<int64_t>(1, t.size(0)))), gen);
    else
      f32.normal_(0.0, 0.5, gen);
    t.copy_(f32);
  };
  for (auto& p : module.named_parameters()) fill(p.key(), p.value());
  for (auto& b : module.named_buffers()) fill(b.key(), b.value());
}

}  // namespace llama_mm
