// media/ffmpeg_io.h (internal to media/): FFmpeg resource owners and demuxers over a file or over bytes in
// memory, shared by the image (GIF), video and audio decoders. Failures are ErrorKind::InputDecode naming the input:
// "<name>: cannot decode <what>: <reason>", `what` being "image" or "audio".
//
// Untrusted input: a demuxer over memory (uploads) may not open anything else (an HLS or ffconcat playlist
// naming URLs or local files fails), and a file demuxer may only open local files, so a playlist given as a
// path cannot reach the network.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include <cstdint>
#include <memory>
#include <string>

namespace llama_mm::media::detail {

struct FormatContextCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct IoContextFreer {
  void operator()(AVIOContext* c) const {
    av_freep(&c->buffer);
    avio_context_free(&c);
  }
};
struct CodecContextFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};

std::string av_error(int err);

// Throws llama_mm::Error(InputDecode, "<name>: cannot decode <what>: <reason>").
[[noreturn]] void fail_input(const std::string& name, const char* what, const std::string& reason);

// The duration the stream (or else the container) states, in seconds, or -1. Bit-rate estimates are ignored:
// they are guesses (a VBR MP3 without a Xing header can be off by a factor of several).
double stated_seconds(const AVFormatContext* fmt, const AVStream* st);

// An opened demuxer. For memory input it reads `bytes`, which must outlive it; it must not move (heap only).
struct Demuxer {
  const std::string* bytes = nullptr;
  int64_t pos = 0;  // read position in *bytes
  std::unique_ptr<AVIOContext, IoContextFreer> io;
  std::unique_ptr<AVFormatContext, FormatContextCloser> fmt;  // closed before io is freed
};

// `demuxer` names a format ("gif") or is null to probe. `name` is used in error messages, with `what`.
std::unique_ptr<Demuxer> open_memory_demuxer(const std::string& bytes, const char* demuxer, const std::string& name,
                                             const char* what = "image");
// `path` is always a local file (never a URL or protocol such as "concat:").
std::unique_ptr<Demuxer> open_file_demuxer(const std::string& path, const char* what);

}  // namespace llama_mm::media::detail
