// llm/q8_linear.cpp: see q8_linear.h.
#include "llm/q8_linear.h"

#include "llm/kernel_pool.h"
#include "llm/simd.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace llama_mm {

namespace {

void check_q8(const torch::Tensor& q, const torch::Tensor& scales) {
  TORCH_CHECK(q.scalar_type() == torch::kInt8 && q.dim() == 2 && q.is_contiguous() && q.device().is_cpu(),
              "q8: weight must be a contiguous 2-D CPU int8 tensor, got ", q.sizes(), " ", q.scalar_type());
  TORCH_CHECK(q.size(1) % kQ8Group == 0, "q8: in_features ", q.size(1), " is not a multiple of ", kQ8Group);
  TORCH_CHECK(scales.scalar_type() == torch::kFloat16 && scales.is_contiguous() &&
                  scales.sizes() == torch::IntArrayRef({q.size(0), q.size(1) / kQ8Group}),
              "q8: scales must be contiguous fp16 [", q.size(0), ", ", q.size(1) / kQ8Group, "], got ", scales.sizes(),
              " ", scales.scalar_type());
}

// x [M, K] fp32 -> int8 [M, K] and one fp32 scale per group of 32 (round to nearest, symmetric).
void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* xq, float* xs) {
  const int64_t G = K / kQ8Group;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < G; ++g) {
      const float* src = x + m * K + g * kQ8Group;
      float amax = 0;
      for (int64_t i = 0; i < kQ8Group; ++i) amax = std::max(amax, std::fabs(src[i]));
      const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
      xs[m * G + g] = d;
      for (int64_t i = 0; i < kQ8Group; ++i) xq[m * K + g * kQ8Group + i] = static_cast<int8_t>(std::nearbyint(src[i] * inv));
    }
}

float half_to_float(uint16_t h) { return c10::detail::fp16_ieee_to_fp32_value(h); }

// One register tile: R weight rows x MB input rows, whole K. Per group and pair: the signs of w move onto x so
// maddubs can multiply |w| (u8) by ±x (s8) into 16-bit pairs (|sum| <= 2·127·127, no saturation), madd sums
// them into 8 int32 lanes, and one FMA adds them scaled by d_w·d_x.
template <int R, int MB>
__attribute__((target("avx2,fma,f16c"))) inline void q8_tile_avx2(const int8_t* xq, const float* xs, int64_t K,
                                                                   const int8_t* q, const uint16_t* s, float* y,
                                                                   int64_t N) {
  const int64_t G = K / kQ8Group;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][MB];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
      _Pragma("GCC unroll 8") for (int m = 0; m < MB; ++m) acc[r][m] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    if ((g & 1) == 0)  // a 64-byte line holds 2 groups
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) prefetch_ahead(q + r * K + g * kQ8Group);
    __m256i wv[R], wabs[R];
    __m256 wd[R];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + r * K + g * kQ8Group));
      wabs[r] = _mm256_sign_epi8(wv[r], wv[r]);
      wd[r] = _mm256_set1_ps(_cvtsh_ss(s[r * G + g]));
    }
    _Pragma("GCC unroll 8") for (int m = 0; m < MB; ++m) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + m * K + g * kQ8Group));
      const __m256 xd = _mm256_broadcast_ss(xs + m * G + g);
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(xv, wv[r])), ones);
        acc[r][m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(wd[r], xd), acc[r][m]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MB; ++m) y[m * N + r] = hsum_avx(acc[r][m]);
}

template <int R>
__attribute__((target("avx2,fma,f16c"))) void q8_rows_avx2(const int8_t* xq, const float* xs, int64_t M, int64_t K,
                                                            const int8_t* q, const uint16_t* s, int64_t n, float* y,
                                                            int64_t N) {
  const int64_t G = K / kQ8Group;
  const int8_t* qn = q + n * K;
  const uint16_t* sn = s + n * G;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) q8_tile_avx2<R, 4>(xq + m * K, xs + m * G, K, qn, sn, y + m * N + n, N);
  switch (M - m) {
    case 3: q8_tile_avx2<R, 3>(xq + m * K, xs + m * G, K, qn, sn, y + m * N + n, N); break;
    case 2: q8_tile_avx2<R, 2>(xq + m * K, xs + m * G, K, qn, sn, y + m * N + n, N); break;
    case 1: q8_tile_avx2<R, 1>(xq + m * K, xs + m * G, K, qn, sn, y + m * N + n, N); break;
    default: break;
  }
}

// Weight rows [n0, n1); the same tiling as the bf16 kernel (4 rows for M <= 2, 3 rows x 4 inputs beyond).
__attribute__((target("avx2,fma,f16c"))) void q8_kernel_avx2(const int8_t* xq, const float* xs, int64_t M, int64_t K,
                                                              const int8_t* q, const uint16_t* s, int64_t n0,
                                                              int64_t n1, float* y, int64_t N) {
  int64_t n = n0;
  if (M <= 2) {
    for (; n + 4 <= n1; n += 4) q8_rows_avx2<4>(xq, xs, M, K, q, s, n, y, N);
  } else {
    for (; n + 3 <= n1; n += 3) q8_rows_avx2<3>(xq, xs, M, K, q, s, n, y, N);
  }
  for (; n < n1; ++n) q8_rows_avx2<1>(xq, xs, M, K, q, s, n, y, N);
}

