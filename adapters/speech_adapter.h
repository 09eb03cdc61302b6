// adapters/speech_adapter.h: the paper's speech adapter (paper-spec.md §2.4): Conv1d (kernel 3, stride 2:
// 40 ms encoder frames -> 80 ms) -> one pre-norm rotary Transformer layer -> Linear to the LLM width. Its
// outputs enter the frozen Llama 3 as input token embeddings (adapters/speech_model.h).
//
// Shapes: hidden [B, T, E] (Conformer output, padded rows zero) -> [B, T', L] with T' = ceil(T / 2) for the
// paper's kernel 3 / stride 2 / padding 1, L the LLM hidden size.
// Parameter names (checkpoint keys below "adapter."): conv_weight [D, E, k] (Conv1d layout), conv_bias [D],
// attn_norm.{weight,bias}, attn.{q,k,v,o}_proj.{weight,bias}, ffn_norm.{weight,bias}, ffn.{up,down}.{weight,bias},
// out_proj.{weight,bias} [L, D], boundary [2, L] (the embeddings of the speech start and end tokens: the
// reserved Llama 3 rows they map to were never trained, so the adapter owns them).
// Choices the paper leaves open (§7 item 5): D = 3072, 24 heads, a SiLU FFN of 4096 with biases, no
// activation after the conv, LayerNorm eps 1e-5, RoPE base 10000.
#pragma once

#include "encoders/encoders.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>

namespace llama_mm {

struct SpeechAdapterConfig {
  int64_t encoder_dim = 1536;  // E: the speech encoder's width
  int64_t d_model = 3072;      // D
  int64_t n_heads = 24;
  int64_t ffn_dim = 4096;
  int64_t conv_kernel = 3, conv_stride = 2;  // padding conv_kernel / 2
  int64_t llm_dim = 4096;                    // L: the frozen LLM's hidden size
  double rope_theta = 10000.0, norm_eps = 1e-5;

  static SpeechAdapterConfig paper(int64_t encoder_dim, int64_t llm_dim);  // ~100M parameters at L = 4096
  static SpeechAdapterConfig tiny(int64_t encoder_dim, int64_t llm_dim);   // D 64, 4 heads, FFN 128
  nlohmann::json to_json() const;
  // Unknown keys and invalid values are ErrorKind::Config naming `origin` and the key.
  static SpeechAdapterConfig from_json(const nlohmann::json& j, const std::string& origin);
  int64_t n_params() const;
  int64_t output_frames(int64_t n_encoder_frames) const;
  double flops(int64_t n_encoder_frames) const;  // forward FLOPs for one utterance (2 per multiply-add)
};

struct SpeechAdapterOutput {
  torch::Tensor embeds;   // [B, T', L] in the model dtype; rows past each length are zero
  torch::Tensor lengths;  // [B] int64
};

class SpeechAdapterImpl : public torch::nn::Module {
 public:
  SpeechAdapterImpl(const SpeechAdapterConfig& cfg, torch::Dtype dtype);
  // hidden [B, T, E]; lengths [B] int64 valid frames (undefined: all T). `hook` gets "adapter.conv",
  // "adapter.layer", "adapter.out".
  SpeechAdapterOutput forward(const torch::Tensor& hidden, const torch::Tensor& lengths,
                              const ActivationHook& hook = {});
  const SpeechAdapterConfig& config() const { return cfg_; }

  torch::Tensor conv_weight, conv_bias;
  LayerNorm attn_norm{nullptr}, ffn_norm{nullptr};
  RotarySelfAttention attn{nullptr};
  FeedForward ffn{nullptr};
  Linear out_proj{nullptr};
  torch::Tensor boundary;

 private:
  SpeechAdapterConfig cfg_;
};
TORCH_MODULE(SpeechAdapter);

}  // namespace llama_mm
