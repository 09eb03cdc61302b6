// Tests adapters/temporal_aggregator: shapes per aggregation factor, groups resampled independently, the
// frame-position embedding making order matter, one layer against a naive implementation, chunked attention.
#include "adapters/temporal_aggregator.h"

#include "adapters/mllama_model.h"
#include "llm/error.h"
#include "tensor_util.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama_mm {
namespace {

TemporalAggregatorConfig small_config(int64_t aggregation) {
  TemporalAggregatorConfig c;
  c.dim = 24;
  c.aggregation = aggregation;
  c.num_latents = 5;
  c.depth = 2;
  c.heads = 3;
  c.head_dim = 8;
  c.ffn_mult = 2;
  return c;
}

TemporalAggregator make(const TemporalAggregatorConfig& c, uint64_t seed = 1) {
  TemporalAggregator a(c, torch::kFloat32);
  init_random_mllama_weights(*a, seed);
  a->eval();
  return a;
}

torch::Tensor frames(int64_t F, int64_t S, int64_t D, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::empty({F, S, D}).normal_(0, 1, gen);
}

TEST(TemporalAggregator, OneEffectiveFramePerAggregationWindow) {
  torch::NoGradGuard no_grad;
  for (auto [agg, F, groups] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {32, 64, 2}, {16, 64, 4}, {16, 16, 1}, {32, 3, 1}, {4, 9, 3}}) {
    SCOPED_TRACE("aggregation " + std::to_string(agg) + ", " + std::to_string(F) + " frames");
    auto a = make(small_config(agg));
    auto out = a->forward(frames(F, 6, 24, 2));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{groups, 5, 24}));
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    EXPECT_EQ(a->config().n_groups(F), groups);
  }
}

TEST(TemporalAggregator, EachWindowIsResampledFromItsOwnFramesOnly) {
  torch::NoGradGuard no_grad;
  auto a = make(small_config(4));
  auto x = frames(10, 6, 24, 3);  // windows [0,4) [4,8) [8,10)
  auto all = a->forward(x);
  ASSERT_EQ(all.size(0), 3);
  EXPECT_LT(test::rel_err(all[1], a->forward(x.narrow(0, 4, 4))[0]), 1e-5);
  EXPECT_LT(test::rel_err(all[2], a->forward(x.narrow(0, 8, 2))[0]), 1e-5);
  // Changing a frame of window 0 leaves the other windows alone.
  auto y = x.clone();
  y[1].copy_(frames(1, 6, 24, 99)[0]);  // (a constant shift would vanish in the LayerNorm)
  auto changed = a->forward(y);
  EXPECT_GT(test::rel_err(changed[0], all[0]), 1e-3);
  EXPECT_TRUE(torch::equal(changed.narrow(0, 1, 2), all.narrow(0, 1, 2)));
}

TEST(TemporalAggregator, FramePositionEmbeddingsMakeOrderMatter) {
  torch::NoGradGuard no_grad;
  auto a = make(small_config(8));
  auto x = frames(8, 6, 24, 4);
  auto reversed = x.flip({0});
  const auto with = test::rel_err(a->forward(reversed), a->forward(x));
  EXPECT_GT(with, 1e-2) << "reversing the frames should change the effective frame";
  // Without them the resampler sees a set of tokens: any order gives the same output.
  a->frame_embedding.zero_();
  EXPECT_LT(test::rel_err(a->forward(reversed), a->forward(x)), 1e-5);
}

// LayerNorm over the last dim, written out.
torch::Tensor naive_layer_norm(const torch::Tensor& x, const LayerNorm& n) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / torch::sqrt(var + n->eps) * n->weight + n->bias;
}