// The same arithmetic in plain C++ (integer group dots, one fp32 multiply-add per group), for CPUs without AVX2.
void q8_kernel_scalar(const int8_t* xq, const float* xs, int64_t M, int64_t K, const int8_t* q, const uint16_t* s,
                      int64_t n0, int64_t n1, float* y, int64_t N) {
  const int64_t G = K / kQ8Group;
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t m = 0; m < M; ++m) {
      float total = 0;
      for (int64_t g = 0; g < G; ++g) {
        int32_t dot = 0;
        for (int64_t i = 0; i < kQ8Group; ++i)
          dot += int32_t(q[n * K + g * kQ8Group + i]) * int32_t(xq[m * K + g * kQ8Group + i]);
        total += static_cast<float>(dot) * (half_to_float(s[n * G + g]) * xs[m * G + g]);
      }
      y[m * N + n] = total;
    }
}

bool has_avx2() {
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok;
}

}  // namespace

Q8Weight quantize_q8(const torch::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.size(1) % kQ8Group == 0, "quantize_q8: weight ", w.sizes(),
              " is not 2-D with in_features a multiple of ", kQ8Group);
  torch::NoGradGuard no_grad;
  const int64_t N = w.size(0), K = w.size(1), G = K / kQ8Group;
  Q8Weight out{torch::empty({N, K}, torch::kInt8), torch::empty({N, G}, torch::kFloat16)};
  // A few hundred rows at a time, so an 8B layer never needs a full fp32 copy.
  const int64_t block = std::max<int64_t>(1, (int64_t(4) << 20) / K);
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    const int64_t rows = std::min(block, N - n0);
    auto wf = w.narrow(0, n0, rows).to(torch::kCPU, torch::kFloat32).reshape({rows, G, kQ8Group});
    // The stored (fp16) scale is the one the values are divided by, so dequantization is exact d·q.
    auto d = (wf.abs().amax(-1, true) / 127.0).to(torch::kFloat16);
    auto df = d.to(torch::kFloat32);
    auto qf = torch::where(df > 0, wf / df, torch::zeros_like(wf)).round().clamp(-127, 127);
    out.q.narrow(0, n0, rows).copy_(qf.reshape({rows, K}).to(torch::kInt8));
    out.scales.narrow(0, n0, rows).copy_(d.reshape({rows, G}));
  }
  return out;
}

torch::Tensor dequantize_q8(const torch::Tensor& q, const torch::Tensor& scales) {
  check_q8(q, scales);
  const int64_t N = q.size(0), K = q.size(1);
  return (q.to(torch::kFloat32).view({N, K / kQ8Group, kQ8Group}) * scales.to(torch::kFloat32).unsqueeze(-1))
      .view({N, K});
}

void linear_q8_small_m_out(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales, torch::Tensor& y) {
  check_q8(q, scales);
  const int64_t N = q.size(0), K = q.size(1), M = x.size(0);
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && x.dim() == 2 && x.is_contiguous() && x.size(1) == K &&
                  M <= kQ8KernelMaxRows,
              "linear_q8_small_m_out: x must be contiguous fp32 [M <= ", kQ8KernelMaxRows, ", ", K, "], got ", x.sizes());
  TORCH_CHECK(y.scalar_type() == torch::kFloat32 && y.is_contiguous() && y.sizes() == torch::IntArrayRef({M, N}),
              "linear_q8_small_m_out: y must be contiguous fp32 [", M, ", ", N, "]");
  thread_local std::vector<int8_t> xq;  // the quantized input, reused across calls
  thread_local std::vector<float> xs;
  xq.resize(M * K);
  xs.resize(M * K / kQ8Group);
  int8_t* xqp = xq.data();
  float* xsp = xs.data();
  quantize_rows(x.data_ptr<float>(), M, K, xqp, xsp);
  const int8_t* qp = q.data_ptr<int8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  float* yp = y.data_ptr<float>();
  auto kernel = has_avx2() ? q8_kernel_avx2 : q8_kernel_scalar;
  kernel_parallel_for(N, 48, [&](int64_t n0, int64_t n1) { kernel(xqp, xsp, M, K, qp, sp, n0, n1, yp, N); });
}

torch::Tensor linear_q8_cpu(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales,
                            const torch::Tensor& b) {
  check_q8(q, scales);
  const int64_t K = q.size(1), N = q.size(0);
  TORCH_CHECK(x.size(-1) == K, "linear_q8_cpu: input has ", x.size(-1), " features, weight expects ", K);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  auto x2 = x.reshape({-1, K}).to(torch::kFloat32).contiguous();
  const int64_t M = x2.size(0);
  torch::Tensor y;
  if (M <= kQ8KernelMaxRows) {
    y = torch::empty({M, N}, torch::kFloat32);
    linear_q8_small_m_out(x2, q, scales, y);
  } else {
    // Prefill: dequantize a block of rows at a time (at most ~8 MB of fp32) and multiply with the BLAS GEMM.
    y = torch::empty({M, N}, torch::kFloat32);
    const int64_t block = std::max<int64_t>(16, (int64_t(2) << 20) / K);
    for (int64_t n0 = 0; n0 < N; n0 += block) {
      const int64_t rows = std::min(block, N - n0);
      y.narrow(1, n0, rows).copy_(torch::mm(x2, dequantize_q8(q.narrow(0, n0, rows), scales.narrow(0, n0, rows)).t()));
    }
  }
  if (b.defined()) y.add_(b.to(torch::kFloat32));
  return y.view(out_sizes).to(x.scalar_type());
}

torch::Tensor linear_q8_reference(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales,
                                  const torch::Tensor& b) {
  auto y = torch::nn::functional::linear(x.to(torch::kFloat32), dequantize_q8(q, scales),
                                         b.defined() ? b.to(torch::kFloat32) : torch::Tensor());
  return y.to(x.scalar_type());
}

}  // namespace llama_mm
