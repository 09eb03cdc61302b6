// Tests for llm/decode_ops.cpp: each fused op against the LibTorch expression it replaces (the reference the
// model uses otherwise), in bf16 and fp32, for every row count it takes; RoPE bit for bit (no reduction, no exp),
// RMSNorm and SiLU·up within one bf16 unit in the last place (their sum and exp may round differently), and the
// conditions under which the model takes them.
#include "llm/decode_ops.h"

#include "llm/cpu_linear.h"
#include "llm/rope.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  auto xf = x.to(torch::kFloat32);
  return w * (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

// |got - want| within `ulps` units in the last place of want's dtype (bf16: 8 bits of mantissa, fp32: 24).
void expect_within_ulps(const torch::Tensor& got, const torch::Tensor& want, double ulps, const std::string& what) {
  ASSERT_EQ(got.scalar_type(), want.scalar_type()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double eps = want.scalar_type() == torch::kBFloat16 ? 1.0 / 128 : 1.0 / (1 << 23);
  auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  auto bound = w.abs() * eps * ulps + 1e-30;
  EXPECT_TRUE(((g - w).abs() <= bound).all().item<bool>())
      << what << ": max err " << (g - w).abs().max().item<double>();
}

TEST(DecodeOps, RmsNormMatchesTheReferenceExpression) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  for (auto dtype : {torch::kBFloat16, torch::kFloat32})
    for (int64_t rows : std::initializer_list<int64_t>{1, 3, kDecodeOpsMaxRows})
      for (int64_t D : std::initializer_list<int64_t>{7, 64, 2048}) {
        auto x = (torch::randn({rows, 1, D}) * 3).to(dtype);
        auto w = (torch::rand({D}) + 0.5).to(dtype);
        auto got = rms_norm_rows(x, w, 1e-5);
        auto want = rms_norm_reference(x, w, 1e-5);
        const std::string what = std::string(c10::toString(dtype)) + " rows " + std::to_string(rows) + " D " +
                                 std::to_string(D);
        // bf16: the two roundings may each move by one unit when the fp32 sums differ in the last bit.
        expect_within_ulps(got, want, dtype == torch::kBFloat16 ? 2 : 8, what);
        if (dtype == torch::kBFloat16)  // and nearly always they do not
          EXPECT_GE(torch::eq(got, want).to(torch::kFloat32).mean().item<float>(), 0.99f) << what;
      }
}

TEST(DecodeOps, RopeEqualsApplyRopeBitForBit) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  const auto inv_freq = rope_inv_freq(64, 500000.0, RopeScaling{});
  const auto table = rope_table(inv_freq, 300);
  for (auto dtype : {torch::kBFloat16, torch::kFloat32})
    for (int64_t B : {1, 3})
      for (int64_t T : {1, 2}) {
        auto x = torch::randn({B, T, 5, 64}).to(dtype);
        // Positions as a decode step has them: one range for all rows, or one position per row (the server).
        auto cos = table.cos.narrow(0, 250, T).to(dtype), sin = table.sin.narrow(0, 250, T).to(dtype);
        EXPECT_TRUE(torch::equal(rope_rows(x, cos, sin), apply_rope(x, cos, sin))) << c10::toString(dtype);
        auto ids = torch::randint(0, 300, {B * T}, torch::kInt64);
        auto cos_b = table.cos.index_select(0, ids).view({B, T, 64}).to(dtype);
        auto sin_b = table.sin.index_select(0, ids).view({B, T, 64}).to(dtype);
        EXPECT_TRUE(torch::equal(rope_rows(x, cos_b, sin_b), apply_rope(x, cos_b, sin_b))) << c10::toString(dtype);
      }
  EXPECT_THROW(rope_rows(torch::randn({1, 1, 2, 64}), table.cos.narrow(0, 0, 2), table.sin.narrow(0, 0, 2)),
               c10::Error);  // T = 1 against 2 positions
}

TEST(DecodeOps, SiluMulMatchesTheReferenceExpression) {
  torch::manual_seed(2);
  torch::NoGradGuard no_grad;
  for (auto dtype : {torch::kBFloat16, torch::kFloat32})
    for (int64_t n : {4096, 1001}) {  // 1001: the vector loop and its scalar tail (the path without AVX2)
      auto g = torch::randn({3, 1, n}) * 4;
      g.view(-1).narrow(0, 0, 6).copy_(torch::tensor({-200.0f, -90.0f, -87.0f, 87.0f, 90.0f, 200.0f}));  // exp's range
      g = g.to(dtype);
      auto u = torch::randn({3, 1, n}).to(dtype);
      auto got = silu_mul_rows(g, u);
      auto want = torch::silu(g) * u;
      expect_within_ulps(got, want, dtype == torch::kBFloat16 ? 2 : 16, c10::toString(dtype));
    }
}

TEST(DecodeOps, TakenOnlyForFewContiguousCpuRowsWithoutAutograd) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 1, 64}).to(torch::kBFloat16);
  EXPECT_TRUE(decode_ops_apply(x));
  EXPECT_TRUE(decode_ops_apply(torch::randn({kDecodeOpsMaxRows, 64})));
  EXPECT_FALSE(decode_ops_apply(torch::randn({kDecodeOpsMaxRows + 1, 64})));  // prefill: LibTorch
  EXPECT_FALSE(decode_ops_apply(torch::randn({64, 4}).t()));                  // not contiguous
  EXPECT_FALSE(decode_ops_apply(torch::randn({1, 64}).to(torch::kHalf)));     // other dtypes
  set_cpu_fast_kernels(false);
  EXPECT_FALSE(decode_ops_apply(x));
  set_cpu_fast_kernels(true);
  {
    torch::AutoGradMode grad(true);  // training: the fused ops have no backward
    EXPECT_FALSE(decode_ops_apply(x));
  }
}

}  // namespace
}  // namespace llama_mm
