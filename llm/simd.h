// llm/simd.h: small AVX2 helpers shared by the decode kernels (llm/cpu_linear.cpp, llm/q8_linear.cpp).
#pragma once

#include <immintrin.h>

namespace llama_mm {

// Sum of the 8 lanes of a ymm register.
__attribute__((target("avx2,fma"))) inline float hsum_avx(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

}  // namespace llama_mm
