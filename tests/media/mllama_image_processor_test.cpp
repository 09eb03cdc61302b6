// Tests for media/mllama_image_processor.cpp and media/pil_resize.cpp: the canvas arithmetic (spec §4.3
// table, edge sizes, and HF's own results in tests/fixtures/mllama_preprocess/canvas.json), tile order and
// normalised values computed by hand, batch packing, the preprocessor_config.json parser, and bit-exact
// parity with transformers 4.45.2's MllamaImageProcessor on the fixture pictures at S = 560 and S = 56
// (preprocess.safetensors, made by scripts/fixtures/gen_mllama_preprocess.py).
//
// Exactness: tolerance 0 everywhere. The resized uint8 images must equal Pillow's bit for bit (our
// resampler re-implements Pillow's fixed-point arithmetic), and pixel_values must equal HF's float32
// bit for bit (same float64 rescale and float32 normalise): element-wise on the stored (subsampled)
// arrays, and over the whole arrays through their CRC-32s.
#include "media/media.h"

#include "llm/safetensors.h"
#include "crc32.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>

namespace llama_mm::media {
namespace {

using json = nlohmann::json;
using test::fixture;

MllamaImageProcessorConfig config_with_tile(int64_t tile) {
  auto c = MllamaImageProcessorConfig::llama_3_2_vision();
  c.size = {tile, tile};
  return c;
}

Image make_image(int h, int w, const std::function<std::array<uint8_t, 3>(int, int)>& f) {
  Image im;
  im.height = h;
  im.width = w;
  im.rgb.resize(static_cast<size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const auto v = f(y, x);
      std::copy(v.begin(), v.end(), &im.rgb[(static_cast<size_t>(y) * w + x) * 3]);
    }
  return im;
}

torch::Tensor as_tensor(const Image& im) {  // [H, W, 3] uint8, a copy
  return torch::from_blob(const_cast<uint8_t*>(im.rgb.data()), {im.height, im.width, 3}, torch::kUInt8).clone();
}

// HF's value for uint8 level v in channel c, written out: float32(v * (1/255) in float64), then
// (x - float32(mean)) / float32(std) in float32.
float normalised(int v, int c) {
  const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, stdev[3] = {0.26862954, 0.26130258, 0.27577711};
  const float x = static_cast<float>(v * 0.00392156862745098);
  return (x - static_cast<float>(mean[c])) / static_cast<float>(stdev[c]);
}

// ---- canvas arithmetic ----

TEST(MllamaImageProcessor, SupportedAspectRatios) {
  const std::vector<TileGrid> want4 = {{1, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 1}, {2, 2}, {3, 1}, {4, 1}};
  EXPECT_EQ(supported_aspect_ratios(4), want4);
  EXPECT_EQ(supported_aspect_ratios(1), (std::vector<TileGrid>{{1, 1}}));
  EXPECT_EQ(supported_aspect_ratios(6).size(), 14u);  // 6 + 3 + 2 + 1 + 1 + 1
}

struct CanvasCase {
  int64_t h, w;
  PixelSize canvas;
  TileGrid grid;
  int64_t id;
  PixelSize resized;
};

// spec §4.3 (tile 560, 4 tiles), then 1x1, extreme aspect ratios and exact tile multiples.
const CanvasCase kCanvasCases[] = {
    {600, 800, {1120, 1120}, {2, 2}, 6, {600, 800}},
    {300, 300, {560, 560}, {1, 1}, 1, {560, 560}},
    {480, 640, {560, 1120}, {1, 2}, 2, {480, 640}},
    {250, 1000, {560, 1120}, {1, 2}, 2, {250, 1000}},
    {1000, 250, {1120, 560}, {2, 1}, 5, {1000, 250}},
    {100, 2000, {560, 2240}, {1, 4}, 4, {100, 2000}},
    {1080, 1920, {1120, 1120}, {2, 2}, 6, {630, 1120}},
    {2000, 3000, {1120, 1120}, {2, 2}, 6, {746, 1120}},
    {560, 560, {560, 560}, {1, 1}, 1, {560, 560}},
    {1, 1, {560, 560}, {1, 1}, 1, {560, 560}},        // upscaled to one full tile
    {10000, 50, {2240, 560}, {4, 1}, 8, {2240, 11}},  // floor(50 * 0.224) = 11
    {50, 10000, {560, 2240}, {1, 4}, 4, {11, 2240}},
    {1120, 1120, {1120, 1120}, {2, 2}, 6, {1120, 1120}},  // exact multiples: no resize
    {560, 1120, {560, 1120}, {1, 2}, 2, {560, 1120}},
    {1680, 560, {1680, 560}, {3, 1}, 7, {1680, 560}},
    {560, 2240, {560, 2240}, {1, 4}, 4, {560, 2240}},
    {561, 560, {1120, 560}, {2, 1}, 5, {561, 560}},  // one pixel over a tile: the next grid up
};

TEST(MllamaImageProcessor, CanvasAndResizedSizeTable) {
  const auto grids = supported_aspect_ratios(4);
  for (const auto& c : kCanvasCases) {
    SCOPED_TRACE(std::to_string(c.h) + "x" + std::to_string(c.w));
    const PixelSize canvas = optimal_tiled_canvas(c.h, c.w, 4, 560);
    EXPECT_EQ(canvas, c.canvas) << canvas.height << "x" << canvas.width;
    const TileGrid grid{canvas.height / 560, canvas.width / 560};
    EXPECT_EQ(grid, c.grid);
    EXPECT_EQ(std::find(grids.begin(), grids.end(), grid) - grids.begin() + 1, c.id);
    const PixelSize r = size_fit_to_canvas(c.h, c.w, canvas.height, canvas.width, 560);
    EXPECT_EQ(r, c.resized) << r.height << "x" << r.width;
  }
}

TEST(MllamaImageProcessor, CanvasArithmeticMatchesHf) {
  std::ifstream f(fixture("mllama_preprocess/canvas.json"));
  const json j = json::parse(f);
  const auto& rows = j.at("rows");
  ASSERT_GT(rows.size(), 2000u);
  for (const auto& r : rows) {
    const auto v = r.get<std::vector<int64_t>>();  // h, w, tile, max_tiles, canvas h, w, resized h, w
    const PixelSize canvas = optimal_tiled_canvas(v[0], v[1], v[3], v[2]);
    ASSERT_EQ(canvas, (PixelSize{v[4], v[5]})) << r.dump();
    ASSERT_EQ(size_fit_to_canvas(v[0], v[1], v[4], v[5], v[2]), (PixelSize{v[6], v[7]})) << r.dump();
  }
  for (const auto& [n, pairs] : j.at("supported_aspect_ratios").items()) {
    std::vector<TileGrid> want;
    for (const auto& p : pairs) want.push_back({p[0].get<int64_t>(), p[1].get<int64_t>()});
    EXPECT_EQ(supported_aspect_ratios(std::stoll(n)), want) << n;
  }
}

// ---- per-image pipeline, by hand ----

// A 6x7 image with tile 4 and 4 tiles: canvas 8x8 (2x2 grid, id 6), no resize; pixel (y, x) lands in tile
// (y/4)*2 + x/4 at (y%4, x%4); the padding (row 6-7, column 7) holds uint8 0 normalised, not 0.0.
TEST(MllamaImageProcessor, TileOrderPaddingAndNormalisedValues) {
  const MllamaImageProcessor proc(config_with_tile(4));
  const Image im = make_image(6, 7, [](int y, int x) {
    return std::array<uint8_t, 3>{static_cast<uint8_t>(y * 10 + x), static_cast<uint8_t>(100 + y),
                                  static_cast<uint8_t>(255 - x)};
  });
  const ProcessedImage p = proc.preprocess(im);
  EXPECT_EQ(p.rows, 2);
  EXPECT_EQ(p.cols, 2);
  EXPECT_EQ(p.aspect_ratio_id, 6);
  ASSERT_EQ(p.tiles.sizes(), torch::IntArrayRef({4, 3, 4, 4}));
  const auto t = p.tiles.accessor<float, 4>();
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      const bool inside = y < 6 && x < 7;
      const int v[3] = {inside ? y * 10 + x : 0, inside ? 100 + y : 0, inside ? 255 - x : 0};
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(t[(y / 4) * 2 + x / 4][c][y % 4][x % 4], normalised(v[c], c)) << y << "," << x << "," << c;
    }
  }
  // Two values against literals (numpy float32): level 0 and 255 of the red channel.
  EXPECT_NEAR(t[3][0][3][3], -1.7922626f, 1e-6);  // padding: (0 - 0.48145466) / 0.26862954
  EXPECT_NEAR(t[0][2][0][0], 2.145897f, 1e-6);    // blue 255: (1 - 0.40821073) / 0.27577711
}

