// adapters/cross_attention.cpp: Mllama cross-attention decoder layer (mllama-spec.md §3.2, §3.5).
// ref: transformers v4.45.2 models/mllama/modeling_mllama.py (MllamaTextCrossAttention, eager;
//      MllamaCrossAttentionDecoderLayer), meta-llama/llama-models models/llama3/multimodal/model.py (CrossAttention).
#include "adapters/cross_attention.h"

#include <cmath>

namespace llama_mm {

MllamaCrossAttentionImpl::MllamaCrossAttentionImpl(const LlamaConfig& cfg, torch::Dtype dtype)
    : n_head(cfg.num_attention_heads), n_kv_head(cfg.num_key_value_heads), head_dim(cfg.head_dim) {
  const int64_t d = cfg.hidden_size;
  q_proj = register_module("q_proj", Linear(d, n_head * head_dim, false, dtype));
  k_proj = register_module("k_proj", Linear(d, n_kv_head * head_dim, false, dtype));
  v_proj = register_module("v_proj", Linear(d, n_kv_head * head_dim, false, dtype));
  o_proj = register_module("o_proj", Linear(n_head * head_dim, d, false, dtype));
  q_norm = register_module("q_norm", RMSNorm(head_dim, cfg.rms_norm_eps, dtype));
  k_norm = register_module("k_norm", RMSNorm(head_dim, cfg.rms_norm_eps, dtype));
}

CrossKV MllamaCrossAttentionImpl::project_kv(const torch::Tensor& states) {
  const int64_t B = states.size(0), N = states.size(1);
  CrossKV kv;
  // k_norm is per head vector, so normalising before or after the GQA repeat is the same (§3.2 item 3).
  kv.k = k_norm(k_proj(states).view({B, N, n_kv_head, head_dim})).transpose(1, 2).contiguous();
  kv.v = v_proj(states).view({B, N, n_kv_head, head_dim}).transpose(1, 2).contiguous();
  return kv;
}

torch::Tensor MllamaCrossAttentionImpl::forward(const torch::Tensor& x, const CrossKV& kv,
                                                const CrossAttentionMask& mask, bool mask_rows) {
  const int64_t B = x.size(0), S = x.size(1), G = n_kv_head, R = n_head / n_kv_head, Dh = head_dim;
  const int64_t N = kv.k.size(2);
  auto q = q_norm(q_proj(x).view({B, S, n_head, Dh}));  // [B, S, H, Dh]
  // GQA without copying K/V: the R query heads of kv head g are rows of one GEMM ([B, G, R·S, Dh]).
  auto qg = q.view({B, S, G, R, Dh}).permute({0, 2, 3, 1, 4}).reshape({B, G, R * S, Dh});
  auto keys = kv.k, values = kv.v;
  const bool widen = x.device().is_cpu() && x.scalar_type() != torch::kFloat32;  // scalar bf16 GEMM on CPU
  if (widen) qg = qg.to(torch::kFloat32), keys = keys.to(torch::kFloat32), values = values.to(torch::kFloat32);
  auto scores = torch::matmul(qg, keys.transpose(2, 3)) / std::sqrt(static_cast<double>(Dh));  // [B, G, R·S, N]
  scores = scores.to(torch::kFloat32).view({B, G, R, S, N}) + mask.additive.to(x.device()).view({B, 1, 1, S, N});
  auto probs = torch::softmax(scores, -1).to(x.scalar_type()).view({B, G, R * S, N});
  if (widen) probs = probs.to(torch::kFloat32);
  auto out = torch::matmul(probs, values).to(x.scalar_type());                             // [B, G, R·S, Dh]
  out = out.view({B, G, R, S, Dh}).permute({0, 3, 1, 2, 4}).reshape({B, S, n_head * Dh});  // [B, S, H·Dh]
  // Meta zeroes the rows that see no image before wo; transformers does not (issue #39379).
  if (mask_rows) out = out * mask.row.to(x.device(), x.scalar_type()).view({B, S, 1});
  return o_proj(out);
}

CrossAttentionDecoderLayerImpl::CrossAttentionDecoderLayerImpl(const LlamaConfig& cfg, torch::Dtype dtype) {
  cross_attn = register_module("cross_attn", MllamaCrossAttention(cfg, dtype));
  mlp = register_module("mlp", LlamaMLP(cfg, dtype));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype));
  cross_attn_attn_gate = register_parameter("cross_attn_attn_gate", torch::empty({1}, torch::dtype(dtype)));
  cross_attn_mlp_gate = register_parameter("cross_attn_mlp_gate", torch::empty({1}, torch::dtype(dtype)));
}

torch::Tensor CrossAttentionDecoderLayerImpl::forward(const torch::Tensor& x, const CrossKV& kv,
                                                      const CrossAttentionMask& mask, bool mask_rows) {
  const int64_t B = x.size(0), S = x.size(1);
  auto h = x + cross_attn_attn_gate.tanh() * cross_attn(input_layernorm(x), kv, mask, mask_rows);
  auto m = mlp(post_attention_layernorm(h)) * mask.row.to(x.device(), x.scalar_type()).view({B, S, 1});
  return h + cross_attn_mlp_gate.tanh() * m;
}

}  // namespace llama_mm
