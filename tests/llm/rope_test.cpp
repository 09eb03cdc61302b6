// Tests for llm/rope.cpp: the llama3 inverse frequencies against the closed-form formula (computed
// independently in double precision) and against HF's golden table; rotate_half application.
#include "llm/llm.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama_mm {
namespace {

// mllama-spec.md §1.5, evaluated per frequency in double precision.
double closed_form(int64_t j, int64_t hd, double theta, const RopeScaling& s) {
  const double f = 1.0 / std::pow(theta, 2.0 * j / hd);
  if (s.rope_type != "llama3") return f;
  const double L = s.original_max_position_embeddings, wl = 2 * M_PI / f;
  const double low_wl = L / s.low_freq_factor, high_wl = L / s.high_freq_factor;
  if (wl < high_wl) return f;
  if (wl > low_wl) return f / s.factor;
  const double sm = (L / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return (1 - sm) * f / s.factor + sm * f;
}

TEST(Rope, Llama3InvFreqEqualsClosedForm) {
  for (auto [hd, factor] : {std::pair<int64_t, double>{16, 8.0}, {64, 32.0}, {128, 8.0}}) {
    RopeScaling s{"llama3", factor, 1.0, 4.0, 8192};
    auto inv = rope_inv_freq(hd, 500000.0, s);
    ASSERT_EQ(inv.size(0), hd / 2);
    int bands[3] = {0, 0, 0};
    for (int64_t j = 0; j < hd / 2; ++j) {
      const double want = closed_form(j, hd, 500000.0, s), got = inv[j].item<float>();
      EXPECT_NEAR(got, want, 2e-6 * want) << "hd " << hd << " j " << j;
      const double wl = 2 * M_PI / (1.0 / std::pow(500000.0, 2.0 * j / hd));
      bands[wl < 2048 ? 0 : wl > 8192 ? 2 : 1]++;
    }
    EXPECT_GT(bands[0], 0);  // every band is exercised
    EXPECT_GT(bands[1], 0);
    EXPECT_GT(bands[2], 0);
  }
  // Plain RoPE is left alone.
  auto plain = rope_inv_freq(16, 10000.0, RopeScaling{});
  EXPECT_NEAR(plain[3].item<float>(), std::pow(10000.0, -6.0 / 16), 1e-7);
}

TEST(Rope, TableMatchesTransformers) {
  SafetensorsFile golden(test::fixture("llama_tiny/tied/golden.safetensors").string());
  RopeScaling s{"llama3", 8.0, 1.0, 4.0, 8192};
  auto inv = rope_inv_freq(16, 500000.0, s);
  EXPECT_TRUE(torch::equal(inv, golden.get("rope.inv_freq"))) << inv << golden.get("rope.inv_freq");
  auto t = rope_table(inv, 12);
  EXPECT_TRUE(torch::allclose(t.cos, golden.get("rope.cos"), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(t.sin, golden.get("rope.sin"), 0, 1e-6));
}

TEST(Rope, ApplyRotatesPairsJAndJPlusHalf) {
  // One head of size 4 at position 1 with inv_freq [1, 0.5]: pair (0, 2) turns by 1 rad, (1, 3) by 0.5.
  auto inv = torch::tensor({1.0f, 0.5f});
  auto t = rope_table(inv, 2);
  auto x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 1, 4});
  auto y = apply_rope(x, t.cos.narrow(0, 1, 1), t.sin.narrow(0, 1, 1)).view(-1);
  const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.5), s2 = std::sin(0.5);
  EXPECT_NEAR(y[0].item<float>(), 1 * c1 - 3 * s1, 1e-6);
  EXPECT_NEAR(y[2].item<float>(), 3 * c1 + 1 * s1, 1e-6);
  EXPECT_NEAR(y[1].item<float>(), 2 * c2 - 4 * s2, 1e-6);
  EXPECT_NEAR(y[3].item<float>(), 4 * c2 + 2 * s2, 1e-6);
}

}  // namespace
}  // namespace llama_mm
