// llm/decode_attention.cpp: see decode_attention.h.
#include "llm/decode_attention.h"

#include "llm/kernel_pool.h"
#include "llm/simd.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace llama_mm {

namespace {

// A row of n values (bf16 or fp32) widened to fp32.
template <typename T>
inline void widen_row(const T* src, int64_t n, float* dst) {
  if constexpr (std::is_same_v<T, float>) {
    std::memcpy(dst, src, n * sizeof(float));
  } else {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t u = static_cast<uint32_t>(s[i]) << 16;
      std::memcpy(dst + i, &u, sizeof u);
    }
  }
}

// Σ a[i]·b[i] over n fp32 values (8 lanes, then the tail).
__attribute__((target("avx2,fma"))) inline float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float s = hsum_avx(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out[i] += p·v[i] over n fp32 values.
__attribute__((target("avx2,fma"))) inline void axpy_avx2(float p, const float* v, float* out, int64_t n) {
  const __m256 pv = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
  for (; i < n; ++i) out[i] += p * v[i];
}

float dot_plain(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_plain(float p, const float* v, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += p * v[i];
}

bool has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// One (sequence, kv head): its R query heads q [R, Dh] fp32 against its first n of L keys (rows `stride`
// elements apart) -> scores [R, L], divided by √Dh as the reference does; keys n.. score -inf (weight 0).
// row: Dh floats of scratch.
template <typename T>
void group_scores(const float* q, int64_t R, int64_t Dh, const T* k, int64_t n, int64_t L, int64_t stride,
                  float* row, float* scores) {
  auto dot = has_avx2_fma() ? dot_avx2 : dot_plain;
  const float root = static_cast<float>(std::sqrt(static_cast<double>(Dh)));
  for (int64_t l = 0; l < n; ++l) {
    widen_row(k + l * stride, Dh, row);
    for (int64_t r = 0; r < R; ++r) scores[r * L + l] = dot(q + r * Dh, row, Dh) / root;
  }
  for (int64_t r = 0; r < R; ++r) std::fill(scores + r * L + n, scores + (r + 1) * L, -std::numeric_limits<float>::infinity());
}

// out [R, Dh] = probs [R, :n] · the first n values (rows `stride` apart).
template <typename T>
void group_values(const float* probs, int64_t R, int64_t Dh, const T* v, int64_t n, int64_t L, int64_t stride,
                  float* row, float* out) {
  auto axpy = has_avx2_fma() ? axpy_avx2 : axpy_plain;
  std::fill(out, out + R * Dh, 0.0f);
  for (int64_t l = 0; l < n; ++l) {
    widen_row(v + l * stride, Dh, row);
    for (int64_t r = 0; r < R; ++r) axpy(probs[r * L + l], row, out + r * Dh, Dh);
  }
}

// Query head h = g·R + r uses kv head g. Two passes over the (sequence, kv head) pairs on the kernel pool, with
// LibTorch's softmax (vectorised, the reference's own) between them.
template <typename T>
void run(const torch::Tensor& qf, const torch::Tensor& keys, const torch::Tensor& values, const int64_t* lengths,
         torch::Tensor& out) {
  const int64_t B = keys.size(0), G = keys.size(1), L = keys.size(2), Dh = keys.size(3), H = qf.size(1), R = H / G;
  const T* kp = keys.data_ptr<T>();
  const T* vp = values.data_ptr<T>();
  const float* qp = qf.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t kb = keys.stride(0), kg = keys.stride(1), ks = keys.stride(2);
  const int64_t vb = values.stride(0), vg = values.stride(1), vs = values.stride(2);
  auto scores = torch::empty({B, G, R, L}, torch::kFloat32);
  float* sp = scores.data_ptr<float>();
  kernel_parallel_for(B * G, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> row(Dh);
    for (int64_t i = i0; i < i1; ++i)
      group_scores<T>(qp + i * R * Dh, R, Dh, kp + (i / G) * kb + (i % G) * kg, lengths ? lengths[i / G] : L, L, ks,
                      row.data(), sp + i * R * L);
  });
  const auto probs = torch::softmax(scores, -1);
  const float* pp = probs.data_ptr<float>();
  kernel_parallel_for(B * G, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> row(Dh);
    for (int64_t i = i0; i < i1; ++i)
      group_values<T>(pp + i * R * L, R, Dh, vp + (i / G) * vb + (i % G) * vg, lengths ? lengths[i / G] : L, L, vs,
                      row.data(), op + i * R * Dh);
  });
}

}  // namespace

