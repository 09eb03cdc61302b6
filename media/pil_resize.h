// media/pil_resize.h: Pillow's Image.resize(size, Image.BILINEAR) on 8-bit RGB, bit for bit.
//
// Hugging Face's 4.x image processors (MllamaImageProcessor included) resize by converting the uint8 array
// to a PIL image and calling Image.resize, so matching them exactly means matching Pillow's convolution
// resampler (mllama-spec.md §4.2 item 5):
//   * two separable passes, horizontal first (over only the source rows the vertical pass will read),
//     then vertical; a pass is skipped when its dimension does not change;
//   * the triangle filter's support grows with the downscale factor (antialiasing), support 1 otherwise;
//   * per output sample, float64 weights normalised to sum 1, then rounded to 22-bit fixed point;
//   * uint8 accumulation in int32 starting at 0.5, shifted back, clamped to [0, 255]; the intermediate
//     image after the horizontal pass is uint8 too.
// ref: Pillow 9.4.0 src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal_8bpc / Vertical_8bpc, ImagingResampleInner) and src/PIL/Image.py
// Image.resize (same size: a copy). This is an independent implementation of that algorithm.
// Thread-safety: reentrant.
#pragma once

#include "media/image_decode.h"

namespace llama_mm::media {

// `in` resized to height x width (note the order: height first, like the rest of media/).
// Both must be positive.
Image resize_bilinear_pil(const Image& in, int height, int width);

}  // namespace llama_mm::media
