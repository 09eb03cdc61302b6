// Tests train/adamw against LibTorch's own torch::optim::AdamW (an independent implementation), the schedule's
// shape, and clipping.
#include "train/train.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama_mm::train {
namespace {

TEST(AdamW, MatchesLibTorchAdamWOverManySteps) {
  torch::manual_seed(0);
  auto a = torch::randn({5, 7}).requires_grad_(true);  // matrices only: LibTorch decays every parameter
  auto b = torch::randn({3, 4}).requires_grad_(true);
  auto ra = a.detach().clone().requires_grad_(true), rb = b.detach().clone().requires_grad_(true);
  OptimizerConfig cfg;
  cfg.lr = 0.05, cfg.weight_decay = 0.1, cfg.beta1 = 0.8, cfg.beta2 = 0.9, cfg.eps = 1e-6;
  AdamW mine({{"a", a}, {"b", b}}, cfg);
  torch::optim::AdamW ref({ra, rb}, torch::optim::AdamWOptions(cfg.lr).betas({cfg.beta1, cfg.beta2}).eps(cfg.eps).weight_decay(cfg.weight_decay));
  for (int step = 0; step < 25; ++step) {
    auto target = torch::randn({5, 7});
    auto loss = [&](const torch::Tensor& x, const torch::Tensor& y) {
      return (x - target).pow(2).sum() + y.sin().sum() * (step % 3);
    };
    loss(a, b).backward();
    loss(ra, rb).backward();
    mine.step(cfg.lr);
    mine.zero_grad();
    ref.step();
    ref.zero_grad();
  }
  EXPECT_TRUE(torch::allclose(a, ra, 1e-5, 1e-6)) << (a - ra).abs().max();
  EXPECT_TRUE(torch::allclose(b, rb, 1e-5, 1e-6)) << (b - rb).abs().max();
  EXPECT_EQ(mine.steps(), 25);
}

TEST(AdamW, VectorsAreNotDecayedAndStateRoundTrips) {
  auto gate = torch::ones({1}).requires_grad_(true);
  OptimizerConfig cfg;
  cfg.weight_decay = 0.5;
  AdamW opt({{"gate", gate}}, cfg);
  opt.step(1.0);  // no gradient: nothing moves
  EXPECT_EQ(gate.item<float>(), 1.0f);
  gate.mutable_grad() = torch::zeros({1});
  opt.step(1.0);  // zero gradient: only decay could move it, and gates are not decayed
  EXPECT_EQ(gate.item<float>(), 1.0f);
  gate.mutable_grad() = torch::full({1}, 2.0);
  opt.step(0.1);
  auto state = opt.state();
  EXPECT_EQ(state.at("step").item<int64_t>(), 3);
  auto copy = torch::ones({1}).requires_grad_(true);
  AdamW other({{"gate", copy}}, cfg);
  other.load_state(state, "test");
  EXPECT_TRUE(torch::equal(other.state().at("exp_avg.gate"), state.at("exp_avg.gate")));
  EXPECT_THROW(other.load_state({}, "test"), Error);
}

TEST(Schedule, WarmsUpThenFollowsACosineDownToTheFloor) {
  OptimizerConfig opt;
  opt.lr = 1.0;
  ScheduleConfig s{4, 0.1};
  EXPECT_DOUBLE_EQ(scheduled_lr(opt, s, 0, 20), 0.25);
  EXPECT_DOUBLE_EQ(scheduled_lr(opt, s, 3, 20), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(opt, s, 4, 20), 1.0);  // the cosine starts at the peak
  EXPECT_NEAR(scheduled_lr(opt, s, 12, 21), 0.55, 1e-9);  // half way down the cosine
  EXPECT_DOUBLE_EQ(scheduled_lr(opt, s, 19, 20), 0.1);  // the last step is at the floor
  for (int64_t t = 4; t + 1 < 20; ++t) EXPECT_GT(scheduled_lr(opt, s, t, 20), scheduled_lr(opt, s, t + 1, 20));
  EXPECT_DOUBLE_EQ(scheduled_lr(opt, {0, 0.1}, 0, 1), 1.0);
}

TEST(ClipGradNorm, ScalesToTheLimitAndReportsTheNormBefore) {
  auto a = torch::zeros({2}).requires_grad_(true), b = torch::zeros({1}).requires_grad_(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  NamedParams p{{"a", a}, {"b", b}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(p, 10.0), 5.0);  // under the limit: untouched
  EXPECT_FLOAT_EQ(a.grad()[0].item<float>(), 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(p, 1.0), 5.0);
  EXPECT_NEAR(std::sqrt(a.grad().pow(2).sum().item<double>() + b.grad().pow(2).sum().item<double>()), 1.0, 1e-5);
}

}  // namespace
}  // namespace llama_mm::train
