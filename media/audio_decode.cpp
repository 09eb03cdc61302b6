// media/audio_decode.cpp: FFmpeg demux + decode, libswresample to 16 kHz, channels averaged to mono (see
// audio_decode.h).
#include "media/audio_decode.h"

#include "media/ffmpeg_io.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace llama_mm::media {

using detail::av_error;

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& reason) {
  detail::fail_input(name, "audio", reason);
}

std::string seconds(double s) {
  std::ostringstream o;
  o.precision(6);
  o << s << " s";
  return o.str();
}

struct SwrFreer {
  void operator()(SwrContext* s) const { swr_free(&s); }
};

// Converts one input (sample format, rate, channels) to packed float at 16 kHz with the same channels, then
// averages the channels into the output.
class Resampler {
 public:
  Resampler(const AVChannelLayout& layout, AVSampleFormat fmt, int rate, const std::string& name)
      : name_(name), channels_(layout.nb_channels), in_rate_(rate), fmt_(fmt) {
    if (channels_ < 1) fail(name, "the audio stream has no channels");
    if (rate <= 0) fail(name, "the audio stream has no sample rate");
    // WAV and raw input often come without channel positions; libswresample wants a usable layout.
    if (layout.order == AV_CHANNEL_ORDER_UNSPEC || !av_channel_layout_check(&layout))
      av_channel_layout_default(&layout_, channels_);
    else if (int err = av_channel_layout_copy(&layout_, &layout); err < 0)
      fail(name, "channel layout: " + av_error(err));
    SwrContext* raw = nullptr;
    int err =
        swr_alloc_set_opts2(&raw, &layout_, AV_SAMPLE_FMT_FLT, kSpeechSampleRate, &layout_, fmt, rate, 0, nullptr);
    if (err < 0 || !raw) fail(name, "libswresample: " + av_error(err));
    swr_.reset(raw);
    if ((err = swr_init(swr_.get())) < 0) fail(name, "libswresample: " + av_error(err));
  }
  ~Resampler() { av_channel_layout_uninit(&layout_); }
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  bool same_input(const AVChannelLayout& layout, int fmt, int rate) const {
    return layout.nb_channels == channels_ && rate == in_rate_ && fmt == fmt_;
  }
  // `in`: the planes (planar formats) or the one buffer (packed) of n input samples per channel.
  void push(const uint8_t* const* in, int n, std::vector<float>& out) { convert(in, n, out); }
  // Drains the filter's delay line: the last input samples' output.
  void flush(std::vector<float>& out) { convert(nullptr, 0, out); }

 private:
  void convert(const uint8_t* const* in, int n, std::vector<float>& out) {
    const int cap = swr_get_out_samples(swr_.get(), n) + 16;
    if (cap < 16) fail(name_, "libswresample: " + av_error(cap - 16));
    buf_.resize(static_cast<size_t>(cap) * channels_);
    auto* dst = reinterpret_cast<uint8_t*>(buf_.data());
    const int got = swr_convert(swr_.get(), &dst, cap, const_cast<const uint8_t**>(in), n);
    if (got < 0) fail(name_, "libswresample: " + av_error(got));
    const size_t base = out.size();
    out.resize(base + got);
    const float scale = 1.0f / channels_;
    for (int i = 0; i < got; ++i) {
      const float* s = buf_.data() + static_cast<size_t>(i) * channels_;
      float sum = 0;
      for (int c = 0; c < channels_; ++c) sum += s[c];
      out[base + i] = channels_ == 1 ? sum : sum * scale;
    }
  }

  std::string name_;
  int channels_, in_rate_, fmt_;
  AVChannelLayout layout_{};
  std::unique_ptr<SwrContext, SwrFreer> swr_;
  std::vector<float> buf_;
};

void check_samples(const Audio& a, const std::string& name) {
  if (a.samples.empty()) fail(name, "no audio samples could be decoded");
  for (size_t i = 0; i < a.samples.size(); ++i)
    if (!std::isfinite(a.samples[i]))
      fail(name, "decoded sample " + std::to_string(i) + " (at " + seconds(static_cast<double>(i) / a.sample_rate) +
                     ") is not a finite number (NaN or infinity)");
}

