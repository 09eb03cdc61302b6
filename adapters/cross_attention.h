// adapters/cross_attention.h: the Mllama cross-attention decoder layer (HF MllamaCrossAttentionDecoderLayer,
// mllama-spec.md §3.1-§3.5): text queries attend to the projected image features through q/k RMSNorms, GQA
// and tanh gates; no RoPE, no self-attention.
//
// Shape legend: B batch, S text tokens, N vision tokens (M images · T tiles · P tokens), D hidden_size,
// H query heads, G kv heads, Dh head_dim. Module names equal HF's keys below "language_model.model.layers.{i}.".
#pragma once

#include "adapters/cross_attention_mask.h"
#include "adapters/mllama_config.h"
#include "llm/llama_model.h"

#include <torch/torch.h>

namespace llama_mm {

// A cross layer's keys and values, computed once per image set: [B, G, N, Dh] each, keys k-normed.
struct CrossKV {
  torch::Tensor k, v;
};

class MllamaCrossAttentionImpl : public torch::nn::Module {
 public:
  MllamaCrossAttentionImpl(const LlamaConfig& cfg, torch::Dtype dtype);
  CrossKV project_kv(const torch::Tensor& vision_states);  // [B, N, D] -> keys/values
  // x [B, S, D]; mask rows for these S tokens. Returns o_proj(attention) [B, S, D]; rows with no visible
  // image are multiplied by mask.row first when mask_rows (Meta), else left as HF computes them.
  torch::Tensor forward(const torch::Tensor& x, const CrossKV& kv, const CrossAttentionMask& mask, bool mask_rows);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // over head_dim
  int64_t n_head, n_kv_head, head_dim;
};
TORCH_MODULE(MllamaCrossAttention);

class CrossAttentionDecoderLayerImpl : public torch::nn::Module {
 public:
  CrossAttentionDecoderLayerImpl(const LlamaConfig& cfg, torch::Dtype dtype);
  // x + tanh(g_attn)·CrossAttn(norm(x)), then + tanh(g_mlp)·row·MLP(norm(.)).
  torch::Tensor forward(const torch::Tensor& x, const CrossKV& kv, const CrossAttentionMask& mask, bool mask_rows);
  MllamaCrossAttention cross_attn{nullptr};
  LlamaMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  torch::Tensor cross_attn_attn_gate, cross_attn_mlp_gate;  // [1] each
};
TORCH_MODULE(CrossAttentionDecoderLayer);

}  // namespace llama_mm
