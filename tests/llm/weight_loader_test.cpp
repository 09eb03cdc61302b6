// Tests for llm/weight_loader.cpp: strict loading names every missing, unexpected and mis-shaped tensor.
#include "llm/llm.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm {
namespace {

TEST(WeightLoader, ReportsEveryProblemAtOnce) {
  test::TempDir dir;
  auto cfg = LlamaConfig::preset("tiny");
  cfg.num_hidden_layers = 1;
  LlamaForCausalLM m(cfg, torch::kFloat32);
  init_random_weights(*m, 1);
  std::map<std::string, torch::Tensor> t;
  for (auto& p : m->named_parameters()) t[p.key()] = p.value();
  t.erase("model.norm.weight");                                       // missing
  t.erase("model.layers.0.mlp.up_proj.weight");                       // missing
  t["model.layers.0.extra.weight"] = torch::zeros({2});               // unexpected
  t["model.layers.0.self_attn.q_proj.weight"] = torch::zeros({3, 3});  // mis-shaped
  t["model.rotary_emb.inv_freq"] = torch::zeros({8});                 // ignored (old saves)
  write_safetensors((dir / "model.safetensors").string(), t);
  std::ofstream(dir / "config.json") << cfg.to_json().dump();
  try {
    load_llama(dir.path().string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::ModelLoad);
    EXPECT_NE(msg.find("missing: model.norm.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing: model.layers.0.mlp.up_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected: model.layers.0.extra.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.layers.0.self_attn.q_proj.weight: expected [64, 64], got [3, 3]"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("inv_freq"), std::string::npos) << msg;
  }
}

TEST(WeightLoader, RenamesConvertsDtypeAndDropsKeys) {
  test::TempDir dir;
  write_safetensors((dir / "w.safetensors").string(),
                    {{"old.weight", torch::arange(6, torch::kFloat32).view({2, 3})}, {"skip.me", torch::zeros({1})}});
  torch::nn::Module m;
  auto child = std::make_shared<torch::nn::Module>();
  auto w = child->register_parameter("weight", torch::zeros({2, 3}, torch::kBFloat16));
  m.register_module("new", child);
  WeightLoadOptions opts;
  opts.rename = [](const std::string& k) { return k == "skip.me" ? std::string() : "new" + k.substr(3); };
  load_weights_strict(m, SafetensorsCheckpoint((dir / "w.safetensors").string()), "w", opts);
  EXPECT_TRUE(torch::equal(w.to(torch::kFloat32), torch::arange(6, torch::kFloat32).view({2, 3})));
}

}  // namespace
}  // namespace llama_mm
