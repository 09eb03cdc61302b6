// Tests for llm/llama_config.cpp: every config.json variant of mllama-spec.md §1.1/§7, and errors that
// name the file and the key.
#include "llm/llm.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm {
namespace {

using json = nlohmann::json;

json base() {
  return json::parse(R"({"model_type":"llama","vocab_size":128256,"hidden_size":2048,"intermediate_size":8192,
    "num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"rms_norm_eps":1e-5,
    "rope_theta":500000.0,"max_position_embeddings":131072,"tie_word_embeddings":true,
    "rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
    "original_max_position_embeddings":8192},"bos_token_id":128000,"eos_token_id":[128001,128008,128009],
    "torch_dtype":"bfloat16","max_length":20,"temperature":0.6})");
}

std::string error_of(const json& j) {
  try {
    LlamaConfig::from_json(j, "/m/config.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    return e.what();
  }
  ADD_FAILURE() << "no error for " << j.dump();
  return "";
}

TEST(LlamaConfig, Llama32Variant) {
  auto c = LlamaConfig::from_json(base(), "x");
  EXPECT_EQ(c.head_dim, 64);  // absent head_dim: hidden / heads
  EXPECT_EQ(c.n_rep(), 4);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_scaling.rope_type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.n_params(), 1235814400);  // Llama 3.2 1B
}

TEST(LlamaConfig, LegacyTypeKeyIntEosAndExplicitHeadDim) {
  auto j = base();
  j["rope_scaling"].erase("rope_type");
  j["rope_scaling"]["type"] = "llama3";
  j["eos_token_id"] = 128001;
  j["head_dim"] = 128;
  auto c = LlamaConfig::from_json(j, "x");
  EXPECT_EQ(c.rope_scaling.rope_type, "llama3");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001}));
  EXPECT_EQ(c.head_dim, 128);
}

TEST(LlamaConfig, TransformersV5RopeParameters) {
  auto j = base();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("torch_dtype");
  j["dtype"] = "float32";
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 250000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}};
  auto c = LlamaConfig::from_json(j, "x");
  EXPECT_EQ(c.rope_theta, 250000.0);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 131072);  // falls back to max_position_embeddings
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(LlamaConfig, DefaultRopeAndLlamaClassDefaults) {
  auto j = base();
  for (auto k : {"rope_scaling", "rope_theta", "rms_norm_eps", "num_key_value_heads", "tie_word_embeddings",
                 "max_position_embeddings", "eos_token_id", "bos_token_id"})
    j.erase(k);
  auto c = LlamaConfig::from_json(j, "x");
  EXPECT_EQ(c.rope_scaling.rope_type, "default");
  EXPECT_EQ(c.rope_theta, 10000.0);  // LlamaConfig's defaults, not Llama 3's
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2}));
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(LlamaConfig::from_json(j, "x").rope_scaling.rope_type, "default");
}

TEST(LlamaConfig, ErrorsNameFileAndKey) {
  auto j = base();
  j.erase("hidden_size");
  auto msg = error_of(j);
  EXPECT_NE(msg.find("/m/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;

  j = base();
  j["rope_scaling"]["rope_type"] = "yarn";
  msg = error_of(j);
  EXPECT_NE(msg.find("rope_scaling.rope_type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("yarn"), std::string::npos) << msg;

  j = base();
  j["rope_scaling"].erase("factor");
  EXPECT_NE(error_of(j).find("rope_scaling.factor"), std::string::npos);

  j = base();
  j["num_key_value_heads"] = 5;
  EXPECT_NE(error_of(j).find("num_key_value_heads"), std::string::npos);

  j = base();
  j["eos_token_id"] = "x";
  EXPECT_NE(error_of(j).find("eos_token_id"), std::string::npos);

  j = base();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of(j).find("hidden_act"), std::string::npos);
}

TEST(LlamaConfig, FileErrors) {
  test::TempDir dir;
  EXPECT_THROW(LlamaConfig::from_file((dir / "missing.json").string()), Error);
  std::ofstream(dir / "config.json") << "{not json";
  try {
    LlamaConfig::from_file(dir.path().string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos);
  }
}

TEST(LlamaConfig, JsonRoundTripOfPresets) {
  for (auto name : {"tiny", "1b", "8b"}) {
    auto c = LlamaConfig::preset(name);
    auto back = LlamaConfig::from_json(c.to_json(), name);
    EXPECT_EQ(back.to_json(), c.to_json()) << name;
    EXPECT_EQ(back.n_params(), c.n_params());
  }
  EXPECT_THROW(LlamaConfig::preset("3b"), Error);
}

}  // namespace
}  // namespace llama_mm
