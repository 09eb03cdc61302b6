// llm/q8_linear.cpp: see q8_linear.h.
#include "llm/q8_linear.h"

#include "llm/cpu_linear.h"
#include "llm/kernel_pool.h"
#include "llm/simd.h"

#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <atomic>
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

// One group of 32 inputs -> int8 (round to nearest even, symmetric); returns the scale.
float quantize_group_scalar(const float* src, int8_t* q) {
  float amax = 0;
  for (int64_t i = 0; i < kQ8Group; ++i) amax = std::max(amax, std::fabs(src[i]));
  const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < kQ8Group; ++i) q[i] = static_cast<int8_t>(std::nearbyint(src[i] * inv));
  return d;
}

// The same with AVX2: cvtps rounds to nearest even as nearbyint does in the default rounding mode, so both give
// the same bytes.
__attribute__((target("avx2,fma"))) float quantize_group_avx2(const float* src, int8_t* q) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 v[4];
  for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(src + 8 * i);
  __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                            _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float d = _mm_cvtss_f32(m4) / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
  const __m256 scale = _mm256_set1_ps(inv);
  __m256i i32[4];
  for (int i = 0; i < 4; ++i) i32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], scale));
  // packs work within 128-bit lanes: the bytes come out in the order 0 2 4 6 1 3 5 7 (groups of 4); undo it.
  const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]), i16b = _mm256_packs_epi32(i32[2], i32[3]);
  const __m256i i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16a, i16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), i8);
  return d;
}

// x [M, K] fp32 -> int8 [M, K] and one fp32 scale per group of 32.
void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* xq, float* xs, bool avx2) {
  const int64_t G = K / kQ8Group;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t off = m * K + g * kQ8Group;
      xs[m * G + g] = avx2 ? quantize_group_avx2(x + off, xq + off)
                           : quantize_group_scalar(x + off, xq + off);
    }
}

float half_to_float(uint16_t h) { return c10::detail::fp16_ieee_to_fp32_value(h); }

// Where group g of row n starts in the packed layout of an [N, K] weight (see q8_linear.h).
int64_t q8_group_offset(int64_t n, int64_t g, int64_t N, int64_t K) {
  if (n >= N / kQ8TileRows * kQ8TileRows) return n * K + g * kQ8Group;
  return (n - n % kQ8TileRows) * K + (g * kQ8TileRows + n % kQ8TileRows) * kQ8Group;
}

// Plain row-major int8 [N, K] -> the packed layout: rows in tiles of kQ8TileRows, each tile stored group by group
// ([G][kQ8TileRows][32]); the last N % kQ8TileRows rows stay plain.
torch::Tensor pack_tiles(const torch::Tensor& plain) {
  const int64_t N = plain.size(0), K = plain.size(1), G = K / kQ8Group, tiled = N / kQ8TileRows * kQ8TileRows;
  auto packed = torch::empty_like(plain);
  packed.narrow(0, 0, tiled)
      .view({tiled / kQ8TileRows, G, kQ8TileRows, kQ8Group})
      .copy_(plain.narrow(0, 0, tiled).view({tiled / kQ8TileRows, kQ8TileRows, G, kQ8Group}).permute({0, 2, 1, 3}));
  packed.narrow(0, tiled, N - tiled).copy_(plain.narrow(0, tiled, N - tiled));
  return packed;
}

// One register tile: R weight rows against one input row, whole K. Group g of the tile's row r is 32 bytes at
// q + g·gstride + r·32 (the packed layout: gstride = R·32, one sequential stream; a lone plain row: gstride = 32).
// Per group and row: the input's signs move onto the weight (vpsignb) so maddubs can multiply |x| (u8, made once
// per group for the tile's rows) by ±w (s8) into 16-bit pairs (|sum| <= 2·127·127, no saturation), madd sums them into 8 int32
// lanes, and one FMA adds them scaled by d_w·d_x. The scale products are made 8 groups at a time (one fp16 ->
// fp32 conversion and multiply per 8 groups) into a small table the FMA broadcasts from: 5 vector operations per
// 32 weights, against 8-9 when the signs move the other way (|w| per row) and each scale is converted on its own.
template <int R>
__attribute__((target("avx2,fma,f16c"))) inline void q8_tile_avx2(const int8_t* xq, const float* xs,
                                                                   int64_t G, const int8_t* q,
                                                                   int64_t gstride, const uint16_t* s, float* y) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  alignas(32) float scale[R][8];
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    const int gn = static_cast<int>(std::min<int64_t>(8, G - g0));
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      if (gn == 8) {
        const __m256 wd = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + r * G + g0)));
        _mm256_store_ps(scale[r], _mm256_mul_ps(wd, _mm256_loadu_ps(xs + g0)));
      } else {
        for (int j = 0; j < gn; ++j) scale[r][j] = _cvtsh_ss(s[r * G + g0 + j]) * xs[g0 + j];
      }
    }
    for (int j = 0; j < gn; ++j) {
      const int64_t g = g0 + j;
      const int8_t* qg = q + g * gstride;
      _Pragma("GCC unroll 4") for (int64_t b = 0; b < R * kQ8Group; b += 64) prefetch_ahead(qg + b);
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + g * kQ8Group));
      const __m256i xav = _mm256_sign_epi8(xv, xv);  // |x|, once per group for the tile's rows
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qg + r * kQ8Group));
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(xav, _mm256_sign_epi8(wv, xv)), ones);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(&scale[r][j]), acc[r]);
      }
    }
  }
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) y[r] = hsum_avx(acc[r]);
}

