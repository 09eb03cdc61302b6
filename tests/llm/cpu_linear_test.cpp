// Tests for llm/cpu_linear.cpp: the fused bf16 kernel and the widen-then-GEMM path against the naive
// reference, across row counts on both sides of the switch, odd K (scalar tail), bias and 3-D inputs.
#include "llm/cpu_linear.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

TEST(CpuLinear, MatchesReferenceOnBothPaths) {
  torch::manual_seed(0);
  for (int64_t M : std::initializer_list<int64_t>{1, 3, kBf16KernelMaxRows, kBf16KernelMaxRows + 1, 64})
    for (int64_t K : std::initializer_list<int64_t>{8, 37, 256})
      for (bool with_bias : {false, true}) {
        const int64_t N = 50;
        auto w = torch::randn({N, K}).to(torch::kBFloat16);
        auto b = with_bias ? torch::randn({N}).to(torch::kBFloat16) : torch::Tensor();
        auto x = torch::randn({M, K});
        auto got = linear_bf16_cpu(x, w, b), want = linear_bf16_reference(x, w, b);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-4))
            << "M " << M << " K " << K << " bias " << with_bias << " max err " << (got - want).abs().max();
      }
}

TEST(CpuLinear, KeepsLeadingDimsAndInputDtype) {
  auto w = torch::randn({16, 32}).to(torch::kBFloat16);
  auto x = torch::randn({2, 3, 32}).to(torch::kBFloat16);
  auto y = linear_bf16_cpu(x, w, {});
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 16}));
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), linear_bf16_reference(x, w, {}).to(torch::kFloat32), 1e-2, 1e-2));
  EXPECT_THROW(linear_bf16_cpu(torch::randn({2, 31}), w, {}), c10::Error);
}

}  // namespace
}  // namespace llama_mm
