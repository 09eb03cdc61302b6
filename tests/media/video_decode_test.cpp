// Tests media/video_decode: which frames uniform sampling picks (counter clips made here with the ffmpeg CLI,
// each frame showing its index in binary), formats, rotation, variable frame rate, seeking, bad input.
#include "media/video_decode.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace llama_mm::media {
namespace {

namespace fs = std::filesystem;
using test::kCounterBits;
using test::kCounterHeight;
using test::kCounterWidth;
using test::make_counter_clip;

// The counter drawn into a frame, read at the stripes' centres. `clockwise`: how the frame was rotated from
// the stored orientation (the stripes then run across rows).
int read_counter(const Image& img, int clockwise = 0) {
  int k = 0;
  for (int b = 0; b < kCounterBits; ++b) {
    const int along = 8 * b + 4;  // centre of stripe b in the stored frame (x)
    int x = along, y = kCounterHeight / 2;
    if (clockwise == 90) x = kCounterHeight / 2, y = along;               // stored (x, y) -> (H-1-y, x)
    if (clockwise == 270) x = kCounterHeight / 2, y = kCounterWidth - 1 - along;  // -> (y, W-1-x)
    if (clockwise == 180) x = kCounterWidth - 1 - along;
    const uint8_t g = img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + 1];
    if (g > 128) k |= 1 << b;
  }
  return k;
}

std::vector<int> counters(const SampledVideo& v, int clockwise = 0) {
  std::vector<int> out;
  for (const auto& f : v.frames) out.push_back(read_counter(f.image, clockwise));
  return out;
}

// Frame floor((2i + 1) F / (2n)) of a constant-rate clip of F frames, deduplicated (n > F gives every frame).
std::vector<int> expected_cfr(int n_frames_in_clip, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    const int k = static_cast<int>((2LL * i + 1) * n_frames_in_clip / (2LL * n));
    if (out.empty() || out.back() != k) out.push_back(k);
  }
  return out;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Clips shared by the tests, made once.
class VideoDecodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("llama_mm_video");
    make_counter_clip(clip("cfr.mp4"), 100, "-c:v libx264 -pix_fmt yuv420p");
    make_counter_clip(clip("long_gop.mp4"), 300, "-c:v libx264 -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path clip(const std::string& name) { return *dir_ / name; }
  static test::TempDir* dir_;
};
test::TempDir* VideoDecodeTest::dir_ = nullptr;

TEST_F(VideoDecodeTest, SamplesTheMiddleOfEachEqualPartForEightThirtyTwoAndSixtyFourFrames) {
  for (int n : {8, 32, 64}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    auto v = sample_video_file(clip("cfr.mp4").string(), {n, SeekMode::Exact});
    EXPECT_EQ(counters(v), expected_cfr(100, n));
    ASSERT_EQ(v.frames.size(), static_cast<size_t>(n));
    for (const auto& f : v.frames) {
      EXPECT_EQ(f.image.width, kCounterWidth);
      EXPECT_EQ(f.image.height, kCounterHeight);
      EXPECT_NEAR(f.time_s, read_counter(f.image) / 25.0, 1e-6);
    }
  }
  auto info = probe_video_file(clip("cfr.mp4").string());
  EXPECT_EQ(info.codec, "h264");
  EXPECT_NEAR(info.duration_s, 4.0, 1e-6);
  EXPECT_NEAR(info.frame_rate, 25.0, 1e-6);
  EXPECT_EQ(info.n_frames, 100);
  EXPECT_FALSE(info.has_audio);
  EXPECT_TRUE(info.seekable);
}

TEST_F(VideoDecodeTest, EveryContainerAndCodecGivesTheSameFrames) {
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"clip.mkv", "-c:v libx264 -pix_fmt yuv420p"}, {"clip.webm", "-c:v libvpx-vp9 -b:v 1M -deadline realtime"},
      {"clip.mov", "-c:v libx264 -pix_fmt yuv420p"}, {"clip.avi", "-c:v mjpeg -q:v 2"},
      {"clip.gif", ""},
  };
  for (const auto& [name, codec] : kinds) {
    SCOPED_TRACE(name);
    make_counter_clip(clip(name), 60, codec);
    auto v = sample_video_file(clip(name).string(), {8, SeekMode::Exact});
    EXPECT_EQ(counters(v), expected_cfr(60, 8));
    EXPECT_NEAR(v.info.duration_s, 2.4, 0.05);
  }
}

