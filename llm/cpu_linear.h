// llm/cpu_linear.h: y = x·Wᵀ (+ b) for bf16 weights on CPUs without native bf16 arithmetic.
//
// LibTorch 1.13's CPU bf16 GEMM is a scalar loop (about 1 GFLOP/s here), so bf16 weights are computed in fp32:
//  - few rows (decode): an AVX2/FMA kernel widens bf16 weights to fp32 in registers, reading each weight
//    once (memory-bound, 2 bytes per weight);
//  - many rows (prefill): on CPUs with AVX-512 (where LibTorch's bf16 GEMM is oneDNN's) that GEMM, in bf16;
//    elsewhere the weight is widened into a reused fp32 scratch buffer and multiplied with the fp32 BLAS
//    GEMM (OpenBLAS), which is compute-bound.
// linear_bf16_reference() is the naive path the fast one is tested against.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace llama_mm {

// x [..., K] (any float dtype), w [N, K] bf16 contiguous, b [N] or undefined. Returns [..., N] in x's dtype.
torch::Tensor linear_bf16_cpu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
torch::Tensor linear_bf16_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
// The small-M kernel alone: x fp32 [M, K] (M <= kBf16KernelMaxRows) -> y fp32 [M, N], written in place (every
// element; tests poison y first).
void linear_bf16_small_m_out(const torch::Tensor& x, const torch::Tensor& w, torch::Tensor& y);
// x·Wᵀ (+ b) for any weight: CPU bf16 weights go to linear_bf16_cpu (or, with the fast kernels switched off,
// to linear_bf16_reference), everything else to LibTorch.
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
// Process-wide switch (default on) between the fast CPU bf16 path and the reference, so whole generations can be
// compared (tests). Not meant to be flipped while another thread is running the model.
void set_cpu_fast_kernels(bool on);
bool cpu_fast_kernels();
// Rows at or below which linear_bf16_cpu uses the fused widening kernel instead of widen-then-GEMM.
constexpr int64_t kBf16KernelMaxRows = 8;

// The decode kernels' common frame: x [..., K] of at most kSmallMMaxRows rows (any float dtype) ->
// kernel(x fp32 [M, K], M, y fp32 [M, N]) -> [..., N] in x's dtype, + b (or undefined) in fp32 before the one
// rounding. A contiguous bf16 or fp32 x is widened and the result rounded here, in reused buffers: a decode
// step would otherwise spend ~4 LibTorch ops (each ~6 µs of dispatch) around every matrix product.
constexpr int64_t kSmallMMaxRows = 8;
using SmallMKernel = std::function<void(const float* x, int64_t M, float* y)>;
torch::Tensor small_m_linear(const torch::Tensor& x, int64_t N, const torch::Tensor& b, const SmallMKernel& kernel);
// True where linear_bf16_cpu gives more rows than that to LibTorch's oneDNN bf16 GEMM (CPUs with AVX-512): the
// input and the output are then rounded to bf16 (exact for a bf16 model, whose activations are bf16 already).
bool bf16_gemm_uses_onednn();

}  // namespace llama_mm
