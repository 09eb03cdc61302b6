// llm/decode_ops.cpp: see decode_ops.h.
// Built without FMA (no -mfma), so a·b + c·d rounds each product as LibTorch's separate mul and add ops do.
#include "llm/decode_ops.h"

#include "llm/cpu_linear.h"

#include <immintrin.h>

#include <cmath>

namespace llama_mm {

namespace {

// Element access in fp32 and the rounding a LibTorch op applies when it stores its result in T.
template <typename T>
inline float load(T v) {
  return static_cast<float>(v);
}
template <typename T>
inline T store(float v) {
  return static_cast<T>(v);  // c10::BFloat16(float) rounds to nearest even, as LibTorch's casts do
}

template <typename T>
void rms_norm_impl(const T* x, const T* w, T* out, int64_t rows, int64_t D, float eps) {
  for (int64_t r = 0; r < rows; ++r, x += D, out += D) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 partial sums, as a vectorised reduction keeps
    for (int64_t i = 0; i < D; ++i) lanes[i & 7] += load(x[i]) * load(x[i]);
    float sum = 0;
    for (float s : lanes) sum += s;
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(D) + eps);
    // (x·rsqrt(var + eps)).to(T), then weight · that in T.
    for (int64_t i = 0; i < D; ++i) out[i] = store<T>(load(w[i]) * load(store<T>(load(x[i]) * inv)));
  }
}

template <typename T>
void rope_impl(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, torch::Tensor& out) {
  const int64_t B = x.size(0), T_ = x.size(1), H = x.size(2), Dh = x.size(3), half = Dh / 2;
  const bool per_row = cos.dim() == 3;
  const int64_t cb = per_row ? cos.stride(0) : 0, ct = cos.stride(-2);
  const int64_t sb = per_row ? sin.stride(0) : 0, st = sin.stride(-2);
  const T* xp = x.data_ptr<T>();
  T* op = out.data_ptr<T>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t) {
      const T* c = cos.data_ptr<T>() + b * cb + t * ct;
      const T* s = sin.data_ptr<T>() + b * sb + t * st;
      for (int64_t h = 0; h < H; ++h, xp += Dh, op += Dh)
        for (int64_t j = 0; j < Dh; ++j) {
          // rotate_half: (-x2, x1); negation is exact.
          const float rot = j < half ? -load(xp[j + half]) : load(xp[j - half]);
          op[j] = store<T>(load(store<T>(load(xp[j]) * load(c[j]))) + load(store<T>(rot * load(s[j]))));
        }
    }
}

// silu(a) = a / (1 + exp(-a)) for 8 lanes. exp as Cephes' expf: 2^n · p(r) with x = n·ln2 + r, |r| <= ln2/2, a
// degree-7 polynomial (within 2 fp32 units in the last place, as LibTorch's vectorised Sleef exp is within 1).
// The scalar std::exp loop took 1.6 % of a q8 1B decode step.
__attribute__((target("avx2,fma"))) inline __m256 silu_avx2(__m256 a) {
  const __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), _mm256_set1_ps(-87.3f)),
                                 _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 in two parts, the first exact
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 ex = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  return _mm256_div_ps(a, _mm256_add_ps(_mm256_set1_ps(1.0f), ex));
}

