// Tests for llm/sampler.cpp.
#include "llm/llm.h"

#include <gtest/gtest.h>

#include <map>

namespace llama_mm {
namespace {

TEST(Sampler, DocumentedDefaults) {
  auto p = default_sampling_params();
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
  EXPECT_EQ(p.seed, -1);
}

TEST(Sampler, GreedyIsArgmaxAndPenaltyCanChangeIt) {
  auto logits = torch::tensor({0.1f, 3.0f, 2.9f, -1.0f});
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(Sampler(p).sample(logits, {}), 1);
  p.repeat_penalty = 1.5f;  // 3.0 / 1.5 = 2.0 < 2.9
  EXPECT_EQ(Sampler(p).sample(logits, {1}), 2);
  p.repeat_last_n = 1;      // token 1 is outside the window
  EXPECT_EQ(Sampler(p).sample(logits, {1, 3}), 1);
}

TEST(Sampler, SeedReproducesAndFiltersRestrictSupport) {
  auto logits = torch::tensor({2.0f, 1.9f, 1.8f, 0.0f, -5.0f});
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 7;
  Sampler a(p), b(p);
  std::map<int, int> counts;
  for (int i = 0; i < 400; ++i) {
    int x = a.sample(logits, {});
    EXPECT_EQ(x, b.sample(logits, {}));
    counts[x]++;
  }
  EXPECT_GE(counts.size(), 4u);  // broad support without filters

  p.top_k = 2;
  Sampler k2(p);
  for (int i = 0; i < 200; ++i) EXPECT_LT(k2.sample(logits, {}), 2);

  p.top_k = 0;
  p.min_p = 0.5f;  // keeps p >= 0.5 p_max: tokens 0, 1, 2 (exp(-0.2) ≈ 0.82), not 3 (exp(-2))
  Sampler mp(p);
  std::map<int, int> c2;
  for (int i = 0; i < 300; ++i) c2[mp.sample(logits, {})]++;
  EXPECT_EQ(c2.count(3), 0u);
  EXPECT_EQ(c2.size(), 3u);

  p.min_p = 0;
  p.top_p = 0.3f;  // the top token alone has p ≈ 0.36 >= 0.3
  Sampler tp(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(tp.sample(logits, {}), 0);
}

TEST(Sampler, RejectsBadParameters) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_THROW(Sampler{p}, Error);
  p = SamplingParams{};
  p.repeat_penalty = 0;
  EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
}  // namespace llama_mm
