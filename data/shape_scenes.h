// data/shape_scenes.h: the synthetic image-captioning data of the demo model (issue 8): scenes of 1–3 flat shapes
// (circle, square, triangle, star, hexagon) in 6 colours on a white, black or gray background, rendered with
// OpenCV at random sizes, positions and rotations, with colour jitter and pixel noise, and captioned by a small
// grammar that depends only on what is visible:
//
//   "a red circle on a white background"
//   "two red circles and a blue square on a gray background"
//   "an orange star, two green triangles and a yellow hexagon on a black background"
//
// Groups of equal shape and colour are counted ("a"/"an", "two", "three") and listed in a fixed order (by shape,
// then colour), so the same picture always has the same caption. Everything is a function of a 64-bit seed.
//
//   auto scene = random_shape_scene(seed, 224);
//   auto rgb = render_shape_scene(scene, 224, seed);   // [224 * 224 * 3] bytes, RGB, row-major
//   write_shapes_dataset({"out/shapes", 1000, /*seed=*/1});   // out/shapes/images/*.jpg + captions.jsonl
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace llama_mm::data {

enum class Shape { Circle, Square, Triangle, Star, Hexagon };
enum class Color { Red, Green, Blue, Yellow, Purple, Orange };
enum class Background { White, Black, Gray };

const std::vector<Shape>& all_shapes();
const std::vector<Color>& all_colors();
const char* shape_name(Shape s);            // "circle", ...
const char* color_name(Color c);            // "red", ...
const char* background_name(Background b);  // "white", ...

struct ShapeItem {
  Shape shape = Shape::Circle;
  Color color = Color::Red;
  float cx = 0, cy = 0;  // centre, pixels
  float radius = 0;      // of the circle the shape is inscribed in, pixels
  float angle = 0;       // rotation, degrees
};

struct ShapeScene {
  std::vector<ShapeItem> items;  // 1–3, their bounding circles apart and inside the image
  Background background = Background::White;
};

// A shape's angle, degrees from upright: uniform in [-t, t] with t = max_turn (squares: at most 20), or in
// [0, 360) for t = 180. One draw from `rng` either way. Throws Usage for max_turn outside [0, 180].
float draw_turn(Shape shape, double max_turn, std::mt19937_64& rng);

// The caption of a scene (see the top of this file).
std::string shape_caption(const ShapeScene& scene);

// Shape radii are drawn uniformly in [min, max] × size.
struct RadiusRange {
  double min = 0.09, max = 0.19;
};

// A random scene for an image of size × size pixels (size >= 32), its shapes turned by draw_turn(max_turn).
// Throws Usage for a radius range outside 0 < min <= max <= 0.45 or a max_turn outside [0, 180].
ShapeScene random_shape_scene(uint64_t seed, int size, RadiusRange radius = {}, double max_turn = 180);

// The scene drawn (anti-aliased): size · size · 3 bytes, RGB, row-major. The colour jitter and the noise level
// come from `look_seed`, the Gaussian noise itself from `noise_seed` (the frames of a clip share one look and
// differ in noise).
std::vector<uint8_t> render_shape_scene(const ShapeScene& scene, int size, uint64_t look_seed, uint64_t noise_seed);
inline std::vector<uint8_t> render_shape_scene(const ShapeScene& scene, int size, uint64_t seed) {
  return render_shape_scene(scene, size, seed, seed);
}

// The nominal RGB of a colour or background (jitter stays within ±20 of it, noise adds σ <= 8).
std::vector<int> color_rgb(Color c);
std::vector<int> background_rgb(Background b);

struct ShapesDatasetOptions {
  std::string out_dir;
  int64_t n = 0;
  uint64_t seed = 0;
  int size = 224;
  RadiusRange radius;
  double max_turn = 180;       // degrees from upright (see random_shape_scene)
  std::string format = "jpg";  // jpg (quality 95) or png
};

// Writes out_dir/images/NNNNNN.<format> and out_dir/captions.jsonl ({"image": "images/NNNNNN.jpg", "text":
// caption} per line, the `jsonl` manifest `llama-mm train` reads). Image i is random_shape_scene(item_seed(seed,
// i), size, radius, max_turn), so a larger n extends a smaller one. The manifest is written last, atomically.
// Returns its path.
// Progress goes to `progress` (images done, n) when given.
std::string write_shapes_dataset(const ShapesDatasetOptions& opts,
                                 const std::function<void(int64_t, int64_t)>& progress = {});

// The seed of item i of a dataset seeded `seed` (a SplitMix64 mix, so neighbouring seeds share no items).
uint64_t item_seed(uint64_t seed, int64_t i);

}  // namespace llama_mm::data
