// media/image_decode.h: image files to 8-bit RGB, the input of every image preprocessor.
//
// Decoding is OpenCV's (cv::imdecode: JPEG, PNG incl. 16-bit and palette, BMP, WebP, TIFF) and FFmpeg's
// libavformat/libavcodec for what OpenCV 4.6 lacks (GIF: the first frame). The result follows what
// Hugging Face's image processors see for a PIL input (MllamaImageProcessor's convert_to_rgb, ref:
// transformers v4.45.2 src/transformers/models/mllama/image_processing_mllama.py convert_to_rgb):
//   * grey becomes RGB (R = G = B);
//   * alpha is composited over opaque WHITE with Pillow's integer alpha_composite (bit-exact), palette
//     transparency (tRNS, GIF) included;
//   * 16 bits per sample become 8 by keeping the high byte (what Pillow does for 16-bit RGB(A) PNGs);
//   * CMYK JPEGs become RGB through libjpeg/OpenCV.
// Unlike PIL.Image.open, the EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) is applied, as
// PIL.ImageOps.exif_transpose would; a TIFF's Orientation tag is applied by libtiff (as Pillow does too).
//
// Every failure is llama_mm::Error(ErrorKind::InputDecode) whose message names the file and the reason;
// the image size is read from the header and checked against ImageLimits before any pixel is decoded.
// Thread-safety: both functions are reentrant.
#pragma once

#include "llm/error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace llama_mm::media {

// An 8-bit RGB image, rows top to bottom, pixels interleaved: rgb[(y * width + x) * 3 + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height, width, 3] (HWC)
};

struct ImageLimits {
  int64_t max_pixels = 50'000'000;  // width * height above this is refused before decoding
};

// Decodes an image file held in memory. `name` (usually the path) is used in error messages only.
// The format comes from the magic bytes, never from the name.
Image decode_image(const std::string& bytes, const std::string& name, const ImageLimits& limits = {});

// Reads and decodes the file at `path`; a missing or unreadable file is an InputDecode error too.
Image load_image_file(const std::string& path, const ImageLimits& limits = {});

}  // namespace llama_mm::media
