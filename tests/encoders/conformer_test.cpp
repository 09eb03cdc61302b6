// tests/encoders/conformer_test.cpp: encoders/conformer.cpp: checkpoint key names, frame stacking and rate,
// padding invariance for both conv norms, one layer against an independent naive reference, bf16 against f32,
// feature normalisation, input checks.
#include "encoders/conformer.h"

#include "tensor_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace llama_mm {
namespace {

// Random weights with non-trivial norms, biases and statistics, so the reference checks every term.
ConformerEncoder make_encoder(const std::string& conv_norm = "layer_norm", torch::Dtype dtype = torch::kFloat32,
                              uint64_t seed = 1) {
  auto c = ConformerConfig::tiny();
  c.conv_norm = conv_norm;
  ConformerEncoder enc(c, torch::kFloat32);
  init_random_conformer_weights(*enc, seed);
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed + 100);
  for (auto& p : enc->named_parameters()) {
    const auto& k = p.key();
    if (k.find("bias") != std::string::npos) p.value().normal_(0, 0.1, gen);
    if (k.find("norm") != std::string::npos && k.find("weight") != std::string::npos) p.value().normal_(1, 0.2, gen);
    if (k == "feature_mean") p.value().normal_(-0.5, 0.3, gen);
    if (k == "feature_std") p.value().uniform_(0.5, 1.5, gen);
  }
  for (auto& b : enc->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.2, gen);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0, gen);
  }
  if (dtype != torch::kFloat32) enc->to(dtype);
  return enc;
}

// ---- Independent reference (one sequence x [T, D], every frame real), written from the paper's formulas. ----
torch::Tensor ln(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, double eps) {
  auto mu = x.mean(-1, true), var = (x - mu).pow(2).mean(-1, true);
  return (x - mu) / torch::sqrt(var + eps) * w + b;
}
torch::Tensor ln(const torch::Tensor& x, const LayerNorm& n) { return ln(x, n->weight, n->bias, n->eps); }
torch::Tensor lin(const torch::Tensor& x, const Linear& l) { return torch::matmul(x, l->weight.t()) + l->bias; }
torch::Tensor swish(const torch::Tensor& x) { return x * torch::sigmoid(x); }
torch::Tensor ffn(const torch::Tensor& x, const MacaronFeedForward& f) {
  return lin(swish(lin(ln(x, f->norm), f->ff->up)), f->ff->down);
}

torch::Tensor attention(const torch::Tensor& x, const RotarySelfAttention& a) {
  const int64_t T = x.size(0), H = a->n_heads, Dh = a->head_dim, half = Dh / 2;
  auto q = lin(x, a->q_proj), k = lin(x, a->k_proj), v = lin(x, a->v_proj);
  auto pos = torch::arange(T, torch::kFloat64).unsqueeze(1);
  auto freq = torch::pow(10000.0, -2.0 * torch::arange(half, torch::kFloat64) / Dh).unsqueeze(0);
  auto cos = torch::cos(pos * freq).to(torch::kFloat32), sin = torch::sin(pos * freq).to(torch::kFloat32);
  auto out = torch::empty({T, H * Dh});
  for (int64_t h = 0; h < H; ++h) {
    auto rot = [&](const torch::Tensor& m) {  // (a0, a1) -> (a0 cos - a1 sin, a1 cos + a0 sin)
      auto a0 = m.narrow(1, h * Dh, half), a1 = m.narrow(1, h * Dh + half, half);
      return torch::cat({a0 * cos - a1 * sin, a1 * cos + a0 * sin}, 1);
    };
    auto s = torch::matmul(rot(q), rot(k).t()) / std::sqrt(static_cast<double>(Dh));
    out.narrow(1, h * Dh, Dh).copy_(torch::matmul(torch::softmax(s, 1), v.narrow(1, h * Dh, Dh)));
  }
  return lin(out, a->o_proj);
}

torch::Tensor conv_module(const torch::Tensor& x, const ConformerConvModule& c, bool batch_norm) {
  const int64_t T = x.size(0), D = x.size(1);
  auto h = lin(ln(x, c->norm), c->pointwise1);                          // [T, 2D]
  auto g = h.narrow(1, 0, D) * torch::sigmoid(h.narrow(1, D, D));       // GLU
  const auto w = c->depthwise->weight, bias = c->depthwise->bias;      // [D, 1, K], [D]
  const int64_t K = w.size(2);
  auto y = torch::zeros({T, D});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t d = 0; d < D; ++d) {
      double acc = bias[d].item<double>();
      for (int64_t j = 0; j < K; ++j) {
        const int64_t s = t + j - K / 2;  // "same" zero padding
        if (s >= 0 && s < T) acc += g[s][d].item<double>() * w[d][0][j].item<double>();
      }
      y[t][d] = acc;
    }
  const auto& n = c->conv_norm;
  if (batch_norm) y = (y - n->running_mean) / torch::sqrt(n->running_var + n->eps) * n->weight + n->bias;
  else y = ln(y, n->weight, n->bias, n->eps);
  return lin(swish(y), c->pointwise2);
}

