// Tests for media/image_decode.cpp (and the header probing of media/image_probe.cpp): parity with PIL's
// view of the fixture pictures (tests/fixtures/mllama_preprocess/decode.safetensors, made by
// scripts/fixtures/gen_mllama_preprocess.py), EXIF orientation, alpha over white, grey and 16-bit input,
// GIF through FFmpeg, and every kind of bad input.
#include "media/media.h"

#include "llm/safetensors.h"
#include "crc32.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace llama_mm::media {
namespace {

using test::fixture;

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

std::array<int, 3> px(const Image& im, int y, int x) {
  const size_t i = (static_cast<size_t>(y) * im.width + x) * 3;
  return {im.rgb[i], im.rgb[i + 1], im.rgb[i + 2]};
}

// ---- a minimal PNG writer (stored deflate blocks), so tests can craft exact pixels and headers ----

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data +
         be32(test::crc32((type + data).data(), type.size() + data.size()));
}

// color_type: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA. `samples` are row-major (big-endian pairs for 16-bit);
// each row gets filter byte 0. With `idat` false only the header is written (for size probing).
std::string make_png(uint32_t width, uint32_t height, int bit_depth, int color_type, const std::string& samples,
                     bool idat = true) {
  std::string ihdr = be32(width) + be32(height);
  ihdr += {static_cast<char>(bit_depth), static_cast<char>(color_type), 0, 0, 0};
  std::string out = std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr);
  if (idat) {
    const size_t row = samples.size() / height;
    std::string raw;
    for (uint32_t y = 0; y < height; ++y) raw += '\0' + samples.substr(y * row, row);
    std::string z = "\x78\x01";  // zlib header, then stored blocks of up to 65535 bytes
    uint32_t a = 1, b = 0;
    for (unsigned char ch : raw) a = (a + ch) % 65521, b = (b + a) % 65521;
    for (size_t off = 0; off < raw.size() || off == 0; off += 65535) {
      const size_t n = std::min<size_t>(65535, raw.size() - off);
      const bool last = off + n >= raw.size();
      z += {static_cast<char>(last ? 1 : 0), static_cast<char>(n & 0xFF), static_cast<char>(n >> 8),
            static_cast<char>(~n & 0xFF), static_cast<char>((~n >> 8) & 0xFF)};
      z += raw.substr(off, n);
      if (last) break;
    }
    out += png_chunk("IDAT", z + be32((b << 16) | a));
  }
  return out + png_chunk("IEND", "");
}