TEST(MllamaImageProcessor, OnePixelImageFillsOneTile) {
  const MllamaImageProcessor proc(MllamaImageProcessorConfig::llama_3_2_vision());
  const ProcessedImage p = proc.preprocess(make_image(1, 1, [](int, int) {
    return std::array<uint8_t, 3>{9, 99, 199};
  }));
  EXPECT_EQ(p.aspect_ratio_id, 1);
  ASSERT_EQ(p.tiles.sizes(), torch::IntArrayRef({1, 3, 560, 560}));
  for (int c = 0; c < 3; ++c) {
    const float want = normalised(c == 0 ? 9 : c == 1 ? 99 : 199, c);
    EXPECT_TRUE(torch::all(p.tiles[0][c] == want).item<bool>()) << c;
  }
}

TEST(MllamaImageProcessor, ExtremelyThinImageKeepsOnePixel) {
  // HF's size arithmetic gives 0 rows for 1x10000 (and HF then raises); we keep one row.
  EXPECT_EQ(size_fit_to_canvas(1, 10000, 560, 2240, 560), (PixelSize{0, 2240}));
  const MllamaImageProcessor proc(MllamaImageProcessorConfig::llama_3_2_vision());
  const auto r = proc.resize_to_canvas(make_image(1, 10000, [](int, int) { return std::array<uint8_t, 3>{1, 2, 3}; }));
  EXPECT_EQ(r.image.height, 1);
  EXPECT_EQ(r.image.width, 2240);
  EXPECT_EQ(r.grid, (TileGrid{1, 4}));
}

