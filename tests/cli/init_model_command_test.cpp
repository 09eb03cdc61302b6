// Tests for cli/init_model_command.cpp.
#include "llm/llm.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm {
namespace {

using test::run_cli;

TEST(InitModelCommand, WritesALoadableCheckpoint) {
  test::TempDir dir;
  auto out = (dir / "m").string();
  auto r = run_cli("init-model --arch llama --preset tiny --dtype bf16 --seed 4 -o '" + out + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (auto f : {"config.json", "model.safetensors", "tokenizer.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / ("m/" + std::string(f)))) << f;
  auto model = load_llama(out);
  EXPECT_EQ(model->dtype(), torch::kBFloat16);
  EXPECT_TRUE(model->config().tie_word_embeddings);
  SafetensorsCheckpoint ckpt(out);
  EXPECT_FALSE(ckpt.contains("lm_head.weight"));  // tied: HF layout has no lm_head
  // Same seed, same weights; another seed, different weights.
  run_cli("init-model --preset tiny --dtype bf16 --seed 4 -o '" + (dir / "m2").string() + "'");
  run_cli("init-model --preset tiny --dtype bf16 --seed 5 -o '" + (dir / "m3").string() + "'");
  auto a = ckpt.get("model.norm.weight");
  EXPECT_TRUE(torch::equal(a, SafetensorsCheckpoint((dir / "m2").string()).get("model.norm.weight")));
  EXPECT_FALSE(torch::equal(a, SafetensorsCheckpoint((dir / "m3").string()).get("model.norm.weight")));
}

TEST(InitModelCommand, ConfigFilePresetAndErrors) {
  test::TempDir dir;
  auto cfg = LlamaConfig::preset("tiny");
  cfg.tie_word_embeddings = false;
  cfg.num_hidden_layers = 1;
  std::ofstream(dir / "c.json") << cfg.to_json().dump();
  auto r = run_cli("init-model --preset '" + (dir / "c.json").string() + "' -o '" + (dir / "m").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(SafetensorsCheckpoint((dir / "m").string()).contains("lm_head.weight"));
  EXPECT_EQ(run_cli("init-model --preset huge -o '" + (dir / "x").string() + "'").exit_code, 2);
  EXPECT_EQ(run_cli("init-model --preset tiny --arch gpt2 -o '" + (dir / "x").string() + "'").exit_code, 2);
  std::ofstream(dir / "bad.json") << R"({"vocab_size": 10})";
  EXPECT_EQ(run_cli("init-model --preset '" + (dir / "bad.json").string() + "' -o '" + (dir / "x").string() + "'").exit_code, 5);
}

}  // namespace
}  // namespace llama_mm
