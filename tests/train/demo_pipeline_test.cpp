// Tests the demo model's whole training pipeline (configs/demo, scripts/train_demo.sh) at CI size
// (`--ci`: a few hundred generated samples per modality, a few hundred steps per stage): the text stage trains
// the stand-in LLM, then contrastive image pre-training, image, video, BEST-RQ and speech stages train on it
// frozen. Each stage's loss falls, each captioning stage scores above a modest bar on held-out data, and the bare
// text model answers text-only prompts token for token as the finished model does. The bars and what they mean
// are in docs/demo.md.
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

namespace llama_mm {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

struct StageRows {
  std::vector<double> loss;
  nlohmann::json last_eval;  // the stage's last row with an evaluation
};

std::map<std::string, StageRows> stages_of(const fs::path& metrics) {
  std::map<std::string, StageRows> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto row = nlohmann::json::parse(line);
    auto& s = out[row["stage_name"].get<std::string>()];
    s.loss.push_back(row["loss"].get<double>());
    if (row.contains("eval_wer")) s.last_eval = row;
  }
  return out;
}

// Mean loss over the first and the last tenth of a stage's steps.
std::pair<double, double> first_and_last(const std::vector<double>& loss) {
  const size_t n = std::max<size_t>(1, loss.size() / 10);
  double a = 0, b = 0;
  for (size_t i = 0; i < n; ++i) a += loss[i], b += loss[loss.size() - 1 - i];
  return {a / n, b / n};
}

TEST(DemoPipeline, EveryStageLearnsAtCiSize) {
  test::TempDir dir("demo_pipeline_test");
  const fs::path run = dir / "run";
  const std::string cmd = "LLAMA_MM='" + std::string(LLAMA_MM_CLI_PATH) + "' bash '" +
                          (test::source_dir() / "scripts/train_demo.sh").string() + "' '" + run.string() +
                          "' --ci >'" + (dir / "log").string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(dir / "log");
    FAIL() << "train_demo.sh --ci failed:\n" << std::string(std::istreambuf_iterator<char>(log), {});
  }

  const auto stages = stages_of(run / "run/metrics.jsonl");
  ASSERT_EQ(stages.size(), 6u);
  // {stage, the last/first loss ratio it must stay under}; measured in two runs (docs/demo.md): text 0.19 and 0.16,
  // image-pretrain (contrastive) 0.72, image 0.66 and 0.66, video 0.72, BEST-RQ 0.77, speech 0.92 and 0.93.
  const std::map<std::string, double> loss_ratio = {{"text", 0.3},  {"image-pretrain", 0.85}, {"image", 0.8},
                                                    {"video", 0.85}, {"speech-encoder", 0.85}, {"speech", 0.97}};
  for (const auto& [name, ratio] : loss_ratio) {
    ASSERT_TRUE(stages.count(name)) << name;
    const auto [first, last] = first_and_last(stages.at(name).loss);
    EXPECT_LT(last, ratio * first) << name << ": " << first << " -> " << last;
  }
  // Held-out answers: the image parts must have learned what the LLM alone cannot know (a random scene's exact
  // caption; measured 0.06 and 0.08), and the word error rates of images (0.36, 0.38) and videos (0.44) are far
  // from the text prior's. At this size the text model cannot yet repeat its prompt, so speech has no bar here.
  const auto& image = stages.at("image").last_eval;
  const auto& video = stages.at("video").last_eval;
  EXPECT_GE(image["eval_exact_match"].get<double>(), 0.02) << image;
  EXPECT_LE(image["eval_wer"].get<double>(), 0.5) << image;
  EXPECT_LE(video["eval_wer"].get<double>(), 0.65) << video;

  // The frozen backbone is untouched: text-only prompts to the finished model equal the bare text model.
  for (const char* prompt : {"Describe this image in one sentence.", "seven red stars"}) {
    auto whole = run_cli("generate -m '" + (run / "run/model").string() + "' --chat -p '" + prompt +
                         "' --temp 0 -n 12 --json");
    auto bare = run_cli("generate -m '" + (run / "run/text_model").string() + "' --chat -p '" + prompt +
                        "' --temp 0 -n 12 --json");
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    ASSERT_EQ(bare.exit_code, 0) << bare.err;
    const auto tokens = test::json_lines(whole.out)[0]["tokens"];
    EXPECT_FALSE(tokens.empty()) << prompt;
    EXPECT_EQ(tokens, test::json_lines(bare.out)[0]["tokens"]) << prompt;
  }
  EXPECT_TRUE(fs::exists(run / "run/metrics.png"));

  // The model as it ships, scored by `eval` on the three held-out sets: the bf16 files give what training's own
  // evaluation (fp32) gave, within a few answers.
  std::ifstream scores(run / "eval.jsonl");
  std::vector<nlohmann::json> eval;
  for (std::string line; std::getline(scores, line);) eval.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(eval.size(), 3u);
  EXPECT_EQ(eval[0]["samples"], 50);
  EXPECT_EQ(eval[1]["samples"], 16);
  EXPECT_EQ(eval[2]["samples"], 32);
  EXPECT_NEAR(eval[0]["wer"].get<double>(), image["eval_wer"].get<double>(), 0.1) << eval[0];
  EXPECT_NEAR(eval[1]["wer"].get<double>(), video["eval_wer"].get<double>(), 0.15) << eval[1];
  EXPECT_TRUE(fs::exists(run / "demo-model/adapters/video.safetensors"));
  // Captioning one held-out scene with it needs no adapter flags: the model folder carries them.
  auto caption = run_cli("caption -m '" + (run / "demo-model").string() + "' '" +
                         (run / "data/shapes-test/images/000000.jpg").string() + "' --temp 0 -n 24");
  ASSERT_EQ(caption.exit_code, 0) << caption.err;
  EXPECT_NE(caption.out.find("background"), std::string::npos) << caption.out;
}

}  // namespace
}  // namespace llama_mm
