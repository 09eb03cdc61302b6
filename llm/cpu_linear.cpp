// llm/cpu_linear.cpp: see cpu_linear.h.
#include "llm/cpu_linear.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cstring>
#include <vector>

namespace llama_mm {

namespace {

// bf16 is the high half of an fp32: widening is a 16-bit shift.
inline float bf16_to_float(uint16_t v) {
  uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// y[m, n] = Σ_k x[m, k]·w[n, k] for rows n in [n0, n1); x fp32 [M, K] with M <= kBf16KernelMaxRows.
__attribute__((target("avx2,fma"))) void rows_kernel_avx2(const float* x, int64_t M, int64_t K, const uint16_t* w,
                                                          int64_t n0, int64_t n1, float* y, int64_t N) {
  const int64_t K8 = K & ~int64_t(7);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* wr = w + n * K;
    __m256 acc[kBf16KernelMaxRows];
    for (int64_t m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8) {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + k));
      __m256 wf = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      for (int64_t m = 0; m < M; ++m) acc[m] = _mm256_fmadd_ps(wf, _mm256_loadu_ps(x + m * K + k), acc[m]);
    }
    for (int64_t m = 0; m < M; ++m) {
      // Horizontal sum of the 8 lanes, then the scalar tail.
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[m]), _mm256_extractf128_ps(acc[m], 1));
      s = _mm_hadd_ps(s, s);
      s = _mm_hadd_ps(s, s);
      float total = _mm_cvtss_f32(s);
      for (int64_t k = K8; k < K; ++k) total += x[m * K + k] * bf16_to_float(wr[k]);
      y[m * N + n] = total;
    }
  }
}

void rows_kernel_scalar(const float* x, int64_t M, int64_t K, const uint16_t* w, int64_t n0, int64_t n1, float* y,
                        int64_t N) {
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t m = 0; m < M; ++m) {
      float total = 0;
      for (int64_t k = 0; k < K; ++k) total += x[m * K + k] * bf16_to_float(w[n * K + k]);
      y[m * N + n] = total;
    }
}

bool has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// LibTorch routes bf16 GEMM to oneDNN on CPUs with AVX-512 BW/VL/DQ (mkldnn_bf16_device_check); there its
// native bf16 path beats widening. Elsewhere (AVX2-only CPUs such as Zen 3) it falls back to a scalar loop.
bool onednn_bf16_gemm_available() {
  static const bool ok = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512dq") && at::globalContext().userEnabledMkldnn();
  return ok;
}

// Widens w (bf16, n elements) into a per-thread scratch fp32 tensor that is reused across calls, so
// prefill does not page-fault a fresh buffer for every layer.
torch::Tensor widen_to_scratch(const torch::Tensor& w) {
  thread_local torch::Tensor scratch;
  const int64_t n = w.numel();
  if (!scratch.defined() || scratch.numel() < n) scratch = torch::empty({n}, torch::kFloat32);
  const uint16_t* src = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
  uint32_t* dst = reinterpret_cast<uint32_t*>(scratch.data_ptr<float>());
  at::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dst[i] = static_cast<uint32_t>(src[i]) << 16;  // vectorises
  });
  return scratch.narrow(0, 0, n).view(w.sizes());
}

}  // namespace

torch::Tensor linear_bf16_cpu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  TORCH_CHECK(w.scalar_type() == torch::kBFloat16 && w.dim() == 2 && w.is_contiguous() && w.device().is_cpu(),
              "linear_bf16_cpu: weight must be a contiguous 2-D CPU bf16 tensor, got ", w.sizes(), " ", w.scalar_type());
  const int64_t K = w.size(1), N = w.size(0);
  TORCH_CHECK(x.size(-1) == K, "linear_bf16_cpu: input has ", x.size(-1), " features, weight expects ", K);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  auto x2 = x.reshape({-1, K}).to(torch::kFloat32).contiguous();  // [M, K]
  const int64_t M = x2.size(0);

  torch::Tensor y;  // [M, N] fp32
  if (M <= kBf16KernelMaxRows) {
    y = torch::empty({M, N}, torch::kFloat32);
    const float* xp = x2.data_ptr<float>();
    const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
    float* yp = y.data_ptr<float>();
    auto kernel = has_avx2_fma() ? rows_kernel_avx2 : rows_kernel_scalar;
    at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) { kernel(xp, M, K, wp, n0, n1, yp, N); });
  } else if (onednn_bf16_gemm_available()) {
    y = torch::mm(x2.to(torch::kBFloat16), w.t()).to(torch::kFloat32);
  } else {
    y = torch::mm(x2, widen_to_scratch(w).t());
  }
  if (b.defined()) y.add_(b.to(torch::kFloat32));
  return y.view(out_sizes).to(x.scalar_type());
}

torch::Tensor linear_bf16_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto y = torch::nn::functional::linear(x.to(torch::kFloat32), w.to(torch::kFloat32),
                                         b.defined() ? b.to(torch::kFloat32) : torch::Tensor());
  return y.to(x.scalar_type());
}

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const bool cpu_bf16 = w.scalar_type() == torch::kBFloat16 && w.device().is_cpu();
  return cpu_bf16 ? linear_bf16_cpu(x, w, b) : torch::nn::functional::linear(x, w, b);
}

}  // namespace llama_mm
