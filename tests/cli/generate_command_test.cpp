// Tests for cli/generate_command.cpp (and the exit-code mapping in cli/main.cpp).
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace llama_mm {
namespace {

using test::run_cli;

class GenerateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = run_cli("init-model --preset tiny --seed 2 -o '" + model().string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::filesystem::path model() const { return dir_ / "tiny"; }
  test::TempDir dir_;
};

TEST_F(GenerateCommand, JsonOutputHasTheDocumentedFields) {
  auto r = run_cli("generate -m '" + model().string() + "' -p 'Hi there' -n 12 --temp 0.9 -s 3 --ignore-eos --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (auto key : {"text", "prompt_ids", "tokens", "n_prompt_tokens", "timings"}) EXPECT_TRUE(j.contains(key)) << key;
  // BOS (256 in the byte-level test tokenizer) once, then the bytes of the prompt.
  std::vector<int> expected = {256, 'H', 'i', ' ', 't', 'h', 'e', 'r', 'e'};
  EXPECT_EQ(j["prompt_ids"].get<std::vector<int>>(), expected);
  EXPECT_EQ(j["n_prompt_tokens"], 9);
  EXPECT_EQ(j["tokens"].size(), 12u);
  EXPECT_GT(j["timings"]["prompt_ms"].get<double>(), 0.0);
  // Same seed, same tokens; streamed (non-JSON) output carries the same text.
  auto again = run_cli("generate -m '" + model().string() + "' -p 'Hi there' -n 12 --temp 0.9 -s 3 --ignore-eos --json");
  EXPECT_EQ(nlohmann::json::parse(again.out)["tokens"], j["tokens"]);
}

TEST_F(GenerateCommand, ChatFormatHasOneBosAndHeaders) {
  auto r = run_cli("generate -m '" + model().string() + "' -p 'Hello' --chat -n 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ids = nlohmann::json::parse(r.out)["prompt_ids"].get<std::vector<int>>();
  ASSERT_GT(ids.size(), 3u);
  EXPECT_EQ(ids[0], 256);                                   // <|begin_of_text|>
  EXPECT_EQ(ids[1], 256 + 6);                               // <|start_header_id|>
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 256), 1);    // no double BOS
  EXPECT_EQ(ids[ids.size() - 1], '\n');                     // ends with the assistant header + "\n\n"
  EXPECT_EQ(ids[ids.size() - 3], 256 + 7);                  // <|end_header_id|>
  // --parse-special: a BOS written in the prompt is not doubled.
  r = run_cli("generate -m '" + model().string() + "' -p '<|begin_of_text|>Hi' --parse-special -n 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["prompt_ids"].get<std::vector<int>>(), (std::vector<int>{256, 'H', 'i'}));
}

// --dtype q8 quantizes the projections at load: it runs, says so, and stays close to the unquantized model (the
// first greedy tokens agree on this tiny model; the drift itself is measured in tests/llm/q8_linear_test.cpp).
TEST_F(GenerateCommand, Q8WeightsGenerateAndUnknownFormatsAreUsageErrors) {
  auto run = [&](const std::string& dtype) {
    auto r = run_cli("generate -m '" + model().string() + "' -p 'Hi there' -n 12 --temp 0 --ignore-eos --json --dtype " +
                     dtype);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r;
  };
  auto q8 = run("q8"), f32 = run("f32");
  EXPECT_NE(q8.err.find("q8"), std::string::npos) << q8.err;
  auto tq = nlohmann::json::parse(q8.out)["tokens"].get<std::vector<int>>();
  auto tf = nlohmann::json::parse(f32.out)["tokens"].get<std::vector<int>>();
  ASSERT_EQ(tq.size(), 12u);
  EXPECT_EQ(std::vector<int>(tq.begin(), tq.begin() + 3), std::vector<int>(tf.begin(), tf.begin() + 3));
  auto bad = run_cli("generate -m '" + model().string() + "' -p hi --dtype q4");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("'q4'"), std::string::npos) << bad.err;
}

TEST_F(GenerateCommand, ExitCodes) {
  // 2: usage (missing --prompt, unknown option).
  EXPECT_EQ(run_cli("generate -m '" + model().string() + "'").exit_code, 2);
  EXPECT_EQ(run_cli("generate -m x -p y --no-such-flag").exit_code, 2);
  // 3: model load failure, with the path in the message.
  auto r = run_cli("generate -m '" + (dir_ / "missing").string() + "' -p hi");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  // 4: the prompt does not fit the context.
  r = run_cli("generate -m '" + model().string() + "' -p 'a long prompt' -c 4");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
  // 5: config error, naming the key.
  std::ofstream(model() / "config.json") << R"({"model_type":"llama","vocab_size":512})";
  r = run_cli("generate -m '" + model().string() + "' -p hi");
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("hidden_size"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace llama_mm
