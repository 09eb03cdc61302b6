// Tests train/best_rq: quantizer targets against a naive nearest-codebook search, the span masks, and that the
// frozen parts are rebuilt identically from the seed.
#include "train/train.h"

#include <gtest/gtest.h>

namespace llama_mm::train {
namespace {

BestRqConfig small() {
  BestRqConfig c;
  c.codebooks = 3, c.codebook_size = 50, c.codebook_dim = 4;
  return c;
}

TEST(BestRq, TargetsAreTheNearestCodebookVectorByCosine) {
  BestRq q(small(), 5, 4, 8, 7);
  torch::manual_seed(1);
  auto feats = torch::randn({2, 10, 5});  // T = 10: three encoder frames, the last padded with zeros
  auto ids = q->targets(feats);
  ASSERT_EQ(ids.sizes(), (std::vector<int64_t>{2, 3, 3}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t f = 0; f < 3; ++f) {
      auto x = torch::zeros({20});
      for (int64_t k = 0; k < 4 && f * 4 + k < 10; ++k) x.narrow(0, k * 5, 5).copy_(feats[b][f * 4 + k]);
      for (int64_t c = 0; c < 3; ++c) {
        auto p = torch::matmul(x, q->projections[c]);  // [4]
        int64_t best = -1;
        double best_cos = -2;
        for (int64_t k = 0; k < 50; ++k) {
          auto v = q->codebooks[c][k];
          const double cos = (torch::dot(p, v) / (p.norm() * v.norm())).item<double>();
          if (cos > best_cos) best_cos = cos, best = k;
        }
        EXPECT_EQ(ids[b][f][c].item<int64_t>(), best) << b << " " << f << " " << c;
      }
    }
}

TEST(BestRq, MasksAreSpansAtTheExpectedRate) {
  BestRqConfig c;  // the paper's: spans of 32, start probability 2.5 %
  BestRq q(c, 80, 4, 8, 1);
  auto gen = at::detail::createCPUGenerator(3);
  auto mask = q->draw_mask(4000, gen);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{4000}));
  const double frac = mask.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(frac, 1.0 - std::pow(1.0 - 0.025, 32), 0.06);  // ≈ 0.56
  // Every masked run is at least one span long unless it is cut by the end of the utterance.
  auto m = mask.accessor<bool, 1>();
  for (int64_t t = 0, run = 0; t <= 4000; ++t) {
    if (t < 4000 && m[t]) {
      ++run;
      continue;
    }
    if (run > 0 && t < 4000) EXPECT_GE(run, 32) << t;
    run = 0;
  }
  auto again = q->draw_mask(4000, at::detail::createCPUGenerator(3));
  EXPECT_TRUE(torch::equal(mask, again));
  EXPECT_FALSE(torch::equal(mask, q->draw_mask(4000, at::detail::createCPUGenerator(4))));
}

TEST(BestRq, FrozenPartsComeFromTheSeedAlone) {
  BestRq a(small(), 5, 4, 8, 11), b(small(), 5, 4, 8, 11), c(small(), 5, 4, 8, 12);
  EXPECT_TRUE(torch::equal(a->projections, b->projections));
  EXPECT_TRUE(torch::equal(a->codebooks, b->codebooks));
  EXPECT_FALSE(torch::equal(a->codebooks, c->codebooks));
  EXPECT_NEAR(a->codebooks.norm(2, -1).mean().item<double>(), 1.0, 1e-6);
  EXPECT_EQ(a->parameters().size(), 2u);  // only the heads train
  EXPECT_EQ(a->logits(torch::randn({6, 8})).sizes(), (std::vector<int64_t>{6, 3, 50}));
}

}  // namespace
}  // namespace llama_mm::train