Audio decode_demuxed(detail::Demuxer& d, const std::string& name, const AudioLimits& limits) {
  AVFormatContext* fmt = d.fmt.get();
  if (int err = avformat_find_stream_info(fmt, nullptr); err < 0)
    fail(name, "FFmpeg cannot read its stream information: " + av_error(err));
  const AVCodec* codec = nullptr;
  const int stream = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (stream == AVERROR_DECODER_NOT_FOUND) fail(name, "FFmpeg has no decoder for its audio codec");
  if (stream < 0 || !codec) fail(name, "it has no audio stream");
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    if (static_cast<int>(i) != stream) fmt->streams[i]->discard = AVDISCARD_ALL;  // skip video packets early
  const AVStream* st = fmt->streams[stream];
  const double stated = detail::stated_seconds(fmt, st);
  if (stated > limits.max_seconds)
    fail(name, "it lasts " + seconds(stated) + " (as its header states), more than the limit of " +
                   seconds(limits.max_seconds));
  // While decoding: the limit itself when no duration is stated; with one, 1 s of slack for codec padding (a
  // header that lies about the duration still cannot make us decode much more than the limit).
  const double max_samples = (limits.max_seconds + (stated > 0 ? 1.0 : 0.0)) * kSpeechSampleRate;

  std::unique_ptr<AVCodecContext, detail::CodecContextFreer> cc(avcodec_alloc_context3(codec));
  if (!cc) fail(name, "out of memory");
  if (int err = avcodec_parameters_to_context(cc.get(), st->codecpar); err < 0)
    fail(name, "FFmpeg: codec parameters: " + av_error(err));
  cc->pkt_timebase = st->time_base;  // lets the decoder drop encoder delay/padding by timestamp
  if (int err = avcodec_open2(cc.get(), codec, nullptr); err < 0)
    fail(name, "FFmpeg cannot open the " + std::string(codec->name) + " decoder: " + av_error(err));

  std::unique_ptr<AVPacket, detail::PacketFreer> pkt(av_packet_alloc());
  std::unique_ptr<AVFrame, detail::FrameFreer> frame(av_frame_alloc());
  if (!pkt || !frame) fail(name, "out of memory");
  Audio a;
  if (stated > 0) a.samples.reserve(static_cast<size_t>(stated * kSpeechSampleRate) + kSpeechSampleRate);
  std::unique_ptr<Resampler> rs;
  int64_t bad_packets = 0;
  std::string read_error;
  auto receive_frames = [&] {
    while (true) {
      const int err = avcodec_receive_frame(cc.get(), frame.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
      if (err < 0) {
        ++bad_packets;
        return;
      }
      if (!rs || !rs->same_input(frame->ch_layout, frame->format, frame->sample_rate)) {
        if (rs) rs->flush(a.samples);  // the stream changed format mid-way: finish the old converter
        rs = std::make_unique<Resampler>(frame->ch_layout, static_cast<AVSampleFormat>(frame->format),
                                         frame->sample_rate, name);
      }
      rs->push(frame->extended_data, frame->nb_samples, a.samples);
      av_frame_unref(frame.get());
      if (static_cast<double>(a.samples.size()) > max_samples)
        fail(name, "it is longer than the limit of " + seconds(limits.max_seconds) + " (decoding stopped at " +
                       seconds(a.duration_s()) +
                       (stated > 0 ? "; its header states " + seconds(stated) : "; its header states no duration") +
                       ")");
    }
  };
  while (true) {
    const int err = av_read_frame(fmt, pkt.get());
    if (err < 0) {
      if (err != AVERROR_EOF) read_error = av_error(err);  // a damaged container: keep what decoded so far
      break;
    }
    if (pkt->stream_index == stream) {
      int serr = avcodec_send_packet(cc.get(), pkt.get());
      if (serr == AVERROR(EAGAIN)) {  // the decoder is full: take its frames, then resend
        receive_frames();
        serr = avcodec_send_packet(cc.get(), pkt.get());
      }
      if (serr < 0) ++bad_packets;
      receive_frames();
    }
    av_packet_unref(pkt.get());
  }
  avcodec_send_packet(cc.get(), nullptr);  // drain the decoder, then the resampler
  receive_frames();
  if (rs) rs->flush(a.samples);
  check_samples(a, name);

  std::string problems;
  if (bad_packets > 0) problems += std::to_string(bad_packets) + " damaged packet(s) skipped; ";
  if (!read_error.empty()) problems += "reading stopped early (" + read_error + "); ";
  if (stated > 0 && a.duration_s() < stated - std::max(0.1, 0.02 * stated))
    problems += "its header states " + seconds(stated) + "; ";
  if (!problems.empty())
    std::cerr << "warning: " << name << ": damaged or truncated audio: " << problems << "using the "
              << seconds(a.duration_s()) << " that decoded\n";
  return a;
}

float pcm_sample(const uint8_t* b, size_t i, PcmFormat format) {
  switch (format) {
    case PcmFormat::S16LE: {
      const auto v = static_cast<int16_t>(b[2 * i] | (b[2 * i + 1] << 8));
      return v / 32768.0f;
    }
    case PcmFormat::S32LE: {
      const auto v = static_cast<int32_t>(static_cast<uint32_t>(b[4 * i]) | (static_cast<uint32_t>(b[4 * i + 1]) << 8) |
                                          (static_cast<uint32_t>(b[4 * i + 2]) << 16) |
                                          (static_cast<uint32_t>(b[4 * i + 3]) << 24));
      return static_cast<float>(v / 2147483648.0);
    }
    case PcmFormat::F32LE: {
      const uint32_t u = static_cast<uint32_t>(b[4 * i]) | (static_cast<uint32_t>(b[4 * i + 1]) << 8) |
                         (static_cast<uint32_t>(b[4 * i + 2]) << 16) | (static_cast<uint32_t>(b[4 * i + 3]) << 24);
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    case PcmFormat::U8:
      return (static_cast<int>(b[i]) - 128) / 128.0f;
  }
  return 0;
}

std::unique_ptr<detail::Demuxer> open_audio_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) fail(path, "no such file");
  if (fs::is_directory(status)) fail(path, "it is a directory, not an audio file");
  if (fs::is_regular_file(status) && fs::file_size(path, ec) == 0 && !ec) fail(path, "the file is empty (0 bytes)");
  return detail::open_file_demuxer(path, "audio");
}

}  // namespace