// Weight rows [n0, n1) (n0 a multiple of kQ8TileRows) against every input row: whole tiles, then the plain tail.
// Each input row passes over a tile's kQ8TileRows·K bytes, which stay in L1/L2 for the next input row.
__attribute__((target("avx2,fma,f16c"))) void q8_kernel_avx2(const int8_t* xq, const float* xs,
                                                              int64_t M, int64_t K, const int8_t* q, const uint16_t* s,
                                                              int64_t n0, int64_t n1, float* y, int64_t N) {
  const int64_t G = K / kQ8Group, tiled = N / kQ8TileRows * kQ8TileRows;
  int64_t n = n0;
  for (; n + kQ8TileRows <= std::min(n1, tiled); n += kQ8TileRows)
    for (int64_t m = 0; m < M; ++m)
      q8_tile_avx2<kQ8TileRows>(xq + m * K, xs + m * G, G, q + n * K, kQ8TileRows * kQ8Group, s + n * G,
                                y + m * N + n);
  for (; n < n1; ++n)
    for (int64_t m = 0; m < M; ++m)
      q8_tile_avx2<1>(xq + m * K, xs + m * G, G, q + n * K, kQ8Group, s + n * G, y + m * N + n);
}

// The same arithmetic in plain C++ (integer group dots, one fp32 multiply-add per group), for CPUs without AVX2.
void q8_kernel_scalar(const int8_t* xq, const float* xs, int64_t M, int64_t K,
                      const int8_t* q, const uint16_t* s, int64_t n0, int64_t n1, float* y, int64_t N) {
  const int64_t G = K / kQ8Group;
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t m = 0; m < M; ++m) {
      float total = 0;
      for (int64_t g = 0; g < G; ++g) {
        const int8_t* qg = q + q8_group_offset(n, g, N, K);
        int32_t dot = 0;
        for (int64_t i = 0; i < kQ8Group; ++i) dot += int32_t(qg[i]) * int32_t(xq[m * K + g * kQ8Group + i]);
        total += static_cast<float>(dot) * (half_to_float(s[n * G + g]) * xs[m * G + g]);
      }
      y[m * N + n] = total;
    }
}

std::atomic<bool> g_avx2_allowed{true};

bool has_avx2() {
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok && g_avx2_allowed;
}

}  // namespace

void set_q8_avx2(bool allowed) { g_avx2_allowed = allowed; }

Q8Weight quantize_q8(const torch::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.size(1) % kQ8Group == 0, "quantize_q8: weight ", w.sizes(),
              " is not 2-D with in_features a multiple of ", kQ8Group);
  torch::NoGradGuard no_grad;
  const int64_t N = w.size(0), K = w.size(1), G = K / kQ8Group;
  Q8Weight out{torch::empty({N, K}, torch::kInt8), torch::empty({N, G}, torch::kFloat16)};
  // A few hundred rows (whole tiles) at a time, so an 8B layer never needs a full fp32 copy.
  const int64_t block = std::max<int64_t>(1, (int64_t(1) << 20) / K) * kQ8TileRows;
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    const int64_t rows = std::min(block, N - n0);
    auto wf = w.narrow(0, n0, rows).to(torch::kCPU, torch::kFloat32).reshape({rows, G, kQ8Group});
    // The stored (fp16) scale is the one the values are divided by, so dequantization is exact d·q.
    auto d = (wf.abs().amax(-1, true) / 127.0).to(torch::kFloat16);
    auto df = d.to(torch::kFloat32);
    auto qf = torch::where(df > 0, wf / df, torch::zeros_like(wf)).round().clamp(-127, 127);
    out.q.narrow(0, n0, rows).copy_(pack_tiles(qf.reshape({rows, K}).to(torch::kInt8)));
    out.scales.narrow(0, n0, rows).copy_(d.reshape({rows, G}));
  }
  return out;
}

