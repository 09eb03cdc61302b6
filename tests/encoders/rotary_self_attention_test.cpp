// tests/encoders/rotary_self_attention_test.cpp: encoders/rotary_self_attention.cpp against a naive per-head
// reference with the rotation written out, the relative-position property, the key padding mask, long inputs
// (several query blocks), bf16, the differentiable training path, and the feed-forward block.
#include "encoders/conformer.h"

#include "tensor_util.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama_mm {
namespace {

RotarySelfAttention make_attention(int64_t dim, int64_t heads, uint64_t seed) {
  RotarySelfAttention a(dim, heads, 10000.0, true, torch::kFloat32);
  init_random_conformer_weights(*a, seed);
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed + 1);
  for (auto& p : a->named_parameters())  // non-zero biases too
    if (p.key().find("bias") != std::string::npos) p.value().normal_(0, 0.1, gen);
  return a;
}

torch::Tensor lin(const torch::Tensor& v, const Linear& l) { return torch::matmul(v, l->weight.t()) + l->bias; }

// One sequence x [T, D], valid [T]: every position and frequency rotated one by one in double precision,
// then per-head scaled-dot-product attention over the valid keys.
torch::Tensor naive_attention(RotarySelfAttentionImpl& a, const torch::Tensor& x, const torch::Tensor& valid) {
  const int64_t T = x.size(0), H = a.n_heads, Dh = a.head_dim, half = Dh / 2;
  auto q = lin(x, a.q_proj).to(torch::kFloat64), k = lin(x, a.k_proj).to(torch::kFloat64);
  auto v = lin(x, a.v_proj).to(torch::kFloat64);
  auto rotate = [&](const torch::Tensor& m) {  // m [T, H·Dh]; pairs (j, j + Dh/2) of each head
    auto out = m.clone();
    auto in = m.accessor<double, 2>();
    auto o = out.accessor<double, 2>();
    for (int64_t p = 0; p < T; ++p)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < half; ++j) {
          const double theta = p * std::pow(10000.0, -2.0 * j / Dh);
          const double a0 = in[p][h * Dh + j], a1 = in[p][h * Dh + j + half];
          o[p][h * Dh + j] = a0 * std::cos(theta) - a1 * std::sin(theta);
          o[p][h * Dh + j + half] = a1 * std::cos(theta) + a0 * std::sin(theta);
        }
    return out;
  };
  q = rotate(q), k = rotate(k);
  auto out = torch::zeros({T, H * Dh}, torch::kFloat64);
  for (int64_t h = 0; h < H; ++h) {
    auto qh = q.narrow(1, h * Dh, Dh), kh = k.narrow(1, h * Dh, Dh), vh = v.narrow(1, h * Dh, Dh);
    auto s = torch::matmul(qh, kh.t()) / std::sqrt(static_cast<double>(Dh));  // [T, T]
    s = s.masked_fill(valid.logical_not().unsqueeze(0), -1e300);
    out.narrow(1, h * Dh, Dh).copy_(torch::matmul(torch::softmax(s, -1), vh));
  }
  return lin(out.to(torch::kFloat32), a.o_proj);
}

TEST(RotarySelfAttention, MatchesANaiveReference) {
  torch::NoGradGuard ng;
  auto a = make_attention(16, 2, 3);
  auto x = torch::randn({2, 7, 16});
  auto valid = torch::ones({2, 7}, torch::kBool);
  valid[1].narrow(0, 5, 2).fill_(false);  // item 1 has 5 real frames
  auto y = a->forward(x, valid);
  ASSERT_EQ(y.sizes(), x.sizes());
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t n = b == 0 ? 7 : 5;
    auto ref = naive_attention(*a, x[b], valid[b]);
    EXPECT_LT(test::rel_err(y[b].narrow(0, 0, n), ref.narrow(0, 0, n)), 1e-5) << b;
  }
  // No mask is the same as an all-true mask.
  EXPECT_TRUE(torch::equal(a->forward(x, {})[0], y[0]));
}

