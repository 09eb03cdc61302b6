// Tests for media/video_encode.cpp: frames written and read back (count, size, rate, pixels within the codec's
// error), the file appears only on finish(), and bad sizes, paths and frames are errors naming the file.
#include "media/media.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace llama_mm::media {
namespace {

std::vector<uint8_t> gradient(int w, int h, int shift) {
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      auto* p = &rgb[(size_t(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>((x * 4 + shift) % 256), p[1] = static_cast<uint8_t>(y * 4), p[2] = 128;
    }
  return rgb;
}

TEST(VideoEncode, FramesComeBackFromTheDecoder) {
  test::TempDir dir("llama_mm_venc");
  const std::string path = (dir.path() / "clip.mp4").string();
  {
    VideoWriter w(path, 48, 32, 10);
    for (int f = 0; f < 10; ++f) w.write(gradient(48, 32, f * 8));
    EXPECT_EQ(w.frames(), 10);
    EXPECT_FALSE(std::filesystem::exists(path));  // not before finish()
    w.finish();
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  VideoSampling sampling;
  sampling.n_frames = 10;
  const auto v = sample_video_file(path, sampling);
  EXPECT_EQ(v.info.codec, "h264");
  EXPECT_EQ(v.info.width, 48);
  EXPECT_EQ(v.info.height, 32);
  EXPECT_NEAR(v.info.frame_rate, 10, 1e-6);
  ASSERT_EQ(v.frames.size(), 10u);
  for (int f = 0; f < 10; ++f) {
    const auto want = gradient(48, 32, f * 8);
    double err = 0;
    for (size_t k = 0; k < want.size(); ++k) err += std::abs(int(v.frames[f].image.rgb[k]) - int(want[k]));
    EXPECT_LT(err / want.size(), 6.0) << "frame " << f;  // mean absolute error per channel
  }
  // Only the finished file is left in the folder.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 1);
}

TEST(VideoEncode, AnUnfinishedWriterLeavesNothingAndBadInputIsAnError) {
  test::TempDir dir("llama_mm_venc_bad");
  const std::string path = (dir.path() / "clip.mp4").string();
  {
    VideoWriter w(path, 16, 16, 5);
    w.write(std::vector<uint8_t>(16 * 16 * 3, 100));
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 0);
  EXPECT_THROW(VideoWriter(path, 15, 16, 5), Error);
  EXPECT_THROW(VideoWriter((dir.path() / "clip.unknownext").string(), 16, 16, 5), Error);
  EXPECT_THROW(VideoWriter((dir.path() / "missing" / "clip.mp4").string(), 16, 16, 5), Error);
  VideoWriter w(path, 16, 16, 5);
  try {
    w.write(std::vector<uint8_t>(10));
    FAIL() << "a short frame was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  VideoWriter empty(path, 16, 16, 5);
  EXPECT_THROW(empty.finish(), Error);
}

}  // namespace
}  // namespace llama_mm::media
