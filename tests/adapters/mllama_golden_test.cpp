// Parity of the whole Mllama path (vision encoder stages, projector, cross-attention masks, decoder layers,
// logits, greedy generation) with Hugging Face transformers 4.45.2, on the tiny random checkpoint of
// tests/fixtures/mllama_tiny (made by scripts/fixtures/gen_mllama_golden.py; every gate non-zero, P = 17
// tokens per tile so the padding path runs). The fixture was computed with transformers' behaviours:
// intermediate features = input of layer i (as Meta), and cross-attention rows not masked (unlike Meta).
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "tensor_util.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <map>

namespace llama_mm {
namespace {

using test::fixture;
using test::rel_err;

constexpr double kTol = 2e-5;  // fp32 eager vs LibTorch fp32 (mllama-spec.md §6.4)

struct Golden {
  SafetensorsFile file{fixture("mllama_tiny/golden.safetensors").string()};
  torch::Tensor operator()(const std::string& name) const { return file.get(name); }
  bool has(const std::string& name) const { return file.contains(name); }
};

MllamaBehaviour hf_behaviour() {
  MllamaBehaviour b;
  b.mask_cross_attn_output_rows = false;
  return b;
}

MllamaImageBatch images_of(const Golden& g, const std::string& c) {
  MllamaImageBatch b;
  b.pixel_values = g(c + ".pixel_values");
  b.aspect_ratio_ids = g(c + ".aspect_ratio_ids");
  b.aspect_ratio_mask = g(c + ".aspect_ratio_mask");
  auto nt = g(c + ".num_tiles");
  for (int64_t i = 0; i < nt.size(0); ++i) {
    b.num_tiles.emplace_back();
    for (int64_t m = 0; m < nt.size(1); ++m)
      if (nt[i][m].item<int64_t>() > 0) b.num_tiles.back().push_back(nt[i][m].item<int64_t>());
  }
  return b;
}

std::vector<int64_t> row_ids(const torch::Tensor& ids, int64_t b) {
  auto r = ids[b].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

class MllamaGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(MllamaGolden, VisionStagesAndProjectorMatch) {
  const std::string c = GetParam();
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  std::map<std::string, torch::Tensor> acts;
  torch::NoGradGuard no_grad;
  m->encode_images(images_of(g, c), [&](const std::string& n, const torch::Tensor& t) { acts[n] = t.clone(); });
  std::vector<std::string> stages = {"patch_embeds", "pre_tile", "pos", "ln_pre", "ln_post", "post_tile", "output"};
  for (int i = 0; i < m->config().vision.num_hidden_layers; ++i) stages.push_back("local." + std::to_string(i));
  for (int i = 0; i < m->config().vision.num_global_layers; ++i) stages.push_back("global." + std::to_string(i));
  for (const auto& s : stages) {
    auto want = g(c + ".vision." + s);
    auto got = acts.at("vision." + s);
    ASSERT_EQ(got.numel(), want.numel()) << s;
    EXPECT_LT(rel_err(got.reshape(want.sizes()), want), kTol) << s;
  }
  auto want = g(c + ".cross_attention_states");
  EXPECT_LT(rel_err(acts.at("cross_attention_states").reshape(want.sizes()), want), kTol);
}

TEST_P(MllamaGolden, CrossAttentionMasksMatch) {
  const std::string c = GetParam();
  Golden g;
  auto images = images_of(g, c);
  auto ids = g(c + ".input_ids");
  std::vector<std::vector<std::pair<int64_t, int64_t>>> spans;
  for (int64_t b = 0; b < ids.size(0); ++b) spans.push_back(image_token_spans(row_ids(ids, b), 128));
  auto dense = dense_cross_attention_mask(spans, images.num_tiles, 4, ids.size(1));
  EXPECT_TRUE(torch::equal(dense, g(c + ".cross_attention_mask")));
  auto mask = prepare_cross_attention_mask(dense, 17);
  EXPECT_TRUE(torch::equal(mask.additive, g(c + ".cross_mask")));
  EXPECT_TRUE(torch::equal(mask.row, g(c + ".row_mask")));
}

TEST_P(MllamaGolden, DecoderLayersAndLogitsMatch) {
  const std::string c = GetParam();
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  torch::NoGradGuard no_grad;
  auto states = m->encode_images(images_of(g, c));
  auto ctx = m->cross_context(states, g(c + ".cross_attention_mask"));
  std::map<std::string, torch::Tensor> acts;
  ForwardOptions o;
  o.all_logits = true;
  o.hook = [&](const std::string& n, const torch::Tensor& t) { acts[n] = t.clone(); };
  auto logits = m->forward(g(c + ".input_ids"), nullptr, &ctx, o);
  for (int64_t i = 0; i < m->config().n_layers_total(); ++i)
    EXPECT_LT(rel_err(acts.at("layer." + std::to_string(i) + ".out"), g(c + ".layer_output." + std::to_string(i))),
              kTol)
        << "layer " << i;
  EXPECT_LT(rel_err(logits, g(c + ".logits")), kTol);
}

INSTANTIATE_TEST_SUITE_P(Cases, MllamaGolden, ::testing::Values("A", "B"));

TEST(MllamaGoldenText, LeftPaddedBatchMatchesAtRealTokens) {
  // Case C: two samples with 1 and 2 images (one slot empty in the first), left padding, explicit positions.
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  torch::NoGradGuard no_grad;
  auto images = images_of(g, "C");
  auto states = m->encode_images(images);
  EXPECT_LT(rel_err(states.reshape(g("C.cross_attention_states").sizes()), g("C.cross_attention_states")), kTol);
  auto ids = g("C.input_ids");
  std::vector<std::vector<std::pair<int64_t, int64_t>>> spans;
  for (int64_t b = 0; b < ids.size(0); ++b) spans.push_back(image_token_spans(row_ids(ids, b), 128));
  auto dense = dense_cross_attention_mask(spans, images.num_tiles, 4, ids.size(1));
  ASSERT_TRUE(torch::equal(dense, g("C.cross_attention_mask")));
  auto ctx = m->cross_context(states, dense);
  ForwardOptions o;
  o.all_logits = true;
  o.attention_mask = g("C.attention_mask");
  o.position_ids = g("C.position_ids");
  auto logits = m->forward(ids, nullptr, &ctx, o);
  auto real = g("C.attention_mask").to(torch::kBool);  // padded rows are arbitrary in both
  EXPECT_LT(rel_err(logits.index({real}), g("C.logits").index({real})), kTol);
}

TEST(MllamaGoldenText, LeftPaddedBatchGreedyDecodingWithCachesMatches) {
  // GC: HF generate() on case C's batch: positions from the mask, one mask column and one cross-mask row
  // (a copy of the last) per new token, self K/V and cross K/V cached.
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  torch::NoGradGuard no_grad;
  auto images = images_of(g, "C");
  auto ids = g("GC.input_ids"), mask = g("C.attention_mask"), pos = g("C.position_ids");
  ASSERT_TRUE(torch::equal(ids, g("C.input_ids")));
  auto ctx = m->cross_context(m->encode_images(images), g("C.cross_attention_mask"));
  const int64_t B = ids.size(0), n_new = g("GC.output").size(1) - ids.size(1);
  KVCache cache(m->language_model->config(), B, ids.size(1) + n_new, torch::kFloat32, torch::kCPU);
  ForwardOptions o;
  o.attention_mask = mask;
  o.position_ids = pos;
  auto out = ids;
  for (int64_t step = 0; step < n_new; ++step) {
    auto logits = m->forward(step == 0 ? ids : out.narrow(1, out.size(1) - 1, 1), &cache, &ctx, o);
    EXPECT_LT(rel_err(logits.select(1, 0), g("GC.logits").select(1, step)), kTol) << "step " << step;
    auto next = logits.select(1, 0).argmax(-1).view({B, 1});
    out = torch::cat({out, next}, 1);
    o.attention_mask = torch::cat({o.attention_mask, torch::ones({B, 1}, torch::kInt64)}, 1);
    o.position_ids = o.position_ids.narrow(1, o.position_ids.size(1) - 1, 1) + 1;
  }
  EXPECT_TRUE(torch::equal(out, g("GC.output")));
}

TEST(MllamaGoldenText, TextOnlyLogitsMatch) {
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  ForwardOptions o;
  o.all_logits = true;
  torch::NoGradGuard no_grad;
  EXPECT_LT(rel_err(m->forward(g("T.input_ids"), nullptr, nullptr, o), g("T.logits")), kTol);
}

// Case G: generate_mllama's greedy tokens (image encode, cross K/V cached once, self K/V cached) equal HF's.
void expect_golden_greedy_generation(MllamaForConditionalGenerationImpl& m) {
  Golden g;
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  auto prompt64 = row_ids(g("G.input_ids"), 0);
  std::vector<int32_t> prompt(prompt64.begin(), prompt64.end());
  auto out = row_ids(g("G.output"), 0);
  GenerateParams gp;
  gp.n_predict = static_cast<int>(out.size() - prompt.size());
  gp.sampling.temperature = 0;
  gp.ignore_eos = true;
  auto r = generate_mllama(m, tok, prompt, images_of(g, "G"), gp);
  std::vector<int64_t> got(prompt64);
  got.insert(got.end(), r.tokens.begin(), r.tokens.end());
  EXPECT_EQ(got, out);
}

TEST(MllamaGoldenText, GreedyGenerationWithTheCrossCacheMatches) {
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  expect_golden_greedy_generation(*m);
}

TEST(MllamaGoldenText, EveryKeyLayoutLoadsTheSameWeights) {
  auto ref = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32);
  for (const char* dir : {"sharded", "v5_keys"}) {
    auto m = load_mllama(fixture(std::string("mllama_tiny/") + dir).string(), torch::kFloat32);
    auto a = ref->named_parameters(), b = m->named_parameters();
    for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << dir << ": " << p.key();
  }
}

TEST(MllamaGoldenText, OutputOfLayerSemanticsSelectsTheLayerOutputs) {
  // transformers >= 4.56 takes the output of layer i: with that switch the intermediate features must be the
  // golden local-layer outputs of the listed layers, interleaved as f = d·K + k.
  Golden g;
  MllamaBehaviour b = hf_behaviour();
  b.intermediate_semantics = IntermediateSemantics::OutputOfLayer;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, b);
  const auto& vc = m->config().vision;
  torch::NoGradGuard no_grad;
  auto images = images_of(g, "A");
  auto out = m->vision_model->forward(images.pixel_values, images.aspect_ratio_ids, images.aspect_ratio_mask);
  const int64_t D = vc.hidden_size, P = vc.num_patches(), Pp = P + vc.num_padding_patches(), T = vc.max_num_tiles;
  std::vector<torch::Tensor> layers;
  for (int64_t i : vc.intermediate_layers_indices)
    layers.push_back(g("A.vision.local." + std::to_string(i)).reshape({-1, T, Pp, D}).narrow(2, 0, P));
  auto want = torch::stack(layers, -1).flatten(-2);  // [N, T, P, D·K], f = d·K + k
  EXPECT_LT(rel_err(out.reshape({-1, T, P, vc.vision_output_dim}).narrow(-1, D, want.size(-1)), want), kTol);
}

}  // namespace
}  // namespace llama_mm