torch::Tensor dequantize_q8(const torch::Tensor& q, const torch::Tensor& scales) {
  check_q8(q, scales);
  // One pass from the tiled int8 to plain-order fp32 (prefill dequantizes a block of rows per GEMM with it).
  const int64_t N = q.size(0), K = q.size(1), G = K / kQ8Group;
  auto out = torch::empty({N, K}, torch::kFloat32);
  const int8_t* qp = q.data_ptr<int8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  float* op = out.data_ptr<float>();
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g = 0; g < G; ++g) {
        const int8_t* src = qp + q8_group_offset(n, g, N, K);
        const float d = half_to_float(sp[n * G + g]);
        float* dst = op + n * K + g * kQ8Group;
        for (int64_t i = 0; i < kQ8Group; ++i) dst[i] = d * static_cast<float>(src[i]);  // vectorises
      }
  });
  return out;
}

static_assert(kQ8KernelMaxRows <= kSmallMMaxRows, "the small-M frame must take every row count the kernel does");

namespace {
// y fp32 [M, N] = x fp32 [M, K] against the q8 weight, on the kernel pool.
void q8_small_m(const float* x, int64_t M, const torch::Tensor& q, const torch::Tensor& scales, float* y) {
  const int64_t N = q.size(0), K = q.size(1);
  thread_local std::vector<int8_t> xq;  // the quantized input, reused across calls
  thread_local std::vector<float> xs;
  xq.resize(M * K);
  xs.resize(M * K / kQ8Group);
  int8_t* xqp = xq.data();
  float* xsp = xs.data();
  const bool avx2 = has_avx2();
  quantize_rows(x, M, K, xqp, xsp, avx2);
  const int8_t* qp = q.data_ptr<int8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  auto kernel = avx2 ? q8_kernel_avx2 : q8_kernel_scalar;
  kernel_parallel_for(N, 48, [&](int64_t n0, int64_t n1) { kernel(xqp, xsp, M, K, qp, sp, n0, n1, y, N); });
}
}  // namespace

void linear_q8_small_m_out(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales, torch::Tensor& y) {
  check_q8(q, scales);
  const int64_t N = q.size(0), K = q.size(1), M = x.size(0);
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && x.dim() == 2 && x.is_contiguous() && x.size(1) == K &&
                  M <= kQ8KernelMaxRows,
              "linear_q8_small_m_out: x must be contiguous fp32 [M <= ", kQ8KernelMaxRows, ", ", K, "], got ", x.sizes());
  TORCH_CHECK(y.scalar_type() == torch::kFloat32 && y.is_contiguous() && y.sizes() == torch::IntArrayRef({M, N}),
              "linear_q8_small_m_out: y must be contiguous fp32 [", M, ", ", N, "]");
  q8_small_m(x.data_ptr<float>(), M, q, scales, y.data_ptr<float>());
}

torch::Tensor linear_q8_cpu(const torch::Tensor& x, const torch::Tensor& q, const torch::Tensor& scales,
                            const torch::Tensor& b) {
  check_q8(q, scales);
  const int64_t K = q.size(1), N = q.size(0);
  TORCH_CHECK(x.size(-1) == K, "linear_q8_cpu: input has ", x.size(-1), " features, weight expects ", K);
  if (x.numel() <= kQ8KernelMaxRows * K)
    return small_m_linear(x, N, b, [&](const float* xp, int64_t M, float* yp) { q8_small_m(xp, M, q, scales, yp); });
  // Prefill: dequantize a block of rows (whole tiles) at a time (~8 MB of fp32) and multiply with the BLAS GEMM.
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  auto x2 = x.reshape({-1, K}).to(torch::kFloat32).contiguous();
  const int64_t M = x2.size(0);
  auto y = torch::empty({M, N}, torch::kFloat32);
  const int64_t block = std::max<int64_t>(4, (int64_t(1) << 19) / K) * kQ8TileRows;
  for (int64_t n0 = 0; n0 < N; n0 += block) {
    const int64_t rows = std::min(block, N - n0);
    y.narrow(1, n0, rows).copy_(torch::mm(x2, dequantize_q8(q.narrow(0, n0, rows), scales.narrow(0, n0, rows)).t()));
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