TEST_F(VideoDecodeTest, SeeksInsteadOfDecodingEveryFrame) {
  auto v = sample_video_file(clip("long_gop.mp4").string(), {8, SeekMode::Exact});
  EXPECT_EQ(counters(v), expected_cfr(300, 8));
  EXPECT_GT(v.seeks, 0);
  EXPECT_LT(v.frames_decoded, 150);  // 8 GOPs of 25 at most, not 300 frames
  EXPECT_EQ(decode_all_frames(clip("long_gop.mp4").string()), 300);

  auto key = sample_video_file(clip("long_gop.mp4").string(), {8, SeekMode::KeyFrame});
  const auto k = counters(key);
  ASSERT_EQ(k.size(), 8u);  // 8 targets 1.5 s apart, key frames every second: all distinct
  const auto exact = expected_cfr(300, 8);
  for (size_t i = 0; i < k.size(); ++i) {
    EXPECT_EQ(k[i] % 25, 0) << "frame " << k[i] << " is not a key frame";
    EXPECT_EQ(k[i], exact[i] / 25 * 25);  // the key frame at or before the exact frame
  }
  EXPECT_LT(key.frames_decoded, v.frames_decoded);
  EXPECT_EQ(key.seek, SeekMode::KeyFrame);
  // Auto: 12 key frames. 8 samples: too few key frames (< 16) for distinct ones, so exact frames.
  auto autom = sample_video_file(clip("long_gop.mp4").string(), {8, SeekMode::Auto});
  EXPECT_EQ(autom.seek, SeekMode::Exact);
  EXPECT_EQ(counters(autom), expected_cfr(300, 8));
  // 4 samples: exact would decode ~4 x 12.5 frames > 10 % of 300, and key frames are plenty.
  autom = sample_video_file(clip("long_gop.mp4").string(), {4, SeekMode::Auto});
  EXPECT_EQ(autom.seek, SeekMode::KeyFrame);
  const auto want4 = expected_cfr(300, 4);
  ASSERT_EQ(autom.frames.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(read_counter(autom.frames[i].image), want4[i] / 25 * 25);
  // 2 samples: exact costs ~25 frames, under 10 %.
  EXPECT_EQ(sample_video_file(clip("long_gop.mp4").string(), {2, SeekMode::Auto}).seek, SeekMode::Exact);
}

// Presentation times of every frame, as ffprobe lists them (an independent reader of the same file).
std::vector<double> ffprobe_frame_times(const fs::path& p) {
  const std::string cmd =
      "ffprobe -v error -select_streams v:0 -show_entries frame=pts_time -of csv=p=0 '" + p.string() + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::vector<double> out;
  char line[128];
  while (pipe && fgets(line, sizeof(line), pipe.get()))
    if (line[0] >= '0' && line[0] <= '9') out.push_back(std::stod(line));
  return out;
}

TEST_F(VideoDecodeTest, VariableFrameRateIsSampledUniformlyInTime) {
  // Frames 0-49 every 40 ms, then 50-99 every 200 ms.
  make_counter_clip(clip("vfr.mp4"), 100, "-fps_mode passthrough -c:v libx264 -pix_fmt yuv420p",
                    ",setpts='if(lt(N\\,50)\\,N*0.04\\,2+(N-50)*0.2)/TB'");
  const auto pts = ffprobe_frame_times(clip("vfr.mp4"));
  ASSERT_EQ(pts.size(), 100u);
  EXPECT_NEAR(pts[20] - pts[19], 0.04, 1e-3);
  EXPECT_NEAR(pts[99] - pts[98], 0.2, 1e-3);
  for (int n : {8, 32, 64}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    auto v = sample_video_file(clip("vfr.mp4").string(), {n, SeekMode::Exact});
    const double d = v.info.duration_s;
    EXPECT_GT(d, 11.4);
    EXPECT_LT(d, 12.1);
    std::vector<int> want;
    for (int i = 0; i < n; ++i) {
      const double t = (i + 0.5) * d / n;
      int k = 0;
      while (k + 1 < 100 && pts[k + 1] <= t + 1e-9) ++k;
      if (want.empty() || want.back() != k) want.push_back(k);
    }
    EXPECT_EQ(counters(v), want);
    for (const auto& f : v.frames) EXPECT_NEAR(f.time_s, pts[read_counter(f.image)], 1e-3);
  }
}

int v_rotation(const fs::path& p) { return probe_video_file(p.string()).rotation; }

TEST_F(VideoDecodeTest, RotationMetadataIsAppliedAsTheFfmpegCliDoes) {
  std::vector<int> rotations;
  for (int tag : {90, 180, 270}) {
    SCOPED_TRACE(tag);
    const auto name = "rot" + std::to_string(tag) + ".mp4";
    test::run_ffmpeg("-i '" + clip("cfr.mp4").string() + "' -c copy -metadata:s:v:0 rotate=" + std::to_string(tag) +
                     " '" + clip(name).string() + "'");
    for (int n : {32, 64})
      EXPECT_EQ(counters(sample_video_file(clip(name).string(), {n, SeekMode::Exact}), v_rotation(clip(name))),
                expected_cfr(100, n));
    auto v = sample_video_file(clip(name).string(), {8, SeekMode::Exact});
    const int r = v.info.rotation;
    rotations.push_back(r);
    const bool swap = r == 90 || r == 270;
    EXPECT_EQ(v.info.width, swap ? kCounterHeight : kCounterWidth);
    EXPECT_EQ(v.info.height, swap ? kCounterWidth : kCounterHeight);
    ASSERT_EQ(counters(v, r), expected_cfr(100, 8));
    // The first sampled frame as the ffmpeg CLI shows it (autorotate on).
    const int k = expected_cfr(100, 8)[0];
    const auto raw = *dir_ / ("rot" + std::to_string(tag) + ".rgb");
    test::run_ffmpeg("-i '" + clip(name).string() + "' -vf \"select=eq(n\\," + std::to_string(k) +
                     ")\" -frames:v 1 -f rawvideo -pix_fmt rgb24 '" + raw.string() + "'");
    const auto cli = read_bytes(raw);
    const auto& mine = v.frames[0].image;
    ASSERT_EQ(cli.size(), mine.rgb.size());
    int worst = 0;
    for (size_t i = 0; i < cli.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<int>(static_cast<uint8_t>(cli[i])) - mine.rgb[i]));
    EXPECT_LT(worst, 48);  // colour conversion differs a little; a wrong turn differs by ~220 levels
  }
  EXPECT_EQ(rotations[1], 180);
  EXPECT_EQ(rotations[0] + rotations[2], 360);  // the two quarter turns go opposite ways
}

