// media/image_probe.cpp: format sniffing, header dimensions, EXIF orientation and JPEG completeness
// (see image_probe.h for the formats and the specifications they follow).
#include "media/image_probe.h"

#include "llm/error.h"

#include <cstdlib>
#include <cstring>

namespace llama_mm::media::detail {

namespace {

// Byte access over an image file. Reads are unchecked: callers test has() first, so a truncated header
// is reported instead of read out of bounds.
class Bytes {
 public:
  explicit Bytes(std::string_view b) : b_(b) {}
  size_t size() const { return b_.size(); }
  bool has(size_t off, size_t n) const { return off <= b_.size() && n <= b_.size() - off; }
  uint8_t u8(size_t off) const { return static_cast<uint8_t>(b_[off]); }
  uint32_t be16(size_t off) const { return (u8(off) << 8) | u8(off + 1); }
  uint32_t le16(size_t off) const { return u8(off) | (u8(off + 1) << 8); }
  uint32_t be32(size_t off) const { return (be16(off) << 16) | be16(off + 2); }
  uint32_t le32(size_t off) const { return le16(off) | (le16(off + 2) << 16); }
  uint32_t le24(size_t off) const { return u8(off) | (u8(off + 1) << 8) | (u8(off + 2) << 16); }
  bool starts(size_t off, const char* magic, size_t n) const {
    return has(off, n) && std::memcmp(b_.data() + off, magic, n) == 0;
  }
  std::string_view sub(size_t off, size_t n) const { return b_.substr(off, n); }

