// data/motion_clips.h: the synthetic video data of the demo model (issue 8): one shape (data/shape_scenes.h) that
// moves left, right, up or down, or grows or shrinks, over a short clip, captioned "a green triangle moves left",
// "a red circle grows". A path and its reverse are equally likely (left is right played backwards, shrinking is
// growing backwards), so the set of frames says nothing about the direction: only their order does.
//
//   auto clip = random_motion_clip(seed, /*size=*/128, /*frames=*/16);
//   auto items = motion_items(clip);                    // the shape in each frame
//   write_motion_dataset({"out/motion", 200, /*seed=*/1});   // out/motion/videos/*.mp4 + captions.jsonl
#pragma once

#include "data/shape_scenes.h"

namespace llama_mm::data {

enum class Motion { Left, Right, Up, Down, Grows, Shrinks };
const std::vector<Motion>& all_motions();
const char* motion_name(Motion m);  // "moves left", ..., "grows", "shrinks"
Motion reversed(Motion m);          // left <-> right, up <-> down, grows <-> shrinks

struct MotionClip {
  ShapeItem start;  // the shape in the first frame
  Motion motion = Motion::Left;
  float distance = 0;    // moves: pixels travelled from the first to the last frame
  float end_radius = 0;  // grows/shrinks: the radius in the last frame
  int frames = 16, size = 128;
  Background background = Background::White;
};

std::string motion_caption(const MotionClip& clip);  // "a green triangle moves left"

// A random clip: every frame's shape inside the image, speeds and growth factors drawn so a clip and its reverse
// are equally likely.
MotionClip random_motion_clip(uint64_t seed, int size, int frames, double max_turn = 180);

// The same path played backwards: motion reversed, first and last frames swapped.
MotionClip reverse_clip(const MotionClip& clip);

// The shape in each frame (positions and radii interpolated linearly).
std::vector<ShapeItem> motion_items(const MotionClip& clip);

struct MotionDatasetOptions {
  std::string out_dir;
  int64_t n = 0;
  uint64_t seed = 0;
  int size = 128;  // even
  int frames = 16;
  int fps = 8;
  double max_turn = 180;  // degrees from upright (see draw_turn)
};

// Writes out_dir/videos/NNNNNN.mp4 (H.264) and out_dir/captions.jsonl ({"video": ..., "text": caption} per line,
// the jsonl manifest `llama-mm train` reads), the manifest last and atomically. Clip i is
// random_motion_clip(item_seed(seed, i), size, frames, max_turn). Returns the manifest's path.
std::string write_motion_dataset(const MotionDatasetOptions& opts,
                                 const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace llama_mm::data
