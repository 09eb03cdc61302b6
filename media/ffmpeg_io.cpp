// media/ffmpeg_io.cpp: FFmpeg demuxers over files and memory (see ffmpeg_io.h).
#include "media/ffmpeg_io.h"

#include "llm/error.h"

extern "C" {
#include <libavutil/dict.h>
}

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace llama_mm::media::detail {

namespace {

int read_memory(void* opaque, uint8_t* buf, int size) {
  auto* in = static_cast<Demuxer*>(opaque);
  const int64_t n = std::min<int64_t>(size, static_cast<int64_t>(in->bytes->size()) - in->pos);
  if (n <= 0) return AVERROR_EOF;
  std::memcpy(buf, in->bytes->data() + in->pos, n);
  in->pos += n;
  return static_cast<int>(n);
}

int64_t seek_memory(void* opaque, int64_t offset, int whence) {
  auto* in = static_cast<Demuxer*>(opaque);
  const auto size = static_cast<int64_t>(in->bytes->size());
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return size;
  int64_t pos = whence == SEEK_SET   ? offset
                : whence == SEEK_CUR ? in->pos + offset
                : whence == SEEK_END ? size + offset
                                     : -1;
  if (pos < 0 || pos > size) return AVERROR(EINVAL);
  return in->pos = pos;
}

// Bytes from memory never open other resources (playlists, references in a container).
int refuse_nested_open(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) { return AVERROR(EPERM); }

}  // namespace

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

void fail_input(const std::string& name, const char* what, const std::string& reason) {
  throw Error(ErrorKind::InputDecode, name + ": cannot decode " + what + ": " + reason);
}

double stated_seconds(const AVFormatContext* fmt, const AVStream* st) {
  if (fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) return -1;
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return st->duration * av_q2d(st->time_base);
  if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) return fmt->duration / static_cast<double>(AV_TIME_BASE);
  return -1;
}

std::unique_ptr<Demuxer> open_memory_demuxer(const std::string& bytes, const char* demuxer, const std::string& name,
                                             const char* what) {
  auto d = std::make_unique<Demuxer>();
  d->bytes = &bytes;
  constexpr int kIoBufferSize = 1 << 16;
  auto* io_buf = static_cast<uint8_t*>(av_malloc(kIoBufferSize));
  if (!io_buf) fail_input(name, what, "out of memory");
  d->io.reset(avio_alloc_context(io_buf, kIoBufferSize, 0, d.get(), read_memory, nullptr, seek_memory));
  if (!d->io) {
    av_free(io_buf);
    fail_input(name, what, "out of memory");
  }
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) fail_input(name, what, "out of memory");
  raw->pb = d->io.get();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  // Nested opens: HLS/DASH go through io_open; the concat demuxer opens its own contexts, which inherit the
  // protocol whitelist, and no protocol is called "none".
  raw->io_open = refuse_nested_open;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "protocol_whitelist", "none", 0);
  // On failure avformat_open_input frees the context (and leaves our custom AVIOContext alone).
  const AVInputFormat* fmt = demuxer ? av_find_input_format(demuxer) : nullptr;
  const int err = avformat_open_input(&raw, nullptr, fmt, &opts);
  av_dict_free(&opts);
  if (err < 0) fail_input(name, what, "FFmpeg cannot open it: " + av_error(err));
  d->fmt.reset(raw);
  return d;
}

std::unique_ptr<Demuxer> open_file_demuxer(const std::string& path, const char* what) {
  auto d = std::make_unique<Demuxer>();
  AVFormatContext* raw = nullptr;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "protocol_whitelist", "file", 0);
  // "file:" keeps a path such as "concat:a|b" or "x.wav?y" from being read as a protocol or URL.
  const int err = avformat_open_input(&raw, ("file:" + path).c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (err < 0) fail_input(path, what, "FFmpeg cannot open it: " + av_error(err));
  d->fmt.reset(raw);
  return d;
}

}  // namespace llama_mm::media::detail
