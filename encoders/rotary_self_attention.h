// encoders/rotary_self_attention.h: bidirectional multi-head self-attention with rotary positions and a key
// padding mask, plus the SiLU feed-forward block. Shared by the Conformer speech encoder (paper-spec.md §2.2,
// "rotary (RoPE) self-attention module") and the speech adapter's rotary Transformer layer (§2.4).
// RoPE (Su et al., arXiv:2104.09864) in Hugging Face's rotate_half convention, llm/rope.h, positions 0..T-1,
// plain frequencies 1/theta^(2j/Dh) (no llama3 scaling), applied to q and k of every head.
//
// Shape legend: B batch, T frames, D model width, H heads, Dh = D / H head dim, n query rows of one block.
// Parameter names (checkpoint keys): {q,k,v,o}_proj.{weight [D, D], bias [D]}; FeedForward: up.{weight [F, D],
// bias [F]}, down.{weight [D, F], bias [D]}.
// Weights f32 or bf16 (CPU bf16 projections go through llm/cpu_linear.h project() at fp32 BLAS speed); any
// activation dtype the weights accept. Thread-safety: forward is const in effect (no state is written).
#pragma once

#include "llm/llama_model.h"

#include <torch/torch.h>

namespace llama_mm {

class RotarySelfAttentionImpl : public torch::nn::Module {
 public:
  RotarySelfAttentionImpl(int64_t dim, int64_t n_heads, double rope_theta, bool bias, torch::Dtype dtype);
  // x [B, T, D]; valid [B, T] bool (true = a real frame) or undefined (all real). Returns [B, T, D] in x's dtype.
  // Padded keys get exactly zero weight; rows at padded queries are finite but meaningless (callers zero them).
  // Scores and softmax run in fp32 (on CPU the whole attention core runs in fp32 for bf16/f16 inputs: LibTorch's
  // CPU bf16 GEMM is a scalar loop), all heads at once in blocks of query rows, so the score temporary
  // [B·H, n, T] stays small (~16 MB) however long the utterance.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& valid);

  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t n_heads, head_dim;
  torch::Tensor inv_freq;  // fp32 [Dh / 2], derived from rope_theta: a plain member, not a checkpoint tensor
};
TORCH_MODULE(RotarySelfAttention);

// down(silu(up(x))) with biases: the Conformer's Macaron FFN body and the adapter layer's FFN.
// Long inputs run in row chunks so the [rows, F] activation stays small (~16 MB).
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // [..., D] -> [..., D]
  Linear up{nullptr}, down{nullptr};
};
TORCH_MODULE(FeedForward);

}  // namespace llama_mm
