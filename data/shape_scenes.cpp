// data/shape_scenes.cpp: see shape_scenes.h.
#include "data/shape_scenes.h"

#include "data/dataset_writer.h"

#include "llm/atomic_file.h"
#include "llm/error.h"

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

namespace llama_mm::data {

namespace fs = std::filesystem;

const std::vector<Shape>& all_shapes() {
  static const std::vector<Shape> v = {Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star, Shape::Hexagon};
  return v;
}

const std::vector<Color>& all_colors() {
  static const std::vector<Color> v = {Color::Red,    Color::Green,  Color::Blue,
                                       Color::Yellow, Color::Purple, Color::Orange};
  return v;
}

const char* shape_name(Shape s) {
  static const char* names[] = {"circle", "square", "triangle", "star", "hexagon"};
  return names[static_cast<int>(s)];
}

const char* color_name(Color c) {
  static const char* names[] = {"red", "green", "blue", "yellow", "purple", "orange"};
  return names[static_cast<int>(c)];
}

const char* background_name(Background b) {
  static const char* names[] = {"white", "black", "gray"};
  return names[static_cast<int>(b)];
}

std::vector<int> color_rgb(Color c) {
  static const int rgb[][3] = {{215, 35, 35},  {35, 160, 60},  {40, 80, 215},
                               {235, 205, 35}, {135, 50, 165}, {245, 135, 25}};
  const auto& v = rgb[static_cast<int>(c)];
  return {v[0], v[1], v[2]};
}

std::vector<int> background_rgb(Background b) {
  static const int rgb[][3] = {{245, 245, 245}, {15, 15, 15}, {128, 128, 128}};
  const auto& v = rgb[static_cast<int>(b)];
  return {v[0], v[1], v[2]};
}

namespace {

const char* count_word(int n, const char* next_word) {
  if (n == 1) return std::strchr("aeiou", next_word[0]) ? "an" : "a";
  return n == 2 ? "two" : "three";
}

}  // namespace

std::string shape_caption(const ShapeScene& scene) {
  std::map<std::pair<int, int>, int> groups;  // (shape, colour) -> count, in the caption's order
  for (const auto& it : scene.items) ++groups[{static_cast<int>(it.shape), static_cast<int>(it.color)}];
  std::vector<std::string> parts;
  for (const auto& [key, n] : groups) {
    const char* color = color_name(static_cast<Color>(key.second));
    parts.push_back(std::string(count_word(n, color)) + " " + color + " " + shape_name(static_cast<Shape>(key.first)) +
                    (n > 1 ? "s" : ""));
  }
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) s += i + 1 == parts.size() ? " and " : ", ";
    s += parts[i];
  }
  return s + " on a " + background_name(scene.background) + " background";
}

uint64_t item_seed(uint64_t seed, int64_t i) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i) + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float draw_turn(Shape shape, double max_turn, std::mt19937_64& rng) {
  if (!(max_turn >= 0 && max_turn <= 180))
    throw Error(ErrorKind::Usage, "shape turn must be within [0, 180] degrees, got " + std::to_string(max_turn));
  const double t = shape == Shape::Square ? std::min(max_turn, 20.0) : max_turn;
  return static_cast<float>(t == 180 ? std::uniform_real_distribution<double>(0, 360)(rng)
                                     : std::uniform_real_distribution<double>(-t, t)(rng));
}

