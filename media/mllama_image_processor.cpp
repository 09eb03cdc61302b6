// media/mllama_image_processor.cpp: MllamaImageProcessor (see mllama_image_processor.h; spec §4.2).
#include "media/mllama_image_processor.h"

#include "media/pil_resize.h"

#include "llm/config_json.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

namespace llama_mm::media {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

namespace {

// image_mean / image_std: a list of 3 numbers, or one number for every channel (as HF accepts).
std::array<double, 3> get_per_channel(const json& j, const std::string& key, const std::string& origin,
                                      const std::array<double, 3>& dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (it->is_number()) {
    const double v = it->get<double>();
    return {v, v, v};
  }
  if (!it->is_array() || it->size() != 3)
    fail(origin, key, "expected a list of 3 numbers (one per RGB channel), got " + it->dump());
  std::array<double, 3> out{};
  for (size_t c = 0; c < 3; ++c) {
    if (!(*it)[c].is_number()) fail(origin, key, "expected numbers, got " + (*it)[c].dump());
    out[c] = (*it)[c].get<double>();
  }
  return out;
}

const char* pil_filter_name(int64_t id) {
  static const char* kNames[] = {"NEAREST", "LANCZOS", "BILINEAR", "BICUBIC", "BOX", "HAMMING"};
  return id >= 0 && id < 6 ? kNames[id] : "unknown";
}

}  // namespace

// ---- config ----

MllamaImageProcessorConfig MllamaImageProcessorConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin, "(root)", "expected a JSON object, got " + j.dump());
  static const std::set<std::string> kKeys = {
      "do_convert_rgb", "do_resize",  "size",      "resample", "do_rescale",      "rescale_factor",
      "do_normalize",   "image_mean", "image_std", "do_pad",   "max_image_tiles", "image_processor_type",
      "processor_class"};
  for (const auto& item : j.items())
    if (!kKeys.count(item.key())) fail(origin, item.key(), "unknown key for MllamaImageProcessor");

  MllamaImageProcessorConfig c;
  c.do_convert_rgb = get<bool>(j, "do_convert_rgb", origin, c.do_convert_rgb);
  c.do_resize = get<bool>(j, "do_resize", origin, c.do_resize);
  if (auto it = j.find("size"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail(origin, "size", "expected {\"height\": H, \"width\": W}, got " + it->dump());
    for (const auto& item : it->items())
      if (item.key() != "height" && item.key() != "width")
        fail(origin, "size." + item.key(), "unknown key (size takes height and width)");
    c.size.height = get<int64_t>(*it, "height", origin, std::nullopt, "size.height");
    c.size.width = get<int64_t>(*it, "width", origin, std::nullopt, "size.width");
  }
  c.resample = get<int64_t>(j, "resample", origin, c.resample);
  c.do_rescale = get<bool>(j, "do_rescale", origin, c.do_rescale);
  c.rescale_factor = get<double>(j, "rescale_factor", origin, c.rescale_factor);
  c.do_normalize = get<bool>(j, "do_normalize", origin, c.do_normalize);
  c.image_mean = get_per_channel(j, "image_mean", origin, c.image_mean);
  c.image_std = get_per_channel(j, "image_std", origin, c.image_std);
  c.do_pad = get<bool>(j, "do_pad", origin, c.do_pad);
  c.max_image_tiles = get<int64_t>(j, "max_image_tiles", origin, c.max_image_tiles);
  const auto type = get<std::string>(j, "image_processor_type", origin, std::string("MllamaImageProcessor"));
  if (type.rfind("MllamaImageProcessor", 0) != 0)
    fail(origin, "image_processor_type", "expected MllamaImageProcessor, got '" + type + "'");
  get<std::string>(j, "processor_class", origin, std::string());  // type check only
  c.validate(origin);
  return c;
}

MllamaImageProcessorConfig MllamaImageProcessorConfig::from_file(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "preprocessor_config.json").string();
  std::string resolved;
  const json j = config_json::read_file(file, &resolved);
  return from_json(j, resolved);
}

MllamaImageProcessorConfig MllamaImageProcessorConfig::llama_3_2_vision() {
  MllamaImageProcessorConfig c;
  c.size = {560, 560};
  c.rescale_factor = 0.00392156862745098;  // 1/255 as the JSON writes it
  // The CLIP constants. ref: Llama-3.2-11B-Vision preprocessor_config.json; transformers v4.45.2
  // src/transformers/utils/constants.py OPENAI_CLIP_MEAN / OPENAI_CLIP_STD.
  c.image_mean = {0.48145466, 0.4578275, 0.40821073};
  c.image_std = {0.26862954, 0.26130258, 0.27577711};
  c.max_image_tiles = 4;
  return c;
}