torch::Tensor decode_attention_cpu(const torch::Tensor& q, const torch::Tensor& keys, const torch::Tensor& values,
                                   const torch::Tensor& lengths) {
  TORCH_CHECK(q.dim() == 3 && keys.dim() == 4 && values.sizes() == keys.sizes() && q.size(0) == keys.size(0) &&
                  q.size(2) == keys.size(3) && keys.size(1) > 0 && q.size(1) % keys.size(1) == 0,
              "decode_attention_cpu: q [B, H, Dh] and keys/values [B, G, L, Dh] with H a multiple of G, got ",
              q.sizes(), ", ", keys.sizes(), ", ", values.sizes());
  TORCH_CHECK(keys.device().is_cpu() && values.device().is_cpu() && keys.scalar_type() == values.scalar_type() &&
                  (keys.scalar_type() == torch::kBFloat16 || keys.scalar_type() == torch::kFloat32) &&
                  keys.stride(3) == 1 && values.stride(3) == 1 && keys.size(2) > 0,
              "decode_attention_cpu: keys/values must be CPU bf16 or fp32 with a contiguous last dim, L > 0");
  torch::Tensor lens;
  if (lengths.defined()) {
    lens = lengths.to(torch::kCPU, torch::kInt64).contiguous();
    TORCH_CHECK(lens.dim() == 1 && lens.size(0) == q.size(0), "decode_attention_cpu: lengths must be [B], got ",
                lens.sizes());
    for (int64_t b = 0; b < lens.size(0); ++b)
      TORCH_CHECK(lens.data_ptr<int64_t>()[b] >= 1 && lens.data_ptr<int64_t>()[b] <= keys.size(2),
                  "decode_attention_cpu: lengths must lie in [1, ", keys.size(2), "], got ", lengths);
  }
  const int64_t* lp = lens.defined() ? lens.data_ptr<int64_t>() : nullptr;
  auto qf = q.to(torch::kFloat32).contiguous();
  auto out = torch::empty(q.sizes(), torch::kFloat32);
  if (keys.scalar_type() == torch::kBFloat16) {
    run<at::BFloat16>(qf, keys, values, lp, out);
  } else {
    run<float>(qf, keys, values, lp, out);
  }
  return out;
}

torch::Tensor decode_attention_reference(const torch::Tensor& q, const torch::Tensor& keys, const torch::Tensor& values,
                                         const torch::Tensor& lengths) {
  const int64_t B = q.size(0), H = q.size(1), Dh = q.size(2), G = keys.size(1), L = keys.size(2);
  auto qg = q.to(torch::kFloat32).view({B, G, H / G, Dh});
  auto scores = torch::matmul(qg, keys.to(torch::kFloat32).transpose(2, 3)) / std::sqrt(static_cast<double>(Dh));
  if (lengths.defined())  // as LlamaAttention masks padding keys: finfo.min
    scores.masked_fill_((torch::arange(L).view({1, L}) >= lengths.to(torch::kCPU).view({B, 1})).view({B, 1, 1, L}),
                        std::numeric_limits<float>::lowest());
  return torch::matmul(torch::softmax(scores, -1), values.to(torch::kFloat32)).view({B, H, Dh});
}

}  // namespace llama_mm