TEST(PilResize, ConstantStaysConstantAndSameSizeIsACopy) {
  const Image flat = make_image(7, 5, [](int, int) { return std::array<uint8_t, 3>{0, 128, 255}; });
  for (auto [h, w] : {std::pair{7, 5}, {3, 2}, {20, 33}, {1, 1}, {7, 40}, {90, 5}}) {
    const Image r = resize_bilinear_pil(flat, h, w);
    ASSERT_EQ(r.height, h);
    ASSERT_EQ(r.width, w);
    EXPECT_TRUE(torch::equal(as_tensor(r), as_tensor(make_image(h, w,
                                                                [](int, int) {
                                                                  return std::array<uint8_t, 3>{0, 128, 255};
                                                                }))))
        << h << "x" << w;
  }
}

// Upscaling 2 -> 4 by hand, vertically and horizontally (each pass alone): support 1, scale 0.5; output i
// samples at (i + 0.5) / 2 with triangle weights normalised over the in-range sources, in 22-bit fixed
// point, rounded: ends copy; i = 1: weights (0.75, 0.25) of (0, 202) -> 50.5 -> 51; i = 2: (0.25, 0.75)
// -> 151.5 -> 152 (truncation would give 50 and 151).
TEST(PilResize, HandComputedUpscale) {
  const auto grey = [](uint8_t v) { return std::array<uint8_t, 3>{v, v, v}; };
  const Image col = make_image(2, 1, [&](int y, int) { return grey(y == 0 ? 0 : 202); });
  const Image row = make_image(1, 2, [&](int, int x) { return grey(x == 0 ? 0 : 202); });
  const Image v = resize_bilinear_pil(col, 4, 1), h = resize_bilinear_pil(row, 1, 4);
  ASSERT_EQ(v.height, 4);
  ASSERT_EQ(h.width, 4);
  for (int i = 0; i < 4; ++i) {
    const int want[4] = {0, 51, 152, 202};
    EXPECT_EQ(v.rgb[i * 3], want[i]) << i;
    EXPECT_EQ(h.rgb[i * 3], want[i]) << i;
  }
}