// Expects decode_image(bytes, name) to throw InputDecode naming `name` and containing `reason`.
void expect_decode_error(const std::string& bytes, const std::string& name, const std::string& reason,
                         const ImageLimits& limits = {}) {
  try {
    decode_image(bytes, name, limits);
    ADD_FAILURE() << "no error decoding " << name;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode) << e.what();
    EXPECT_EQ(e.exit_code(), 4);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

// The same for a file on disk: the message names the path.
void expect_load_error(const std::string& path, const std::string& reason) {
  try {
    load_image_file(path);
    ADD_FAILURE() << "no error loading " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

// ---- parity with PIL ----

// Every fixture picture decodes to exactly what PIL (+ exif_transpose + HF's convert_to_rgb) gives, except
// the CMYK JPEG: OpenCV and Pillow convert (Adobe-inverted) CMYK to RGB with different integer formulas,
// which differ by 1 level on some pixels, so 1 is allowed there.
TEST(ImageDecode, MatchesPilOnEveryFixturePicture) {
  SafetensorsFile ref(fixture("mllama_preprocess/decode.safetensors").string());
  const auto meta = nlohmann::json::parse(ref.metadata().at("images"));
  ASSERT_GE(meta.size(), 20u);
  for (const auto& [name, m] : meta.items()) {
    SCOPED_TRACE(name);
    const Image im = load_image_file(fixture("images/" + name).string());
    ASSERT_EQ(im.height, m["height"].get<int>());
    ASSERT_EQ(im.width, m["width"].get<int>());
    const int s = m["stride"].get<int>();
    const auto want = ref.get(name);  // [ceil(H/s), ceil(W/s), 3] uint8
    auto got = torch::from_blob(const_cast<uint8_t*>(im.rgb.data()), {im.height, im.width, 3}, torch::kUInt8)
                   .slice(0, 0, im.height, s)
                   .slice(1, 0, im.width, s);
    ASSERT_EQ(got.sizes(), want.sizes());
    const int max_diff = (got.to(torch::kInt32) - want.to(torch::kInt32)).abs().max().item<int>();
    EXPECT_LE(max_diff, name == "cmyk_48x64.jpg" ? 1 : 0);
    if (name != "cmyk_48x64.jpg")  // and every pixel, through the CRC of the whole array
      EXPECT_EQ(test::crc32(im.rgb.data(), im.rgb.size()), m["crc32"].get<uint32_t>());
  }
}

// The same 5x7 picture stored with each EXIF orientation comes out upright: the index maps of EXIF 2.32
// Table 6 ("0th row / 0th column"), checked here independently of PIL.
TEST(ImageDecode, AppliesEveryExifOrientation) {
  const Image base = load_image_file(fixture("images/orient1_5x7.png").string());
  ASSERT_EQ(base.height, 5);
  ASSERT_EQ(base.width, 7);
  const int H = base.height, W = base.width;
  for (int o = 2; o <= 8; ++o) {
    SCOPED_TRACE(o);
    const Image im = load_image_file(fixture("images/orient" + std::to_string(o) + "_5x7.png").string());
    const bool swapped = o >= 5;
    ASSERT_EQ(im.height, swapped ? W : H);
    ASSERT_EQ(im.width, swapped ? H : W);
    for (int y = 0; y < im.height; ++y) {
      for (int x = 0; x < im.width; ++x) {
        std::array<int, 2> src{};  // (row, col) in the stored picture
        switch (o) {
          case 2: src = {y, W - 1 - x}; break;
          case 3: src = {H - 1 - y, W - 1 - x}; break;
          case 4: src = {H - 1 - y, x}; break;
          case 5: src = {x, y}; break;
          case 6: src = {H - 1 - x, y}; break;  // rotated 90 degrees clockwise
          case 7: src = {H - 1 - x, W - 1 - y}; break;
          case 8: src = {x, W - 1 - y}; break;  // rotated 90 degrees counter-clockwise
        }
        ASSERT_EQ(px(im, y, x), px(base, src[0], src[1])) << "at " << y << "," << x;
      }
    }
  }
}

// Orientation 6 stored in a TIFF tag (applied by libtiff) and in a WebP EXIF chunk: the same upright
// picture as the PNG eXIf version.
TEST(ImageDecode, OrientationInTiffAndWebp) {
  const Image png = load_image_file(fixture("images/orient6_5x7.png").string());
  ASSERT_EQ(png.height, 7);
  for (const char* name : {"images/orient6_5x7.tif", "images/orient6_5x7.webp"}) {
    const Image im = load_image_file(fixture(name).string());
    EXPECT_EQ(im.height, 7) << name;
    EXPECT_EQ(im.width, 5) << name;
    EXPECT_EQ(im.rgb, png.rgb) << name;
  }
}

TEST(ImageDecode, ExifRotatedJpegComesOutRotated) {
  const Image im = load_image_file(fixture("images/exif6_120x160.jpg").string());
  EXPECT_EQ(im.width, 120);  // stored 160 wide, 120 high, orientation 6
  EXPECT_EQ(im.height, 160);
}

TEST(ImageDecode, GifGivesItsFirstFrame) {
  // The second frame is the negative of the first: the first frame's pixels are far from 255 - themselves.
  const Image im = load_image_file(fixture("images/first_frame_70x90.gif").string());
  ASSERT_EQ(im.width, 90);
  ASSERT_EQ(im.height, 70);
  SafetensorsFile ref(fixture("mllama_preprocess/decode.safetensors").string());
  const auto want = ref.get("first_frame_70x90.gif");  // PIL's first frame
  const auto got = torch::from_blob(const_cast<uint8_t*>(im.rgb.data()), {70, 90, 3}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(got, want));
  EXPECT_FALSE(torch::equal(got, 255 - want));
}

// ---- pixel conversions, on crafted PNGs ----

TEST(ImageDecode, AlphaIsCompositedOverWhite) {
  // RGBA pixels (r, g, b, a); expected = Pillow's alpha_composite over (255, 255, 255, 255), by hand:
  // a = 0 -> white; a = 255 -> unchanged; a = 128: v * 128/255 + 255 * 127/255 rounded, e.g.
  // 0 -> 127, 200 -> 227.39 -> 227, 255 -> 255; a = 51: 100 * 0.2 + 255 * 0.8 = 224.
  const std::string rgba = {0, 100,       (char)200, 0,         10,  20,  30,  (char)255,
                            0, (char)200, (char)255, (char)128, 100, 100, 100, 51};
  const Image im = decode_image(make_png(4, 1, 8, 6, rgba), "rgba.png");
  ASSERT_EQ(im.width, 4);
  EXPECT_EQ(px(im, 0, 0), (std::array<int, 3>{255, 255, 255}));
  EXPECT_EQ(px(im, 0, 1), (std::array<int, 3>{10, 20, 30}));
  EXPECT_EQ(px(im, 0, 2), (std::array<int, 3>{127, 227, 255}));
  EXPECT_EQ(px(im, 0, 3), (std::array<int, 3>{224, 224, 224}));
}

TEST(ImageDecode, GreyBecomesRgb) {
  const Image im = decode_image(make_png(3, 2, 8, 0, std::string("\x00\x01\x7f\x80\xfe\xff", 6)), "grey.png");
  ASSERT_EQ(im.width, 3);
  ASSERT_EQ(im.height, 2);
  EXPECT_EQ(px(im, 0, 2), (std::array<int, 3>{127, 127, 127}));
  EXPECT_EQ(px(im, 1, 2), (std::array<int, 3>{255, 255, 255}));
  EXPECT_EQ(px(im, 1, 0), (std::array<int, 3>{128, 128, 128}));
}

TEST(ImageDecode, SixteenBitKeepsTheHighByte) {
  // 0x12FF would round to 0x13 (19); Pillow (and we) keep the high byte 0x12 (18).
  const Image grey = decode_image(make_png(2, 1, 16, 0, std::string("\x12\xff\xab\x01", 4)), "g16.png");
  EXPECT_EQ(px(grey, 0, 0), (std::array<int, 3>{0x12, 0x12, 0x12}));
  EXPECT_EQ(px(grey, 0, 1), (std::array<int, 3>{0xab, 0xab, 0xab}));
  const Image rgb = decode_image(make_png(1, 1, 16, 2, std::string("\x01\x80\x02\xff\xfe\x00", 6)), "rgb16.png");
  EXPECT_EQ(px(rgb, 0, 0), (std::array<int, 3>{1, 2, 0xfe}));
}

TEST(ImageDecode, OnePixelIsValid) {
  const Image im = decode_image(make_png(1, 1, 8, 2, std::string("\x05\x06\x07", 3)), "one.png");
  EXPECT_EQ(im.width, 1);
  EXPECT_EQ(im.height, 1);
  EXPECT_EQ(px(im, 0, 0), (std::array<int, 3>{5, 6, 7}));
}

TEST(ImageDecode, JpegWithDataAfterEndMarkerDecodes) {
  // Trailing bytes after EOI are common (camera padding) and must not read as truncation.
  const std::string jpeg = read_bytes(fixture("images/exif6_120x160.jpg")) + std::string(100, '\0');
  EXPECT_EQ(decode_image(jpeg, "padded.jpg").height, 160);
}

// ---- bad input: always InputDecode naming the file ----

TEST(ImageDecode, ZeroByteFile) {
  test::TempDir dir;
  const auto p = dir / "empty.jpg";
  write_bytes(p, "");
  expect_load_error(p.string(), "empty");
}

TEST(ImageDecode, MissingFileAndDirectory) {
  test::TempDir dir;
  for (const auto& [path, reason] : {std::pair{(dir / "nope.png").string(), std::string("No such file")},
                                     std::pair{dir.path().string(), std::string("directory")}}) {
    try {
      load_image_file(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InputDecode);
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  }
}

TEST(ImageDecode, TruncatedJpeg) {
  const std::string jpeg = read_bytes(fixture("images/photo_900x1200.jpg"));
  for (size_t keep : {jpeg.size() / 2, jpeg.size() - 2, size_t{400}}) {
    SCOPED_TRACE(keep);
    expect_decode_error(jpeg.substr(0, keep), "cut.jpg", "truncated");
  }
  expect_decode_error(jpeg.substr(0, 20), "header.jpg", "JPEG header");
  const std::string progressive = read_bytes(fixture("images/progressive_60x80.jpg"));
  expect_decode_error(progressive.substr(0, progressive.size() * 2 / 3), "cut_progressive.jpg", "truncated");
}

TEST(ImageDecode, TruncatedPng) {
  const std::string png = read_bytes(fixture("images/upscale_200x300.png"));
  expect_decode_error(png.substr(0, png.size() / 2), "cut.png", "corrupt or truncated PNG");
  expect_decode_error(png.substr(0, 16), "short.png", "PNG header");
}

TEST(ImageDecode, TextFileNamedPng) {
  test::TempDir dir;
  const auto p = dir / "notes.png";
  write_bytes(p, "this is not an image\n");
  expect_load_error(p.string(), "not a supported image format");
}

TEST(ImageDecode, UnsupportedFormats) {
  expect_decode_error("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "doc.pdf", "not a supported image format");
  expect_decode_error(std::string("\x00\x00\x00\x0cjP  \r\n\x87\n", 12), "x.jp2", "not a supported image format");
  expect_decode_error(std::string("II+\0\x08\0\0\0", 8), "big.tif", "BigTIFF");
}

TEST(ImageDecode, HundredMegapixelHeaderIsRefusedBeforeDecoding) {
  // A 10000x10000 PNG header with no pixel data: the size alone must refuse it (decoding would fail
  // differently, on the missing IDAT).
  const std::string png = make_png(10000, 10000, 8, 2, "", /*idat=*/false);
  ASSERT_LT(png.size(), 100u);
  expect_decode_error(png, "huge.png", "100000000 pixels exceeds the limit of 50000000");
  // The limit is configurable, and the boundary is inclusive.
  const std::string small = make_png(4, 4, 8, 0, std::string(16, '\x10'));
  expect_decode_error(small, "small.png", "16 pixels exceeds the limit of 15", ImageLimits{15});
  EXPECT_EQ(decode_image(small, "small.png", ImageLimits{16}).width, 4);
}

TEST(ImageDecode, HugeSizesInOtherHeadersAreRefusedToo) {
  // GIF logical screen 65535x65535, JPEG SOF 60000x60000: tiny files, refused on the header.
  std::string gif = std::string("GIF89a") + "\xff\xff\xff\xff" + std::string(10, '\0');
  expect_decode_error(gif, "huge.gif", "exceeds the limit");
  std::string jpeg = std::string("\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03", 12) + std::string(9, '\x01');
  expect_decode_error(jpeg, "huge.jpg", "exceeds the limit");
}

TEST(ImageDecode, CorruptGifIsAnErrorNotACrash) {
  const std::string gif = read_bytes(fixture("images/first_frame_70x90.gif"));
  // Header intact, data garbage.
  std::string bad = gif.substr(0, 13) + std::string(200, '\x5a');
  expect_decode_error(bad, "bad.gif", "bad.gif");
  expect_decode_error(gif.substr(0, 8), "short.gif", "truncated GIF header");
}

TEST(ImageDecode, EmptySizeInHeader) {
  expect_decode_error(make_png(0, 5, 8, 2, "", false), "zero.png", "empty size 0x5");
}

}  // namespace
}  // namespace llama_mm::media