void MllamaImageProcessorConfig::validate(const std::string& origin) const {
  if (size.height <= 0 || size.width <= 0)
    fail(origin, "size",
         "height and width must be positive, got " + std::to_string(size.height) + "x" + std::to_string(size.width));
  if (size.height != size.width)
    fail(origin, "size",
         "height and width must be equal (square tiles), got " + std::to_string(size.height) + "x" +
             std::to_string(size.width));
  if (max_image_tiles <= 0) fail(origin, "max_image_tiles", "must be positive, got " + std::to_string(max_image_tiles));
  if (resample != 2)
    fail(
        origin, "resample",
        "only 2 (PIL BILINEAR) is supported, got " + std::to_string(resample) + " (" + pil_filter_name(resample) + ")");
  if (!do_resize) fail(origin, "do_resize", "false is not supported (MllamaImageProcessor always resizes)");
  if (!do_pad) fail(origin, "do_pad", "false is not supported (MllamaImageProcessor always pads)");
  if (!std::isfinite(rescale_factor)) fail(origin, "rescale_factor", "must be a finite number");
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(image_mean[c])) fail(origin, "image_mean", "must be finite numbers");
    if (!std::isfinite(image_std[c]) || image_std[c] == 0.0) fail(origin, "image_std", "must be finite and non-zero");
  }
}

// ---- canvas arithmetic (float64, as numpy) ----

std::vector<TileGrid> supported_aspect_ratios(int64_t max_image_tiles) {
  std::vector<TileGrid> out;
  for (int64_t r = 1; r <= max_image_tiles; ++r)
    for (int64_t c = 1; c <= max_image_tiles; ++c)
      if (r * c <= max_image_tiles) out.push_back({r, c});
  return out;
}

PixelSize optimal_tiled_canvas(int64_t height, int64_t width, int64_t max_image_tiles, int64_t tile_size) {
  TORCH_CHECK(height > 0 && width > 0 && max_image_tiles > 0 && tile_size > 0, "optimal_tiled_canvas: bad arguments ",
              height, "x", width, " max_image_tiles=", max_image_tiles, " tile_size=", tile_size);
  const auto grids = supported_aspect_ratios(max_image_tiles);
  std::vector<double> scales;
  bool can_upscale = false;
  for (const auto& g : grids) {
    const double sh = static_cast<double>(g.rows * tile_size) / static_cast<double>(height);
    const double sw = static_cast<double>(g.cols * tile_size) / static_cast<double>(width);
    scales.push_back(sw > sh ? sh : sw);  // the limiting side
    can_upscale |= scales.back() >= 1.0;
  }
  // The least upscaling, else the least downscaling.
  double selected = can_upscale ? INFINITY : -INFINITY;
  for (double s : scales) {
    if (can_upscale && s >= 1.0) selected = std::min(selected, s);
    if (!can_upscale) selected = std::max(selected, s);
  }
  // Among canvases with exactly that scale, the smallest area (the first one on ties, as np.argmin).
  PixelSize best;
  for (size_t i = 0; i < grids.size(); ++i) {
    if (scales[i] != selected) continue;
    const PixelSize c{grids[i].rows * tile_size, grids[i].cols * tile_size};
    if (best.height == 0 || c.height * c.width < best.height * best.width) best = c;
  }
  return best;
}

PixelSize size_fit_to_canvas(int64_t height, int64_t width, int64_t canvas_height, int64_t canvas_width,
                             int64_t tile_size) {
  const int64_t target_w = std::min(std::max(width, tile_size), canvas_width);  // np.clip
  const int64_t target_h = std::min(std::max(height, tile_size), canvas_height);
  const double scale_h = static_cast<double>(target_h) / static_cast<double>(height);
  const double scale_w = static_cast<double>(target_w) / static_cast<double>(width);
  if (scale_w < scale_h)
    return {std::min(static_cast<int64_t>(std::floor(static_cast<double>(height) * scale_w)), target_h), target_w};
  return {target_h, std::min(static_cast<int64_t>(std::floor(static_cast<double>(width) * scale_h)), target_w)};
}

// ---- processor ----

MllamaImageProcessor::MllamaImageProcessor(MllamaImageProcessorConfig config) : config_(std::move(config)) {
  config_.validate("MllamaImageProcessorConfig");
  // Every output value depends only on (channel, uint8 level), so the float pipeline runs once per level:
  // rescale = float32(float64(u8) * rescale_factor) (numpy: uint8 array * Python float is float64, then
  // astype(float32)); normalize = (x - float32(mean)) / float32(std) in float32.
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(config_.image_mean[c]), stdev = static_cast<float>(config_.image_std[c]);
    for (int v = 0; v < 256; ++v) {
      float x = config_.do_rescale ? static_cast<float>(static_cast<double>(v) * config_.rescale_factor)
                                   : static_cast<float>(v);
      if (config_.do_normalize) x = (x - mean) / stdev;
      lut_[c][v] = x;
    }
  }
}

