// llm/decode_ops.h: the decode step's small elementwise ops (RMSNorm, RoPE, SiLU·up) on CPU, one pass each.
//
// A 1B decode step runs ~60 LibTorch ops per layer besides its matrix products, each on a few thousand elements,
// so each costs its dispatch (~6 µs measured here) rather than its arithmetic: ~5.7 ms of a q8 token's ~57 ms
// on 2 Zen 3 cores, while the kernel pool's second thread waits. RMSNorm alone is 8 ops and RoPE 6 per tensor.
// These functions do the same arithmetic in one loop for few rows (up to kDecodeOpsMaxRows), with the
// reference's roundings: in a bf16 model every LibTorch op rounds its fp32 result to bf16, and so do these, at
// the same points. Only reductions (RMSNorm's mean of squares) and exp (SiLU) may differ in the last fp32 bit,
// which can move a bf16 result by one unit in the last place.
// The LibTorch expressions stay the reference (RMSNormImpl, apply_rope, LlamaMLPImpl), used for more rows, other
// dtypes or devices, and when set_cpu_fast_kernels(false).
#pragma once

#include <torch/torch.h>

namespace llama_mm {

constexpr int64_t kDecodeOpsMaxRows = 8;

// Whether the fused ops take x: a contiguous CPU bf16 or fp32 tensor of at most kDecodeOpsMaxRows rows (the
// product of its leading dimensions), with the fast kernels on (cpu_fast_kernels()) and no autograd recording
// (the fused ops have no backward: training takes the LibTorch expressions).
bool decode_ops_apply(const torch::Tensor& x);

// weight · (x·rsqrt(mean(x²) + eps)) over the last dim, x's dtype (weight: [D], the same dtype).
torch::Tensor rms_norm_rows(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// x [B, T, H, Dh]; cos/sin [T, Dh] or [B, T, Dh] in x's dtype, contiguous last dim: x·cos + rotate_half(x)·sin.
torch::Tensor rope_rows(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
// silu(gate) · up, both contiguous, the same shape and dtype.
torch::Tensor silu_mul_rows(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace llama_mm
