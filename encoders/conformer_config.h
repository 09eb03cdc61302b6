// encoders/conformer_config.h: sizes of the Conformer speech encoder (paper-spec.md §2.2, paper §8.2.1).
// The paper gives 80 mel bins stacked 4 at a time (10 ms -> 40 ms frames), 24 layers of width 1536, Macaron FFNs
// of 4096, 24 rotary heads and a depthwise kernel of 7 (~1B parameters). The RoPE base, the eps, the conv
// module's norm and the biases are llama-mm choices (paper-spec.md §2.2 "[choice]"), recorded here.
//
// JSON form (the "encoder" object of a speech adapter file): exactly the field names below, every key required,
// unknown keys refused; errors are ErrorKind::Config naming the origin and the key.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace llama_mm {

struct ConformerConfig {
  int64_t n_mels = 80;  // mel bins of the front end (media/log_mel.h)
  int64_t stack = 4;    // 10 ms mel frames concatenated into one 40 ms encoder frame (input n_mels·stack)
  int64_t d_model = 1536, n_layers = 24, n_heads = 24, ffn_dim = 4096, conv_kernel = 7;
  double rope_theta = 10000.0;  // [choice] not stated by the paper
  double norm_eps = 1e-5;       // every LayerNorm (nn.LayerNorm default) and the BatchNorm
  // The conv module's norm over channels: "layer_norm" (default: per frame, so padding-safe in training too)
  // or "batch_norm" (BatchNorm1d with running statistics, eval semantics only).
  std::string conv_norm = "layer_norm";

  static ConformerConfig paper_1b();  // 24 x 1536, FFN 4096, 24 heads, kernel 7: 1.0009e9 parameters
  static ConformerConfig tiny();      // 2 layers, width 32, 4 heads (head dim 8), FFN 64: unit tests
  nlohmann::json to_json() const;
  static ConformerConfig from_json(const nlohmann::json& j, const std::string& origin);

  int64_t head_dim() const { return d_model / n_heads; }
  int64_t n_params() const;                           // trainable parameters (BatchNorm running stats excluded)
  int64_t output_frames(int64_t n_mel_frames) const;  // ceil(T / stack)
  // Forward FLOPs of one utterance (2 per multiply-add): input projection, every Linear, the depthwise conv,
  // and attention's QKᵀ and PV. Norms, softmax and element-wise work are left out.
  double flops(int64_t n_mel_frames) const;
};

}  // namespace llama_mm
