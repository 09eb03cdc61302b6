// Tests for cli/bundled_model.cpp: without -m, generate, caption and transcribe use the bundled model
// ($LLAMA_MM_MODEL here) and the adapters its adapters/ folder carries; an explicit -m / --adapter wins.
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace llama_mm {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(BundledModel, CommandsWithoutModelUseItAndItsAdapters) {
  test::TempDir dir("bundled_model_test");
  const auto model = dir / "demo";
  ASSERT_EQ(run_cli("init-model --arch mllama --preset tiny --seed 3 -o " + q(model)).exit_code, 0);
  const std::string env = "LLAMA_MM_MODEL=" + q(model);
  // generate: the same greedy text as with -m.
  auto with_m = run_cli("generate -m " + q(model) + " -p hello -n 6 --temp 0");
  auto bundled = run_cli("generate -p hello -n 6 --temp 0", "", env);
  ASSERT_EQ(bundled.exit_code, 0) << bundled.err;
  EXPECT_EQ(bundled.out, with_m.out);
  EXPECT_NE(bundled.err.find("no -m given: the bundled demo model " + model.string()), std::string::npos) << bundled.err;
  // transcribe needs a speech adapter: none in the folder yet is a usage error naming the flag.
  const auto wav = test::fixture("audio/tone_1k.wav");
  auto none = run_cli("transcribe -n 4 " + q(wav), "", env);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("give a speech adapter with --adapter"), std::string::npos) << none.err;
  // Adapters in MODEL/adapters/ are used when none is given: the same transcript as naming the file.
  fs::create_directories(model / "adapters");
  const auto speech = model / "adapters" / "speech.safetensors";
  ASSERT_EQ(run_cli("init-model --arch speech-adapter --preset tiny --seed 4 --base " + q(model) + " -o " + q(speech))
                .exit_code, 0);
  const auto video = model / "adapters" / "video.safetensors";
  ASSERT_EQ(run_cli("init-model --arch video-adapter --preset tiny --gates random --seed 5 --base " + q(model) +
                    " -o " + q(video)).exit_code, 0);
  auto named = run_cli("transcribe -m " + q(model) + " --adapter " + q(speech) + " -n 4 --json " + q(wav));
  auto found = run_cli("transcribe -n 4 --json " + q(wav), "", env);
  ASSERT_EQ(found.exit_code, 0) << found.err;
  EXPECT_EQ(found.out, named.out);
  // caption takes the video adapter (not the speech one) from the folder.
  const auto clip = dir / "clip.mp4";
  test::make_counter_clip(clip, 24, "-c:v libx264 -pix_fmt yuv420p");
  auto cap_named = run_cli("caption -m " + q(model) + " --adapter " + q(video) + " -n 4 --temp 0 " + q(clip));
  auto cap_found = run_cli("caption -n 4 --temp 0 " + q(clip), "", env);
  ASSERT_EQ(cap_found.exit_code, 0) << cap_found.err;
  EXPECT_EQ(cap_found.out, cap_named.out);
  EXPECT_NE(cap_found.err.find(video.string()), std::string::npos) << cap_found.err;
}

}  // namespace
}  // namespace llama_mm
