// Tests for llm/llama_model.cpp: parity with Hugging Face transformers 4.45.2 golden tensors
// (tests/fixtures/llama_tiny, made by scripts/fixtures/gen_llama_golden.py), KV-cache decoding against
// a full forward, and bf16 against fp32.
#include "llm/llm.h"
#include "tensor_util.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

namespace llama_mm {
namespace {

using test::fixture;
using test::rel_err;

class LlamaGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaGolden, LogitsAndHiddenStatesMatchTransformers) {
  const auto dir = fixture("llama_tiny/" + GetParam()).string();
  const std::string golden_dir = GetParam() == "untied_sharded" ? "untied" : GetParam();
  SafetensorsFile golden(fixture("llama_tiny/" + golden_dir + "/golden.safetensors").string());
  auto model = load_llama(dir, torch::kFloat32);
  ASSERT_EQ(model->config().tie_word_embeddings, GetParam() == "tied");

  std::map<std::string, torch::Tensor> acts;
  ForwardOptions opts;
  opts.all_logits = true;
  opts.hook = [&](const std::string& name, const torch::Tensor& t) { acts[name] = t.clone(); };
  torch::NoGradGuard no_grad;
  auto logits = model->forward(golden.get("input_ids"), nullptr, opts);

  EXPECT_LT(rel_err(logits, golden.get("logits")), 1e-5);
  // HF hidden_states: [embeddings, output of layer 0, norm(output of layer 1)].
  EXPECT_LT(rel_err(acts.at("embed"), golden.get("hidden_states.0")), 1e-6);
  EXPECT_LT(rel_err(acts.at("layer.0.out"), golden.get("layer_output.0")), 1e-5);
  EXPECT_LT(rel_err(acts.at("layer.1.out"), golden.get("layer_output.1")), 1e-5);
  EXPECT_LT(rel_err(acts.at("norm"), golden.get("hidden_states.2")), 1e-5);
}

// generate()'s 16 greedy tokens after the golden prompt equal HF's; returns them as HF gave them.
torch::Tensor expect_golden_greedy_tokens(LlamaForCausalLMImpl& model, const SafetensorsFile& golden) {
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(), "byte-level");
  auto prompt_t = golden.get("generate.prompt")[0];
  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < prompt_t.size(0); ++i) prompt.push_back(prompt_t[i].item<int32_t>());
  GenerateParams gp;
  gp.n_predict = 16;
  gp.sampling.temperature = 0;
  auto r = generate(model, tok, prompt, gp);
  auto expected = golden.get("generate.output")[0].narrow(0, prompt.size(), 16);
  EXPECT_EQ(r.tokens.size(), 16u);
  for (size_t i = 0; i < std::min<size_t>(16, r.tokens.size()); ++i)
    EXPECT_EQ(r.tokens[i], expected[i].item<int64_t>()) << "step " << i;
  EXPECT_EQ(r.stop_reason, "length");
  return expected;
}

TEST_P(LlamaGolden, GreedyGenerationMatchesTransformers) {
  const auto dir = fixture("llama_tiny/" + GetParam()).string();
  const std::string golden_dir = GetParam() == "untied_sharded" ? "untied" : GetParam();
  SafetensorsFile golden(fixture("llama_tiny/" + golden_dir + "/golden.safetensors").string());
  auto model = load_llama(dir, torch::kFloat32);
  auto expected = expect_golden_greedy_tokens(*model, golden);

  // The per-step logits of the cached decode match HF's cached generate.
  KVCache cache(model->config(), 1, 64, torch::kFloat32, torch::kCPU);
  torch::NoGradGuard no_grad;
  auto step_logits = golden.get("generate.logits")[0];  // [16, V]
  auto logits = model->forward(golden.get("generate.prompt"), &cache);
  for (int i = 0; i < 16; ++i) {
    EXPECT_LT(rel_err(logits[0][-1], step_logits[i]), 1e-5) << "step " << i;
    logits = model->forward(expected.narrow(0, i, 1).view({1, 1}), &cache);
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, LlamaGolden, ::testing::Values("tied", "untied", "untied_sharded"));

LlamaForCausalLM tiny_random(torch::Dtype dtype, uint64_t seed = 3) {
  auto cfg = LlamaConfig::preset("tiny");
  LlamaForCausalLM m(cfg, dtype);
  init_random_weights(*m, seed);
  m->eval();
  return m;
}

TEST(LlamaModel, IncrementalDecodingEqualsFullForward) {
  torch::NoGradGuard no_grad;
  auto m = tiny_random(torch::kFloat32);
  auto tokens = torch::randint(0, 512, {2, 20}, torch::kInt64);
  ForwardOptions all;
  all.all_logits = true;
  auto full = m->forward(tokens, nullptr, all);  // [2, 20, V]

  // Prefill 7, then a chunk of 5, then one token at a time.
  KVCache cache(m->config(), 2, 32, torch::kFloat32, torch::kCPU);
  std::vector<torch::Tensor> parts;
  parts.push_back(m->forward(tokens.narrow(1, 0, 7), &cache, all));
  parts.push_back(m->forward(tokens.narrow(1, 7, 5), &cache, all));
  for (int64_t t = 12; t < 20; ++t) parts.push_back(m->forward(tokens.narrow(1, t, 1), &cache, all));
  EXPECT_EQ(cache.n_past, 20);
  auto incremental = torch::cat(parts, 1);
  EXPECT_TRUE(torch::allclose(incremental, full, 1e-5, 1e-5)) << (incremental - full).abs().max();
  // Only-last-logits mode returns the last row of the full result.
  EXPECT_TRUE(torch::allclose(m->forward(tokens, nullptr), full.narrow(1, 19, 1), 1e-5, 1e-5));
}

TEST(LlamaModel, LeftPaddedRowEqualsTheSequenceAlone) {
  // transformers' batching: left padding masked out of attention, positions counted from the first real token.
  auto model = load_llama(fixture("llama_tiny/untied").string(), torch::kFloat32);
  torch::NoGradGuard no_grad;
  ForwardOptions o;
  o.all_logits = true;
  auto alone = model->forward(torch::tensor({1, 50, 58, 75, 110}, torch::kInt64).view({1, 5}), nullptr, o);
  auto ids = torch::tensor({0, 0, 1, 50, 58, 75, 110, 1, 9, 8, 7, 6, 5, 4}, torch::kInt64).view({2, 7});
  o.attention_mask = torch::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 7});
  o.position_ids = torch::tensor({1, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6}, torch::kInt64).view({2, 7});
  auto batch = model->forward(ids, nullptr, o);
  EXPECT_LT(rel_err(batch[0].narrow(0, 2, 5), alone[0]), 1e-5);
  EXPECT_FALSE(batch[0].isnan().any().item<bool>());  // padding rows stay finite
  // Without the mask the padding leaks into the real tokens.
  o.attention_mask = torch::Tensor();
  EXPECT_GT(rel_err(model->forward(ids, nullptr, o)[0].narrow(0, 2, 5), alone[0]), 1e-3);
}