TEST(TemporalAggregator, OneLayerMatchesANaiveImplementation) {
  torch::NoGradGuard no_grad;
  auto cfg = small_config(4);
  cfg.depth = 1;
  auto a = make(cfg, 9);
  auto x = frames(3, 6, 24, 5);
  auto got = a->forward(x)[0];  // [L, D]

  // Frame embeddings, flattening, then the layer with explicit per-head, per-query loops.
  auto media = (x + a->frame_embedding.narrow(0, 0, 3).unsqueeze(1)).reshape({18, 24});
  auto lat = a->latents.clone();
  const auto& layer = a->layers[0];
  auto& at = layer->attn;
  auto hn = naive_layer_norm(lat, at->norm_latents);
  auto kv_in = torch::cat({naive_layer_norm(media, at->norm_media), hn}, 0);  // [18 + 5, D]
  auto q = torch::matmul(hn, at->q_proj->weight.t());
  auto k = torch::matmul(kv_in, at->k_proj->weight.t());
  auto v = torch::matmul(kv_in, at->v_proj->weight.t());
  auto attn = torch::zeros({5, 24});
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t i = 0; i < 5; ++i) {
      auto qi = q[i].narrow(0, h * 8, 8);
      auto s = torch::zeros({23});
      for (int64_t j = 0; j < 23; ++j) s[j] = (qi * k[j].narrow(0, h * 8, 8)).sum() / std::sqrt(8.0);
      auto p = torch::exp(s - s.max()) / torch::exp(s - s.max()).sum();
      attn[i].narrow(0, h * 8, 8).copy_(torch::matmul(p, v.narrow(1, h * 8, 8)));
    }
  lat = lat + torch::matmul(attn, at->o_proj->weight.t());
  auto& ff = layer->ffn;
  auto u = torch::matmul(naive_layer_norm(lat, ff->norm), ff->up_proj->weight.t());
  auto gelu = 0.5 * u * (1 + torch::erf(u / std::sqrt(2.0)));
  lat = lat + torch::matmul(gelu, ff->down_proj->weight.t());
  auto want = naive_layer_norm(lat, a->norm);
  EXPECT_LT(test::rel_err(got, want), 1e-5);
}

TEST(TemporalAggregator, ChunkedAttentionEqualsOneShot) {
  torch::NoGradGuard no_grad;
  auto cfg = small_config(4);
  cfg.num_latents = 37;
  auto a = make(cfg, 11);
  auto x = frames(8, 6, 24, 6);
  auto whole = a->forward(x);
  for (auto& l : a->layers) l->attn->max_score_bytes = 1;  // the smallest blocks: 16 query rows
  EXPECT_LT(test::rel_err(a->forward(x), whole), 1e-6);
}

TEST(TemporalAggregator, Bf16FollowsFp32) {
  torch::NoGradGuard no_grad;
  auto a = make(small_config(4), 12);
  TemporalAggregator b(small_config(4), torch::kBFloat16);
  auto src = a->named_parameters();
  for (auto& p : b->named_parameters()) p.value().copy_(src[p.key()]);
  auto x = frames(6, 6, 24, 7);
  EXPECT_LT(test::rel_err(b->forward(x).to(torch::kFloat32), a->forward(x)), 0.05);
}

TEST(TemporalAggregator, ConfigJsonIsStrict) {
  auto c = small_config(16);
  auto back = TemporalAggregatorConfig::from_json(c.to_json(), "t");
  EXPECT_EQ(back.to_json(), c.to_json());
  auto j = c.to_json();
  j["latents"] = 4;  // a typo of num_latents
  try {
    TemporalAggregatorConfig::from_json(j, "adapter.json");
    ADD_FAILURE() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("latents"), std::string::npos);
  }
  j = c.to_json();
  j["aggregation"] = 0;
  EXPECT_THROW(TemporalAggregatorConfig::from_json(j, "adapter.json"), Error);
  // n_params counts what the module allocates.
  TemporalAggregator a(c, torch::kFloat32);
  int64_t n = 0;
  for (const auto& p : a->parameters()) n += p.numel();
  EXPECT_EQ(n, c.n_params());
}

}  // namespace
}  // namespace llama_mm
