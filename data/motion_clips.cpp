// data/motion_clips.cpp: see motion_clips.h.
#include "data/motion_clips.h"

#include "data/dataset_writer.h"

#include "llm/error.h"
#include "media/video_encode.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <random>

namespace llama_mm::data {

namespace fs = std::filesystem;

const std::vector<Motion>& all_motions() {
  static const std::vector<Motion> v = {Motion::Left, Motion::Right, Motion::Up,
                                        Motion::Down, Motion::Grows, Motion::Shrinks};
  return v;
}

const char* motion_name(Motion m) {
  static const char* names[] = {"moves left", "moves right", "moves up", "moves down", "grows", "shrinks"};
  return names[static_cast<int>(m)];
}

Motion reversed(Motion m) {
  static const Motion r[] = {Motion::Right, Motion::Left, Motion::Down, Motion::Up, Motion::Shrinks, Motion::Grows};
  return r[static_cast<int>(m)];
}

std::string motion_caption(const MotionClip& clip) {
  const char* color = color_name(clip.start.color);
  return std::string(std::strchr("aeiou", color[0]) ? "an " : "a ") + color + " " + shape_name(clip.start.shape) + " " +
         motion_name(clip.motion);
}

MotionClip random_motion_clip(uint64_t seed, int size, int frames, double max_turn) {
  if (size < 32 || frames < 2)
    throw Error(ErrorKind::Usage, "motion clips need images of at least 32 pixels and at least 2 frames");
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  MotionClip c;
  c.size = size;
  c.frames = frames;
  c.background = static_cast<Background>(pick(3));
  c.motion = all_motions()[pick(static_cast<int>(all_motions().size()))];
  auto& it = c.start;
  it.shape = all_shapes()[pick(static_cast<int>(all_shapes().size()))];
  it.color = all_colors()[pick(static_cast<int>(all_colors().size()))];
  it.angle = draw_turn(it.shape, max_turn, rng);
  const bool moves = c.motion != Motion::Grows && c.motion != Motion::Shrinks;
  if (moves) {
    it.radius = static_cast<float>(size * uniform(0.08, 0.14));
    c.distance = static_cast<float>(size * uniform(0.3, 0.45));
    c.end_radius = it.radius;
    // The path's two ends, low and high along its axis, then the direction picks which comes first.
    const double lo = uniform(it.radius + 2, size - it.radius - 2 - c.distance);
    const double across = uniform(it.radius + 2, size - it.radius - 2);
    const bool forward = c.motion == Motion::Right || c.motion == Motion::Down;
    const double along = forward ? lo : lo + c.distance;
    const bool horizontal = c.motion == Motion::Left || c.motion == Motion::Right;
    it.cx = static_cast<float>(horizontal ? along : across);
    it.cy = static_cast<float>(horizontal ? across : along);
  } else {
    const double small = size * uniform(0.05, 0.08), large = small * uniform(2.0, 2.6);
    it.radius = static_cast<float>(c.motion == Motion::Grows ? small : large);
    c.end_radius = static_cast<float>(c.motion == Motion::Grows ? large : small);
    it.cx = static_cast<float>(uniform(large + 2, size - large - 2));
    it.cy = static_cast<float>(uniform(large + 2, size - large - 2));
  }
  return c;
}

std::vector<ShapeItem> motion_items(const MotionClip& c) {
  std::vector<ShapeItem> out;
  for (int f = 0; f < c.frames; ++f) {
    const float t = static_cast<float>(f) / static_cast<float>(c.frames - 1);
    ShapeItem it = c.start;
    switch (c.motion) {
      case Motion::Left: it.cx -= t * c.distance; break;
      case Motion::Right: it.cx += t * c.distance; break;
      case Motion::Up: it.cy -= t * c.distance; break;
      case Motion::Down: it.cy += t * c.distance; break;
      default: it.radius += t * (c.end_radius - c.start.radius); break;
    }
    out.push_back(it);
  }
  return out;
}

MotionClip reverse_clip(const MotionClip& c) {
  MotionClip r = c;
  r.motion = reversed(c.motion);
  r.start = motion_items(c).back();
  r.end_radius = c.start.radius;
  return r;
}

std::string write_motion_dataset(const MotionDatasetOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  if (o.size % 2 || o.size < 32) throw Error(ErrorKind::Usage, "data motion: --size must be even and at least 32");
  if (o.frames < 2 || o.fps < 1)
    throw Error(ErrorKind::Usage, "data motion: --frames must be at least 2, --fps at least 1");
  return detail::write_dataset(
      "data motion", o.out_dir, o.n, "videos", "captions.jsonl",
      [&](int64_t i, const fs::path& videos) {
        const uint64_t s = item_seed(o.seed, i);
        const auto clip = random_motion_clip(s, o.size, o.frames, o.max_turn);
        const std::string name = detail::item_file_name(i, "mp4");
        media::VideoWriter writer((videos / name).string(), o.size, o.size, o.fps);
        ShapeScene scene;
        scene.background = clip.background;
        int64_t f = 0;
        for (const auto& it : motion_items(clip)) {
          scene.items = {it};
          writer.write(render_shape_scene(scene, o.size, s, item_seed(s, ++f)));
        }
        writer.finish();
        return nlohmann::json{{"video", "videos/" + name}, {"text", motion_caption(clip)}};
      },
      progress);
}

}  // namespace llama_mm::data
