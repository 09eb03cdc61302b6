// Tests for adapters/mllama_model.cpp that need no reference implementation: behaviours that follow from the
// architecture (mllama-spec.md §3) checked on a random tiny model. Parity with transformers is in
// mllama_golden_test.cpp.
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "tensor_util.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

namespace llama_mm {
namespace {

using test::fixture;
using test::rel_err;

MllamaForConditionalGeneration tiny_model(bool mask_rows = true, uint64_t seed = 7) {
  auto cfg = MllamaConfig::preset("tiny");
  cfg.mask_cross_attn_output_rows = mask_rows;
  MllamaForConditionalGeneration m(cfg, torch::kFloat32);
  init_random_mllama_weights(*m, seed);
  m->eval();
  return m;
}

// `n` images of `tiles` valid tiles each (aspect ratio id 1..), pixel values drawn from `seed`.
MllamaImageBatch random_images(const MllamaConfig& cfg, int64_t n, int64_t tiles, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t T = cfg.vision.max_num_tiles, S = cfg.vision.image_size;
  MllamaImageBatch b;
  b.pixel_values = torch::zeros({1, n, T, 3, S, S});
  b.pixel_values.narrow(2, 0, tiles).normal_(0, 1, gen);
  b.aspect_ratio_ids = torch::full({1, n}, tiles == 1 ? 1 : tiles == 2 ? 2 : 6, torch::kInt64);  // (1,1) (1,2) (2,2)
  b.aspect_ratio_mask = torch::zeros({1, n, T}, torch::kInt64);
  b.aspect_ratio_mask.narrow(2, 0, tiles).fill_(1);
  b.num_tiles = {std::vector<int64_t>(n, tiles)};
  return b;
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kInt64).view({1, -1}); }

// All-position logits of the fused model for `ids` with `images` (none: text only).
torch::Tensor logits_of(MllamaForConditionalGenerationImpl& m, const std::vector<int64_t>& ids,
                        const MllamaImageBatch* images) {
  torch::NoGradGuard no_grad;
  ForwardOptions o;
  o.all_logits = true;
  if (!images) return m.forward(ids_tensor(ids), nullptr, nullptr, o);
  auto states = m.encode_images(*images);
  auto dense = dense_cross_attention_mask({image_token_spans(ids, m.config().image_token_index)}, images->num_tiles,
                                          m.config().vision.max_num_tiles, static_cast<int64_t>(ids.size()));
  auto ctx = m.cross_context(states, dense);
  return m.forward(ids_tensor(ids), nullptr, &ctx, o);
}

constexpr int64_t kImg = 512;  // tiny preset's <|image|>

TEST(MllamaModel, ZeroGatesGiveExactlyTheFrozenLlama) {
  // The adapters built on the tiny Llama text checkpoint, cross gates at zero: with an image in the prompt the
  // logits are bit-identical to the bare LlamaForCausalLM's (the image token uses the added embedding row).
  const auto text_dir = fixture("llama_tiny/untied").string();
  auto cfg = MllamaConfig::preset("tiny");
  cfg.text = LlamaConfig::from_file(text_dir);
  cfg.cross_attention_layers = {1};
  cfg.image_token_index = cfg.text.vocab_size;
  MllamaForConditionalGeneration m(cfg, torch::kFloat32);
  init_random_mllama_weights(*m, 3);
  load_text_weights(*m, text_dir);
  torch::NoGradGuard no_grad;
  for (auto& l : m->cross_layers) l->cross_attn_attn_gate.zero_(), l->cross_attn_mlp_gate.zero_();

  std::vector<int64_t> ids = {1, cfg.image_token_index, 10, 11, 12, 13};
  auto images = random_images(cfg, 1, 2, 5);
  auto fused = logits_of(*m, ids, &images);
  ForwardOptions o;
  o.all_logits = true;
  std::vector<int64_t> text_ids(ids);
  auto bare_model = load_llama(text_dir, torch::kFloat32);
  // The bare Llama has no row for <|image|>: give it the same embedding through hidden_from_embeds.
  auto embeds = m->language_model->embed(ids_tensor(ids));
  auto bare = bare_model->logits(bare_model->hidden_from_embeds(embeds, nullptr, o), true);
  EXPECT_TRUE(torch::equal(fused, bare));
  // And the text rows of the embedding are the checkpoint's.
  EXPECT_TRUE(torch::equal(m->language_model->model->embed_tokens_weight.narrow(0, 0, cfg.text.vocab_size),
                           bare_model->model->embed_tokens_weight));
  // With the gates open the image changes the logits after the image token.
  for (auto& l : m->cross_layers) l->cross_attn_attn_gate.fill_(0.5), l->cross_attn_mlp_gate.fill_(0.5);
  auto open = logits_of(*m, ids, &images);
  EXPECT_GT((open - bare).abs().max().item<double>(), 1e-3);
}

TEST(MllamaModel, TextOnlyPromptsSkipTheCrossLayers) {
  auto m = tiny_model();
  std::vector<std::string> seen;
  ForwardOptions o;
  o.all_logits = true;
  o.hook = [&](const std::string& name, const torch::Tensor&) { seen.push_back(name); };
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids = {256, 72, 105, 33};
  auto fused = m->forward(ids_tensor(ids), nullptr, nullptr, o);
  ForwardOptions plain;
  plain.all_logits = true;
  auto bare = m->language_model->forward(ids_tensor(ids), nullptr, plain);
  EXPECT_TRUE(torch::equal(fused, bare));
  // Hooks name HF's interleaved indices; cross layers 1 and 4 never ran.
  for (const char* name : {"layer.0.out", "layer.2.out", "layer.3.out", "layer.5.out"})
    EXPECT_NE(std::find(seen.begin(), seen.end(), name), seen.end()) << name;
  for (const char* name : {"layer.1.out", "layer.4.out"})
    EXPECT_EQ(std::find(seen.begin(), seen.end(), name), seen.end()) << name;
}

TEST(MllamaModel, TokensBeforeTheFirstImageSeeNoImageWithMetaRowMasking) {
  std::vector<int64_t> ids = {256, 65, 66, kImg, 67, 68};
  auto meta = tiny_model(true), hf = tiny_model(false);
  auto images = random_images(meta->config(), 1, 4, 11);
  auto text_only = logits_of(*meta, ids, nullptr);
  auto with_img = logits_of(*meta, ids, &images);
  // Meta/vLLM: rows with no visible image get exactly zero from the cross layers.
  EXPECT_TRUE(torch::equal(with_img.narrow(1, 0, 3), text_only.narrow(1, 0, 3)));
  EXPECT_GT((with_img.narrow(1, 3, 3) - text_only.narrow(1, 3, 3)).abs().max().item<double>(), 1e-3);
  // transformers: those rows receive the gated attention over all vision tokens (issue #39379).
  auto hf_img = logits_of(*hf, ids, &images);
  EXPECT_GT((hf_img.narrow(1, 0, 3) - text_only.narrow(1, 0, 3)).abs().max().item<double>(), 1e-4);
}

TEST(MllamaModel, EachTokenSeesTheImagesThePromptGivesIt) {
  auto m = tiny_model();
  std::vector<int64_t> ids = {256, 65, kImg, 66, 67, kImg, 68, 69};
  auto a = random_images(m->config(), 2, 2, 1);
  auto b = a;
  b.pixel_values = a.pixel_values.clone();
  b.pixel_values[0][1].narrow(0, 0, 2).normal_(0, 1);  // change image 1 (the second) only
  auto la = logits_of(*m, ids, &a), lb = logits_of(*m, ids, &b);
  // Positions 0..4 come before the second <|image|> (position 5): they cannot see it.
  EXPECT_TRUE(torch::equal(la.narrow(1, 0, 5), lb.narrow(1, 0, 5)));
  EXPECT_GT((la.narrow(1, 5, 3) - lb.narrow(1, 5, 3)).abs().max().item<double>(), 1e-4);
  // Changing a padding tile's pixels of image 0 changes everything from its token on (padding tiles take part
  // in the vision encoder's attention: mllama-spec.md §2.3 item 7).
  auto c = a;
  c.pixel_values = a.pixel_values.clone();
  c.pixel_values[0][0][3].fill_(0.5);
  auto lc = logits_of(*m, ids, &c);
  EXPECT_TRUE(torch::equal(la.narrow(1, 0, 2), lc.narrow(1, 0, 2)));
  EXPECT_GT((la.narrow(1, 2, 6) - lc.narrow(1, 2, 6)).abs().max().item<double>(), 1e-5);
}

TEST(MllamaModel, CachedGenerationEqualsFullForward) {
  auto m = tiny_model();
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  std::vector<int32_t> prompt = {256, kImg, 65, 66, kImg, 67};
  auto images = random_images(m->config(), 2, 3, 9);
  images.aspect_ratio_ids.fill_(3);  // (1,3)
  GenerateParams gp;
  gp.n_predict = 6;
  gp.sampling.temperature = 0;
  gp.ignore_eos = true;
  gp.n_batch = 4;  // prefill in two chunks: the mask rows follow the positions
  auto r = generate_mllama(*m, tok, prompt, images, gp);
  ASSERT_EQ(r.tokens.size(), 6u);
  EXPECT_EQ(r.timings.n_images, 2);
  // Greedy tokens re-derived from one full forward over prompt + generated tokens.
  std::vector<int64_t> all(prompt.begin(), prompt.end());
  for (int32_t t : r.tokens) all.push_back(t);
  auto full = logits_of(*m, all, &images);
  for (size_t k = 0; k < r.tokens.size(); ++k)
    EXPECT_EQ(full[0][prompt.size() - 1 + k].argmax().item<int64_t>(), r.tokens[k]) << "step " << k;
}

TEST(MllamaModel, PromptsMustHaveOneImagePerImageToken) {
  auto m = tiny_model();
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  GenerateParams gp;
  gp.n_predict = 1;
  auto images = random_images(m->config(), 2, 1, 1);
  try {
    generate_mllama(*m, tok, {256, kImg, 65}, images, gp);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode);
    EXPECT_NE(std::string(e.what()).find("1 <|image|> tokens but 2 images"), std::string::npos) << e.what();
  }
}