// Downscaling 4 -> 2 antialiases: support grows to 2 input pixels, so output 0 (centre 1.0) reads inputs
// 0..2 with triangle weights (0.75, 0.75, 0.25) / 1.75 = (3, 3, 1) / 7 and output 1 (centre 3.0) inputs
// 1..3 with (1, 3, 3) / 7: (0, 70, 140, 210) -> (350 / 7, 1120 / 7) = (50, 160). A plain 2-tap bilinear
// would give (35, 175).
TEST(PilResize, HandComputedAntialiasedDownscale) {
  const Image row = make_image(1, 4, [](int, int x) {
    const auto v = static_cast<uint8_t>(70 * x);
    return std::array<uint8_t, 3>{v, v, v};
  });
  const Image r = resize_bilinear_pil(row, 1, 2);
  ASSERT_EQ(r.width, 2);
  EXPECT_EQ(r.rgb[0], 50);
  EXPECT_EQ(r.rgb[3], 160);
}

// ---- packing ----

ProcessedImage fake(int rows, int cols, float value, int64_t tile) {
  const auto grids = supported_aspect_ratios(4);
  const TileGrid g{rows, cols};
  return {torch::full({rows * cols, 3, tile, tile}, value),
          std::find(grids.begin(), grids.end(), g) - grids.begin() + 1, rows, cols};
}

TEST(MllamaImageProcessor, PackPadsWithZerosAndMasksTileZero) {
  const MllamaImageProcessor proc(config_with_tile(2));
  // sample 0: a 2x2 image and a 1x1 image; sample 1: a 1x3 image; sample 2: no image.
  const auto in = proc.pack({{fake(2, 2, 1.5f, 2), fake(1, 1, -2.f, 2)}, {fake(1, 3, 3.f, 2)}, {}});
  ASSERT_EQ(in.pixel_values.sizes(), torch::IntArrayRef({3, 2, 4, 3, 2, 2}));
  EXPECT_EQ(in.pixel_values.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(in.aspect_ratio_ids, torch::tensor({6, 1, 3, 0, 0, 0}, torch::kInt64).view({3, 2})));
  EXPECT_TRUE(torch::equal(in.aspect_ratio_mask, torch::tensor({1, 1, 1, 1, 1, 0, 0, 0,   // sample 0
                                                                1, 1, 1, 0, 1, 0, 0, 0,   // sample 1: tile 0 of the
                                                                1, 0, 0, 0, 1, 0, 0, 0},  // missing image is 1
                                                               torch::kInt64)
                                                     .view({3, 2, 4})));
  EXPECT_EQ(in.num_tiles, (std::vector<std::vector<int64_t>>{{4, 1}, {3}, {}}));
  const auto pv = in.pixel_values;
  EXPECT_TRUE(torch::all(pv[0][0] == 1.5f).item<bool>());
  EXPECT_TRUE(torch::all(pv[0][1][0] == -2.f).item<bool>());
  EXPECT_TRUE(torch::all(pv[0][1].slice(0, 1) == 0.f).item<bool>());  // missing tiles: exactly 0.0
  EXPECT_TRUE(torch::all(pv[1][0].slice(0, 0, 3) == 3.f).item<bool>());
  EXPECT_TRUE(torch::all(pv[1][0][3] == 0.f).item<bool>());
  EXPECT_TRUE(torch::all(pv[1][1] == 0.f).item<bool>());  // missing image
  EXPECT_TRUE(torch::all(pv[2] == 0.f).item<bool>());
}

