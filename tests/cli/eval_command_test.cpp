// Tests for cli/eval_command.cpp: a tiny model trained on four captions scores 1.0 exact match and WER 0 on them
// with its image adapter and not without it; --json prints one answer per sample before the summary, which
// agrees with them; a missing media file is counted as bad (exit 4); a missing manifest is an error naming it.
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace llama_mm {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(EvalCommand, ScoresAnswersAgainstTheManifest) {
  test::TempDir dir("eval_command_test");
  ASSERT_EQ(run_cli("init-model --arch mllama --preset tiny --seed 3 -o " + q(dir / "base")).exit_code, 0);
  const std::vector<std::pair<std::string, std::string>> captions = {
      {"exif6_120x160.jpg", "a red cat"}, {"cmyk_48x64.jpg", "blue sky"},
      {"progressive_60x80.jpg", "two dogs"}, {"small_40x30.bmp", "green hill"}};
  {
    std::ofstream m(dir / "captions.jsonl");
    for (const auto& [file, text] : captions) {
      fs::copy_file(test::fixture("images/" + file), dir / file);
      m << nlohmann::json{{"image", file}, {"text", text}}.dump() << "\n";
    }
  }
  std::ofstream(dir / "run.yaml") << "base: base\noutput_dir: out\nseed: 1\nstages:\n  - name: captions\n"
                                     "    data: {format: jsonl, path: captions.jsonl}\n"
                                     "    train: [vision_encoder, image_cross_attention]\n"
                                     "    optimizer: {lr: 1.0e-2, weight_decay: 0.0}\n    schedule: {warmup_steps: 5}\n"
                                     "    steps: 120\n    batch_size: 4\n";
  ASSERT_EQ(run_cli("train " + q(dir / "run.yaml")).exit_code, 0);
  const auto adapter = dir / "out/adapters/image.safetensors";

  auto r = run_cli("eval -m " + q(dir / "base") + " --adapter " + q(adapter) + " --data " + q(dir / "captions.jsonl") +
                   " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::json_lines(r.out);
  ASSERT_EQ(lines.size(), 5u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(lines[i]["reference"], captions[i].second);
    EXPECT_EQ(lines[i]["answer"], captions[i].second);
    EXPECT_EQ(lines[i]["word_errors"], 0);
  }
  EXPECT_EQ(lines[4]["samples"], 4);
  EXPECT_EQ(lines[4]["exact_match"], 1.0);
  EXPECT_EQ(lines[4]["wer"], 0.0);
  EXPECT_NE(r.err.find("eval: 4/4 answered, 4 exact"), std::string::npos) << r.err;

  // Without the trained image parts the answers are wrong; the summary counts what the lines show.
  r = run_cli("eval -m " + q(dir / "base") + " --data " + q(dir / "captions.jsonl") + " --json --limit 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = test::json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u);
  int64_t errors = 0, words = 0;
  for (size_t i = 0; i < 3; ++i) errors += lines[i]["word_errors"].get<int64_t>(), words += lines[i]["reference_words"].get<int64_t>();
  EXPECT_EQ(lines[3]["samples"], 3);
  EXPECT_LT(lines[3]["exact_match"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(lines[3]["wer"].get<double>(), static_cast<double>(errors) / static_cast<double>(words));

  // A sample whose image is missing is skipped and counted; the exit code says so.
  std::ofstream(dir / "captions.jsonl", std::ios::app) << R"({"image": "missing.jpg", "text": "x"})" << "\n";
  r = run_cli("eval -m " + q(dir / "base") + " --adapter " + q(adapter) + " --data " + q(dir / "captions.jsonl"));
  EXPECT_EQ(r.exit_code, 4);
  lines = test::json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["bad"], 1);
  EXPECT_EQ(lines[0]["samples"], 4);
  r = run_cli("eval -m " + q(dir / "base") + " --data " + q(dir / "nope.jsonl"));
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find((dir / "nope.jsonl").string()), std::string::npos) << r.err;
}

}  // namespace
}  // namespace llama_mm
