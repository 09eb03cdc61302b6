// media/image_decode.cpp: image files to RGB8 through OpenCV, or FFmpeg for GIF (see image_decode.h).
#include "media/image_decode.h"

#include "media/ffmpeg_io.h"
#include "media/image_probe.h"
#include "media/rgb_convert.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace llama_mm::media {

using detail::fail_decode;
using detail::ImageFormat;
using detail::av_error;
using detail::CodecContextFreer;
using detail::FrameFreer;
using detail::PacketFreer;
using detail::to_rgb;

namespace {

// Samples of any depth OpenCV decodes to 8 bits: 16-bit keeps the high byte (Pillow's "RGB;16B"
// unpacking), float is taken as [0, 1].
cv::Mat to_8bit(const cv::Mat& m, const std::string& name) {
  switch (m.depth()) {
    case CV_8U: return m;
    case CV_16U: {
      cv::Mat out(m.rows, m.cols, CV_MAKETYPE(CV_8U, m.channels()));
      for (int y = 0; y < m.rows; ++y) {
        const uint16_t* s = m.ptr<uint16_t>(y);
        uint8_t* d = out.ptr<uint8_t>(y);
        for (int i = 0; i < m.cols * m.channels(); ++i) d[i] = static_cast<uint8_t>(s[i] >> 8);
      }
      return out;
    }
    case CV_32F:
    case CV_64F: {
      cv::Mat out;
      m.convertTo(out, CV_MAKETYPE(CV_8U, m.channels()), 255.0);
      return out;
    }
    default: fail_decode(name, "unsupported sample format (OpenCV depth " + std::to_string(m.depth()) + ")");
  }
}

Image decode_with_opencv(const std::string& bytes, ImageFormat format, const std::string& name) {
  cv::Mat m;
  try {
    const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);  // no conversion, no orientation: both are done here
  } catch (const cv::Exception& e) {
    fail_decode(name, std::string("corrupt ") + detail::format_name(format) + " data (" + e.what() + ")");
  }
  if (m.empty()) fail_decode(name, std::string("corrupt or truncated ") + detail::format_name(format) + " data");
  m = to_8bit(m, name);
  if (!m.isContinuous()) m = m.clone();
  static const char* kOrder[] = {"", "G", "GA", "BGR", "BGRA"};
  if (m.channels() < 1 || m.channels() > 4)
    fail_decode(name, std::to_string(m.channels()) + " channels per pixel are not supported");
  return to_rgb(m.cols, m.rows, m.channels(), kOrder[m.channels()], m.ptr<uint8_t>(0), m.step[0]);
}

// ---- FFmpeg: the first frame of a GIF, read from memory ----

Image decode_with_ffmpeg(const std::string& bytes, const char* demuxer, const std::string& name) {
  auto fail_av = [&](const std::string& what, int err) { fail_decode(name, "FFmpeg: " + what + ": " + av_error(err)); };
  auto demux = detail::open_memory_demuxer(bytes, demuxer, name);
  AVFormatContext* fmt = demux->fmt.get();
  if (fmt->nb_streams < 1 || fmt->streams[0]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO)
    fail_decode(name, "FFmpeg found no image stream");
  const AVCodecParameters* par = fmt->streams[0]->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (!codec) fail_decode(name, "FFmpeg has no decoder for this stream");
  std::unique_ptr<AVCodecContext, CodecContextFreer> cc(avcodec_alloc_context3(codec));
  if (!cc) fail_decode(name, "out of memory");
  if (int err = avcodec_parameters_to_context(cc.get(), par); err < 0) fail_av("codec parameters", err);
  cc->thread_count = 1;
  if (int err = avcodec_open2(cc.get(), codec, nullptr); err < 0) fail_av("cannot open the decoder", err);

  std::unique_ptr<AVPacket, PacketFreer> pkt(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameFreer> frame(av_frame_alloc());
  if (!pkt || !frame) fail_decode(name, "out of memory");
  bool got = false, flushed = false;
  while (!got) {
    if (!flushed) {
      const int err = av_read_frame(fmt, pkt.get());
      if (err == AVERROR_EOF) {
        avcodec_send_packet(cc.get(), nullptr);  // drain
        flushed = true;
      } else if (err < 0) {
        fail_av("cannot read", err);
      } else {
        const bool ours = pkt->stream_index == 0;
        const int serr = ours ? avcodec_send_packet(cc.get(), pkt.get()) : 0;
        av_packet_unref(pkt.get());
        if (serr < 0 && serr != AVERROR(EAGAIN)) fail_av("corrupt data", serr);
      }
    }
    const int rerr = avcodec_receive_frame(cc.get(), frame.get());
    if (rerr == 0)
      got = true;
    else if (rerr == AVERROR_EOF)
      fail_decode(name, "FFmpeg decoded no frame (truncated or corrupt data)");
    else if (rerr != AVERROR(EAGAIN))
      fail_av("corrupt data", rerr);
  }

  return detail::frame_to_rgb(*frame, name, "image");
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name, const ImageLimits& limits) {
  if (bytes.empty()) fail_decode(name, "the file is empty");
  const detail::ImageHeader h = detail::probe_image(bytes, name);
  // width * height > max_pixels, without overflowing (header sizes reach 2^32 x 2^32).
  if (h.height > limits.max_pixels / h.width) {
    const std::string count =
        h.width <= INT64_MAX / h.height ? " = " + std::to_string(h.width * h.height) : std::string();
    fail_decode(name, std::to_string(h.width) + "x" + std::to_string(h.height) + count +
                          " pixels exceeds the limit of " + std::to_string(limits.max_pixels) +
                          " (ImageLimits::max_pixels)");
  }
  if (h.format == ImageFormat::Jpeg && !detail::jpeg_is_complete(bytes))
    fail_decode(name, "truncated JPEG (the data ends before the end-of-image marker)");

  Image img =
      h.format == ImageFormat::Gif ? decode_with_ffmpeg(bytes, "gif", name) : decode_with_opencv(bytes, h.format, name);
  // OpenCV's libtiff path applies a TIFF's Orientation tag itself (so does Pillow's), even with
  // IMREAD_UNCHANGED; for every other format the orientation is applied here.
  const bool oriented = h.format == ImageFormat::Tiff;
  const bool swapped = oriented && h.orientation >= 5;
  const int64_t want_w = swapped ? h.height : h.width, want_h = swapped ? h.width : h.height;
  if (img.width != want_w || img.height != want_h)
    fail_decode(name, "decoded size " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                          " differs from the header's " + std::to_string(want_w) + "x" + std::to_string(want_h));
  return oriented ? img : detail::apply_exif_orientation(std::move(img), h.orientation);
}

Image load_image_file(const std::string& path, const ImageLimits& limits) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail_decode(path, "is a directory, not an image file");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail_decode(path, std::string("cannot open the file: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail_decode(path, "cannot read the file");
  return decode_image(ss.str(), path, limits);
}

}  // namespace llama_mm::media