Audio load_audio_file(const std::string& path, const AudioLimits& limits) {
  auto d = open_audio_file(path);
  return decode_demuxed(*d, path, limits);
}

double probe_audio_seconds(const std::string& path) {
  auto d = open_audio_file(path);
  AVFormatContext* fmt = d->fmt.get();
  if (int err = avformat_find_stream_info(fmt, nullptr); err < 0)
    fail(path, "FFmpeg cannot read its stream information: " + av_error(err));
  const int stream = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (stream < 0) fail(path, "it has no audio stream");
  return detail::stated_seconds(fmt, fmt->streams[stream]);
}

Audio decode_audio(const std::string& bytes, const std::string& name, const AudioLimits& limits) {
  if (bytes.empty()) fail(name, "no data (0 bytes)");
  auto d = detail::open_memory_demuxer(bytes, nullptr, name, "audio");
  return decode_demuxed(*d, name, limits);
}

Audio decode_raw_pcm(const void* data, size_t n_bytes, PcmFormat format, int sample_rate, int channels,
                     const std::string& name, const AudioLimits& limits) {
  if (channels < 1 || channels > 64) fail(name, "raw PCM: channels must be 1..64, got " + std::to_string(channels));
  if (sample_rate < 1000 || sample_rate > 768000)
    fail(name, "raw PCM: the sample rate must be 1000..768000 Hz, got " + std::to_string(sample_rate));
  const size_t width = format == PcmFormat::S16LE ? 2 : format == PcmFormat::U8 ? 1 : 4;
  const size_t frame_bytes = width * channels;
  if (n_bytes == 0 || data == nullptr) fail(name, "raw PCM: no samples (0 bytes)");
  if (n_bytes % frame_bytes != 0)
    fail(name, "raw PCM: " + std::to_string(n_bytes) + " bytes is not a whole number of " + std::to_string(channels) +
                   "-channel frames of " + std::to_string(frame_bytes) + " bytes");
  const int64_t n = static_cast<int64_t>(n_bytes / frame_bytes);  // samples per channel
  if (static_cast<double>(n) > limits.max_seconds * sample_rate)
    fail(name, "raw PCM: it lasts " + seconds(static_cast<double>(n) / sample_rate) + ", more than the limit of " +
                   seconds(limits.max_seconds));
  // Interleaved float first (refusing non-finite input), then the resampler every decoder uses.
  const auto* b = static_cast<const uint8_t*>(data);
  std::vector<float> f(static_cast<size_t>(n) * channels);
  for (size_t i = 0; i < f.size(); ++i) {
    f[i] = pcm_sample(b, i, format);
    if (!std::isfinite(f[i]))
      fail(name, "raw PCM: sample " + std::to_string(i) + " (frame " + std::to_string(i / channels) +
                     ") is not a finite number (NaN or infinity)");
  }
  Audio a;
  a.samples.reserve(static_cast<size_t>(static_cast<double>(n) * kSpeechSampleRate / sample_rate) + 64);
  AVChannelLayout layout{};
  av_channel_layout_default(&layout, channels);
  Resampler rs(layout, AV_SAMPLE_FMT_FLT, sample_rate, name);
  av_channel_layout_uninit(&layout);
  constexpr int64_t kChunk = 1 << 20;  // frames per swr_convert call (its counts are ints)
  for (int64_t i = 0; i < n; i += kChunk) {
    const uint8_t* planes[1] = {reinterpret_cast<const uint8_t*>(f.data() + i * channels)};
    rs.push(planes, static_cast<int>(std::min(kChunk, n - i)), a.samples);
  }
  rs.flush(a.samples);
  check_samples(a, name);
  return a;
}

}  // namespace llama_mm::media