TEST_F(VideoDecodeTest, AShortClipGivesEachOfItsFramesOnce) {
  make_counter_clip(clip("three.mp4"), 3, "-c:v libx264 -pix_fmt yuv420p");
  auto v = sample_video_file(clip("three.mp4").string(), {64, SeekMode::Exact});
  EXPECT_EQ(counters(v), (std::vector<int>{0, 1, 2}));
}

TEST_F(VideoDecodeTest, BytesInMemoryGiveTheSameFramesAsTheFile) {
  const auto bytes = read_bytes(clip("long_gop.mp4"));
  std::vector<int> streamed;
  auto v = sample_video(bytes, "upload.mp4", {8, SeekMode::Exact}, {},
                        [&](VideoFrame&& f) { streamed.push_back(read_counter(f.image)); });
  EXPECT_TRUE(v.frames.empty());  // handed to the callback instead
  EXPECT_EQ(streamed, expected_cfr(300, 8));
  EXPECT_GT(v.seeks, 0);
}

TEST_F(VideoDecodeTest, IsVideoFileLooksAtTheContent) {
  EXPECT_TRUE(is_video_file(clip("cfr.mp4").string()));
  make_counter_clip(clip("anim.gif"), 5, "");
  EXPECT_TRUE(is_video_file(clip("anim.gif").string()));
  make_counter_clip(clip("still.gif"), 1, "");
  EXPECT_FALSE(is_video_file(clip("still.gif").string()));
  fs::copy_file(clip("cfr.mp4"), clip("named_like_an_image.jpg"));
  EXPECT_TRUE(is_video_file(clip("named_like_an_image.jpg").string()));
  EXPECT_FALSE(is_video_file(test::fixture("images/README.md").string()));
  EXPECT_FALSE(is_video_file(test::fixture("audio/tone_1k.m4a").string()));
  EXPECT_FALSE(is_video_file((*dir_ / "missing.mp4").string()));
}

