// Tests for cli/caption_command.cpp (and init-model --arch mllama): a random tiny Llama 3.2 Vision checkpoint
// captions real image files end to end; bad files fail one by one with exit code 4.
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace llama_mm {
namespace {

using test::fixture;
using test::json_lines;
using test::run_cli;

int64_t count_of(const nlohmann::json& ids, int64_t id) {
  return std::count(ids.begin(), ids.end(), nlohmann::json(id));
}

class CaptionCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("caption_test");
    auto r = run_cli("init-model --arch mllama --preset tiny --seed 3 -o '" + model() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string model() { return (*dir_ / "m").string(); }
  static test::TempDir* dir_;
};
test::TempDir* CaptionCommand::dir_ = nullptr;

TEST_F(CaptionCommand, InitModelWritesAnHfMllamaCheckpoint) {
  for (auto f : {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"})
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(model()) / f)) << f;
  auto m = load_mllama(model());
  EXPECT_EQ(m->config().image_token_index, 512);
  SafetensorsCheckpoint ckpt(model());
  EXPECT_TRUE(ckpt.contains("language_model.model.layers.1.cross_attn_attn_gate"));
  EXPECT_EQ(ckpt.entry("language_model.model.embed_tokens.weight").shape, (std::vector<int64_t>{520, 64}));
  EXPECT_EQ(*Tokenizer::from_file(model()).token_id("<|image|>"), 512);
}

TEST_F(CaptionCommand, CaptionsEachFileAndReportsBadOnesWithoutStopping) {
  test::TempDir tmp;
  std::ofstream(tmp / "empty.jpg").close();
  std::ofstream(tmp / "text.png") << "this is not an image\n";
  const auto good1 = fixture("images/exif6_120x160.jpg").string();
  const auto good2 = fixture("images/orient1_5x7.png").string();
  auto r = run_cli("caption -m '" + model() + "' '" + good1 + "' '" + (tmp / "empty.jpg").string() + "' '" + good2 +
                   "' '" + (tmp / "text.png").string() + "' '" + (tmp / "missing.png").string() +
                   "' -n 5 --temp 0 --json");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  auto objs = json_lines(r.out);
  ASSERT_EQ(objs.size(), 5u) << r.out;
  for (int i : {0, 2}) {
    EXPECT_FALSE(objs[i].contains("error")) << objs[i];
    EXPECT_EQ(objs[i]["tokens"].size(), 5u);
    EXPECT_EQ(count_of(objs[i]["prompt_ids"], 512), 1);
    EXPECT_EQ(objs[i]["prompt_ids"][0], 256);  // one BOS
    EXPECT_EQ(objs[i]["n_prompt_tokens"], objs[i]["prompt_ids"].size());
    EXPECT_EQ(objs[i]["timings"]["n_images"], 1);
  }
  EXPECT_EQ(objs[0]["file"], good1);
  for (int i : {1, 3, 4}) {
    ASSERT_TRUE(objs[i].contains("error")) << objs[i];
    EXPECT_NE(objs[i]["error"].get<std::string>().find(objs[i]["file"].get<std::string>()), std::string::npos);
  }
  // Greedy captions are reproducible.
  auto again = run_cli("caption -m '" + model() + "' '" + good1 + "' -n 5 --temp 0 --json");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json_lines(again.out)[0]["tokens"], objs[0]["tokens"]);
}

TEST_F(CaptionCommand, TogetherAsksOneQuestionAboutAllImages) {
  const auto a = fixture("images/exif6_120x160.jpg").string(), b = fixture("images/cmyk_48x64.jpg").string();
  auto r = run_cli("caption -m '" + model() + "' --image '" + a + "' --image '" + b +
                   "' --together -p 'What differs?' -n 3 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto objs = json_lines(r.out);
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0]["file"], nlohmann::json::array({a, b}));
  EXPECT_EQ(count_of(objs[0]["prompt_ids"], 512), 2);
  EXPECT_EQ(objs[0]["timings"]["n_images"], 2);
}

TEST_F(CaptionCommand, PlainOutputStreamsTheCaption) {
  auto r = run_cli("caption -m '" + model() + "' '" + fixture("images/orient2_5x7.png").string() + "' -n 4 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.err.find("images encoded"), std::string::npos) << r.err;
}

TEST_F(CaptionCommand, GenerateRunsTextOnlyPromptsOnAnMllamaCheckpoint) {
  auto r = run_cli("generate -m '" + model() + "' -p hello -n 3 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out)[0]["tokens"].size(), 3u);
}

TEST_F(CaptionCommand, APromptTheContextCannotHoldIsAPerFileError) {
  const auto a = fixture("images/orient1_5x7.png").string();
  auto r = run_cli("caption -m '" + model() + "' '" + a + "' -c 16 --json");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  auto objs = json_lines(r.out);
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_NE(objs[0]["error"].get<std::string>().find("does not fit the context of 16"), std::string::npos) << objs[0];
}

TEST_F(CaptionCommand, UsageErrors) {
  EXPECT_EQ(run_cli("caption -m '" + model() + "'").exit_code, 2);                      // no image
  EXPECT_EQ(run_cli("caption -m /nonexistent/dir x.png").exit_code, 3);                 // no model
}

}  // namespace
}  // namespace llama_mm
