// encoders/conformer.h: the paper's Conformer speech encoder (paper-spec.md §2.2, paper §8.2.1; block after
// Gulati et al. 2020, arXiv:2005.08100, as torchaudio's ConformerLayer with convolution_first=False and NeMo's
// ConformerLayer, with rotary instead of relative/absolute attention positions).
//
//   mel [B, T, n_mels] -> (mel - feature_mean) / feature_std, padded frames zeroed
//     -> pad T to a multiple of `stack`, stack 4 consecutive frames frame-major -> [B, T', n_mels·stack]
//     -> input_proj -> [B, T', D] -> n_layers x ConformerLayer -> padded rows zeroed -> hidden [B, T', D]
//   ConformerLayer:  x += ½·FFN1(LN(x));  x += MHSA_rope(LN(x), key padding mask);  x += Conv(x);
//                    x += ½·FFN2(LN(x));  x = LN(x)
//   Conv: LN -> pointwise1 (D -> 2D) -> GLU over channels -> padded frames zeroed -> depthwise Conv1d (kernel k,
//         "same" zero padding, groups D, bias) -> conv_norm -> SiLU -> pointwise2 (D -> D)
// Dropout is left out (inference). Padding never leaks: padded mel frames are zeroed after normalisation,
// padded frames are zeroed before every depthwise conv, padded keys are masked, norms are per frame (LayerNorm,
// or BatchNorm with running statistics), and padded output rows are exactly 0, so a padded batch gives each item
// what it gives alone.
//
// Shape legend: B batch, T mel frames, T' = ceil(T / stack) encoder frames (40 ms), D d_model, F ffn_dim,
// k conv_kernel, M n_mels.
//
// Checkpoint keys (module names; below "encoder." in a speech adapter file):
//   feature_mean [M], feature_std [M]                         per-bin global statistics (frozen parameters)
//   input_proj.{weight [D, M·stack], bias [D]}
//   layers.i.ffn1.norm.{weight,bias} [D], layers.i.ffn1.ff.up.{weight [F, D], bias [F]},
//   layers.i.ffn1.ff.down.{weight [D, F], bias [D]}            (ffn2 alike)
//   layers.i.attn_norm.{weight,bias}, layers.i.attn.{q,k,v,o}_proj.{weight [D, D], bias [D]}
//   layers.i.conv.norm.{weight,bias}, layers.i.conv.pointwise1.{weight [2D, D], bias [2D]},
//   layers.i.conv.depthwise.{weight [D, 1, k], bias [D]}       (nn.Conv1d(D, D, k, groups=D) layout)
//   layers.i.conv.conv_norm.{weight,bias} [D] (+ running_mean, running_var buffers [D] for "batch_norm"),
//   layers.i.conv.pointwise2.{weight [D, D], bias [D]}, layers.i.final_norm.{weight,bias}
// The pointwise convolutions are Linear (a kernel-1 nn.Conv1d weight [O, I, 1] converts by dropping the last
// axis, in the converter).
//
// Dtypes: weights f32 or bf16. On CPU the residual stream runs in fp32 whatever the weight dtype (bf16 weights
// reach fp32 BLAS through Linear / llm/cpu_linear.h, with no activation rounding); on CUDA it runs in the weight
// dtype. Norms, softmax and the depthwise conv compute in fp32. Thread-safety: forward writes no module state;
// concurrent forwards on one encoder are safe as far as LibTorch's ops are.
#pragma once

#include "encoders/conformer_config.h"
#include "encoders/mllama_vision.h"  // LayerNorm
#include "encoders/rotary_self_attention.h"
#include "llm/llama_model.h"

#include <torch/torch.h>

#include <vector>