// The error names the file and says why; no crash, no hang.
void expect_input_error(const std::function<void()>& f, const std::string& file, const std::string& why) {
  try {
    f();
    ADD_FAILURE() << "no error for " << file;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode) << e.what();
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST_F(VideoDecodeTest, BadInputIsAClearError) {
  auto sample = [](const fs::path& p, VideoLimits limits = {}) {
    return [p, limits] { sample_video_file(p.string(), {8, SeekMode::Exact}, limits); };
  };
  // An MP4 cut in half: its index (moov, written last) is gone.
  const auto mp4 = read_bytes(clip("long_gop.mp4"));
  std::ofstream(clip("truncated.mp4"), std::ios::binary) << mp4.substr(0, mp4.size() / 2);
  expect_input_error(sample(clip("truncated.mp4")), "truncated.mp4", "cannot open");
  // Audio only.
  const auto audio = test::fixture("audio/tone_1k.m4a");
  expect_input_error(sample(audio), "tone_1k.m4a", "no video stream");
  // A Matroska file cut after its first cluster's timestamp: a video track with no frame.
  make_counter_clip(clip("full.mkv"), 10, "-c:v libx264 -pix_fmt yuv420p");
  const auto mkv = read_bytes(clip("full.mkv"));
  const auto cluster = mkv.find(std::string("\x1F\x43\xB6\x75", 4));
  ASSERT_NE(cluster, std::string::npos);
  const auto timestamp = mkv.find(std::string("\xE7\x81\x00", 3), cluster);  // the cluster's Timestamp element
  ASSERT_LT(timestamp, cluster + 24);
  std::ofstream(clip("no_frames.mkv"), std::ios::binary) << mkv.substr(0, timestamp + 3);
  expect_input_error(sample(clip("no_frames.mkv")), "no_frames.mkv", "no video frame");
  // A header claiming 65535x65535 frames (the avc1 sample entry's width and height, inside stsd).
  auto huge = mp4;
  const auto avc1 = huge.find("avc1", huge.find("stsd"));
  ASSERT_NE(avc1, std::string::npos);
  for (size_t i = 0; i < 4; ++i) huge[avc1 + 28 + i] = '\xff';
  std::ofstream(clip("huge.mp4"), std::ios::binary) << huge;
  expect_input_error(sample(clip("huge.mp4")), "huge.mp4", "65535x65535");
  // Limits from the header.
  VideoLimits small;
  small.max_pixels = 1000;
  expect_input_error(sample(clip("cfr.mp4"), small), "cfr.mp4", "max_pixels");
  VideoLimits short_only;
  short_only.max_seconds = 1;
  expect_input_error(sample(clip("cfr.mp4"), short_only), "cfr.mp4", "max_seconds");
  // Not a video at all.
  std::ofstream(clip("empty.mp4"), std::ios::binary).flush();
  expect_input_error(sample(clip("empty.mp4")), "empty.mp4", "empty");
  std::ofstream(clip("text.mp4"), std::ios::binary) << "this is not a video\n";
  expect_input_error(sample(clip("text.mp4")), "text.mp4", "cannot");
  expect_input_error(sample(*dir_ / "missing.mp4"), "missing.mp4", "cannot open");
  expect_input_error(sample(dir_->path()), dir_->path().string(), "directory");
  // A request for no frames is a usage error.
  try {
    sample_video_file(clip("cfr.mp4").string(), {0, SeekMode::Exact});
    ADD_FAILURE() << "n_frames 0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
  }
}

TEST_F(VideoDecodeTest, DamagedDataAfterGoodFramesGivesThoseFrames) {
  // A fast-start MP4 (index first) cut at 60 %: the frames before the cut, then a warning.
  test::run_ffmpeg("-i '" + clip("long_gop.mp4").string() + "' -c copy -movflags +faststart '" +
                   clip("faststart.mp4").string() + "'");
  const auto bytes = read_bytes(clip("faststart.mp4"));
  std::ofstream(clip("cut.mp4"), std::ios::binary) << bytes.substr(0, bytes.size() * 6 / 10);
  auto v = sample_video_file(clip("cut.mp4").string(), {8, SeekMode::Exact});
  const auto got = counters(v);
  ASSERT_FALSE(got.empty());
  EXPECT_LT(got.size(), 8u);
  const auto want = expected_cfr(300, 8);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]);
}

}  // namespace
}  // namespace llama_mm::media
