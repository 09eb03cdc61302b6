// Tests for cli/data_command.cpp: `llama-mm data shapes` and `data motion` write the media and the manifest, the
// same seed gives the same files and a larger -n extends a smaller one; bad arguments are usage errors.
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace llama_mm {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DataCommand, ShapesWritesImagesAndAManifestReproducibly) {
  test::TempDir dir("llama_mm_data_cli");
  const auto a = dir.path() / "a", b = dir.path() / "b";
  auto r = test::run_cli("data shapes -o '" + a.string() + "' -n 5 --seed 2 --size 48");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (a / "captions.jsonl").string() + "\n");
  EXPECT_NE(r.err.find("5/5 images"), std::string::npos) << r.err;
  const std::string manifest = slurp(a / "captions.jsonl");
  EXPECT_EQ(std::count(manifest.begin(), manifest.end(), '\n'), 5);
  EXPECT_NE(manifest.find("\"image\":\"images/000004.jpg\""), std::string::npos) << manifest;
  EXPECT_NE(manifest.find(" background\"}"), std::string::npos) << manifest;
  ASSERT_EQ(test::run_cli("data shapes -o '" + b.string() + "' -n 8 --seed 2 --size 48").exit_code, 0);
  const std::string longer = slurp(b / "captions.jsonl");
  EXPECT_EQ(longer.substr(0, manifest.size()), manifest);
  EXPECT_EQ(slurp(a / "images" / "000003.jpg"), slurp(b / "images" / "000003.jpg"));
  ASSERT_EQ(test::run_cli("data shapes -o '" + b.string() + "' -n 5 --seed 3 --size 48").exit_code, 0);
  EXPECT_NE(slurp(b / "captions.jsonl"), manifest);

  EXPECT_EQ(test::run_cli("data shapes -o '" + a.string() + "' -n 0").exit_code, 2);
  EXPECT_EQ(test::run_cli("data shapes -o '" + a.string() + "' -n 2 --format gif").exit_code, 2);
  EXPECT_EQ(test::run_cli("data shapes -o '" + a.string() + "' -n 2 --size 8").exit_code, 2);
  for (const char* radius : {"0.3,0.1", "0.1", "0,0.2", "0.1,0.6"}) {
    auto bad = test::run_cli("data shapes -o '" + a.string() + "' -n 2 --radius " + radius);
    EXPECT_EQ(bad.exit_code, 2) << radius;
    EXPECT_NE(bad.err.find("--radius"), std::string::npos) << bad.err;
  }
  for (const char* turn : {"-1", "181", "x"}) {
    auto bad = test::run_cli("data shapes -o '" + a.string() + "' -n 2 --max-turn " + turn);
    EXPECT_EQ(bad.exit_code, 2) << turn;
    EXPECT_NE(bad.err.find("--max-turn"), std::string::npos) << bad.err;
  }
  const auto big = (a / "big").string();
  EXPECT_EQ(test::run_cli("data shapes -o '" + big + "' -n 2 --size 48 --radius 0.2,0.3 --max-turn 0").exit_code, 0);
  EXPECT_EQ(test::run_cli("data shapes -n 2").exit_code, 2);
  EXPECT_EQ(test::run_cli("data").exit_code, 2);
}

TEST(DataCommand, MotionWritesClipsAndAManifestQuietly) {
  test::TempDir dir("llama_mm_data_motion_cli");
  const auto out = dir.path() / "m";
  auto r = test::run_cli("data motion -o '" + out.string() + "' -n 3 --seed 5 --size 48 --frames 6 --fps 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (out / "captions.jsonl").string() + "\n");
  EXPECT_EQ(r.err.find("libx264"), std::string::npos) << r.err;  // the encoder's statistics stay quiet
  const std::string manifest = slurp(out / "captions.jsonl");
  EXPECT_EQ(std::count(manifest.begin(), manifest.end(), '\n'), 3);
  EXPECT_NE(manifest.find("\"video\":\"videos/000002.mp4\""), std::string::npos) << manifest;
  EXPECT_TRUE(std::filesystem::exists(out / "videos" / "000002.mp4"));
  EXPECT_EQ(test::run_cli("data motion -o '" + out.string() + "' -n 2 --size 47").exit_code, 2);
  EXPECT_EQ(test::run_cli("data motion -o '" + out.string() + "' -n 2 --frames 1").exit_code, 2);
}

TEST(DataCommand, SpeechWritesWavsAndTranscripts) {
  test::TempDir dir("llama_mm_data_speech_cli");
  const auto out = dir.path() / "s";
  auto r = test::run_cli("data speech -o '" + out.string() + "' -n 2 --seed 1 --split test");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (out / "transcripts.jsonl").string() + "\n");
  const std::string manifest = slurp(out / "transcripts.jsonl");
  EXPECT_EQ(std::count(manifest.begin(), manifest.end(), '\n'), 2);
  EXPECT_NE(manifest.find("\"audio\":\"audio/000001.wav\""), std::string::npos) << manifest;
  EXPECT_TRUE(std::filesystem::exists(out / "audio" / "000001.wav"));
  EXPECT_EQ(test::run_cli("data speech -o '" + out.string() + "' -n 2 --split dev").exit_code, 2);
  // Varied voices: the training split only.
  r = test::run_cli("data speech -o '" + (dir.path() / "v").string() + "' -n 1 --split test --vary-voices");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("training split"), std::string::npos) << r.err;
  r = test::run_cli("data speech -o '" + (dir.path() / "v").string() + "' -n 1 --vary-voices");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(slurp(dir.path() / "v" / "transcripts.jsonl").find("\"voice_tweaks\""), std::string::npos);
}

}  // namespace
}  // namespace llama_mm