TEST(Conformer, OneLayerMatchesANaiveReference) {
  torch::NoGradGuard ng;
  for (const std::string norm : {"layer_norm", "batch_norm"}) {
    auto enc = make_encoder(norm);
    auto layer = enc->layers[0];
    auto x = torch::randn({1, 11, 32});
    auto y = layer->forward(x, {});
    auto r = x[0] + 0.5 * ffn(x[0], layer->ffn1);
    r = r + attention(ln(r, layer->attn_norm), layer->attn);
    r = r + conv_module(r, layer->conv, norm == "batch_norm");
    r = r + 0.5 * ffn(r, layer->ffn2);
    r = ln(r, layer->final_norm);
    EXPECT_LT(test::rel_err(y[0], r), 1e-5) << norm;
  }
}

TEST(Conformer, ParameterNamesAreTheCheckpointKeys) {
  auto c = ConformerConfig::tiny();
  c.conv_norm = "batch_norm";
  ConformerEncoder enc(c, torch::kFloat32);
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& p : enc->named_parameters()) got[p.key()] = p.value().sizes().vec();
  for (const auto& b : enc->named_buffers()) got[b.key()] = b.value().sizes().vec();
  const int64_t D = 32, F = 64, K = 7;
  std::map<std::string, std::vector<int64_t>> want = {
      {"feature_mean", {80}}, {"feature_std", {80}}, {"input_proj.weight", {D, 320}}, {"input_proj.bias", {D}}};
  for (int i = 0; i < 2; ++i) {
    const std::string l = "layers." + std::to_string(i) + ".";
    for (const std::string f : {"ffn1.", "ffn2."}) {
      want[l + f + "norm.weight"] = want[l + f + "norm.bias"] = {D};
      want[l + f + "ff.up.weight"] = {F, D}, want[l + f + "ff.up.bias"] = {F};
      want[l + f + "ff.down.weight"] = {D, F}, want[l + f + "ff.down.bias"] = {D};
    }
    for (const std::string n : {"attn_norm.", "final_norm.", "conv.norm.", "conv.conv_norm."})
      want[l + n + "weight"] = want[l + n + "bias"] = {D};
    want[l + "conv.conv_norm.running_mean"] = want[l + "conv.conv_norm.running_var"] = {D};
    for (const std::string p : {"q", "k", "v", "o"})
      want[l + "attn." + p + "_proj.weight"] = {D, D}, want[l + "attn." + p + "_proj.bias"] = {D};
    want[l + "conv.pointwise1.weight"] = {2 * D, D}, want[l + "conv.pointwise1.bias"] = {2 * D};
    want[l + "conv.depthwise.weight"] = {D, 1, K}, want[l + "conv.depthwise.bias"] = {D};
    want[l + "conv.pointwise2.weight"] = {D, D}, want[l + "conv.pointwise2.bias"] = {D};
  }
  EXPECT_EQ(got, want);
  EXPECT_FALSE(enc->feature_mean.requires_grad());  // global statistics, not trained
  EXPECT_TRUE(enc->input_proj->weight.requires_grad());
}

TEST(Conformer, RandomInitIsSeeded) {
  auto a = make_encoder("layer_norm", torch::kFloat32, 3), b = make_encoder("layer_norm", torch::kFloat32, 3);
  auto c = make_encoder("layer_norm", torch::kFloat32, 4);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  EXPECT_TRUE(torch::equal(pa["layers.1.conv.depthwise.weight"], pb["layers.1.conv.depthwise.weight"]));
  EXPECT_FALSE(torch::equal(pa["layers.1.conv.depthwise.weight"], pc["layers.1.conv.depthwise.weight"]));
  EXPECT_TRUE(torch::isfinite(pa["input_proj.weight"]).all().item<bool>());
}

