// llm/cpu_linear.cpp: see cpu_linear.h.
#include "llm/cpu_linear.h"

#include "llm/kernel_pool.h"
#include "llm/simd.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <atomic>
#include <cmath>
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

// One register tile: y[m, r] = Σ_k x[m, k]·w[r, k] for R weight rows and MB input rows (x and w rows are K
// apart, y rows N apart). Each 8-wide step widens R weight vectors once and feeds R·MB independent FMA chains;
// R·MB + R + 1 <= 16 keeps every accumulator in a ymm register (the unroll pragmas make sure of it at -O2 too).
template <int R, int MB>
__attribute__((target("avx2,fma"))) inline void bf16_tile_avx2(const float* x, int64_t K, const uint16_t* w, float* y,
                                                                int64_t N) {
  __m256 acc[R][MB];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r)
      _Pragma("GCC unroll 8") for (int m = 0; m < MB; ++m) acc[r][m] = _mm256_setzero_ps();
  const int64_t K8 = K & ~int64_t(7);
  for (int64_t k = 0; k < K8; k += 8) {
    if ((k & 31) == 0)  // a 64-byte line holds 32 weights
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) prefetch_ahead(w + r * K + k);
    __m256 wf[R];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * K + k));
      wf[r] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    _Pragma("GCC unroll 8") for (int m = 0; m < MB; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * K + k);
      _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) acc[r][m] = _mm256_fmadd_ps(wf[r], xv, acc[r][m]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MB; ++m) {
      float total = hsum_avx(acc[r][m]);
      for (int64_t k = K8; k < K; ++k) total += x[m * K + k] * bf16_to_float(w[r * K + k]);
      y[m * N + r] = total;
    }
}

// Weight rows [n, n + R) against every input row, 4 input rows per tile.
template <int R>
__attribute__((target("avx2,fma"))) void bf16_rows_avx2(const float* x, int64_t M, int64_t K, const uint16_t* w,
                                                         int64_t n, float* y, int64_t N) {
  const uint16_t* wn = w + n * K;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) bf16_tile_avx2<R, 4>(x + m * K, K, wn, y + m * N + n, N);
  switch (M - m) {
    case 3: bf16_tile_avx2<R, 3>(x + m * K, K, wn, y + m * N + n, N); break;
    case 2: bf16_tile_avx2<R, 2>(x + m * K, K, wn, y + m * N + n, N); break;
    case 1: bf16_tile_avx2<R, 1>(x + m * K, K, wn, y + m * N + n, N); break;
    default: break;
  }
}

// y[m, n] = Σ_k x[m, k]·w[n, k] for weight rows n in [n0, n1); x fp32 [M, K] with M <= kBf16KernelMaxRows.
// Measured on [8192, 2048] (2-core Zen 3): 4 weight rows per tile for M <= 2 (memory-bound: 4 streams keep
// the loads in flight), 3 rows x 4 inputs beyond (compute-bound: 12 accumulators).
__attribute__((target("avx2,fma"))) void rows_kernel_avx2(const float* x, int64_t M, int64_t K, const uint16_t* w,
                                                          int64_t n0, int64_t n1, float* y, int64_t N) {
  int64_t n = n0;
  if (M <= 2) {
    for (; n + 4 <= n1; n += 4) bf16_rows_avx2<4>(x, M, K, w, n, y, N);
  } else {
    for (; n + 3 <= n1; n += 3) bf16_rows_avx2<3>(x, M, K, w, n, y, N);
  }
  for (; n < n1; ++n) bf16_rows_avx2<1>(x, M, K, w, n, y, N);
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

// y fp32 [M, N] = x fp32 [M, K] · wᵀ on the kernel pool.
void bf16_small_m(const float* x, int64_t M, const torch::Tensor& w, float* y) {
  const int64_t N = w.size(0), K = w.size(1);
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
  auto kernel = has_avx2_fma() ? rows_kernel_avx2 : rows_kernel_scalar;
  // Shares of whole 48-row blocks keep the 3- and 4-row tiles aligned.
  kernel_parallel_for(N, 48, [&](int64_t n0, int64_t n1) { kernel(x, M, K, wp, n0, n1, y, N); });
}

// dst[i] = bf16(src[i] + bias[i]) (bias may be null), rounded to nearest even as LibTorch's vectorised
// .to(bf16) does, NaN as 0xFFFF like it, so the results equal LibTorch's bit for bit. A 1B's output projection
// rounds 128 256 values per token.
inline uint16_t round_to_bf16_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return std::isnan(v) ? uint16_t(0xffff) : static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

// The AVX2 part: whole groups of 8; returns how many elements it wrote.
__attribute__((target("avx2"))) int64_t round_row_avx2(const float* src, const float* bias, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0xffff), nan);
    // 8 x 32-bit -> 8 x 16-bit: pack within each 128-bit half, then bring the halves' low quadwords together.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_castsi256_si128(packed));
  }
  return i;
}