 private:
  std::string_view b_;
};

int valid_orientation(uint32_t v) { return v >= 1 && v <= 8 ? static_cast<int>(v) : 1; }

// EXIF blocks may start with the APP1 identifier "Exif\0\0" (JPEG always, WebP/PNG writers sometimes).
int exif_block_orientation(std::string_view exif) {
  if (exif.size() >= 6 && std::memcmp(exif.data(), "Exif\0\0", 6) == 0) exif.remove_prefix(6);
  return tiff_orientation(exif);
}

// Reads tag values 256 (width), 257 (height) and 274 (orientation) of a classic TIFF's IFD0; false when
// the structure is malformed.
struct TiffTags {
  int64_t width = 0, height = 0;
  int orientation = 1;
};
bool read_tiff_ifd0(std::string_view tiff, TiffTags* out) {
  Bytes b(tiff);
  if (!b.has(0, 8)) return false;
  bool le;
  if (b.starts(0, "II*\0", 4))
    le = true;
  else if (b.starts(0, "MM\0*", 4))
    le = false;
  else
    return false;
  auto u16 = [&](size_t o) { return le ? b.le16(o) : b.be16(o); };
  auto u32 = [&](size_t o) { return le ? b.le32(o) : b.be32(o); };
  const size_t ifd = u32(4);
  if (!b.has(ifd, 2)) return false;
  const size_t n = u16(ifd);
  if (!b.has(ifd + 2, n * 12)) return false;
  for (size_t i = 0; i < n; ++i) {
    const size_t e = ifd + 2 + i * 12;
    const uint32_t tag = u16(e), type = u16(e + 2), count = u32(e + 4);
    if (count != 1 || (type != 3 && type != 4)) continue;  // SHORT or LONG scalars only
    const uint32_t v = type == 3 ? u16(e + 8) : u32(e + 8);
    if (tag == 256)
      out->width = v;
    else if (tag == 257)
      out->height = v;
    else if (tag == 274)
      out->orientation = valid_orientation(v);
  }
  return true;
}

bool is_sof(uint8_t m) {  // SOF0..SOF15 minus DHT (C4), JPG (C8) and DAC (CC)
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}
bool is_standalone(uint8_t m) { return (m >= 0xD0 && m <= 0xD7) || m == 0x01 || m == 0xD8; }

ImageHeader probe_png(const Bytes& b, const std::string& name) {
  // signature(8) + IHDR length(4) "IHDR" width(4) height(4)
  if (!b.has(0, 24) || !b.starts(12, "IHDR", 4)) fail_decode(name, "truncated or corrupt PNG header");
  ImageHeader h{ImageFormat::Png, b.be32(16), b.be32(20), 1};
  for (size_t off = 8; b.has(off, 8);) {
    const size_t len = b.be32(off);
    if (b.starts(off + 4, "IDAT", 4) || b.starts(off + 4, "IEND", 4)) break;
    if (b.starts(off + 4, "eXIf", 4) && b.has(off + 8, len)) {
      h.orientation = exif_block_orientation(b.sub(off + 8, len));
      break;
    }
    off += 12 + len;  // length, type, data, CRC
  }
  return h;
}

ImageHeader probe_jpeg(const Bytes& b, const std::string& name) {
  ImageHeader h{ImageFormat::Jpeg, 0, 0, 1};
  size_t off = 2;  // after SOI
  for (;;) {
    while (b.has(off, 1) && b.u8(off) == 0xFF && b.has(off + 1, 1) && b.u8(off + 1) == 0xFF) ++off;  // fill
    if (!b.has(off, 4) || b.u8(off) != 0xFF) fail_decode(name, "truncated or corrupt JPEG header");
    const uint8_t m = b.u8(off + 1);
    if (is_standalone(m)) {
      off += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) fail_decode(name, "JPEG has no frame header (SOF) before its scan data");
    const size_t len = b.be16(off + 2);
    if (len < 2 || !b.has(off + 2, len)) fail_decode(name, "truncated or corrupt JPEG header");
    if (m == 0xE1 && len > 8 && b.starts(off + 4, "Exif\0\0", 6))
      h.orientation = exif_block_orientation(b.sub(off + 4, len - 2));
    if (is_sof(m)) {
      if (len < 7) fail_decode(name, "corrupt JPEG frame header");
      h.height = b.be16(off + 5);
      h.width = b.be16(off + 7);
      if (h.height == 0) fail_decode(name, "JPEG with the height defined later (DNL marker) is not supported");
      return h;  // EXIF (APP1) precedes the frame header
    }
    off += 2 + len;
  }
}

ImageHeader probe_bmp(const Bytes& b, const std::string& name) {
  if (!b.has(0, 26)) fail_decode(name, "truncated BMP header");
  const uint32_t dib = b.le32(14);
  if (dib == 12) return {ImageFormat::Bmp, b.le16(18), b.le16(20), 1};
  if (dib < 16) fail_decode(name, "corrupt BMP header (DIB header size " + std::to_string(dib) + ")");
  const auto w = static_cast<int32_t>(b.le32(18)), hgt = static_cast<int32_t>(b.le32(22));
  return {ImageFormat::Bmp, w, std::abs(static_cast<int64_t>(hgt)), 1};  // negative height: top-down rows
}

ImageHeader probe_webp(const Bytes& b, const std::string& name) {
  if (!b.has(0, 30)) fail_decode(name, "truncated WebP header");
  ImageHeader h{ImageFormat::WebP, 0, 0, 1};
  if (b.starts(12, "VP8X", 4)) {
    h.width = int64_t(b.le24(24)) + 1;
    h.height = int64_t(b.le24(27)) + 1;
    for (size_t off = 12; b.has(off, 8);) {  // chunks: fourcc, size, payload padded to even
      const size_t len = b.le32(off + 4);
      if (b.starts(off, "EXIF", 4) && b.has(off + 8, len)) h.orientation = exif_block_orientation(b.sub(off + 8, len));
      off += 8 + len + (len & 1);
    }
  } else if (b.starts(12, "VP8 ", 4)) {
    if (b.u8(23) != 0x9D || b.u8(24) != 0x01 || b.u8(25) != 0x2A) fail_decode(name, "corrupt WebP (VP8) header");
    h.width = b.le16(26) & 0x3FFF;
    h.height = b.le16(28) & 0x3FFF;
  } else if (b.starts(12, "VP8L", 4)) {
    if (b.u8(20) != 0x2F) fail_decode(name, "corrupt WebP (VP8L) header");
    const uint32_t bits = b.le32(21);
    h.width = int64_t(bits & 0x3FFF) + 1;
    h.height = int64_t((bits >> 14) & 0x3FFF) + 1;
  } else {
    fail_decode(name, "corrupt WebP header (no VP8X, VP8 or VP8L chunk)");
  }
  return h;
}

ImageHeader probe_tiff(const Bytes& b, std::string_view bytes, const std::string& name) {
  if (b.starts(0, "II+\0", 4) || b.starts(0, "MM\0+", 4)) fail_decode(name, "BigTIFF is not supported");
  TiffTags t;
  if (!read_tiff_ifd0(bytes, &t)) fail_decode(name, "truncated or corrupt TIFF header");
  return {ImageFormat::Tiff, t.width, t.height, t.orientation};
}

}  // namespace

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::WebP: return "WebP";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

void fail_decode(const std::string& name, const std::string& reason) {
  throw Error(ErrorKind::InputDecode, name + ": cannot decode image: " + reason);
}

ImageFormat sniff_format(std::string_view bytes) {
  const Bytes b(bytes);
  if (b.starts(0, "\x89PNG\r\n\x1a\n", 8)) return ImageFormat::Png;
  if (b.starts(0, "\xFF\xD8\xFF", 3)) return ImageFormat::Jpeg;
  if (b.starts(0, "GIF87a", 6) || b.starts(0, "GIF89a", 6)) return ImageFormat::Gif;
  if (b.starts(0, "BM", 2)) return ImageFormat::Bmp;
  if (b.starts(0, "RIFF", 4) && b.starts(8, "WEBP", 4)) return ImageFormat::WebP;
  if (b.starts(0, "II*\0", 4) || b.starts(0, "MM\0*", 4) || b.starts(0, "II+\0", 4) || b.starts(0, "MM\0+", 4))
    return ImageFormat::Tiff;
  return ImageFormat::Unknown;
}

ImageHeader probe_image(std::string_view bytes, const std::string& name) {
  const Bytes b(bytes);
  ImageHeader h;
  switch (sniff_format(bytes)) {
    case ImageFormat::Png: h = probe_png(b, name); break;
    case ImageFormat::Jpeg: h = probe_jpeg(b, name); break;
    case ImageFormat::Gif:
      if (!b.has(0, 10)) fail_decode(name, "truncated GIF header");
      h = {ImageFormat::Gif, b.le16(6), b.le16(8), 1};
      break;
    case ImageFormat::Bmp: h = probe_bmp(b, name); break;
    case ImageFormat::WebP: h = probe_webp(b, name); break;
    case ImageFormat::Tiff: h = probe_tiff(b, bytes, name); break;
    case ImageFormat::Unknown:
      fail_decode(name, "not a supported image format (expected PNG, JPEG, GIF, BMP, WebP or TIFF)");
  }
  if (h.width <= 0 || h.height <= 0)
    fail_decode(name, std::string(format_name(h.format)) + " header gives an empty size " + std::to_string(h.width) +
                          "x" + std::to_string(h.height));
  return h;
}

int tiff_orientation(std::string_view tiff) {
  TiffTags t;
  return read_tiff_ifd0(tiff, &t) ? t.orientation : 1;
}

bool jpeg_is_complete(std::string_view bytes) {
  const Bytes b(bytes);
  if (!b.starts(0, "\xFF\xD8", 2)) return false;
  size_t off = 2;
  bool seen_scan = false;
  while (b.has(off, 2)) {
    if (b.u8(off) != 0xFF) return false;
    const uint8_t m = b.u8(off + 1);
    if (m == 0xFF) {  // fill byte
      ++off;
      continue;
    }
    if (m == 0xD9) return seen_scan;
    if (is_standalone(m)) {
      off += 2;
      continue;
    }
    if (!b.has(off + 2, 2)) return false;
    const size_t len = b.be16(off + 2);
    if (len < 2 || !b.has(off + 2, len)) return false;
    off += 2 + len;
    if (m != 0xDA) continue;
    // Entropy-coded data: runs until a marker other than stuffing (FF00), RSTn or fill bytes.
    seen_scan = true;
    for (;;) {
      const void* ff = std::memchr(bytes.data() + off, 0xFF, bytes.size() - off);
      if (!ff) return false;
      off = static_cast<const char*>(ff) - bytes.data();
      size_t next = off + 1;
      while (b.has(next, 1) && b.u8(next) == 0xFF) ++next;
      if (!b.has(next, 1)) return false;
      const uint8_t c = b.u8(next);
      if (c == 0x00 || (c >= 0xD0 && c <= 0xD7)) {
        off = next + 1;
        continue;
      }
      off = next - 1;  // a real marker: back to segment parsing
      break;
    }
  }
  return false;
}

}  // namespace llama_mm::media::detail