TEST(RotarySelfAttention, TrainingPathMatchesAndBackPropagates) {
  auto a = make_attention(16, 2, 5);
  auto x = torch::randn({2, 7, 16});
  auto valid = torch::ones({2, 7}, torch::kBool);
  valid[1].narrow(0, 4, 3).fill_(false);
  torch::Tensor inference;
  {
    torch::NoGradGuard ng;
    inference = a->forward(x, valid);
  }
  auto y = a->forward(x, valid);  // parameters require grad: the differentiable path
  ASSERT_TRUE(y.requires_grad());
  EXPECT_LT(test::rel_err(y[0], inference[0]), 1e-5);
  EXPECT_LT(test::rel_err(y[1].narrow(0, 0, 4), inference[1].narrow(0, 0, 4)), 1e-5);
  y[0].sum().backward();
  EXPECT_GT(a->q_proj->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(a->v_proj->weight.grad().abs().sum().item<double>(), 0);
}

TEST(RotarySelfAttention, DependsOnlyOnRelativePositions) {
  torch::NoGradGuard ng;
  for (int64_t heads : {1, 4}) {
    auto a = make_attention(32, heads, 5);
    auto x = torch::randn({1, 9, 32});
    auto y = a->forward(x, {});
    // The same sequence after 5 masked frames: absolute positions shift by 5, offsets between frames do not.
    auto shifted = torch::cat({torch::randn({1, 5, 32}), x}, 1);
    auto valid = torch::cat({torch::zeros({1, 5}, torch::kBool), torch::ones({1, 9}, torch::kBool)}, 1);
    EXPECT_LT(test::rel_err(a->forward(shifted, valid).narrow(1, 5, 9), y), 1e-5) << heads;
    // Sanity: the unmasked leading frames do change the outputs, so the comparison above can fail.
    EXPECT_GT(test::rel_err(a->forward(shifted, {}).narrow(1, 5, 9), y), 1e-3) << heads;
  }
  // Scores see positions: a sequence and its reversal attend differently (RoPE is not a no-op).
  auto a = make_attention(32, 1, 6);
  auto x = torch::randn({1, 9, 32});
  auto rev = a->forward(x.flip(1), {}).flip(1);
  EXPECT_GT(test::rel_err(rev, a->forward(x, {})), 1e-3);
}

TEST(RotarySelfAttention, PaddedKeysHaveNoInfluence) {
  torch::NoGradGuard ng;
  auto a = make_attention(16, 2, 7);
  auto x = torch::randn({1, 8, 16});
  auto valid = torch::tensor({1, 1, 1, 1, 1, 1, 0, 0}, torch::kBool).view({1, 8});
  auto y = a->forward(x, valid);
  auto x2 = x.clone();
  x2[0].narrow(0, 6, 2).normal_(0, 100);
  auto y2 = a->forward(x2, valid);
  EXPECT_TRUE(torch::equal(y.narrow(1, 0, 6), y2.narrow(1, 0, 6)));
  EXPECT_TRUE(torch::isfinite(y2).all().item<bool>());
  // Without the mask the same change is visible.
  EXPECT_GT(test::rel_err(a->forward(x2, {}).narrow(1, 0, 6), y.narrow(1, 0, 6)), 1e-3);
  // An item with no real frame at all still gives finite rows.
  EXPECT_TRUE(torch::isfinite(a->forward(x, torch::zeros({1, 8}, torch::kBool))).all().item<bool>());
}

// Long enough for several query blocks (blocks hold ~4M scores): compared with one dense softmax per head.
TEST(RotarySelfAttention, LongInputsMatchDenseAttention) {
  torch::NoGradGuard ng;
  auto a = make_attention(16, 2, 11);
  const int64_t T = 2100, n = 2000, Dh = 8, half = 4;
  auto x = torch::randn({1, T, 16});
  auto valid = valid_mask(torch::tensor({n}), T);
  auto y = a->forward(x, valid);
  auto q = lin(x[0], a->q_proj), k = lin(x[0], a->k_proj), v = lin(x[0], a->v_proj);
  auto pos = torch::arange(T, torch::kFloat64).unsqueeze(1);
  auto ang = pos * torch::pow(10000.0, -2.0 * torch::arange(half, torch::kFloat64) / Dh).unsqueeze(0);  // [T, 4]
  auto cos = torch::cos(ang).to(torch::kFloat32), sin = torch::sin(ang).to(torch::kFloat32);
  auto out = torch::empty({T, 16});
  for (int64_t h = 0; h < 2; ++h) {
    auto rot = [&](const torch::Tensor& m) {
      auto a0 = m.narrow(1, h * Dh, half), a1 = m.narrow(1, h * Dh + half, half);
      return torch::cat({a0 * cos - a1 * sin, a1 * cos + a0 * sin}, 1);
    };
    auto s = torch::matmul(rot(q), rot(k).t()) / std::sqrt(8.0);
    s.narrow(1, n, T - n).fill_(-1e30);
    out.narrow(1, h * Dh, Dh).copy_(torch::matmul(torch::softmax(s, 1), v.narrow(1, h * Dh, Dh)));
  }
  EXPECT_LT(test::rel_err(y[0].narrow(0, 0, n), lin(out, a->o_proj).narrow(0, 0, n)), 1e-4);
}

TEST(RotarySelfAttention, Bf16IsCloseToF32) {
  torch::NoGradGuard ng;
  auto a = make_attention(32, 4, 13);
  auto x = torch::randn({2, 20, 32});
  auto valid = valid_mask(torch::tensor({20, 12}), 20);
  auto ref = a->forward(x, valid);
  a->to(torch::kBFloat16);
  for (auto in_dtype : {torch::kBFloat16, torch::kFloat32}) {  // bf16 activations (adapter), fp32 (encoder)
    auto y = a->forward(x.to(in_dtype), valid);
    EXPECT_EQ(y.scalar_type(), in_dtype);
    EXPECT_LT(test::rel_err(y[0], ref[0]), 0.05);
    EXPECT_LT(test::rel_err(y[1].narrow(0, 0, 12), ref[1].narrow(0, 0, 12)), 0.05);
  }
}

TEST(RotarySelfAttention, RejectsBadShapes) {
  torch::NoGradGuard ng;
  auto a = make_attention(16, 2, 1);
  EXPECT_THROW(a->forward(torch::randn({1, 4, 8}), {}), c10::Error);
  EXPECT_THROW(a->forward(torch::randn({1, 4, 16}), torch::ones({1, 5}, torch::kBool)), c10::Error);
  EXPECT_THROW(RotarySelfAttention(12, 4, 1e4, true, torch::kFloat32), c10::Error);  // head dim 3: odd
  EXPECT_THROW(RotarySelfAttention(10, 4, 1e4, true, torch::kFloat32), c10::Error);  // 4 does not divide 10
}

TEST(RotarySelfAttention, FeedForwardIsDownSiluUpAlsoInRowChunks) {
  torch::NoGradGuard ng;
  FeedForward f(8, 4096, torch::kFloat32);  // chunks of 1024 rows
  init_random_conformer_weights(*f, 2);
  f->up->bias.normal_(0, 0.1);
  f->down->bias.normal_(0, 0.1);
  for (int64_t rows : {3, 2500}) {
    auto x = torch::randn({1, rows, 8});
    auto h = lin(x, f->up);
    EXPECT_LT(test::rel_err(f->forward(x), lin(h * torch::sigmoid(h), f->down)), 1e-5) << rows;
  }
}

}  // namespace
}  // namespace llama_mm
