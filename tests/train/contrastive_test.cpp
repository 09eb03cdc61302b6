// Tests train/contrastive: the symmetric loss against a naive per-pair computation (repeated captions shared as
// matches), the caption-equality matrix, and top-1 retrieval on embeddings whose answer is known.
#include <gtest/gtest.h>

#include <cmath>

#include "train/train.h"

namespace llama_mm::train {
namespace {

torch::Tensor unit_rows(torch::Tensor x) { return x / x.norm(2, -1, true); }

TEST(Contrastive, LossEqualsTheNaiveSymmetricCrossEntropyWithRepeatedCaptionsShared) {
  torch::manual_seed(3);
  const auto img = unit_rows(torch::randn({5, 6}, torch::kFloat64)),
             txt = unit_rows(torch::randn({5, 6}, torch::kFloat64));
  const std::vector<std::vector<int64_t>> captions = {{1, 2}, {3}, {1, 2}, {4, 5}, {3}};
  const auto same = same_captions(captions);
  const auto scale_log = torch::full({1}, 1.3, torch::kFloat64);
  const double scale = std::exp(1.3);
  double expected = 0;
  auto sim = [&](int64_t i, int64_t j) { return scale * torch::dot(img[i], txt[j]).item<double>(); };
  for (int64_t i = 0; i < 5; ++i) {
    int64_t matches = 0;
    for (int64_t j = 0; j < 5; ++j) matches += captions[i] == captions[j];
    double lse_row = 0, lse_col = 0;
    for (int64_t j = 0; j < 5; ++j) lse_row += std::exp(sim(i, j)), lse_col += std::exp(sim(j, i));
    for (int64_t j = 0; j < 5; ++j)
      if (captions[i] == captions[j])
        expected += (-(sim(i, j) - std::log(lse_row)) - (sim(j, i) - std::log(lse_col))) / 2 / matches;
  }
  EXPECT_NEAR(clip_loss_sum(img, txt, scale_log, same).item<double>(), expected, 1e-9);
  // The scale is capped at 100, as CLIP's is.
  const auto capped = clip_loss_sum(img, txt, torch::full({1}, 9.0, torch::kFloat64), same).item<double>();
  EXPECT_NEAR(capped, clip_loss_sum(img, txt, torch::full({1}, std::log(100.0), torch::kFloat64), same).item<double>(),
              1e-9);
}

TEST(Contrastive, SameCaptionsMarksEqualTokenLists) {
  const auto same = same_captions({{7, 8}, {7}, {7, 8}});
  const auto expected = torch::tensor({1, 0, 1, 0, 1, 0, 1, 0, 1}).view({3, 3}).to(torch::kBool);
  EXPECT_TRUE(torch::equal(same, expected)) << same;
}

TEST(Contrastive, RetrievalCountsAnImageRightWhenItsNearestTextHasItsCaption) {
  const auto eye = torch::eye(4);
  // Image 0 is nearest text 0, image 1 text 2 (the same caption as text 1), image 2 text 3 (a different caption),
  // image 3 text 3.
  const auto img = unit_rows(torch::stack({eye[0], eye[2], eye[3] + 0.1 * eye[2], eye[3]}));
  const auto same = same_captions({{1}, {2}, {2}, {3}});
  EXPECT_DOUBLE_EQ(retrieval_top1(img, eye, same), 0.75);
}

TEST(Contrastive, HeadsEmbedToUnitVectorsAndAreSeeded) {
  ContrastiveHeads a(12, 8, 4, 5), b(12, 8, 4, 5), c(12, 8, 4, 6);
  const auto x = torch::randn({3, 12});
  const auto e = a->embed_images(x);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(torch::allclose(e.norm(2, -1), torch::ones({3})));
  EXPECT_EQ(a->embed_texts(torch::randn({2, 8})).sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(torch::equal(a->image_weight, b->image_weight));
  EXPECT_FALSE(torch::equal(a->image_weight, c->image_weight));
  EXPECT_NEAR(a->logit_scale.item<double>(), std::log(1 / 0.07), 1e-6);
}

}  // namespace
}  // namespace llama_mm::train