TEST(Conformer, StackingAndFrameRate) {
  torch::NoGradGuard ng;
  auto enc = make_encoder();
  torch::Tensor stacked;
  std::vector<std::string> names;
  auto mel = torch::randn({2, 100, 80});
  auto out = enc->forward(mel, torch::tensor({100, 37}), [&](const std::string& name, const torch::Tensor& v) {
    names.push_back(name);
    if (name == "conformer.input_proj") stacked = v.clone();
  });
  EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{2, 25, 32}));
  EXPECT_EQ(out.lengths.scalar_type(), torch::kInt64);
  EXPECT_EQ(out.lengths[0].item<int64_t>(), 25);
  EXPECT_EQ(out.lengths[1].item<int64_t>(), 10);  // ceil(37 / 4)
  EXPECT_EQ(names, (std::vector<std::string>{"conformer.input_proj", "conformer.layer.0", "conformer.layer.1"}));
  // Encoder frame 3 of item 0 projects mel frames 12..15, normalised and concatenated frame-major.
  auto norm = (mel[0].narrow(0, 12, 4) - enc->feature_mean) / enc->feature_std;
  auto ref = torch::matmul(norm.reshape({1, 320}), enc->input_proj->weight.t()) + enc->input_proj->bias;
  EXPECT_LT(test::rel_err(stacked[0][3], ref[0]), 1e-5);
  // Item 1's last frame holds mel frame 36 and three zeroed padding frames.
  auto last = torch::cat({((mel[1][36] - enc->feature_mean) / enc->feature_std), torch::zeros({240})});
  EXPECT_LT(test::rel_err(stacked[1][9], torch::matmul(enc->input_proj->weight, last) + enc->input_proj->bias), 1e-5);
  // T not a multiple of 4: 101 frames -> 26.
  auto odd = enc->forward(torch::randn({1, 101, 80}), {});
  EXPECT_EQ(odd.hidden.size(1), 26);
  EXPECT_EQ(odd.lengths[0].item<int64_t>(), 26);
}

TEST(Conformer, PaddedBatchEqualsEachItemAlone) {
  torch::NoGradGuard ng;
  for (const std::string norm : {"layer_norm", "batch_norm"}) {
    auto enc = make_encoder(norm, torch::kFloat32, 9);
    const std::vector<int64_t> lens = {41, 13, 30};
    auto mel = torch::randn({3, 41, 80}) * 2;
    mel[1].narrow(0, 13, 28).fill_(std::nanf(""));  // whatever lies in the padding must not matter
    mel[2].narrow(0, 30, 11).fill_(1e4);
    auto out = enc->forward(mel, torch::tensor(lens));
    ASSERT_EQ(out.hidden.size(1), 11);
    for (int64_t b = 0; b < 3; ++b) {
      auto alone = enc->forward(mel[b].narrow(0, 0, lens[b]).unsqueeze(0), {});
      const int64_t n = out.lengths[b].item<int64_t>();
      ASSERT_EQ(alone.hidden.size(1), n);
      EXPECT_LT(test::rel_err(out.hidden[b].narrow(0, 0, n), alone.hidden[0]), 1e-5) << norm << " item " << b;
      if (n < out.hidden.size(1))
        EXPECT_TRUE(torch::equal(out.hidden[b].narrow(0, n, out.hidden.size(1) - n), torch::zeros({11 - n, 32})))
            << norm << " item " << b;
    }
  }
}

TEST(Conformer, Bf16IsCloseToF32) {
  torch::NoGradGuard ng;
  auto f32 = make_encoder("layer_norm", torch::kFloat32, 4);
  auto bf16 = make_encoder("layer_norm", torch::kBFloat16, 4);
  auto mel = torch::randn({2, 64, 80});
  auto lens = torch::tensor({64, 50});
  auto a = f32->forward(mel, lens), b = bf16->forward(mel.to(torch::kBFloat16), lens);
  EXPECT_EQ(b.hidden.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::isfinite(b.hidden.to(torch::kFloat32)).all().item<bool>());
  EXPECT_LT(test::rel_err(b.hidden, a.hidden), 0.05);
  EXPECT_TRUE(torch::equal(b.lengths, a.lengths));
}

TEST(Conformer, FeatureStatisticsAreApplied) {
  torch::NoGradGuard ng;
  auto enc = make_encoder();
  auto mel = torch::randn({1, 16, 80});
  auto a = enc->forward(mel, {}).hidden;
  enc->feature_mean.add_(0.5);
  EXPECT_GT(test::rel_err(enc->forward(mel, {}).hidden, a), 1e-3);
  // ... exactly as a shift of the input would be,
  EXPECT_LT(test::rel_err(enc->forward(mel + 0.5, {}).hidden, a), 1e-5);
  // and the std scales it.
  enc->feature_mean.sub_(0.5);
  enc->feature_std.mul_(2);
  EXPECT_LT(test::rel_err(enc->forward((mel - enc->feature_mean) * 2 + enc->feature_mean, {}).hidden, a), 1e-5);
}

TEST(Conformer, RejectsBadInputs) {
  torch::NoGradGuard ng;
  auto enc = make_encoder();
  EXPECT_THROW(enc->forward(torch::randn({1, 16, 40}), {}), c10::Error);             // wrong n_mels
  EXPECT_THROW(enc->forward(torch::randn({1, 0, 80}), {}), c10::Error);              // empty
  EXPECT_THROW(enc->forward(torch::randn({2, 16, 80}), torch::tensor({16})), c10::Error);      // [1] for B = 2
  EXPECT_THROW(enc->forward(torch::randn({2, 16, 80}), torch::tensor({16, 17})), c10::Error);  // > T
  auto c = ConformerConfig::tiny();
  c.conv_norm = "group_norm";
  EXPECT_THROW(ConformerEncoder(c, torch::kFloat32), c10::Error);
}

}  // namespace
}  // namespace llama_mm