TEST(MllamaModel, SavedWeightsReloadUnderBothKeyLayouts) {
  auto m = tiny_model();
  test::TempDir dir;
  std::ofstream(dir / "config.json") << m->config().to_json().dump(2);
  save_mllama_weights(*m, (dir / "model.safetensors").string());
  SafetensorsFile f((dir / "model.safetensors").string());
  EXPECT_TRUE(f.contains("language_model.model.layers.1.cross_attn.q_norm.weight"));
  EXPECT_TRUE(f.contains("language_model.model.layers.5.mlp.down_proj.weight"));
  EXPECT_TRUE(f.contains("vision_model.gated_positional_embedding.tile_embedding.weight"));
  EXPECT_TRUE(f.contains("multi_modal_projector.bias"));
  auto re = load_mllama(dir.path().string(), torch::kFloat32);
  auto a = m->named_parameters(), b = re->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();

  const auto& cfg = m->config();
  EXPECT_EQ(mllama_module_key(cfg, "model.language_model.layers.4.cross_attn_mlp_gate"), "cross_layers.1.cross_attn_mlp_gate");
  EXPECT_EQ(mllama_module_key(cfg, "language_model.model.layers.5.self_attn.q_proj.weight"),
            "language_model.model.layers.3.self_attn.q_proj.weight");
  EXPECT_EQ(mllama_module_key(cfg, "lm_head.weight"), "language_model.lm_head.weight");
  EXPECT_EQ(mllama_module_key(cfg, "model.vision_model.class_embedding"), "vision_model.class_embedding");
  EXPECT_EQ(mllama_module_key(cfg, "model.multi_modal_projector.weight"), "multi_modal_projector.weight");
}

TEST(MllamaModel, LoadingReportsEveryProblemByName) {
  auto m = tiny_model();
  test::TempDir dir;
  std::ofstream(dir / "config.json") << m->config().to_json().dump(2);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : m->named_parameters()) tensors[p.key()] = p.value().detach();
  // Module keys, not HF's: frozen layer 1 reads as HF layer 1, which is a cross layer.
  write_safetensors((dir / "model.safetensors").string(), tensors, {{"format", "pt"}});
  try {
    load_mllama(dir.path().string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::ModelLoad);
    EXPECT_NE(std::string(e.what()).find("unexpected: language_model.model.layers.1.self_attn.q_proj.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("missing:"), std::string::npos);
  }
}

}  // namespace
}  // namespace llama_mm
