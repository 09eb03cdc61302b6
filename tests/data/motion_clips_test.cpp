// Tests for data/motion_clips.cpp: captions, random clips (seeded, inside the frame, moving the stated way), a clip
// and its reverse hold the same frames in opposite order (so no single frame tells the direction), and the writer
// gives decodable clips whose frames show the shape where the clip says.
#include "data/data.h"

#include "media/media.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>

namespace llama_mm::data {
namespace {

TEST(MotionClips, CaptionsNameShapeColourAndMotion) {
  MotionClip c;
  c.start.shape = Shape::Triangle, c.start.color = Color::Green, c.motion = Motion::Left;
  EXPECT_EQ(motion_caption(c), "a green triangle moves left");
  c.start.shape = Shape::Circle, c.start.color = Color::Orange, c.motion = Motion::Grows;
  EXPECT_EQ(motion_caption(c), "an orange circle grows");
  for (auto m : all_motions()) EXPECT_EQ(reversed(reversed(m)), m);
  EXPECT_EQ(reversed(Motion::Up), Motion::Down);
  EXPECT_EQ(reversed(Motion::Shrinks), Motion::Grows);
}

TEST(MotionClips, MaxTurnBoundsTheShapesAngleAndNothingElse) {
  int turned = 0;
  for (int64_t i = 0; i < 100; ++i) {
    const auto any = random_motion_clip(item_seed(4, i), 128, 16);
    const auto upright = random_motion_clip(item_seed(4, i), 128, 16, 0);
    const auto slight = random_motion_clip(item_seed(4, i), 128, 16, 5);
    EXPECT_EQ(motion_caption(upright), motion_caption(any));
    EXPECT_EQ(upright.start.cx, any.start.cx);
    EXPECT_EQ(upright.start.angle, 0.0f);
    EXPECT_LE(std::abs(slight.start.angle), 5.0f);
    turned += std::abs(any.start.angle) > 20;
  }
  EXPECT_GT(turned, 40);  // by default, every shape but a square takes any angle
  EXPECT_THROW(random_motion_clip(1, 128, 16, 200), Error);
}

TEST(MotionClips, RandomClipsMoveTheStatedWayInsideTheFrame) {
  const int size = 96, frames = 12;
  std::set<int> motions;
  for (int64_t i = 0; i < 300; ++i) {
    const auto c = random_motion_clip(item_seed(5, i), size, frames);
    motions.insert(static_cast<int>(c.motion));
    const auto items = motion_items(c);
    ASSERT_EQ(static_cast<int>(items.size()), frames);
    for (const auto& it : items) {
      EXPECT_GE(it.cx - it.radius, 0) << i;
      EXPECT_LE(it.cx + it.radius, size) << i;
      EXPECT_GE(it.cy - it.radius, 0) << i;
      EXPECT_LE(it.cy + it.radius, size) << i;
      EXPECT_GT(it.radius, 2) << i;
      EXPECT_EQ(it.shape, c.start.shape);
      EXPECT_EQ(it.color, c.start.color);
    }
    const auto &a = items.front(), &b = items.back();
    const float dx = b.cx - a.cx, dy = b.cy - a.cy, dr = b.radius - a.radius;
    const float step = size * 0.25f;  // every move covers at least 0.3 of the frame; growth doubles the radius
    switch (c.motion) {
      case Motion::Left: EXPECT_LT(dx, -step); EXPECT_EQ(dy, 0); break;
      case Motion::Right: EXPECT_GT(dx, step); EXPECT_EQ(dy, 0); break;
      case Motion::Up: EXPECT_LT(dy, -step); EXPECT_EQ(dx, 0); break;
      case Motion::Down: EXPECT_GT(dy, step); EXPECT_EQ(dx, 0); break;
      case Motion::Grows: EXPECT_GT(b.radius, 1.9f * a.radius); EXPECT_EQ(dx, 0); break;
      case Motion::Shrinks: EXPECT_LT(1.9f * b.radius, a.radius); EXPECT_EQ(dy, 0); break;
    }
    if (c.motion != Motion::Grows && c.motion != Motion::Shrinks) EXPECT_EQ(dr, 0);
    // The reverse clip holds the same shapes in the opposite order.
    const auto r = reverse_clip(c);
    EXPECT_EQ(r.motion, reversed(c.motion));
    const auto back = motion_items(r);
    for (int f = 0; f < frames; ++f) {
      EXPECT_NEAR(back[f].cx, items[frames - 1 - f].cx, 1e-3) << i;
      EXPECT_NEAR(back[f].cy, items[frames - 1 - f].cy, 1e-3) << i;
      EXPECT_NEAR(back[f].radius, items[frames - 1 - f].radius, 1e-3) << i;
    }
  }
  EXPECT_EQ(motions.size(), all_motions().size());
  EXPECT_EQ(motion_caption(random_motion_clip(9, size, frames)), motion_caption(random_motion_clip(9, size, frames)));
  EXPECT_THROW(random_motion_clip(1, 16, frames), Error);
  EXPECT_THROW(random_motion_clip(1, size, 1), Error);
}

TEST(MotionClips, WriterGivesClipsThatShowTheShapeWhereTheClipSays) {
  test::TempDir dir("llama_mm_motion");
  MotionDatasetOptions o;
  o.out_dir = (dir.path() / "m").string();
  o.n = 3;
  o.seed = 4;
  o.size = 64;
  o.frames = 6;
  o.fps = 6;
  const auto manifest = write_motion_dataset(o);
  std::ifstream in(manifest);
  std::string line;
  int64_t i = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto clip = random_motion_clip(item_seed(4, i), 64, 6);
    EXPECT_EQ(j["text"], motion_caption(clip));
    const auto path = (dir.path() / "m" / j["video"].get<std::string>()).string();
    media::VideoSampling sampling;
    sampling.n_frames = 6;
    const auto video = media::sample_video_file(path, sampling);
    EXPECT_EQ(video.info.codec, "h264");
    EXPECT_EQ(video.info.width, 64);
    EXPECT_NEAR(video.info.frame_rate, 6, 1e-6);
    ASSERT_EQ(video.frames.size(), 6u);
    // Each decoded frame has the shape's colour at the shape's centre in that frame (H.264 at CRF 20 and
    // 4:2:0 chroma add to the jitter and noise: 70).
    const auto items = motion_items(clip);
    const auto want = color_rgb(clip.start.color);
    for (int f = 0; f < 6; ++f) {
      const auto& img = video.frames[f].image;
      const size_t at = (size_t(std::lround(items[f].cy)) * 64 + size_t(std::lround(items[f].cx))) * 3;
      for (int ch = 0; ch < 3; ++ch)
        EXPECT_NEAR(int(img.rgb[at + ch]), want[ch], 70) << "clip " << i << " frame " << f << " channel " << ch;
    }
    ++i;
  }
  EXPECT_EQ(i, 3);
  train::DataConfig data;
  data.format = "jsonl";
  data.path = manifest;
  const auto samples = train::read_dataset(data);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].kind, train::MediaKind::Video);
  o.size = 63;
  EXPECT_THROW(write_motion_dataset(o), Error);
}

}  // namespace
}  // namespace llama_mm::data
