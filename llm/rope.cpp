// llm/rope.cpp: RoPE tables and application (mllama-spec.md §1.5).
// ref: transformers v4.45.2 src/transformers/modeling_rope_utils.py (_compute_default_rope_parameters,
// _compute_llama3_parameters) and models/llama/modeling_llama.py (rotate_half, apply_rotary_pos_emb).
#include "llm/rope.h"

#include <cmath>

namespace llama_mm {

torch::Tensor rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& s) {
  // Exponent as an int64 arange cast to fp32, divided by hd; base ** exponent in fp32.
  auto exponent = torch::arange(0, head_dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(head_dim);
  auto inv_freq = 1.0 / torch::pow(theta, exponent);  // [hd/2]
  if (s.rope_type != "llama3") return inv_freq;

  const double L = static_cast<double>(s.original_max_position_embeddings);
  const double low_wl = L / s.low_freq_factor, high_wl = L / s.high_freq_factor;
  auto wavelen = 2.0 * M_PI / inv_freq;
  // Long wavelengths (low frequencies) are divided by the factor; short ones are kept.
  auto adjusted = torch::where(wavelen > low_wl, inv_freq / s.factor, inv_freq);
  // The band in between is a linear blend; boundaries are inclusive in the medium band.
  auto smooth = (L / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto smoothed = (1.0 - smooth) * adjusted / s.factor + smooth * adjusted;
  auto is_medium = (wavelen >= high_wl).logical_and(wavelen <= low_wl);
  return torch::where(is_medium, smoothed, adjusted);
}

RopeTable rope_table(const torch::Tensor& inv_freq, int64_t n_pos) {
  auto pos = torch::arange(n_pos, torch::kFloat32);
  auto freqs = torch::outer(pos, inv_freq.to(torch::kFloat32));  // [n_pos, hd/2]
  auto emb = torch::cat({freqs, freqs}, -1);                      // [n_pos, hd]
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);                        // rotate_half: [B, T, H, hd]
  auto c = cos.unsqueeze(-2), s = sin.unsqueeze(-2);               // [(B,) T, 1, hd], broadcast over H (and B)
  return x * c + rotated * s;
}

}  // namespace llama_mm
