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

// Videos: a tiny video adapter (random, non-zero gates) on the tiny checkpoint, a counter clip made by ffmpeg.
class VideoCaption : public CaptionCommand {
 protected:
  static void SetUpTestSuite() {
    CaptionCommand::SetUpTestSuite();
    auto r = run_cli("init-model --arch video-adapter --preset tiny --gates random --seed 5 --base '" + model() +
                     "' -o '" + adapter() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    test::make_counter_clip(*dir_ / "clip.mp4", 100, "-c:v libx264 -pix_fmt yuv420p");
  }
  static std::string adapter() { return (*dir_ / "video.safetensors").string(); }
  static std::string clip() { return (*dir_ / "clip.mp4").string(); }
};

TEST_F(VideoCaption, DescribesAVideoEndToEnd) {
  // Named like an image: the content decides.
  const auto disguised = (*dir_ / "clip_named.jpg").string();
  std::filesystem::copy_file(clip(), disguised, std::filesystem::copy_options::overwrite_existing);
  auto r = run_cli("caption -m '" + model() + "' --adapter '" + adapter() + "' '" + disguised +
                   "' --frames 6 -n 4 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto objs = json_lines(r.out);
  ASSERT_EQ(objs.size(), 1u);
  const auto& o = objs[0];
  EXPECT_EQ(o["tokens"].size(), 4u) << o;
  EXPECT_EQ(count_of(o["prompt_ids"], 513), 1) << "one video token";
  EXPECT_EQ(count_of(o["prompt_ids"], 512), 0) << "no image token";
  EXPECT_EQ(o["timings"]["n_video_frames"], 6);
  const auto& v = o["video"];
  EXPECT_NEAR(v["duration_s"].get<double>(), 4.0, 1e-6);
  EXPECT_EQ(v["codec"], "h264");
  ASSERT_EQ(v["frame_times_s"].size(), 6u);
  for (int i = 0; i < 6; ++i)  // frame floor((2i + 1) · 100 / 12) at 25 fps
    EXPECT_NEAR(v["frame_times_s"][i].get<double>(), ((2 * i + 1) * 100 / 12) / 25.0, 1e-6) << i;
  // The same run again gives the same caption; the adapter's default frame count (tiny: 8) applies without --frames.
  auto again = run_cli("caption -m '" + model() + "' --adapter '" + adapter() + "' '" + clip() + "' -n 4 --temp 0 --json");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json_lines(again.out)[0]["video"]["frame_times_s"].size(), 8u);
  // Images still caption with the adapter loaded, and the plain output streams text.
  auto img = run_cli("caption -m '" + model() + "' --adapter '" + adapter() + "' '" +
                     fixture("images/orient1_5x7.png").string() + "' -n 3 --temp 0");
  EXPECT_EQ(img.exit_code, 0) << img.err;
  EXPECT_NE(img.err.find("images encoded"), std::string::npos) << img.err;
}

TEST_F(VideoCaption, VideoErrors) {
  // No adapter: a usage error that says what to add.
  auto r = run_cli("caption -m '" + model() + "' '" + clip() + "' -n 2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--adapter"), std::string::npos) << r.err;
  // A video over the duration limit is a per-file input error naming it.
  r = run_cli("caption -m '" + model() + "' --adapter '" + adapter() + "' '" + clip() + "' --max-seconds 1 -n 2 --json");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  auto objs = json_lines(r.out);
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_NE(objs[0]["error"].get<std::string>().find("max_seconds"), std::string::npos) << objs[0];
  // A bad --seek value.
  EXPECT_EQ(run_cli("caption -m '" + model() + "' --adapter '" + adapter() + "' '" + clip() + "' --seek sometimes").exit_code, 2);
  // An adapter for another base: refused at load (exit 3) naming the mismatch.
  auto other = (*dir_ / "other").string();
  ASSERT_EQ(run_cli("init-model --arch mllama --preset tiny --seed 3 -o '" + other + "'").exit_code, 0);
  auto cfg = nlohmann::json::parse(std::ifstream(std::filesystem::path(other) / "config.json"));
  cfg["text_config"]["hidden_size"] = 32;
  cfg["text_config"]["intermediate_size"] = 64;
  std::ofstream(std::filesystem::path(other) / "config.json") << cfg.dump();
  ASSERT_EQ(run_cli("init-model --arch mllama --preset '" + (std::filesystem::path(other) / "config.json").string() +
                    "' -o '" + other + "'").exit_code, 0);
  r = run_cli("caption -m '" + other + "' --adapter '" + adapter() + "' '" + clip() + "' -n 2");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("hidden_size"), std::string::npos) << r.err;
  // init-model needs the base.
  EXPECT_EQ(run_cli("init-model --arch video-adapter --preset tiny -o '" + (*dir_ / "x.safetensors").string() + "'")
                .exit_code, 2);
}

TEST_F(CaptionCommand, UsageErrors) {
  EXPECT_EQ(run_cli("caption -m '" + model() + "'").exit_code, 2);                      // no image
  EXPECT_EQ(run_cli("caption -m /nonexistent/dir x.png").exit_code, 3);                 // no model
}

}  // namespace
}  // namespace llama_mm