// 8 elements of T to fp32 and back, rounding as a LibTorch cast does.
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const at::BFloat16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
__attribute__((target("avx2,fma"))) inline void store8(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
__attribute__((target("avx2,fma"))) inline void store8(at::BFloat16* p, __m256 v) {
  alignas(32) float f[8];
  _mm256_store_ps(f, v);
  for (int i = 0; i < 8; ++i) p[i] = at::BFloat16(f[i]);
}
__attribute__((target("avx2,fma"))) inline __m256 round8(const float*, __m256 v) { return v; }
__attribute__((target("avx2,fma"))) inline __m256 round8(const at::BFloat16*, __m256 v) {
  // Round to nearest even at bit 16 (finite values; silu of a finite bf16 is finite), then clear the low half.
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  return _mm256_castsi256_ps(_mm256_and_si256(rounded, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}

// silu(gate) stored in T, then · up, stored in T.
template <typename T>
void silu_mul_scalar(const T* g, const T* u, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float a = load(g[i]);
    out[i] = store<T>(load(store<T>(a / (1.0f + std::exp(-a)))) * load(u[i]));
  }
}

template <typename T>
__attribute__((target("avx2,fma"))) void silu_mul_avx2(const T* g, const T* u, T* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 s = round8(g, silu_avx2(load8(g + i)));  // silu(gate) stored in T, then · up
    store8(out + i, _mm256_mul_ps(s, load8(u + i)));
  }
  silu_mul_scalar(g + i, u + i, out + i, n - i);  // the tail
}

template <typename T>
void silu_mul_impl(const T* g, const T* u, T* out, int64_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2)
    silu_mul_avx2(g, u, out, n);
  else
    silu_mul_scalar(g, u, out, n);
}

}  // namespace

bool decode_ops_apply(const torch::Tensor& x) {
  const auto t = x.scalar_type();
  return x.device().is_cpu() && (t == torch::kBFloat16 || t == torch::kFloat32) && x.dim() >= 1 && x.is_contiguous() &&
         x.numel() <= kDecodeOpsMaxRows * x.size(-1) && cpu_fast_kernels() && !at::GradMode::is_enabled();
}

torch::Tensor rms_norm_rows(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const int64_t D = x.size(-1);
  TORCH_CHECK(x.is_contiguous() && weight.is_contiguous() && weight.numel() == D &&
                  weight.scalar_type() == x.scalar_type(),
              "rms_norm_rows: x must be contiguous and weight [", D, "] of its dtype");
  auto out = torch::empty_like(x);
  const int64_t rows = D ? x.numel() / D : 0;
  if (x.scalar_type() == torch::kBFloat16)
    rms_norm_impl(x.data_ptr<at::BFloat16>(), weight.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), rows, D,
                  static_cast<float>(eps));
  else
    rms_norm_impl(x.data_ptr<float>(), weight.data_ptr<float>(), out.data_ptr<float>(), rows, D,
                  static_cast<float>(eps));
  return out;
}

torch::Tensor rope_rows(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous() && x.size(3) % 2 == 0, "rope_rows: x must be contiguous [B, T, H, Dh]");
  const bool per_row = cos.dim() == 3;
  TORCH_CHECK((cos.dim() == 2 || per_row) && cos.sizes() == sin.sizes() && cos.size(-1) == x.size(3) &&
                  cos.size(-2) == x.size(1) && (!per_row || cos.size(0) == x.size(0)) && cos.stride(-1) == 1 &&
                  sin.stride(-1) == 1 && cos.scalar_type() == x.scalar_type() && sin.scalar_type() == x.scalar_type(),
              "rope_rows: cos/sin must be [T, Dh] or [B, T, Dh] in x's dtype with a contiguous last dim");
  auto out = torch::empty_like(x);
  if (x.scalar_type() == torch::kBFloat16)
    rope_impl<at::BFloat16>(x, cos, sin, out);
  else
    rope_impl<float>(x, cos, sin, out);
  return out;
}

torch::Tensor silu_mul_rows(const torch::Tensor& gate, const torch::Tensor& up) {
  TORCH_CHECK(gate.is_contiguous() && up.is_contiguous() && gate.sizes() == up.sizes() &&
                  gate.scalar_type() == up.scalar_type(),
              "silu_mul_rows: gate and up must be contiguous, of one shape and dtype");
  auto out = torch::empty_like(gate);
  if (gate.scalar_type() == torch::kBFloat16)
    silu_mul_impl(gate.data_ptr<at::BFloat16>(), up.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(),
                  gate.numel());
  else
    silu_mul_impl(gate.data_ptr<float>(), up.data_ptr<float>(), out.data_ptr<float>(), gate.numel());
  return out;
}

}  // namespace llama_mm