namespace llama_mm {

// [B, T] bool: position t < lengths[b] (lengths [B] integer, on the mask's device).
torch::Tensor valid_mask(const torch::Tensor& lengths, int64_t T);

// LayerNorm -> FeedForward: one Macaron half (the ½ is applied by the layer). Keys: norm.*, ff.{up,down}.*.
class MacaronFeedForwardImpl : public torch::nn::Module {
 public:
  MacaronFeedForwardImpl(const ConformerConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T', D] -> [B, T', D]
  LayerNorm norm{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(MacaronFeedForward);

// nn.Conv1d(D, D, k, padding=k/2, groups=D) over channel-last input, computed in fp32 (torch::conv1d on the
// transposed view: oneDNN's depthwise kernel on CPU). Keys: weight [D, 1, k], bias [D].
class DepthwiseConv1dImpl : public torch::nn::Module {
 public:
  DepthwiseConv1dImpl(int64_t dim, int64_t kernel, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T', D] -> [B, T', D] in x's dtype
  torch::Tensor weight, bias;
};
TORCH_MODULE(DepthwiseConv1d);

// The conv module's norm over channels, per frame, in fp32: LayerNorm, or BatchNorm1d with running statistics
// (eval semantics; training statistics over padded batches would need masking). Keys: weight, bias
// (+ running_mean, running_var buffers for batch_norm). An unknown kind fails at construction.
class ChannelNormImpl : public torch::nn::Module {
 public:
  ChannelNormImpl(int64_t dim, const std::string& kind, double eps, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // [..., D] -> [..., D] in x's dtype
  torch::Tensor weight, bias, running_mean, running_var;
  bool batch_norm;
  double eps;
};
TORCH_MODULE(ChannelNorm);

class ConformerConvModuleImpl : public torch::nn::Module {
 public:
  ConformerConvModuleImpl(const ConformerConfig& cfg, torch::Dtype dtype);
  // x [B, T', D]; valid [B, T'] bool or undefined (all frames real). Returns the branch output [B, T', D].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& valid);
  LayerNorm norm{nullptr};
  Linear pointwise1{nullptr}, pointwise2{nullptr};
  DepthwiseConv1d depthwise{nullptr};
  ChannelNorm conv_norm{nullptr};
};
TORCH_MODULE(ConformerConvModule);

class ConformerLayerImpl : public torch::nn::Module {
 public:
  ConformerLayerImpl(const ConformerConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& valid);  // [B, T', D] -> [B, T', D]
  MacaronFeedForward ffn1{nullptr}, ffn2{nullptr};
  LayerNorm attn_norm{nullptr}, final_norm{nullptr};
  RotarySelfAttention attn{nullptr};
  ConformerConvModule conv{nullptr};
};
TORCH_MODULE(ConformerLayer);

struct ConformerOutput {
  torch::Tensor hidden;   // [B, T', D] in the weight dtype; rows at and past each length are exactly zero
  torch::Tensor lengths;  // [B] int64: ceil(mel length / stack)
};

class ConformerEncoderImpl : public torch::nn::Module {
 public:
  ConformerEncoderImpl(const ConformerConfig& cfg, torch::Dtype dtype);
  // mel [B, T, M] log-mel, not normalised (any float dtype, B, T >= 1); lengths [B] int64 valid mel frames per
  // item, each in [0, T] (undefined: all T). `hook` receives "conformer.input_proj" and "conformer.layer.i"
  // (activation dtype, padded rows not zeroed).
  ConformerOutput forward(const torch::Tensor& mel, const torch::Tensor& lengths, const ActivationHook& hook = {});
  const ConformerConfig& config() const { return cfg_; }

  torch::Tensor feature_mean, feature_std;  // [M] per-bin global statistics; parameters with requires_grad=false
  Linear input_proj{nullptr};
  std::vector<ConformerLayer> layers;       // registered as the ModuleList "layers"

 private:
  ConformerConfig cfg_;
};
TORCH_MODULE(ConformerEncoder);

// Seeded, deterministic random weights for tests and benchmarks, chosen by parameter name, for any module built
// from these parts (the speech adapter too): tensors of 2+ dims N(0, 1/fan_in) (std 1/√(numel/size(0))),
// *norm*.weight and feature_std and running_var 1, biases and feature_mean and running_mean 0, other 1-D
// tensors N(0, 0.5²).
void init_random_conformer_weights(torch::nn::Module& module, uint64_t seed);

}  // namespace llama_mm
