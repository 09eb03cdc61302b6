// media/image_probe.h: Internal header. Reads what decode_image needs to know BEFORE decoding an image
// file: its container format (from the magic bytes), its pixel dimensions (from the header, so that an
// oversized image is refused without allocating it), its EXIF orientation, and whether a JPEG's
// entropy-coded data reaches its end-of-image marker (libjpeg pads a truncated JPEG with grey and only
// warns, so truncation must be detected here).
//
// Formats and where the numbers live:
//   PNG  IHDR (must be the first chunk); EXIF in an eXIf chunk before IDAT.
//   JPEG the first SOFn segment; EXIF in an APP1 "Exif\0\0" segment.
//   GIF  the logical screen descriptor (GIF87a/GIF89a).
//   BMP  BITMAPCOREHEADER (12 bytes) or BITMAPINFOHEADER and later (height may be negative: top-down).
//   WebP RIFF "WEBP" with a VP8X (canvas), VP8 (key frame) or VP8L chunk; EXIF in an "EXIF" chunk.
//   TIFF classic little/big-endian TIFF, IFD0 tags 256/257 (and 274, orientation). BigTIFF is refused.
// ref: PNG spec §11.2.2 / eXIf extension 1.5.0; ITU T.81 Annex B; GIF89a §18; WebP container spec
// (RIFF, VP8X, VP8L §2); TIFF 6.0 §2 (IFD layout); EXIF 2.32 §4.6.4 (Orientation, tag 0x0112).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace llama_mm::media::detail {

enum class ImageFormat { Unknown, Png, Jpeg, Gif, Bmp, WebP, Tiff };

const char* format_name(ImageFormat f);

// Throws llama_mm::Error(InputDecode, "<name>: cannot decode image: <reason>"), the one message shape of
// every image decoding failure.
[[noreturn]] void fail_decode(const std::string& name, const std::string& reason);

// The format named by the first bytes, or Unknown.
ImageFormat sniff_format(std::string_view bytes);

struct ImageHeader {
  ImageFormat format = ImageFormat::Unknown;
  int64_t width = 0, height = 0;
  int orientation = 1;  // EXIF orientation 1..8 (1 = as stored); 1 when absent or invalid
};

// Parses the header of an image in a sniffed format. Throws llama_mm::Error(InputDecode) naming `name`
// when the header is truncated or inconsistent, or the format is Unknown.
ImageHeader probe_image(std::string_view bytes, const std::string& name);

// The EXIF orientation (1..8) stored in a TIFF structure ("II*\0" or "MM\0*" followed by IFDs), as found
// inside an EXIF block or a TIFF file; 1 when absent or malformed.
int tiff_orientation(std::string_view tiff);

// True when the JPEG's segments and entropy-coded scans are intact up to an EOI marker (FFD9).
bool jpeg_is_complete(std::string_view bytes);

}  // namespace llama_mm::media::detail
