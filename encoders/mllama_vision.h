// encoders/mllama_vision.h: the Llama 3.2 Vision image encoder (HF MllamaVisionModel, mllama-spec.md §2.3),
// a ViT-H/14 over up to max_num_tiles tiles per image with gated tile and position embeddings, 32 local
// layers, 8 gated global layers and interleaved intermediate features.
//
// Shape legend: B batch, M images per sample, T = max_num_tiles, S tile side (image_size), P tokens per tile
// (patches + CLS), P' = P padded to a multiple of 8, D hidden_size, F vision_output_dim = D·(1+#intermediate).
// Module names equal HF's state-dict keys below "vision_model." ("transformer.layers.3.mlp.fc1.weight").
// LayerNorm and softmax run in fp32; weights and activations are in the model dtype. Parameters are
// allocated uninitialised.
#pragma once

#include "encoders/mllama_vision_config.h"
#include "llm/llama_model.h"

#include <torch/torch.h>

namespace llama_mm {

// nn.LayerNorm(D, eps) computed in fp32 and cast back.
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm);

// Multi-head self-attention without biases; `invalid` [N, L] bool marks tokens of padding tiles and pad
// tokens: a score is masked only when both query and key are invalid (the reference's quirk, §2.3 item 7).
class VisionAttentionImpl : public torch::nn::Module {
 public:
  VisionAttentionImpl(const MllamaVisionConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& invalid);  // [N, L, D] -> [N, L, D]
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t n_head, head_dim;
};
TORCH_MODULE(VisionAttention);

class VisionMLPImpl : public torch::nn::Module {
 public:
  VisionMLPImpl(const MllamaVisionConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // fc2(gelu_erf(fc1(x)))
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(VisionMLP);

// Pre-norm encoder layer; gated layers scale both branches by tanh(gate_attn) / tanh(gate_ffn).
class VisionEncoderLayerImpl : public torch::nn::Module {
 public:
  VisionEncoderLayerImpl(const MllamaVisionConfig& cfg, bool gated, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& invalid);
  VisionAttention self_attn{nullptr};
  VisionMLP mlp{nullptr};
  LayerNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  torch::Tensor gate_attn, gate_ffn;  // [1], gated layers only
};
TORCH_MODULE(VisionEncoderLayer);

// Gated pre/post-tile embedding indexed by aspect-ratio id: each row holds T per-tile vectors of `per_tile`
// values (row 0, "no image", is zero in real checkpoints).
class TileEmbeddingImpl : public torch::nn::Module {
 public:
  TileEmbeddingImpl(int64_t n_ids, int64_t n_tiles, int64_t per_tile, torch::Dtype dtype);
  torch::Tensor lookup(const torch::Tensor& aspect_ratio_ids) const;  // [N] -> [N, T·per_tile]
  torch::Tensor weight;  // "embedding.weight" [n_ids, T·per_tile]
  torch::Tensor gate;    // [1]: the table is scaled by tanh(gate)
};
TORCH_MODULE(TileEmbedding);

class MllamaVisionModelImpl : public torch::nn::Module {
 public:
  MllamaVisionModelImpl(const MllamaVisionConfig& cfg, torch::Dtype dtype);

  // pixel_values [B, M, T, C, S, S] (any float dtype), aspect_ratio_ids [B, M] int64 (0 = no image),
  // aspect_ratio_mask [B, M, T] int64. Returns [B, M, T, P, F] in the model dtype. `hook` receives the
  // stages "vision.patch_embeds", "vision.pre_tile", "vision.pos", "vision.ln_pre", "vision.local.i",
  // "vision.ln_post", "vision.post_tile", "vision.global.i".
  torch::Tensor forward(const torch::Tensor& pixel_values, const torch::Tensor& aspect_ratio_ids,
                        const torch::Tensor& aspect_ratio_mask, const ActivationHook& hook = {});

  // Matmul FLOPs of one forward over `n_images` images of T tiles (projections, attention, MLP, patch conv).
  int64_t flops(int64_t n_images) const;

  const MllamaVisionConfig& config() const { return cfg_; }

  torch::Tensor patch_embedding_weight;  // "patch_embedding.weight" [D, C, p, p]
  torch::Tensor class_embedding;         // [D]
  torch::Tensor position_embedding;      // "gated_positional_embedding.embedding" [P, D]
  torch::Tensor position_gate;           // "gated_positional_embedding.gate" [1]
  torch::Tensor tile_embedding_weight;   // "gated_positional_embedding.tile_embedding.weight" [ids, T·P·D]
  TileEmbedding pre_tile{nullptr}, post_tile{nullptr};
  LayerNorm layernorm_pre{nullptr}, layernorm_post{nullptr};
  std::vector<VisionEncoderLayer> local_layers, global_layers;

 private:
  MllamaVisionConfig cfg_;
  torch::Dtype dtype_;
};
TORCH_MODULE(MllamaVisionModel);

}  // namespace llama_mm
