// media/rgb_convert.cpp: pixel layouts and FFmpeg frames to RGB8 (see rgb_convert.h).
#include "media/rgb_convert.h"

#include "media/ffmpeg_io.h"

#include <opencv2/core.hpp>

extern "C" {
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <vector>

namespace llama_mm::media::detail {

namespace {

// Pillow's ImagingAlphaComposite of `src` (r,g,b,a) over an opaque white pixel, bit for bit (7 extra
// bits of precision, rounded divisions by 255). ref: Pillow 9.4.0 src/libImaging/AlphaComposite.c.
inline uint8_t over_white(uint32_t v, uint32_t a) {
  constexpr uint32_t kBits = 7;
  if (a == 0) return 255;
  const uint32_t outa255 = a * 255 + 255 * (255 - a);  // dst alpha is 255
  const uint32_t coef1 = a * 255 * 255 * (1u << kBits) / outa255;
  const uint32_t coef2 = 255 * (1u << kBits) - coef1;
  const uint32_t tmp = v * coef1 + 255 * coef2 + (0x80u << kBits);
  return static_cast<uint8_t>((((tmp >> 8) + tmp) >> 8) >> kBits);  // SHIFTFORDIV255, then drop the bits
}

struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// libswscale's deprecated full-range "J" formats, as the plain YUV format plus a full-range flag.
AVPixelFormat without_j(AVPixelFormat f, bool& full) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: full = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: full = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: full = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: full = true; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: full = true; return AV_PIX_FMT_YUV411P;
    default: return f;
  }
}

}  // namespace

Image to_rgb(int width, int height, int channels, const char* order, const uint8_t* data, size_t row_stride) {
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(static_cast<size_t>(width) * height * 3);
  int ir = 0, ig = 0, ib = 0, ia = -1;
  for (int c = 0; c < channels; ++c) {
    switch (order[c]) {
      case 'R': ir = c; break;
      case 'G': ig = c; break;
      case 'B': ib = c; break;
      case 'A': ia = c; break;
    }
  }
  if (channels <= 2) ir = ig = ib = 0;  // grey (+ alpha)
  uint8_t* out = img.rgb.data();
  for (int y = 0; y < height; ++y) {
    const uint8_t* p = data + y * row_stride;
    for (int x = 0; x < width; ++x, p += channels, out += 3) {
      if (ia < 0) {
        out[0] = p[ir], out[1] = p[ig], out[2] = p[ib];
      } else {
        const uint32_t a = p[ia];
        out[0] = over_white(p[ir], a), out[1] = over_white(p[ig], a), out[2] = over_white(p[ib], a);
      }
    }
  }
  return img;
}

Image frame_to_rgb(const AVFrame& frame, const std::string& name, const char* what) {
  const int w = frame.width, h = frame.height;
  if (w <= 0 || h <= 0) fail_input(name, what, "FFmpeg decoded an empty frame");
  bool full = frame.color_range == AVCOL_RANGE_JPEG;
  const auto src_fmt = without_j(static_cast<AVPixelFormat>(frame.format), full);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(src_fmt);
  if (!desc) fail_input(name, what, "FFmpeg decoded a frame without a pixel format");
  const bool alpha = (desc->flags & (AV_PIX_FMT_FLAG_ALPHA | AV_PIX_FMT_FLAG_PAL)) != 0;
  const int channels = alpha ? 4 : 3;
  std::unique_ptr<SwsContext, SwsFreer> sws(
      sws_getContext(w, h, src_fmt, w, h, alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24,
                     SWS_BICUBIC, nullptr, nullptr, nullptr));  // the ffmpeg CLI's default; exact chroma
                                                                 // interpolation (FULL_CHR_H_INT) costs 15x more
  if (!sws)
    fail_input(name, what, std::string("FFmpeg cannot convert pixel format ") + desc->name + " to RGB");
  if (!(desc->flags & AV_PIX_FMT_FLAG_RGB) && desc->nb_components >= 3) {
    // YUV: the frame's matrix (sws_getCoefficients takes AVColorSpace values; unspecified gives BT.601).
    const int* coefs = sws_getCoefficients(frame.colorspace);
    sws_setColorspaceDetails(sws.get(), coefs, full ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                             1 << 16, 1 << 16);
  }
  const size_t stride = static_cast<size_t>(w) * channels;
  std::vector<uint8_t> buf(stride * h);
  uint8_t* dst[4] = {buf.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {static_cast<int>(stride), 0, 0, 0};
  sws_scale(sws.get(), frame.data, frame.linesize, 0, h, dst, dst_stride);
  return to_rgb(w, h, channels, alpha ? "RGBA" : "RGB", buf.data(), stride);
}

Image apply_exif_orientation(Image img, int o) {
  if (o <= 1 || o > 8) return img;
  cv::Mat src(img.height, img.width, CV_8UC3, img.rgb.data()), dst;
  switch (o) {
    case 2: cv::flip(src, dst, 1); break;                                 // mirror left-right
    case 3: cv::rotate(src, dst, cv::ROTATE_180); break;                  // PIL ROTATE_180
    case 4: cv::flip(src, dst, 0); break;                                 // mirror top-bottom
    case 5: cv::transpose(src, dst); break;                               // PIL TRANSPOSE
    case 6: cv::rotate(src, dst, cv::ROTATE_90_CLOCKWISE); break;         // PIL ROTATE_270
    case 7: cv::transpose(src, dst), cv::flip(dst, dst, -1); break;       // PIL TRANSVERSE
    case 8: cv::rotate(src, dst, cv::ROTATE_90_COUNTERCLOCKWISE); break;  // PIL ROTATE_90
  }
  Image out;
  out.width = dst.cols;
  out.height = dst.rows;
  out.rgb.assign(dst.ptr<uint8_t>(0), dst.ptr<uint8_t>(0) + dst.total() * 3);
  return out;
}

}  // namespace llama_mm::media::detail
