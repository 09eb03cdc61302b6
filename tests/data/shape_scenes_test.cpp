// Tests for data/shape_scenes.cpp: the caption grammar, random scenes (seeded, apart, inside, varied), the
// rendering (each shape's centre has its colour, the corners the background's) and the dataset writer.
#include "data/data.h"

#include "media/media.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

namespace llama_mm::data {
namespace {

ShapeItem item(Shape s, Color c, float cx = 50, float cy = 50) {
  ShapeItem it;
  it.shape = s, it.color = c, it.cx = cx, it.cy = cy, it.radius = 10;
  return it;
}

TEST(ShapeScenes, CaptionsFollowTheGrammarInAFixedOrder) {
  ShapeScene one;
  one.items = {item(Shape::Circle, Color::Red)};
  EXPECT_EQ(shape_caption(one), "a red circle on a white background");
  ShapeScene two;
  two.background = Background::Gray;
  two.items = {item(Shape::Square, Color::Blue), item(Shape::Circle, Color::Red), item(Shape::Circle, Color::Red)};
  EXPECT_EQ(shape_caption(two), "two red circles and a blue square on a gray background");
  ShapeScene three;
  three.background = Background::Black;
  three.items = {item(Shape::Hexagon, Color::Yellow), item(Shape::Star, Color::Orange), item(Shape::Triangle, Color::Green)};
  EXPECT_EQ(shape_caption(three), "a green triangle, an orange star and a yellow hexagon on a black background");
  ShapeScene same;
  same.items = {item(Shape::Star, Color::Purple), item(Shape::Star, Color::Purple), item(Shape::Star, Color::Purple)};
  EXPECT_EQ(shape_caption(same), "three purple stars on a white background");
  // The order of the items does not matter, only what is there.
  std::swap(two.items[0], two.items[2]);
  EXPECT_EQ(shape_caption(two), "two red circles and a blue square on a gray background");
}

TEST(ShapeScenes, RandomScenesAreSeededApartInsideAndVaried) {
  const int size = 96;
  std::set<std::string> shapes, colors, backgrounds;
  std::set<size_t> counts;
  std::set<std::string> captions;
  bool repeated_kind = false;
  for (uint64_t s = 0; s < 400; ++s) {
    const auto scene = random_shape_scene(item_seed(7, static_cast<int64_t>(s)), size);
    ASSERT_GE(scene.items.size(), 1u);
    ASSERT_LE(scene.items.size(), 3u);
    counts.insert(scene.items.size());
    backgrounds.insert(background_name(scene.background));
    for (size_t i = 0; i < scene.items.size(); ++i) {
      const auto& a = scene.items[i];
      shapes.insert(shape_name(a.shape));
      colors.insert(color_name(a.color));
      EXPECT_GE(a.cx - a.radius, 0);
      EXPECT_LE(a.cx + a.radius, size);
      EXPECT_GE(a.cy - a.radius, 0);
      EXPECT_LE(a.cy + a.radius, size);
      EXPECT_GE(a.radius, size * 0.09 - 1e-3);
      for (size_t j = 0; j < i; ++j) {
        const auto& b = scene.items[j];
        EXPECT_GT(std::hypot(a.cx - b.cx, a.cy - b.cy), a.radius + b.radius) << "seed " << s;
        repeated_kind = repeated_kind || (a.shape == b.shape && a.color == b.color);
      }
    }
    captions.insert(shape_caption(scene));
  }
  EXPECT_EQ(shapes.size(), all_shapes().size());
  EXPECT_EQ(colors.size(), all_colors().size());
  EXPECT_EQ(backgrounds.size(), 3u);
  EXPECT_EQ(counts, (std::set<size_t>{1, 2, 3}));
  EXPECT_TRUE(repeated_kind);
  EXPECT_GT(captions.size(), 200u);
  // Seeded: the same seed gives the same scene; item seeds differ.
  EXPECT_EQ(shape_caption(random_shape_scene(123, size)), shape_caption(random_shape_scene(123, size)));
  EXPECT_EQ(random_shape_scene(123, size).items[0].cx, random_shape_scene(123, size).items[0].cx);
  EXPECT_NE(item_seed(1, 0), item_seed(1, 1));
  EXPECT_NE(item_seed(1, 0), item_seed(2, 0));
  EXPECT_THROW(random_shape_scene(1, 16), Error);
}

TEST(ShapeScenes, TheRadiusRangeBoundsEveryShape) {
  const int size = 96;
  const RadiusRange big{0.15, 0.25};
  float smallest = size, largest = 0;
  for (uint64_t s = 0; s < 200; ++s)
    for (const auto& it : random_shape_scene(item_seed(5, static_cast<int64_t>(s)), size, big).items) {
      smallest = std::min(smallest, it.radius), largest = std::max(largest, it.radius);
      EXPECT_GE(it.cx - it.radius, 0);
      EXPECT_LE(it.cx + it.radius, size);
    }
  EXPECT_GE(smallest, size * 0.15 - 1e-3);
  EXPECT_LE(largest, size * 0.25 + 1e-3);
  EXPECT_GT(largest - smallest, size * 0.08);  // drawn across the range, not at one end
  EXPECT_THROW(random_shape_scene(1, size, {0.2, 0.1}), Error);
  EXPECT_THROW(random_shape_scene(1, size, {0.0, 0.1}), Error);
  EXPECT_THROW(random_shape_scene(1, size, {0.1, 0.5}), Error);
}

TEST(ShapeScenes, MaxTurnBoundsTheAngleAndDefaultsToAnyAngle) {
  const int size = 96;
  double widest = 0, widest_default = 0;
  for (uint64_t s = 0; s < 200; ++s) {
    const auto seed = item_seed(9, static_cast<int64_t>(s));
    const auto turned = random_shape_scene(seed, size, {}, 10);
    const auto any = random_shape_scene(seed, size);
    ASSERT_EQ(shape_caption(turned), shape_caption(any));  // the turn changes the angles only
    for (size_t i = 0; i < turned.items.size(); ++i) {
      EXPECT_LE(std::abs(turned.items[i].angle), 10.0f);
      widest = std::max(widest, static_cast<double>(std::abs(turned.items[i].angle)));
      if (any.items[i].shape != Shape::Square) widest_default = std::max(widest_default, double(any.items[i].angle));
      else EXPECT_LE(std::abs(any.items[i].angle), 20.0f);
    }
  }
  EXPECT_GT(widest, 8.0);            // drawn across the range
  EXPECT_GT(widest_default, 300.0);  // the default turns every shape but squares to any angle
  for (const auto& it : random_shape_scene(item_seed(9, 0), size, {}, 0).items) EXPECT_EQ(it.angle, 0.0f);
  EXPECT_THROW(random_shape_scene(1, size, {}, -1), Error);
  EXPECT_THROW(random_shape_scene(1, size, {}, 181), Error);
}

TEST(ShapeScenes, RenderingShowsEachShapeInItsColourOnTheBackground) {
  const int size = 128;
  auto near = [](const uint8_t* px, const std::vector<int>& rgb, int tol) {
    for (int c = 0; c < 3; ++c)
      if (std::abs(int(px[c]) - rgb[c]) > tol) return false;
    return true;
  };
  for (uint64_t s = 0; s < 60; ++s) {
    const auto scene = random_shape_scene(item_seed(3, static_cast<int64_t>(s)), size);
    const auto rgb = render_shape_scene(scene, size, s);
    ASSERT_EQ(rgb.size(), size_t(size) * size * 3);
    // Jitter ±20 plus noise of σ <= 8 (a 5σ tail is allowed for): 60.
    for (const auto& it : scene.items) {
      const auto* px = &rgb[(size_t(std::lround(it.cy)) * size + size_t(std::lround(it.cx))) * 3];
      EXPECT_TRUE(near(px, color_rgb(it.color), 60)) << "seed " << s << " " << shape_name(it.shape) << " "
                                                     << color_name(it.color) << " got " << int(px[0]) << ","
                                                     << int(px[1]) << "," << int(px[2]);
    }
    for (const auto& [x, y] : std::vector<std::pair<int, int>>{{0, 0}, {size - 1, 0}, {0, size - 1}, {size - 1, size - 1}})
      EXPECT_TRUE(near(&rgb[(size_t(y) * size + x) * 3], background_rgb(scene.background), 60)) << "seed " << s;
    // The noise is seeded too.
    EXPECT_EQ(render_shape_scene(scene, size, s), rgb);
  }
}

TEST(ShapeScenes, DatasetWriterGivesDecodableImagesAndTheTrainManifest) {
  test::TempDir dir("llama_mm_shapes");
  ShapesDatasetOptions o;
  o.out_dir = (dir.path() / "set").string();
  o.n = 7;
  o.seed = 11;
  o.size = 64;
  o.format = "png";
  int64_t last = 0;
  const auto manifest = write_shapes_dataset(o, [&](int64_t done, int64_t n) {
    EXPECT_EQ(done, last + 1);
    EXPECT_EQ(n, 7);
    last = done;
  });
  EXPECT_EQ(last, 7);
  std::ifstream in(manifest);
  std::string line;
  int64_t i = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto scene = random_shape_scene(item_seed(11, i), 64);
    EXPECT_EQ(j["text"], shape_caption(scene));
    const auto img = media::load_image_file((dir.path() / "set" / j["image"].get<std::string>()).string());
    EXPECT_EQ(img.width, 64);
    EXPECT_EQ(img.height, 64);
    // png is lossless: the file holds exactly the rendered pixels.
    const auto rgb = render_shape_scene(scene, 64, item_seed(11, i));
    EXPECT_EQ(img.rgb, rgb) << line;
    ++i;
  }
  EXPECT_EQ(i, 7);
  // It is the jsonl manifest `llama-mm train` reads.
  train::DataConfig data;
  data.format = "jsonl";
  data.path = manifest;
  const auto samples = train::read_dataset(data);
  ASSERT_EQ(samples.size(), 7u);
  EXPECT_EQ(samples[3].kind, train::MediaKind::Image);
  EXPECT_EQ(samples[3].media, (dir.path() / "set" / "images" / "000003.png").string());
  EXPECT_EQ(samples[3].turns.back().role, "assistant");
  EXPECT_EQ(samples[3].turns.back().text, shape_caption(random_shape_scene(item_seed(11, 3), 64)));
  o.n = 0;
  EXPECT_THROW(write_shapes_dataset(o), Error);
  o.n = 1;
  o.format = "gif";
  EXPECT_THROW(write_shapes_dataset(o), Error);
}

}  // namespace
}  // namespace llama_mm::data
