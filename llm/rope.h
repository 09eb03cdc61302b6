// llm/rope.h: rotary position embedding with the llama3 frequency adjustment (mllama-spec.md §1.5),
// in Hugging Face's rotate_half convention (pairs (j, j+hd/2)), which HF checkpoints' q/k rows assume.
#pragma once

#include "llm/llama_config.h"

#include <torch/torch.h>

namespace llama_mm {

// inv_freq[j] = 1/theta^(2j/hd), j < hd/2, then the llama3 low/medium/high band adjustment; fp32 [hd/2].
// The op order mirrors transformers' _compute_default/_compute_llama3_parameters so fp32 results match bit for bit.
torch::Tensor rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& scaling);

// cos/sin tables for positions [0, n_pos): fp32 [n_pos, hd], each row cat(freqs, freqs).
struct RopeTable {
  torch::Tensor cos, sin;
};
RopeTable rope_table(const torch::Tensor& inv_freq, int64_t n_pos);

// x: [B, T, H, hd]; cos/sin: [T, hd] (or [B, T, hd] for per-row positions) already in x's dtype. Returns x·cos + rotate_half(x)·sin.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace llama_mm
