// tests/adapters/speech_adapter_test.cpp: adapters/speech_adapter.cpp: config, frame rate, padding invariance,
// and the conv-as-GEMM against LibTorch's conv1d.
#include "adapters/speech_adapter.h"

#include "llm/error.h"
#include "tensor_util.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

SpeechAdapter tiny_adapter(uint64_t seed = 5) {
  SpeechAdapter a(SpeechAdapterConfig::tiny(32, 48), torch::kFloat32);
  init_random_conformer_weights(*a, seed);
  a->eval();
  return a;
}

TEST(SpeechAdapterConfig, JsonRoundTripAndErrorsNameTheKey) {
  auto c = SpeechAdapterConfig::paper(1536, 4096);
  auto back = SpeechAdapterConfig::from_json(c.to_json(), "test");
  EXPECT_EQ(back.to_json(), c.to_json());
  auto bad = c.to_json();
  bad["n_head"] = 8;
  try {
    SpeechAdapterConfig::from_json(bad, "adapter.json");
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("n_head"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("adapter.json"), std::string::npos) << e.what();
  }
  bad = c.to_json();
  bad["conv_kernel"] = 4;
  EXPECT_THROW(SpeechAdapterConfig::from_json(bad, "x"), Error);
  bad = c.to_json();
  bad["n_heads"] = 7;
  EXPECT_THROW(SpeechAdapterConfig::from_json(bad, "x"), Error);
}

TEST(SpeechAdapterConfig, PaperSizeAndFrameRate) {
  const auto c = SpeechAdapterConfig::paper(1536, 4096);
  EXPECT_GT(c.n_params(), 85'000'000);   // paper: ~100M (§2.4)
  EXPECT_LT(c.n_params(), 110'000'000);
  SpeechAdapter a(SpeechAdapterConfig::tiny(32, 48), torch::kFloat32);
  int64_t counted = 0;
  for (const auto& p : a->parameters()) counted += p.numel();
  EXPECT_EQ(counted, SpeechAdapterConfig::tiny(32, 48).n_params());
  EXPECT_EQ(c.output_frames(1500), 750);  // 60 s: 1500 encoder frames (40 ms) -> 750 vectors (80 ms)
  EXPECT_EQ(c.output_frames(25), 13);
  EXPECT_EQ(c.output_frames(1), 1);
}

TEST(SpeechAdapter, ShapesLengthsAndPaddingInvariance) {
  torch::NoGradGuard ng;
  auto a = tiny_adapter();
  const std::vector<int64_t> lens = {17, 9, 4};
  const int64_t T = 17;
  auto x = torch::randn({3, T, 32});
  auto out = a->forward(x, torch::tensor(lens));
  ASSERT_EQ(out.embeds.sizes(), (std::vector<int64_t>{3, 9, 48}));
  EXPECT_EQ(out.lengths[0].item<int64_t>(), 9);
  EXPECT_EQ(out.lengths[1].item<int64_t>(), 5);
  EXPECT_EQ(out.lengths[2].item<int64_t>(), 2);
  for (int64_t b = 0; b < 3; ++b) {
    auto alone = a->forward(x[b].narrow(0, 0, lens[b]).unsqueeze(0), {});
    const int64_t n = out.lengths[b].item<int64_t>();
    ASSERT_EQ(alone.embeds.size(1), n);
    EXPECT_LT(test::rel_err(out.embeds[b].narrow(0, 0, n), alone.embeds[0]), 1e-5) << "item " << b;
    if (n < 9) EXPECT_EQ(out.embeds[b].narrow(0, n, 9 - n).abs().max().item<float>(), 0.0f);
  }
  // Garbage in padded input frames changes nothing.
  auto x2 = x.clone();
  x2[1].narrow(0, 9, 8).fill_(1e3);
  auto out2 = a->forward(x2, torch::tensor(lens));
  EXPECT_TRUE(torch::equal(out.embeds, out2.embeds));
}

TEST(SpeechAdapter, ConvMatchesLibTorchConv1d) {
  torch::NoGradGuard ng;
  auto a = tiny_adapter(9);
  auto x = torch::randn({2, 11, 32});
  torch::Tensor conv;
  a->forward(x, {}, [&](const std::string& name, const torch::Tensor& v) {
    if (name == "adapter.conv") conv = v.clone();
  });
  auto ref = torch::conv1d(x.transpose(1, 2), a->conv_weight, a->conv_bias, /*stride=*/2, /*padding=*/1).transpose(1, 2);
  ASSERT_EQ(conv.sizes(), ref.sizes());
  EXPECT_LT(test::rel_err(conv, ref), 1e-5);
}

}  // namespace
}  // namespace llama_mm
