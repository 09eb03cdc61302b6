// Tests for adapters/cross_attention_mask.cpp: token spans, the dense mask and its additive form, against
// the rules of transformers' processing_mllama (mllama-spec.md §3.3, §3.4) written out by hand.
#include "adapters/adapters.h"

#include <gtest/gtest.h>

#include <limits>

namespace llama_mm {
namespace {

using Spans = std::vector<std::pair<int64_t, int64_t>>;
constexpr int64_t kImg = 99;

TEST(ImageTokenSpans, FollowTheProcessorRules) {
  EXPECT_EQ(image_token_spans({1, 2, 3}, kImg), Spans{});
  EXPECT_EQ(image_token_spans({1, kImg, 3, 4}, kImg), (Spans{{1, -1}}));
  EXPECT_EQ(image_token_spans({1, kImg, 3, kImg, 5, 6}, kImg), (Spans{{1, 3}, {3, 6}}));
  // Adjacent image tokens all see the text after the run.
  EXPECT_EQ(image_token_spans({1, kImg, kImg, 4, 5}, kImg), (Spans{{1, 5}, {2, 5}}));
  EXPECT_EQ(image_token_spans({kImg, kImg, kImg, 4, kImg, 6}, kImg), (Spans{{0, 4}, {1, 4}, {2, 4}, {4, 6}}));
}

TEST(DenseCrossAttentionMask, MatchesTheTransformersExample) {
  // HF test: "BOS t t t t t t <img><img> t t t t t t" (15 tokens); image 0 covers rows 7..14, image 1 rows 8..14.
  std::vector<int64_t> ids = {1, 5, 5, 5, 5, 5, 5, kImg, kImg, 5, 5, 5, 5, 5, 5};
  auto spans = image_token_spans(ids, kImg);
  auto dense = dense_cross_attention_mask({spans}, {{2, 3}}, 4, 15);
  ASSERT_EQ(dense.sizes(), (std::vector<int64_t>{1, 15, 2, 4}));
  for (int64_t s = 0; s < 15; ++s)
    for (int64_t t = 0; t < 4; ++t) {
      EXPECT_EQ(dense[0][s][0][t].item<int64_t>(), s >= 7 && t < 2) << s << "," << t;
      EXPECT_EQ(dense[0][s][1][t].item<int64_t>(), s >= 8 && t < 3) << s << "," << t;
    }
}

TEST(DenseCrossAttentionMask, PadsImagesAcrossTheBatch) {
  auto dense = dense_cross_attention_mask({{{2, -1}}, {{0, 2}, {2, 4}}}, {{1}, {4, 2}}, 4, 4);
  ASSERT_EQ(dense.sizes(), (std::vector<int64_t>{2, 4, 2, 4}));
  EXPECT_EQ(dense[0].select(1, 1).sum().item<int64_t>(), 0);  // sample 0 has no second image
  EXPECT_EQ(dense[0].select(1, 0).sum().item<int64_t>(), 2);  // rows 2, 3 x 1 tile
  EXPECT_EQ(dense[1][1][0].sum().item<int64_t>(), 4);
  EXPECT_EQ(dense[1][1][1].sum().item<int64_t>(), 0);
  EXPECT_EQ(dense[1][3][1].sum().item<int64_t>(), 2);
}

TEST(PrepareCrossAttentionMask, AdditiveAndRowMasks) {
  // 3 tokens, 1 image of 2 tiles (1 valid), P = 2 tokens per tile: token 0 sees nothing.
  auto dense = torch::tensor({0, 0, 1, 0, 1, 0}, torch::kInt64).view({1, 3, 1, 2});
  auto m = prepare_cross_attention_mask(dense, 2);
  ASSERT_EQ(m.additive.sizes(), (std::vector<int64_t>{1, 1, 3, 4}));
  ASSERT_EQ(m.row.sizes(), (std::vector<int64_t>{1, 1, 3, 1}));
  const float lo = std::numeric_limits<float>::lowest();
  EXPECT_TRUE(torch::equal(m.row.flatten(), torch::tensor({0.f, 1.f, 1.f})));
  // A row that sees nothing becomes all zeros (uniform attention), not all-min.
  EXPECT_TRUE(torch::equal(m.additive[0][0][0], torch::zeros({4})));
  EXPECT_TRUE(torch::equal(m.additive[0][0][1], torch::tensor({0.f, 0.f, lo, lo})));
  EXPECT_TRUE(torch::equal(m.additive[0][0][2], torch::tensor({0.f, 0.f, lo, lo})));
}

}  // namespace
}  // namespace llama_mm
