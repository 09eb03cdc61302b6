// Tests configs/tiny-image-video-speech.yaml through scripts/train_example.sh: one command makes a tiny Llama 3.2
// Vision and the media, trains image, then video, then speech adapters, and the trained adapters caption and
// transcribe the training media with their targets.
#include "llm/safetensors.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace llama_mm::train {
namespace {

TEST(ExampleConfig, TrainsImageThenVideoThenSpeechEndToEnd) {
  test::TempDir dir("example_config");
  const auto log = dir / "log.txt", out = dir / "out.txt";
  const std::string cmd = "LLAMA_MM='" + std::string(LLAMA_MM_CLI_PATH) + "' '" +
                          (test::source_dir() / "scripts/train_example.sh").string() + "' '" + dir.path().string() +
                          "' >'" + out.string() + "' 2>'" + log.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << std::ifstream(log).rdbuf();
  std::map<std::string, std::string> got;
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(": ");
    if (colon != std::string::npos && line[0] != '{') got[line.substr(0, colon)] = line.substr(colon + 2);
  }
  const std::map<std::string, std::string> want = {
      {"image0", "a test card"}, {"image1", "colour bars"}, {"image2", "a red square"}, {"image3", "a fractal"},
      {"video0", "a counter"},   {"video1", "color bars"},  {"video2", "all blue"},     {"video3", "cells living"},
      {"tone0", "low hum"},      {"tone1", "middle"},       {"tone2", "high tone"},    {"tone3", "whistle"}};
  for (const auto& [key, text] : want) EXPECT_EQ(got[key], text) << key;

  const auto run = (dir / "example-data/run").string();
  auto rows = read_metrics(run);
  ASSERT_EQ(rows.size(), 120u + 120u + 1000u);
  std::map<std::string, std::pair<double, double>> first_last;
  for (const auto& r : rows) {
    auto& fl = first_last[r["stage_name"].get<std::string>()];
    if (r["step"] == 1) fl.first = r["loss"].get<double>();
    fl.second = r["loss"].get<double>();
  }
  ASSERT_EQ(first_last.size(), 3u);
  for (const auto& [stage, fl] : first_last) EXPECT_LT(fl.second, fl.first / 4) << stage;
  // The last checkpoint holds every part the run trains. The image parts, written to image.safetensors at the end
  // of stage 1, are unchanged by stages 2 and 3 (frozen there); the video parts likewise by stage 3.
  const auto last = *latest_checkpoint(run);
  auto state = read_checkpoint_state(last);
  EXPECT_EQ(state.stage_name, "speech-transcripts");
  EXPECT_EQ(state.step, 1000);
  const auto params = read_checkpoint_tensors(last).params;
  for (const char* modality : {"image", "video"}) {
    SafetensorsFile f(run + "/adapters/" + modality + ".safetensors");
    int64_t compared = 0;
    for (const auto& name : f.names()) {
      const auto it = params.find(std::string(modality) + "." + name);
      if (it == params.end()) continue;  // buffers and statistics are not trained
      EXPECT_TRUE(torch::equal(it->second, f.get(name))) << modality << "." << name;
      ++compared;
    }
    EXPECT_GT(compared, 10) << modality;
  }
}

}  // namespace
}  // namespace llama_mm::train