void round_row_to_bf16(const float* src, const float* bias, uint16_t* dst, int64_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  for (int64_t i = avx2 ? round_row_avx2(src, bias, dst, n) : 0; i < n; ++i)
    dst[i] = round_to_bf16_bits(src[i] + (bias ? bias[i] : 0.0f));
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

// LibTorch routes bf16 GEMM to oneDNN on CPUs with AVX-512 BW/VL/DQ (mkldnn_bf16_device_check); there its
// native bf16 path beats widening. Elsewhere (AVX2-only CPUs such as Zen 3) it falls back to a scalar loop.
bool bf16_gemm_uses_onednn() {
  static const bool ok = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512dq") && at::globalContext().userEnabledMkldnn();
  return ok;
}

static_assert(kBf16KernelMaxRows <= kSmallMMaxRows, "the small-M frame must take every row count the kernel does");

torch::Tensor small_m_linear(const torch::Tensor& x, int64_t N, const torch::Tensor& b, const SmallMKernel& kernel) {
  const int64_t K = x.size(-1), M = K ? x.numel() / K : 0;
  TORCH_CHECK(M <= kSmallMMaxRows, "small_m_linear: ", M, " rows, at most ", kSmallMMaxRows);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  const auto dtype = x.scalar_type();
  // Buffers reused across calls (no allocation per token), from LibTorch's allocator for its 64-byte alignment:
  // the bf16 kernel reads x once per tile of weight rows, and unaligned rows measured 9 % slower on 1B decode.
  thread_local torch::Tensor x_buf, y_buf;
  auto reuse = [](torch::Tensor& buf, int64_t n) {
    if (!buf.defined() || buf.numel() < n) buf = torch::empty({n}, torch::kFloat32);
    return buf.data_ptr<float>();
  };
  // The input in fp32: as is, widened here (bf16), or through LibTorch (anything else).
  torch::Tensor x_conv;
  const float* xp;
  if (dtype == torch::kFloat32 && x.is_contiguous()) {
    xp = x.data_ptr<float>();
  } else if (dtype == torch::kBFloat16 && x.is_contiguous()) {
    float* dst = reuse(x_buf, M * K);
    const uint16_t* src = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    for (int64_t i = 0; i < M * K; ++i) dst[i] = bf16_to_float(src[i]);
    xp = dst;
  } else {
    x_conv = x.reshape({M, K}).to(torch::kFloat32).contiguous();
    xp = x_conv.data_ptr<float>();
  }
  // The output: rounded to bf16 once from the fp32 result (bias added first, in fp32), as LibTorch's .to(bf16)
  // did; written directly for fp32; converted by LibTorch for any other dtype.
  const bool to_bf16 = dtype == torch::kBFloat16;
  auto out = torch::empty(out_sizes, x.options().dtype(to_bf16 ? torch::kBFloat16 : torch::kFloat32));
  float* yp = to_bf16 ? reuse(y_buf, M * N) : out.data_ptr<float>();
  kernel(xp, M, yp);
  torch::Tensor bias;
  if (b.defined()) bias = b.to(torch::kFloat32).contiguous();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  if (to_bf16) {
    auto* y16 = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
    for (int64_t m = 0; m < M; ++m) round_row_to_bf16(yp + m * N, bp, y16 + m * N, N);
    return out;
  }
  if (bp)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) yp[m * N + n] += bp[n];
  return dtype == torch::kFloat32 ? out : out.to(dtype);
}

