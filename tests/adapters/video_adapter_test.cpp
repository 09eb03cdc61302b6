// Tests adapters/video_adapter and its place in the Mllama forward pass: the fusion schedule, zero gates leaving
// the image model's logits unchanged, text before the video untouched, encode_video shapes, the adapter file.
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "tensor_util.h"
#include "test_util.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

constexpr int64_t kImg = 512, kVid = 513;  // tiny preset: <|image|>, and the video token after it

TEST(VideoFusionSchedule, EveryFourthImageCrossLayerFromTheEnd) {
  EXPECT_EQ(video_fusion_schedule(8), (std::vector<int64_t>{3, 7}));               // 11B
  EXPECT_EQ(video_fusion_schedule(20), (std::vector<int64_t>{3, 7, 11, 15, 19}));  // 90B
  EXPECT_EQ(video_fusion_schedule(2), (std::vector<int64_t>{1}));
  EXPECT_EQ(video_fusion_schedule(1), (std::vector<int64_t>{0}));
  EXPECT_TRUE(video_fusion_schedule(0).empty());
  auto paper = VideoAdapterConfig::preset("paper-8b", MllamaConfig::preset("11b"));
  EXPECT_EQ(paper.before_cross_layers, (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(paper.aggregator.aggregation, 32);
  EXPECT_EQ(paper.aggregator.num_latents, 1601);
  EXPECT_EQ(paper.video_token_index, 128257);
  // The paper's budget (§7.2): aggregator + video cross layers ~0.6B at 8B, ~4.6B at 70B.
  EXPECT_NEAR(paper.n_params(MllamaConfig::preset("11b").text) / 1e9, 0.6, 0.1);
  auto p70 = VideoAdapterConfig::preset("paper-70b", MllamaConfig::preset("90b"));
  EXPECT_NEAR(p70.n_params(MllamaConfig::preset("90b").text) / 1e9, 4.6, 0.3);
}

struct Fixture {
  MllamaForConditionalGeneration model{nullptr};
  Fixture(bool zero_gates, uint64_t seed = 7) {
    model = MllamaForConditionalGeneration(MllamaConfig::preset("tiny"), torch::kFloat32);
    init_random_mllama_weights(*model, seed);
    model->eval();
    VideoAdapter adapter(VideoAdapterConfig::preset("tiny", model->config()), model->config().text, torch::kFloat32);
    init_random_video_adapter(*adapter, seed + 1, zero_gates);
    adapter->eval();
    model->attach_video_adapter(adapter, "test adapter");
  }
};

// `n` frames (or images) of one tile each with random pixels.
MllamaImageBatch random_frames(const MllamaConfig& cfg, int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t T = cfg.vision.max_num_tiles, S = cfg.vision.image_size;
  MllamaImageBatch b;
  b.pixel_values = torch::zeros({1, n, T, 3, S, S});
  b.pixel_values.narrow(2, 0, 1).normal_(0, 1, gen);
  b.aspect_ratio_ids = torch::ones({1, n}, torch::kInt64);
  b.aspect_ratio_mask = torch::zeros({1, n, T}, torch::kInt64);
  b.aspect_ratio_mask.narrow(2, 0, 1).fill_(1);
  b.num_tiles = {std::vector<int64_t>(n, 1)};
  return b;
}

// All-position logits with the given image (may be null) and video (may be null).
torch::Tensor logits(MllamaForConditionalGenerationImpl& m, const std::vector<int64_t>& ids,
                     const MllamaImageBatch* image, const MllamaImageBatch* video) {
  torch::NoGradGuard no_grad;
  ForwardOptions o;
  o.all_logits = true;
  const int64_t len = static_cast<int64_t>(ids.size());
  CrossAttentionContext ctx;
  if (image) {
    auto dense = dense_cross_attention_mask({image_token_spans(ids, kImg)}, image->num_tiles,
                                            m.config().vision.max_num_tiles, len);
    ctx = m.cross_context(m.encode_images(*image), dense);
  }
  if (video) {
    auto eff = m.encode_video(*video);  // [G, L, D]
    auto dense = dense_cross_attention_mask({image_token_spans(ids, kVid)}, {{eff.size(0)}}, eff.size(0), len);
    m.add_video_context(ctx, eff.reshape({1, -1, eff.size(-1)}), dense);
  }
  const bool any = image || video;
  return m.forward(torch::tensor(ids, torch::kInt64).view({1, -1}), nullptr, any ? &ctx : nullptr, o);
}

TEST(VideoAdapter, ZeroGatesLeaveTheImageModelsLogitsUnchanged) {
  Fixture f(/*zero_gates=*/true);
  auto& m = *f.model;
  const std::vector<int64_t> ids = {1, kImg, kVid, 40, 41, 42, 43};
  auto image = random_frames(m.config(), 1, 3);
  auto video = random_frames(m.config(), 6, 4);
  auto without = logits(m, ids, &image, nullptr);
  auto with = logits(m, ids, &image, &video);
  EXPECT_TRUE(torch::equal(with, without));
  // Video alone with zero gates: exactly the text-only (frozen Llama) logits.
  EXPECT_TRUE(torch::equal(logits(m, ids, nullptr, &video), logits(m, ids, nullptr, nullptr)));
}

TEST(VideoAdapter, TheVideoReachesOnlyTheTextAfterIt) {
  Fixture f(/*zero_gates=*/false);
  auto& m = *f.model;
  const std::vector<int64_t> ids = {1, 40, 41, kVid, 42, 43, 44};  // the video token at position 3
  auto video = random_frames(m.config(), 6, 4);
  auto base = logits(m, ids, nullptr, nullptr);
  auto with = logits(m, ids, nullptr, &video);
  EXPECT_TRUE(torch::equal(with.narrow(1, 0, 3), base.narrow(1, 0, 3)));  // before the video: unchanged
  EXPECT_GT(test::rel_err(with.narrow(1, 3, 4), base.narrow(1, 3, 4)), 1e-3);
  // A different video gives different logits; the same one the same.
  auto other = random_frames(m.config(), 6, 5);
  EXPECT_GT(test::rel_err(logits(m, ids, nullptr, &other).narrow(1, 3, 4), with.narrow(1, 3, 4)), 1e-4);
  EXPECT_TRUE(torch::equal(logits(m, ids, nullptr, &video), with));
}

TEST(VideoAdapter, EncodeVideoGivesOneEffectiveFramePerWindow) {
  Fixture f(false);
  auto& m = *f.model;
  torch::NoGradGuard no_grad;
  const auto& agg = m.video_adapter->config().aggregator;  // tiny: 4 frames per window, 8 latents
  for (int64_t F : {1, 4, 6, 9}) {
    auto eff = m.encode_video(random_frames(m.config(), F, 8), /*chunk=*/4);
    EXPECT_EQ(eff.sizes(), (std::vector<int64_t>{(F + 3) / 4, agg.num_latents, m.config().text.hidden_size}));
  }
  // Chunking the vision encoder does not change the result.
  auto frames = random_frames(m.config(), 6, 9);
  EXPECT_LT(test::rel_err(m.encode_video(frames, 1), m.encode_video(frames, 6)), 1e-5);
}

TEST(VideoAdapter, GenerateCountsVideoTokensAndNeedsAnAdapter) {
  Fixture f(false);
  auto& m = *f.model;
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  GenerateParams p;
  p.n_predict = 4;
  p.sampling.temperature = 0;
  const std::vector<int32_t> prompt = {1, static_cast<int32_t>(kVid), 40, 41};
  auto video = random_frames(m.config(), 5, 4);
  auto r = generate_mllama(m, tok, prompt, {}, p, {}, {video});
  EXPECT_EQ(r.tokens.size(), 4u);
  EXPECT_EQ(r.timings.n_video_frames, 5);
  EXPECT_THROW(generate_mllama(m, tok, prompt, {}, p, {}, {video, video}), Error);  // 1 token, 2 videos
  auto again = generate_mllama(m, tok, prompt, {}, p, {}, {video});
  EXPECT_EQ(again.tokens, r.tokens);
  m.attach_video_adapter(nullptr, "none");
  EXPECT_THROW(generate_mllama(m, tok, prompt, {}, p, {}, {video}), Error);
}

TEST(VideoAdapter, FileRoundTripAndChecks) {
  Fixture f(false);
  auto& m = *f.model;
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  const auto base = BaseModelInfo::of(m.config().text, tok);
  test::TempDir dir;
  const auto path = (dir / "video.safetensors").string();
  save_video_adapter(*m.video_adapter, base, path);
  auto back = load_video_adapter(path, base, m.config());
  EXPECT_EQ(back->config().to_json(), m.video_adapter->config().to_json());
  auto want = m.video_adapter->named_parameters();
  for (const auto& p : back->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), want[p.key()])) << p.key();

  // Another base width is refused, naming the field.
  auto other = base;
  other.hidden_size += 1;
  try {
    load_video_adapter(path, other, m.config());
    ADD_FAILURE() << "wrong base accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::ModelLoad);
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos) << e.what();
  }
  // A model with fewer image cross layers than the adapter names.
  auto cfg = m.config();
  auto adapter_cfg = m.video_adapter->config();
  adapter_cfg.before_cross_layers = {5};
  try {
    adapter_cfg.check_fits(cfg, "a.safetensors");
    ADD_FAILURE() << "layer 5 of 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("before_cross_layers"), std::string::npos) << e.what();
  }
  adapter_cfg = m.video_adapter->config();
  adapter_cfg.video_token_index = kImg;
  EXPECT_THROW(adapter_cfg.check_fits(cfg, "a.safetensors"), Error);
  // A speech adapter file is not a video adapter.
  EXPECT_THROW(read_adapter_file(path, "speech"), Error);
}

}  // namespace
}  // namespace llama_mm
