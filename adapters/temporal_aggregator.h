// adapters/temporal_aggregator.h: the paper's video temporal aggregator (paper-spec.md §1.2), a Flamingo-style
// perceiver resampler: every `aggregation` consecutive encoded frames (32 at SFT/inference, 16 in video
// pre-training) are merged into one "effective frame" of `num_latents` vectors, which the video cross-attention
// layers attend to.
//
// Per group of n <= aggregation frames, x [n, S, D] (S tokens per frame, the projected image-encoder output):
//   x = x + frame_embedding[0:n]  (broadcast over the S tokens), flattened to [n·S, D]
//   h = latents [L, D]
//   depth times:  h = h + PerceiverAttention(x, h);  h = h + FFN(h)
//   effective frame = LayerNorm(h)
// PerceiverAttention: LayerNorm on x and on h separately; q from h; keys and values from [x ; h] (Flamingo's
// change to the Perceiver); softmax(q·kᵀ / sqrt(head_dim)) v over heads, no biases, an output projection.
// FFN: LayerNorm -> Linear(D, ffn_mult·D) -> GELU (erf) -> Linear back, no biases.
// The last group of a video may hold fewer frames; it is resampled from those alone (no padding).
//
// Sizes the paper leaves open (§7 item 1) are this config; presets and the reasons are in docs/architecture.md.
// Parameter names (below "aggregator."): latents [L, D], frame_embedding [aggregation, D],
// layers.{i}.attn.{norm_media,norm_latents}.{weight,bias}, layers.{i}.attn.{q,k,v,o}_proj.weight,
// layers.{i}.ffn.norm.{weight,bias}, layers.{i}.ffn.{up,down}_proj.weight, norm.{weight,bias}.
#pragma once

#include "encoders/mllama_vision.h"
#include "llm/llama_model.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>

namespace llama_mm {

struct TemporalAggregatorConfig {
  int64_t dim = 4096;          // D: the width it runs at (the LLM's, after the image projector)
  int64_t aggregation = 32;    // frames merged into one effective frame
  int64_t num_latents = 1601;  // L: vectors per effective frame
  int64_t depth = 2;
  int64_t heads = 8, head_dim = 128;
  int64_t ffn_mult = 2;
  double norm_eps = 1e-5;

  nlohmann::json to_json() const;
  // Unknown keys and invalid values are ErrorKind::Config naming `origin` and the key.
  static TemporalAggregatorConfig from_json(const nlohmann::json& j, const std::string& origin);
  int64_t n_params() const;
  int64_t n_groups(int64_t n_frames) const { return (n_frames + aggregation - 1) / aggregation; }
};

class PerceiverAttentionImpl : public torch::nn::Module {
 public:
  PerceiverAttentionImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype);
  // media [B, N, D], latents [B, L, D] -> [B, L, D] (the residual is added by the caller).
  torch::Tensor forward(const torch::Tensor& media, const torch::Tensor& latents);
  LayerNorm norm_media{nullptr}, norm_latents{nullptr};
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t heads, head_dim;
  int64_t max_score_bytes = int64_t{16} << 20;  // attention scores are computed per head in query blocks this size
};
TORCH_MODULE(PerceiverAttention);

class PerceiverFeedForwardImpl : public torch::nn::Module {
 public:
  PerceiverFeedForwardImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // down(gelu(up(norm(x))))
  LayerNorm norm{nullptr};
  Linear up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(PerceiverFeedForward);

class PerceiverLayerImpl : public torch::nn::Module {
 public:
  PerceiverLayerImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& media, const torch::Tensor& latents);
  PerceiverAttention attn{nullptr};
  PerceiverFeedForward ffn{nullptr};
};
TORCH_MODULE(PerceiverLayer);

class TemporalAggregatorImpl : public torch::nn::Module {
 public:
  TemporalAggregatorImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype);
  // frames [F, S, D] of one video, in time order -> effective frames [ceil(F / aggregation), L, D].
  torch::Tensor forward(const torch::Tensor& frames);
  const TemporalAggregatorConfig& config() const { return cfg_; }

  torch::Tensor latents, frame_embedding;
  std::vector<PerceiverLayer> layers;
  LayerNorm norm{nullptr};

 private:
  torch::Tensor resample(const torch::Tensor& groups);  // [G, n, S, D], all groups n frames -> [G, L, D]
  TemporalAggregatorConfig cfg_;
};
TORCH_MODULE(TemporalAggregator);

}  // namespace llama_mm