ShapeScene random_shape_scene(uint64_t seed, int size, RadiusRange radius, double max_turn) {
  if (size < 32)
    throw Error(ErrorKind::Usage, "shape scenes need images of at least 32 pixels, got " + std::to_string(size));
  if (!(radius.min > 0 && radius.min <= radius.max && radius.max <= 0.45))
    throw Error(ErrorKind::Usage,
                "shape radius range must satisfy 0 < min <= max <= 0.45 (fractions of the image side), got " +
                    std::to_string(radius.min) + "," + std::to_string(radius.max));
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto pick = [&](int n) { return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
  ShapeScene scene;
  scene.background = static_cast<Background>(pick(3));
  const int n_items = 1 + pick(3);
  // Repeats of one kind are common enough that "two"/"three" are learned: a second item copies the first's
  // shape and colour half of the time.
  for (int attempt = 0; static_cast<int>(scene.items.size()) < n_items && attempt < 200; ++attempt) {
    ShapeItem it;
    if (!scene.items.empty() && pick(2) == 0) {
      const auto& twin = scene.items[pick(static_cast<int>(scene.items.size()))];
      it.shape = twin.shape;
      it.color = twin.color;
    } else {
      it.shape = all_shapes()[pick(static_cast<int>(all_shapes().size()))];
      it.color = all_colors()[pick(static_cast<int>(all_colors().size()))];
    }
    it.radius = static_cast<float>(size * uniform(radius.min, radius.max));
    const double margin = it.radius + 2;
    it.cx = static_cast<float>(uniform(margin, size - margin));
    it.cy = static_cast<float>(uniform(margin, size - margin));
    it.angle = draw_turn(it.shape, max_turn, rng);
    bool apart = true;
    for (const auto& o : scene.items)
      apart = apart && std::hypot(it.cx - o.cx, it.cy - o.cy) > it.radius + o.radius + 3;
    if (apart) scene.items.push_back(it);
  }
  return scene;
}

namespace {

// A regular polygon (or star, with alternating radii) around the item's centre.
std::vector<cv::Point> outline(const ShapeItem& it, int corners, double inner_ratio) {
  std::vector<cv::Point> pts;
  const int n = inner_ratio > 0 ? 2 * corners : corners;
  for (int k = 0; k < n; ++k) {
    const double r = inner_ratio > 0 && k % 2 ? it.radius * inner_ratio : it.radius;
    const double a = (it.angle + 360.0 * k / n - 90) * M_PI / 180;
    // 4 fractional bits: sub-pixel vertices for anti-aliased edges.
    pts.emplace_back(static_cast<int>(std::lround((it.cx + r * std::cos(a)) * 16)),
                     static_cast<int>(std::lround((it.cy + r * std::sin(a)) * 16)));
  }
  return pts;
}

}  // namespace

std::vector<uint8_t> render_shape_scene(const ShapeScene& scene, int size, uint64_t look_seed, uint64_t noise_seed) {
  std::mt19937_64 rng(look_seed ^ 0x5DEECE66Dull);
  auto jitter = [&](int v) { return std::clamp(v + std::uniform_int_distribution<int>(-20, 20)(rng), 0, 255); };
  const auto bg = background_rgb(scene.background);
  cv::Mat img(size, size, CV_8UC3, cv::Scalar(jitter(bg[0]), jitter(bg[1]), jitter(bg[2])));  // RGB order
  for (const auto& it : scene.items) {
    const auto c = color_rgb(it.color);
    const cv::Scalar color(jitter(c[0]), jitter(c[1]), jitter(c[2]));
    if (it.shape == Shape::Circle) {
      cv::circle(img, cv::Point(static_cast<int>(std::lround(it.cx * 16)), static_cast<int>(std::lround(it.cy * 16))),
                 static_cast<int>(std::lround(it.radius * 16)), color, cv::FILLED, cv::LINE_AA, 4);
      continue;
    }
    std::vector<cv::Point> pts;
    switch (it.shape) {
      case Shape::Square: {
        ShapeItem sq = it;
        sq.angle += 45;  // corners on the diagonals: upright at angle 0
        pts = outline(sq, 4, 0);
        break;
      }
      case Shape::Triangle: pts = outline(it, 3, 0); break;
      case Shape::Star: pts = outline(it, 5, 0.45); break;
      default: pts = outline(it, 6, 0); break;
    }
    cv::fillPoly(img, std::vector<std::vector<cv::Point>>{pts}, color, cv::LINE_AA, 4);
  }
  const double sigma = std::uniform_real_distribution<double>(0, 8)(rng);
  cv::Mat noise(size, size, CV_32FC3);
  cv::RNG cv_rng(item_seed(noise_seed, 1));
  cv_rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  cv::Mat noisy;
  img.convertTo(noisy, CV_32FC3);
  noisy += noise;
  noisy.convertTo(img, CV_8UC3);  // saturating
  return std::vector<uint8_t>(img.data, img.data + img.total() * 3);
}

std::string write_shapes_dataset(const ShapesDatasetOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  if (o.format != "jpg" && o.format != "png")
    throw Error(ErrorKind::Usage, "data shapes: --format must be jpg or png, got '" + o.format + "'");
  const std::vector<int> params = o.format == "jpg" ? std::vector<int>{cv::IMWRITE_JPEG_QUALITY, 95}
                                                    : std::vector<int>{cv::IMWRITE_PNG_COMPRESSION, 6};
  return detail::write_dataset(
      "data shapes", o.out_dir, o.n, "images", "captions.jsonl",
      [&](int64_t i, const fs::path& images) {
        const uint64_t s = item_seed(o.seed, i);
        const auto scene = random_shape_scene(s, o.size, o.radius, o.max_turn);
        auto rgb = render_shape_scene(scene, o.size, s);
        cv::Mat img(o.size, o.size, CV_8UC3, rgb.data()), bgr;
        cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
        const std::string name = detail::item_file_name(i, o.format);
        std::vector<uchar> bytes;
        if (!cv::imencode("." + o.format, bgr, bytes, params))
          throw Error(ErrorKind::Runtime, "data shapes: cannot encode image " + name);
        write_file_atomic((images / name).string(), std::string(bytes.begin(), bytes.end()));
        return nlohmann::json{{"image", "images/" + name}, {"text", shape_caption(scene)}};
      },
      progress);
}

}  // namespace llama_mm::data