TEST(MllamaImageProcessor, PackRejectsTilesOfTheWrongSize) {
  const MllamaImageProcessor proc(config_with_tile(2));
  EXPECT_THROW(proc.pack({{fake(1, 1, 0.f, 3)}}), c10::Error);
}

// ---- preprocessor_config.json ----

TEST(MllamaImageProcessorConfig, ReadsWhatHfWrites) {
  const auto c =
      MllamaImageProcessorConfig::from_file(fixture("mllama_preprocess/preprocessor_config.t560.json").string());
  const auto want = MllamaImageProcessorConfig::llama_3_2_vision();
  EXPECT_EQ(c.size.height, 560);
  EXPECT_EQ(c.size.width, 560);
  EXPECT_EQ(c.max_image_tiles, 4);
  EXPECT_EQ(c.resample, 2);
  EXPECT_EQ(c.rescale_factor, want.rescale_factor);
  EXPECT_EQ(c.rescale_factor, 1.0 / 255.0);
  EXPECT_EQ(c.image_mean, want.image_mean);
  EXPECT_EQ(c.image_std, want.image_std);
  EXPECT_TRUE(c.do_convert_rgb && c.do_resize && c.do_rescale && c.do_normalize && c.do_pad);
}

TEST(MllamaImageProcessorConfig, ClassDefaultsForAbsentKeys) {
  const auto c = MllamaImageProcessorConfig::from_json(json::object(), "p.json");
  EXPECT_EQ(c.size.height, 224);
  EXPECT_EQ(c.image_mean, (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c.image_std, (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c.max_image_tiles, 4);
  EXPECT_EQ(MllamaImageProcessorConfig::from_json(json{{"image_mean", 0.25}}, "p.json").image_mean[2], 0.25);
}

TEST(MllamaImageProcessorConfig, ErrorsNameTheFileAndKey) {
  const json base = json::parse(std::ifstream(fixture("mllama_preprocess/preprocessor_config.t560.json")));
  const std::pair<json, std::string> cases[] = {
      {{{"resample", 3}}, "key 'resample': only 2 (PIL BILINEAR) is supported, got 3 (BICUBIC)"},
      {{{"size", {{"height", 560}, {"width", 448}}}}, "key 'size': height and width must be equal"},
      {{{"size", {{"height", 560}}}}, "key 'size.width': missing required key"},
      {{{"do_pad", false}}, "key 'do_pad'"},
      {{{"do_resize", false}}, "key 'do_resize'"},
      {{{"max_image_tiles", 0}}, "key 'max_image_tiles'"},
      {{{"image_std", {0.5, 0.0, 0.5}}}, "key 'image_std'"},
      {{{"image_mean", {0.5, 0.5}}}, "key 'image_mean': expected a list of 3 numbers"},
      {{{"rescale_factor", "1/255"}}, "key 'rescale_factor': expected a number"},
      {{{"crop_size", 224}}, "key 'crop_size': unknown key"},
      {{{"image_processor_type", "CLIPImageProcessor"}}, "key 'image_processor_type'"},
  };
  for (const auto& [patch, want] : cases) {
    json j = base;
    j.merge_patch(patch);
    if (patch.contains("size")) j["size"] = patch["size"];
    try {
      MllamaImageProcessorConfig::from_json(j, "/ckpt/preprocessor_config.json");
      ADD_FAILURE() << "no error for " << patch.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      EXPECT_NE(std::string(e.what()).find("/ckpt/preprocessor_config.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

TEST(MllamaImageProcessorConfig, ConstructorValidates) {
  auto c = MllamaImageProcessorConfig::llama_3_2_vision();
  c.resample = 3;
  EXPECT_THROW(MllamaImageProcessor{c}, Error);
}

// ---- parity with transformers 4.45.2 on real files ----

TEST(MllamaImageProcessor, MatchesHfOnFixturePictures) {
  SafetensorsFile ref(fixture("mllama_preprocess/preprocess.safetensors").string());
  const json cases = json::parse(ref.metadata().at("cases"));
  ASSERT_EQ(cases.size(), 24u);
  std::map<int64_t, std::unique_ptr<MllamaImageProcessor>> procs;
  for (int64_t tile : {560, 56})
    procs[tile] = std::make_unique<MllamaImageProcessor>(MllamaImageProcessorConfig::from_file(
        fixture("mllama_preprocess/preprocessor_config.t" + std::to_string(tile) + ".json").string()));
  for (const auto& c : cases) {
    const std::string key = c["key"];
    SCOPED_TRACE(key);
    const auto& proc = *procs.at(c["tile_size"].get<int64_t>());
    const Image im = load_image_file(fixture("images/" + c["file"].get<std::string>()).string());

    const auto r = proc.resize_to_canvas(im);
    EXPECT_EQ(r.grid, (TileGrid{c["rows"].get<int64_t>(), c["cols"].get<int64_t>()}));
    ASSERT_EQ(r.image.height, c["resized_height"].get<int>());
    ASSERT_EQ(r.image.width, c["resized_width"].get<int>());
    const auto rs = c["resized_stride"].get<std::vector<int64_t>>();
    const auto resized = as_tensor(r.image).slice(0, 0, r.image.height, rs[0]).slice(1, 0, r.image.width, rs[1]);
    const auto want_resized = ref.get(key + ".resized");
    ASSERT_EQ(resized.sizes(), want_resized.sizes());
    EXPECT_EQ((resized.to(torch::kInt32) - want_resized.to(torch::kInt32)).abs().max().item<int>(), 0);
    EXPECT_EQ(test::crc32(r.image.rgb.data(), r.image.rgb.size()), c["resized_crc32"].get<uint32_t>());

    const ProcessedImage p = proc.preprocess(im);
    EXPECT_EQ(p.aspect_ratio_id, c["aspect_ratio_id"].get<int64_t>());
    const int64_t ps = c["pixel_values_stride"].get<int64_t>();
    const auto pv = p.tiles.slice(2, 0, c10::nullopt, ps).slice(3, 0, c10::nullopt, ps);
    const auto want_pv = ref.get(key + ".pixel_values");
    ASSERT_EQ(pv.sizes(), want_pv.sizes());
    EXPECT_TRUE(torch::equal(pv, want_pv)) << "max |diff| " << (pv - want_pv).abs().max().item<float>();
    EXPECT_EQ(test::crc32(p.tiles.data_ptr(), p.tiles.numel() * sizeof(float)),
              c["pixel_values_crc32"].get<uint32_t>());
  }
}

TEST(MllamaImageProcessor, PackMatchesHf) {
  SafetensorsFile ref(fixture("mllama_preprocess/preprocess.safetensors").string());
  const json pack = json::parse(ref.metadata().at("pack"));
  const MllamaImageProcessor proc(MllamaImageProcessorConfig::from_file(
      fixture("mllama_preprocess/preprocessor_config.t" + std::to_string(pack["tile_size"].get<int>()) + ".json")
          .string()));
  std::vector<std::vector<ProcessedImage>> batch;
  for (const auto& sample : pack["batch"]) {
    batch.emplace_back();
    for (const auto& name : sample)
      batch.back().push_back(proc.preprocess(load_image_file(fixture("images/" + name.get<std::string>()).string())));
  }
  const auto in = proc.pack(batch);
  EXPECT_TRUE(torch::equal(in.pixel_values, ref.get("pack.pixel_values")));
  EXPECT_TRUE(torch::equal(in.aspect_ratio_ids, ref.get("pack.aspect_ratio_ids")));
  EXPECT_TRUE(torch::equal(in.aspect_ratio_mask, ref.get("pack.aspect_ratio_mask")));
  EXPECT_EQ(in.num_tiles, pack["num_tiles"].get<std::vector<std::vector<int64_t>>>());
}

}  // namespace
}  // namespace llama_mm::media