MllamaImageProcessor::Resized MllamaImageProcessor::resize_to_canvas(const Image& image) const {
  TORCH_CHECK(
      image.width > 0 && image.height > 0 && image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
      "MllamaImageProcessor: malformed image ", image.width, "x", image.height, " with ", image.rgb.size(), " bytes");
  const int64_t tile = config_.tile_size();
  const PixelSize canvas = optimal_tiled_canvas(image.height, image.width, config_.max_image_tiles, tile);
  const PixelSize fit = size_fit_to_canvas(image.height, image.width, canvas.height, canvas.width, tile);
  // HF raises for a 0-pixel side (see the header); keep at least one pixel.
  const int h = static_cast<int>(std::max<int64_t>(fit.height, 1)),
            w = static_cast<int>(std::max<int64_t>(fit.width, 1));
  return {resize_bilinear_pil(image, h, w), TileGrid{canvas.height / tile, canvas.width / tile}};
}

ProcessedImage MllamaImageProcessor::preprocess(const Image& image) const {
  const Resized r = resize_to_canvas(image);
  const int64_t S = config_.tile_size();
  const int64_t n = r.grid.rows * r.grid.cols;
  const auto grids = supported_aspect_ratios(config_.max_image_tiles);
  const auto id = std::find(grids.begin(), grids.end(), r.grid) - grids.begin() + 1;

  // Pad with uint8 0 (bottom/right) before normalising: padded pixels take lut_[c][0], not 0.0.
  torch::Tensor tiles = torch::empty({n, 3, S, S}, torch::kFloat32);  // [N, 3, S, S]
  float* out = tiles.data_ptr<float>();
  const Image& im = r.image;
  for (int64_t tr = 0; tr < r.grid.rows; ++tr) {
    for (int64_t tc = 0; tc < r.grid.cols; ++tc) {
      float* tile = out + (tr * r.grid.cols + tc) * 3 * S * S;  // row-major tile order
      for (int c = 0; c < 3; ++c) {
        const auto& lut = lut_[c];
        for (int64_t y = 0; y < S; ++y) {
          float* dst = tile + (c * S + y) * S;
          const int64_t iy = tr * S + y;
          const int64_t x0 = tc * S;
          const int64_t inside = iy < im.height ? std::clamp<int64_t>(im.width - x0, 0, S) : 0;
          const uint8_t* src = inside > 0 ? &im.rgb[(iy * im.width + x0) * 3 + c] : nullptr;
          for (int64_t x = 0; x < inside; ++x) dst[x] = lut[src[x * 3]];
          std::fill(dst + inside, dst + S, lut[0]);
        }
      }
    }
  }
  return {tiles, static_cast<int64_t>(id), static_cast<int>(r.grid.rows), static_cast<int>(r.grid.cols)};
}

MllamaImageInputs MllamaImageProcessor::pack(const std::vector<std::vector<ProcessedImage>>& per_sample) const {
  const auto B = static_cast<int64_t>(per_sample.size());
  int64_t M = 0;
  for (const auto& s : per_sample) M = std::max<int64_t>(M, static_cast<int64_t>(s.size()));
  const int64_t T = config_.max_image_tiles, S = config_.tile_size();

  MllamaImageInputs in;
  in.pixel_values = torch::zeros({B, M, T, 3, S, S}, torch::kFloat32);  // [B, M, T, 3, S, S]
  in.aspect_ratio_ids = torch::zeros({B, M}, torch::kInt64);            // [B, M]
  in.aspect_ratio_mask = torch::zeros({B, M, T}, torch::kInt64);        // [B, M, T]
  // HF sets tile 0 for every slot, real image or not (Meta pads aspect ratios with (1, 1)).
  if (M > 0) in.aspect_ratio_mask.select(2, 0).fill_(1);
  for (int64_t b = 0; b < B; ++b) {
    in.num_tiles.emplace_back();
    for (int64_t m = 0; m < static_cast<int64_t>(per_sample[b].size()); ++m) {
      const ProcessedImage& p = per_sample[b][m];
      const int64_t n = static_cast<int64_t>(p.rows) * p.cols;
      TORCH_CHECK(p.tiles.defined() && p.tiles.scalar_type() == torch::kFloat32 &&
                      p.tiles.sizes() == torch::IntArrayRef({n, 3, S, S}) && n >= 1 && n <= T,
                  "MllamaImageProcessor::pack: image ", m, " of sample ", b, " has tiles ",
                  p.tiles.defined() ? p.tiles.sizes() : torch::IntArrayRef{}, " for a ", p.rows, "x", p.cols,
                  " grid; expected [", n, ", 3, ", S, ", ", S, "] float32 with at most ", T, " tiles");
      in.pixel_values[b][m].narrow(0, 0, n).copy_(p.tiles);
      in.aspect_ratio_ids[b][m] = p.aspect_ratio_id;
      in.aspect_ratio_mask[b][m].narrow(0, 0, n).fill_(1);
      in.num_tiles.back().push_back(n);
    }
  }
  return in;
}

}  // namespace llama_mm::media
