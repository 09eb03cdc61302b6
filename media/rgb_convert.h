// media/rgb_convert.h (internal to media/): pixels of any layout to the 8-bit RGB Image every preprocessor
// takes, shared by the image, GIF and video decoders. Alpha is composited over opaque white with Pillow's
// integer alpha_composite, bit for bit (what Hugging Face's convert_to_rgb does with a PIL image).
#pragma once

#include "media/image_decode.h"

extern "C" {
#include <libavutil/frame.h>
}

#include <cstddef>
#include <string>

namespace llama_mm::media::detail {

// Interleaved 8-bit pixels with `channels` samples in `order` (e.g. "BGRA", "RGBA", "G", "BGR") to RGB.
Image to_rgb(int width, int height, int channels, const char* order, const uint8_t* data, size_t row_stride);

// A decoded FFmpeg video frame (any pixel format) to RGB: libswscale at the same size (bicubic chroma, as the
// ffmpeg CLI converts), with the frame's colour space and range (BT.601 when unspecified); formats with alpha or a palette go through RGBA and
// are composited over white. Failures are InputDecode errors naming `name`.
Image frame_to_rgb(const AVFrame& frame, const std::string& name, const char* what);

// Applies EXIF orientation `o` (1..8) so the image is upright, as PIL.ImageOps.exif_transpose does
// (3: rotate 180, 6: rotate 90 clockwise, 8: rotate 90 counter-clockwise; 2, 4, 5, 7 mirror).
Image apply_exif_orientation(Image img, int o);

}  // namespace llama_mm::media::detail
