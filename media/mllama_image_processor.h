// media/mllama_image_processor.h: Llama 3.2 Vision (Mllama) image preprocessing, bit-exact with Hugging
// Face's MllamaImageProcessor (mllama-spec.md §4; ref: transformers v4.45.2, commit 53fad641cf,
// src/transformers/models/mllama/image_processing_mllama.py).
//
// Per image (preprocess): choose the tile grid (optimal_tiled_canvas), resize with Pillow's bilinear
// (size_fit_to_canvas, resize_bilinear_pil), pad bottom/right with uint8 0 to rows x cols tiles, rescale
// (float64 product stored as float32), normalise per channel in float32, split into row-major tiles.
// Per batch (pack): zero-pad to [B, M, T, 3, S, S] with aspect-ratio ids and masks.
//
// Shape legend: B batch samples, M images per sample (the largest count in the batch), T max_image_tiles,
// N tiles of one image (rows * cols), S tile side in pixels (size.height).
//
// Known, deliberate differences from the Python reference (which fails in these cases):
//   * an image whose fitted height or width rounds down to 0 (e.g. 1x10000) is resized to 1 pixel there
//     (HF raises "height and width must be > 0");
//   * images 1 or 3 pixels high are processed as images (HF's channel-dimension inference takes their
//     height for the channel axis).
// Thread-safety: a processor is immutable; preprocess and pack may run concurrently.
#pragma once

#include "media/image_decode.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace llama_mm::media {

// preprocessor_config.json, field for field. Absent keys take MllamaImageProcessor's CLASS defaults
// (size 224, IMAGENET_STANDARD mean/std 0.5), not the checkpoints' values: see llama_3_2_vision().
struct MllamaImageProcessorConfig {
  struct Size {
    int64_t height = 224, width = 224;  // the tile side; HF requires height == width
  };
  bool do_convert_rgb = true;  // decode_image always yields RGB (alpha over white), so either value works
  bool do_resize = true;       // false is rejected, as by HF
  Size size;
  int64_t resample = 2;  // PIL resampling filter id; only 2 (BILINEAR) is implemented
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<double, 3> image_mean = {0.5, 0.5, 0.5};
  std::array<double, 3> image_std = {0.5, 0.5, 0.5};
  bool do_pad = true;  // false is rejected, as by HF
  int64_t max_image_tiles = 4;

  // Strict: unknown keys, wrong types and unsupported values are ErrorKind::Config errors naming
  // `origin` and the key. The metadata keys image_processor_type (an "MllamaImageProcessor*" name) and
  // processor_class are accepted.
  static MllamaImageProcessorConfig from_json(const nlohmann::json& j, const std::string& origin);
  // A preprocessor_config.json, or a directory holding one. A missing file is ErrorKind::ModelLoad.
  static MllamaImageProcessorConfig from_file(const std::string& path);
  // The values of the released Llama-3.2-11B/90B-Vision(-Instruct) preprocessor_config.json (spec §4.1).
  static MllamaImageProcessorConfig llama_3_2_vision();

  // The checks from_json applies; `origin` names the source in the error.
  void validate(const std::string& origin) const;
  int64_t tile_size() const { return size.height; }
};

// A tile grid: rows (height) x cols (width) of tiles.
struct TileGrid {
  int64_t rows = 0, cols = 0;
  bool operator==(const TileGrid& o) const { return rows == o.rows && cols == o.cols; }
};

struct PixelSize {
  int64_t height = 0, width = 0;
  bool operator==(const PixelSize& o) const { return height == o.height && width == o.width; }
};

// Every grid with rows * cols <= max_image_tiles, rows-major: (1,1), (1,2), ..., (2,1), ... The
// aspect_ratio_id of grid i is i + 1 (0 means "no image"). HF's docstring calls the pairs (width, height);
// every consumer uses them as (rows, cols).
std::vector<TileGrid> supported_aspect_ratios(int64_t max_image_tiles);

// The canvas (rows * S, cols * S) an image of height x width is fitted into: the least upscaling if any
// canvas allows upscaling (scale >= 1), otherwise the least downscaling; ties go to the smallest area,
// then to the earliest grid. float64 arithmetic, as numpy's.
PixelSize optimal_tiled_canvas(int64_t height, int64_t width, int64_t max_image_tiles, int64_t tile_size);

// The size an image is resized to inside its canvas: aspect ratio kept, upscaled only until its limiting
// side reaches one tile, downscaled only if it exceeds the canvas. May return 0 for one side of an
// extremely thin image (as HF's does); MllamaImageProcessor then uses 1.
PixelSize size_fit_to_canvas(int64_t height, int64_t width, int64_t canvas_height, int64_t canvas_width,
                             int64_t tile_size);

struct ProcessedImage {
  torch::Tensor tiles;          // [N, 3, S, S] float32, row-major tile order
  int64_t aspect_ratio_id = 0;  // 1-based index into supported_aspect_ratios(max_image_tiles)
  int rows = 0, cols = 0;       // the tile grid; N = rows * cols
};

struct MllamaImageInputs {
  torch::Tensor pixel_values;                   // [B, M, T, 3, S, S] float32; missing tiles and images are 0.0
  torch::Tensor aspect_ratio_ids;               // [B, M] int64; 0 for missing images
  torch::Tensor aspect_ratio_mask;              // [B, M, T] int64; 1 for real tiles, and always 1 for tile 0
  std::vector<std::vector<int64_t>> num_tiles;  // [B][images of that sample]: N of each image
};

class MllamaImageProcessor {
 public:
  // Validates the config (ErrorKind::Config, origin "MllamaImageProcessorConfig").
  explicit MllamaImageProcessor(MllamaImageProcessorConfig config);
  const MllamaImageProcessorConfig& config() const { return config_; }

  struct Resized {
    Image image;  // the resized image, before padding (height <= rows * S, width <= cols * S)
    TileGrid grid;
  };
  // Steps 2-5 of spec §4.2: grid choice and the Pillow-exact bilinear resize.
  Resized resize_to_canvas(const Image& image) const;

  // The whole per-image pipeline. `image` must be non-empty with width * height * 3 bytes.
  ProcessedImage preprocess(const Image& image) const;

  // HF's pack_images / convert_aspect_ratios_to_ids / build_aspect_ratio_mask over a batch of samples,
  // each a list of preprocessed images (a sample may have none).
  MllamaImageInputs pack(const std::vector<std::vector<ProcessedImage>>& per_sample) const;

 private:
  MllamaImageProcessorConfig config_;
  std::array<std::array<float, 256>, 3> lut_;  // the final float32 value of each uint8 level per channel
};

}  // namespace llama_mm::media