namespace llama_mm {
namespace {

TEST(MllamaGoldenBf16, Bf16ComputeStaysCloseToTheFp32Reference) {
  // The checkpoint holds bf16 weights; computing in bf16 rounds activations, so the bound is loose (§6.4: ~1e-2).
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kBFloat16, hf_behaviour());
  ASSERT_EQ(m->dtype(), torch::kBFloat16);
  torch::NoGradGuard no_grad;
  auto states = m->encode_images(images_of(g, "B"));
  auto ctx = m->cross_context(states, g("B.cross_attention_mask"));
  ForwardOptions o;
  o.all_logits = true;
  auto logits = m->forward(g("B.input_ids"), nullptr, &ctx, o);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  EXPECT_LT(rel_err(logits, g("B.logits")), 5e-2);
  EXPECT_TRUE(torch::equal(logits.argmax(-1), g("B.logits").argmax(-1)));
}

}  // namespace
}  // namespace llama_mm

// ---- On a CUDA device (skipped where there is none, tests/test_main.cpp) ----

namespace llama_mm {
namespace {

TEST(MllamaGoldenCuda, VisionStatesAndLogitsMatch_CUDA) {
  at::globalContext().setAllowTF32CuBLAS(false);  // fp32 means fp32 here, as in the reference
  at::globalContext().setAllowTF32CuDNN(false);   // the patch embedding is a convolution
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  m->to(torch::kCUDA);
  torch::NoGradGuard no_grad;
  for (const std::string c : {"A", "B"}) {
    auto states = m->encode_images(images_of(g, c));  // the batch is moved to the model's device
    ASSERT_TRUE(states.is_cuda());
    auto want = g(c + ".cross_attention_states");
    EXPECT_LT(rel_err(states.cpu().reshape(want.sizes()), want), 1e-4) << c;
    auto ctx = m->cross_context(states, g(c + ".cross_attention_mask").to(torch::kCUDA));
    ForwardOptions o;
    o.all_logits = true;
    auto logits = m->forward(g(c + ".input_ids").to(torch::kCUDA), nullptr, &ctx, o);
    EXPECT_LT(rel_err(logits.cpu(), g(c + ".logits")), 1e-4) << c;
  }
}

TEST(MllamaGoldenCuda, GreedyGenerationWithTheCrossCacheMatches_CUDA) {
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kFloat32, hf_behaviour());
  m->to(torch::kCUDA);
  expect_golden_greedy_generation(*m);
}

TEST(MllamaGoldenCuda, Bf16ComputeStaysCloseToTheFp32Reference_CUDA) {
  Golden g;
  auto m = load_mllama(fixture("mllama_tiny/model").string(), torch::kBFloat16, hf_behaviour());
  m->to(torch::kCUDA);
  torch::NoGradGuard no_grad;
  auto states = m->encode_images(images_of(g, "B"));
  auto ctx = m->cross_context(states, g("B.cross_attention_mask").to(torch::kCUDA));
  ForwardOptions o;
  o.all_logits = true;
  auto logits = m->forward(g("B.input_ids").to(torch::kCUDA), nullptr, &ctx, o).cpu().to(torch::kFloat32);
  EXPECT_LT(rel_err(logits, g("B.logits")), 5e-2);
}

}  // namespace
}  // namespace llama_mm