TEST(LlamaModel, Bf16TracksFp32) {
  torch::NoGradGuard no_grad;
  auto m32 = tiny_random(torch::kFloat32);
  auto m16 = tiny_random(torch::kBFloat16);  // same seed: bf16-rounded copies of the same weights
  auto tokens = torch::randint(0, 512, {1, 16}, torch::kInt64);
  ForwardOptions all;
  all.all_logits = true;
  auto a = m32->forward(tokens, nullptr, all), b = m16->forward(tokens, nullptr, all);
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);  // logits are returned in fp32
  EXPECT_LT(rel_err(b, a), 5e-2);
  // Mostly the same argmax.
  auto agree = (a.argmax(-1) == b.argmax(-1)).to(torch::kFloat32).mean().item<double>();
  EXPECT_GE(agree, 0.8);
}

TEST(LlamaModel, ContextOverflowIsAnError) {
  torch::NoGradGuard no_grad;
  auto m = tiny_random(torch::kFloat32);
  KVCache cache(m->config(), 1, 8, torch::kFloat32, torch::kCPU);
  m->forward(torch::zeros({1, 6}, torch::kInt64), &cache);
  EXPECT_THROW(m->forward(torch::zeros({1, 3}, torch::kInt64), &cache), Error);
}

TEST(LlamaModel, MissingShardAndMissingDirAreLoadErrors) {
  test::TempDir dir;
  std::ofstream(dir / "config.json") << LlamaConfig::preset("tiny").to_json().dump();
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"model.norm.weight":"model-00001-of-00002.safetensors"}})";
  try {
    load_llama(dir.path().string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::ModelLoad);
    EXPECT_NE(std::string(e.what()).find("model-00001-of-00002.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_llama((dir / "nope").string()), Error);
}

}  // namespace
}  // namespace llama_mm

// ---- On a CUDA device (skipped where there is none, tests/test_main.cpp) ----

namespace llama_mm {
namespace {

using test::fixture;
using test::rel_err;

TEST(LlamaModelCuda, GoldenLogitsAndGreedyGenerationMatch_CUDA) {
  at::globalContext().setAllowTF32CuBLAS(false);  // fp32 means fp32 here, as in the reference
  SafetensorsFile golden(fixture("llama_tiny/untied/golden.safetensors").string());
  auto model = load_llama(fixture("llama_tiny/untied").string(), torch::kFloat32);
  model->to(torch::kCUDA);
  ForwardOptions opts;
  opts.all_logits = true;
  {
    torch::NoGradGuard no_grad;
    auto logits = model->forward(golden.get("input_ids").to(torch::kCUDA), nullptr, opts);
    ASSERT_TRUE(logits.is_cuda());
    EXPECT_LT(rel_err(logits.cpu(), golden.get("logits")), 1e-4);
  }
  expect_golden_greedy_tokens(*model, golden);
}

TEST(LlamaModelCuda, Bf16TracksTheFp32Reference_CUDA) {
  SafetensorsFile golden(fixture("llama_tiny/untied/golden.safetensors").string());
  auto model = load_llama(fixture("llama_tiny/untied").string(), torch::kBFloat16);
  model->to(torch::kCUDA);
  ForwardOptions opts;
  opts.all_logits = true;
  torch::NoGradGuard no_grad;
  auto logits = model->forward(golden.get("input_ids").to(torch::kCUDA), nullptr, opts).cpu().to(torch::kFloat32);
  EXPECT_LT(rel_err(logits, golden.get("logits")), 5e-2);
}

}  // namespace
}  // namespace llama_mm