torch::Tensor linear_bf16_cpu(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  TORCH_CHECK(w.scalar_type() == torch::kBFloat16 && w.dim() == 2 && w.is_contiguous() && w.device().is_cpu(),
              "linear_bf16_cpu: weight must be a contiguous 2-D CPU bf16 tensor, got ", w.sizes(), " ", w.scalar_type());
  const int64_t K = w.size(1), N = w.size(0);
  TORCH_CHECK(x.size(-1) == K, "linear_bf16_cpu: input has ", x.size(-1), " features, weight expects ", K);
  if (x.numel() <= kBf16KernelMaxRows * K)
    return small_m_linear(x, N, b, [&](const float* xp, int64_t M, float* yp) { bf16_small_m(xp, M, w, yp); });
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  auto x2 = x.reshape({-1, K}).to(torch::kFloat32).contiguous();  // [M, K]
  torch::Tensor y;  // [M, N] fp32
  if (bf16_gemm_uses_onednn()) {
    y = torch::mm(x2.to(torch::kBFloat16), w.t()).to(torch::kFloat32);
  } else {
    y = torch::mm(x2, widen_to_scratch(w).t());
  }
  if (b.defined()) y.add_(b.to(torch::kFloat32));
  return y.view(out_sizes).to(x.scalar_type());
}

void linear_bf16_small_m_out(const torch::Tensor& x, const torch::Tensor& w, torch::Tensor& y) {
  TORCH_CHECK(w.scalar_type() == torch::kBFloat16 && w.dim() == 2 && w.is_contiguous() && w.device().is_cpu(),
              "linear_bf16_small_m_out: weight must be a contiguous 2-D CPU bf16 tensor");
  const int64_t N = w.size(0), K = w.size(1), M = x.size(0);
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && x.dim() == 2 && x.is_contiguous() && x.size(1) == K &&
                  M <= kBf16KernelMaxRows,
              "linear_bf16_small_m_out: x must be contiguous fp32 [M <= ", kBf16KernelMaxRows, ", ", K, "], got ",
              x.sizes());
  TORCH_CHECK(y.scalar_type() == torch::kFloat32 && y.is_contiguous() && y.sizes() == torch::IntArrayRef({M, N}),
              "linear_bf16_small_m_out: y must be contiguous fp32 [", M, ", ", N, "]");
  bf16_small_m(x.data_ptr<float>(), M, w, y.data_ptr<float>());
}

torch::Tensor linear_bf16_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto y = torch::nn::functional::linear(x.to(torch::kFloat32), w.to(torch::kFloat32),
                                         b.defined() ? b.to(torch::kFloat32) : torch::Tensor());
  return y.to(x.scalar_type());
}

namespace {
std::atomic<bool> g_fast_kernels{true};
}  // namespace

void set_cpu_fast_kernels(bool on) { g_fast_kernels = on; }
bool cpu_fast_kernels() { return g_fast_kernels; }

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const bool cpu_bf16 = w.scalar_type() == torch::kBFloat16 && w.device().is_cpu();
  if (!cpu_bf16) return torch::nn::functional::linear(x, w, b);
  return cpu_fast_kernels() ? linear_bf16_cpu(x, w, b) : linear_bf16_reference(x, w, b);
}

}  // namespace llama_mm
