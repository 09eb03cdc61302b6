// media/video_encode.cpp: see video_encode.h.
#include "media/video_encode.h"

#include "llm/atomic_file.h"
#include "llm/error.h"
#include "media/ffmpeg_io.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <filesystem>

namespace llama_mm::media {

namespace fs = std::filesystem;

struct VideoWriter::State {
  std::string path, tmp;
  int width = 0, height = 0;
  AVFormatContext* fmt = nullptr;
  std::unique_ptr<AVCodecContext, detail::CodecContextFreer> codec;
  std::unique_ptr<AVFrame, detail::FrameFreer> frame;
  std::unique_ptr<AVPacket, detail::PacketFreer> packet;
  SwsContext* sws = nullptr;
  AVStream* stream = nullptr;
  int64_t n = 0;
  bool finished = false, header = false;

  [[noreturn]] void fail(const std::string& what, int err = 0) const {
    throw Error(ErrorKind::Runtime,
                path + ": cannot write the video: " + what + (err ? ": " + detail::av_error(err) : ""));
  }

  // Sends `f` (null: flush) and writes every packet the encoder has ready.
  void drain(AVFrame* f) {
    int rc = avcodec_send_frame(codec.get(), f);
    if (rc < 0) fail("encoding a frame", rc);
    for (;;) {
      rc = avcodec_receive_packet(codec.get(), packet.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) fail("encoding a frame", rc);
      if (packet->duration == 0) packet->duration = 1;  // one frame: the container then states the full length
      av_packet_rescale_ts(packet.get(), codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      rc = av_interleaved_write_frame(fmt, packet.get());
      if (rc < 0) fail("writing a packet", rc);
    }
  }

  ~State() {
    sws_freeContext(sws);
    codec.reset();
    if (fmt) {
      if (fmt->pb) avio_closep(&fmt->pb);
      avformat_free_context(fmt);
    }
    if (!finished && !tmp.empty()) {
      std::error_code ec;
      fs::remove(tmp, ec);
    }
  }
};

VideoWriter::VideoWriter(const std::string& path, int width, int height, int fps) : s_(std::make_unique<State>()) {
  auto& s = *s_;
  s.path = path;
  s.width = width, s.height = height;
  if (width < 2 || height < 2 || width % 2 || height % 2 || fps < 1)
    s.fail("width and height must be even and at least 2, fps at least 1 (got " + std::to_string(width) + "x" +
           std::to_string(height) + " at " + std::to_string(fps) + ")");
  const fs::path p(path);
  s.tmp = (p.parent_path() / ("." + p.filename().string() + ".tmp" + p.extension().string())).string();
  int rc = avformat_alloc_output_context2(&s.fmt, nullptr, nullptr, path.c_str());
  if (rc < 0 || !s.fmt) s.fail("no container for this file name (use .mp4, .mkv or .mov)", rc);
  // libx264 reports its settings and statistics at AV_LOG_INFO for every file: keep stderr to warnings.
  av_log_set_level(std::min(av_log_get_level(), AV_LOG_WARNING));
  const AVCodec* enc = avcodec_find_encoder_by_name("libx264");
  if (!enc) enc = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  if (!enc) s.fail("FFmpeg has neither libx264 nor an MPEG-4 encoder");
  s.stream = avformat_new_stream(s.fmt, nullptr);
  s.codec.reset(avcodec_alloc_context3(enc));
  if (!s.stream || !s.codec) s.fail("out of memory");
  s.codec->width = width;
  s.codec->height = height;
  s.codec->pix_fmt = AV_PIX_FMT_YUV420P;
  s.codec->time_base = AVRational{1, fps};
  s.codec->framerate = AVRational{fps, 1};
  s.codec->gop_size = fps;
  if (s.fmt->oformat->flags & AVFMT_GLOBALHEADER) s.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (std::string(enc->name) == "libx264") {
    av_opt_set(s.codec->priv_data, "crf", "20", 0);
    av_opt_set(s.codec->priv_data, "preset", "veryfast", 0);
    s.codec->thread_count = 1;  // deterministic output, and callers parallelise over files
  } else {
    s.codec->bit_rate = 2'000'000;
  }
  if ((rc = avcodec_open2(s.codec.get(), enc, nullptr)) < 0) s.fail("opening the encoder", rc);
  if ((rc = avcodec_parameters_from_context(s.stream->codecpar, s.codec.get())) < 0) s.fail("stream parameters", rc);
  s.stream->time_base = s.codec->time_base;
  s.stream->avg_frame_rate = s.codec->framerate;
  if ((rc = avio_open(&s.fmt->pb, s.tmp.c_str(), AVIO_FLAG_WRITE)) < 0) s.fail("opening " + s.tmp, rc);
  if ((rc = avformat_write_header(s.fmt, nullptr)) < 0) s.fail("writing the header", rc);
  s.header = true;
  s.frame.reset(av_frame_alloc());
  s.packet.reset(av_packet_alloc());
  if (!s.frame || !s.packet) s.fail("out of memory");
  s.frame->format = AV_PIX_FMT_YUV420P;
  s.frame->width = width;
  s.frame->height = height;
  if ((rc = av_frame_get_buffer(s.frame.get(), 0)) < 0) s.fail("allocating a frame", rc);
  s.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P, SWS_BILINEAR, nullptr,
                         nullptr, nullptr);
  if (!s.sws) s.fail("no RGB to YUV converter");
}

VideoWriter::~VideoWriter() = default;

int64_t VideoWriter::frames() const { return s_->n; }

void VideoWriter::write(const std::vector<uint8_t>& rgb) {
  auto& s = *s_;
  if (s.finished) s.fail("write() after finish()");
  if (rgb.size() != static_cast<size_t>(s.width) * s.height * 3)
    s.fail("a frame of " + std::to_string(rgb.size()) + " bytes, expected " + std::to_string(s.width) + "x" +
           std::to_string(s.height) + "x3");
  int rc = av_frame_make_writable(s.frame.get());
  if (rc < 0) s.fail("a writable frame", rc);
  const uint8_t* src[1] = {rgb.data()};
  const int stride[1] = {3 * s.width};
  sws_scale(s.sws, src, stride, 0, s.height, s.frame->data, s.frame->linesize);
  s.frame->pts = s.n++;
  s.drain(s.frame.get());
}

void VideoWriter::finish() {
  auto& s = *s_;
  if (s.finished) return;
  if (s.n == 0) s.fail("no frames were written");
  s.drain(nullptr);
  int rc = av_write_trailer(s.fmt);
  if (rc < 0) s.fail("writing the trailer", rc);
  if ((rc = avio_closep(&s.fmt->pb)) < 0) s.fail("closing " + s.tmp, rc);
  std::error_code ec;
  fs::rename(s.tmp, s.path, ec);
  if (ec) s.fail("renaming " + s.tmp + ": " + ec.message());
  const auto parent = fs::path(s.path).parent_path();
  sync_directory(parent.empty() ? "." : parent.string());
  s.finished = true;
}

}  // namespace llama_mm::media
