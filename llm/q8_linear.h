// llm/q8_linear.h: weight-only int8 ("q8") linear layers for CPU decode.
//
// Format (the Q8_0 idea): a weight [N, K] is cut into groups of kQ8Group consecutive inputs along K; each group
// stores 32 int8 values q and one fp16 scale d = max|w| / 127 (symmetric), so w ≈ d·q and a weight costs
// 1.0625 bytes instead of bf16's 2. Decode is bound by reading the weights, so it runs ~1.6x faster.
// Layout: rows are stored in tiles of kQ8TileRows, each tile group by group ([G][kQ8TileRows][32] int8), so the
// decode kernel, which computes a tile's rows together, reads one sequential stream instead of kQ8TileRows rows
// K bytes apart (measured on a 2-core Zen 3: short rows of separate streams cut one thread's rate from 21.7 GB/s
// at K = 32768 to 12.0 GB/s at K = 2048); the last N % kQ8TileRows rows stay plain. The tensor keeps its [N, K]
// shape; dequantize_q8 gives back the plain order.
// Few rows (M <= kQ8KernelMaxRows): the input is quantized the same way per group (int8 + fp32 scale) and an
// AVX2 kernel multiplies int8 by int8 in 16/32-bit integers (maddubs/madd), one fp32 FMA per group; more rows:
// the weight is widened to fp32 into a reused scratch buffer and multiplied with the BLAS GEMM.
// linear_q8_reference() is the naive path (fp32 input against the dequantized weight) the kernels are tested
// against; the input's quantization adds at most a 1/254 relative error per element (stated in the tests).
#pragma once

#include <torch/torch.h>

namespace llama_mm {

constexpr int64_t kQ8Group = 32;
constexpr int64_t kQ8KernelMaxRows = 8;
constexpr int64_t kQ8TileRows = 4;

struct Q8Weight {
  torch::Tensor q;       // int8 [N, K], in the tiled layout above
  torch::Tensor scales;  // fp16 [N, K / kQ8Group]
};

// w [N, K] (any float dtype, K a multiple of kQ8Group) -> its q8 form.
Q8Weight quantize_q8(const torch::Tensor& w);
torch::Tensor dequantize_q8(const torch::Tensor& q, const torch::Tensor& scales);  // fp32 [N, K]

// x [..., K] (any float dtype) against q8 weights, + b (or undefined). Returns [..., N] in x's dtype.
torch::Tensor linear_q8_cpu(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales,
                            const torch::Tensor& b);
torch::Tensor linear_q8_reference(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales,
                                  const torch::Tensor& b);
// The small-M kernel alone: x fp32 [M, K] (M <= kQ8KernelMaxRows) -> y fp32 [M, N], written in place (every
// element; tests poison y first).
void linear_q8_small_m_out(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales, torch::Tensor& y);

// Tests: false makes the small-M path use its plain C++ fallback (as on a CPU without AVX2); true (the default)
// lets it use AVX2 where the CPU has it.
void set_q8_avx2(bool allowed);

}  // namespace llama_mm
