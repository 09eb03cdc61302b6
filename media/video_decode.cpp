// media/video_decode.cpp: uniform frame sampling by seeking (see video_decode.h).
#include "media/video_decode.h"

#include "media/ffmpeg_io.h"
#include "media/image_probe.h"
#include "media/rgb_convert.h"

extern "C" {
#include <libavutil/display.h>
}

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace llama_mm::media {

using detail::av_error;

namespace {

constexpr const char* kWhat = "video";

[[noreturn]] void fail(const std::string& name, const std::string& reason) { detail::fail_input(name, kWhat, reason); }

std::string seconds(double s) {
  std::ostringstream o;
  o.precision(6);
  o << s << " s";
  return o.str();
}

// Clockwise degrees the player turns the stored frames (the display matrix), as the ffmpeg CLI's autorotate
// reads it: 0, 90, 180 or 270; other angles (and mirroring) are not applied.
int clockwise_rotation(const AVStream* st, const std::string& name) {
  const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
  if (!m) return 0;
  double theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(m));
  if (std::isnan(theta)) return 0;
  theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
  for (int r : {0, 90, 180, 270, 360})
    if (std::fabs(theta - r) < 1) return r % 360;
  std::cerr << "warning: " << name << ": a rotation of " << theta << " degrees is not applied\n";
  return 0;
}

// EXIF orientation code of a clockwise rotation (rgb_convert applies those).
int exif_orientation(int clockwise) { return clockwise == 90 ? 6 : clockwise == 180 ? 3 : clockwise == 270 ? 8 : 1; }

bool is_cover_art(const AVStream* st) {
  return (st->disposition & (AV_DISPOSITION_ATTACHED_PIC | AV_DISPOSITION_TIMED_THUMBNAILS)) != 0;
}

void check_size(int64_t w, int64_t h, const VideoLimits& limits, const std::string& name) {
  if (w > 0 && h > 0 && h > limits.max_pixels / w)
    fail(name, "its frames are " + std::to_string(w) + "x" + std::to_string(h) + " pixels, more than the limit of " +
                   std::to_string(limits.max_pixels) + " (VideoLimits::max_pixels)");
}

// An opened video: the demuxer, its chosen stream and the span to sample over, limits checked.
struct OpenVideo {
  std::unique_ptr<detail::Demuxer> demux;
  std::string name;
  AVFormatContext* fmt = nullptr;
  AVStream* st = nullptr;
  int stream = -1;
  int64_t start = 0, span = 0;  // in st->time_base
  VideoInfo info;
};

// Demux-only pass for a stream whose duration is not stated: the end of its last packet, then back to the start.
int64_t scan_span(OpenVideo& v, const VideoLimits& limits) {
  std::unique_ptr<AVPacket, detail::PacketFreer> pkt(av_packet_alloc());
  int64_t end = v.start;
  const int64_t cap = static_cast<int64_t>(limits.max_seconds / av_q2d(v.st->time_base));
  while (av_read_frame(v.fmt, pkt.get()) >= 0) {
    if (pkt->stream_index == v.stream) {
      const int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts != AV_NOPTS_VALUE) end = std::max(end, ts + std::max<int64_t>(pkt->duration, 0));
      if (end - v.start > cap)
        fail(v.name, "it lasts more than the limit of " + seconds(limits.max_seconds) + " (VideoLimits::max_seconds)");
    }
    av_packet_unref(pkt.get());
  }
  if (av_seek_frame(v.fmt, v.stream, v.start, AVSEEK_FLAG_BACKWARD) < 0)
    fail(v.name, "its duration is not stated and it cannot be rewound after measuring it");
  return end - v.start;
}

OpenVideo open_video(std::unique_ptr<detail::Demuxer> demux, const std::string& name, const VideoLimits& limits) {
  OpenVideo v;
  v.demux = std::move(demux);
  v.name = name;
  v.fmt = v.demux->fmt.get();
  // Sizes the container states are checked before avformat_find_stream_info decodes anything.
  for (unsigned i = 0; i < v.fmt->nb_streams; ++i) {
    const AVCodecParameters* p = v.fmt->streams[i]->codecpar;
    if (p->codec_type == AVMEDIA_TYPE_VIDEO && !is_cover_art(v.fmt->streams[i])) check_size(p->width, p->height, limits, name);
  }
  std::vector<AVDictionary*> opts(v.fmt->nb_streams, nullptr);
  for (auto& d : opts) av_dict_set_int(&d, "max_pixels", limits.max_pixels, 0);
  const int err = avformat_find_stream_info(v.fmt, opts.empty() ? nullptr : opts.data());
  for (auto& d : opts) av_dict_free(&d);
  if (err < 0) fail(name, "FFmpeg cannot read its stream information: " + av_error(err));

  int64_t best_area = -1;
  bool audio = false;
  for (unsigned i = 0; i < v.fmt->nb_streams; ++i) {
    const AVStream* st = v.fmt->streams[i];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) audio = true;
    if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || is_cover_art(st)) continue;
    const int64_t area = static_cast<int64_t>(st->codecpar->width) * st->codecpar->height;
    if (area > best_area) best_area = area, v.stream = static_cast<int>(i);
  }
  if (v.stream < 0) fail(name, audio ? "it has no video stream (audio only)" : "it has no video stream");
  v.st = v.fmt->streams[v.stream];
  for (unsigned i = 0; i < v.fmt->nb_streams; ++i)
    if (static_cast<int>(i) != v.stream) v.fmt->streams[i]->discard = AVDISCARD_ALL;
  const AVCodecParameters* par = v.st->codecpar;
  if (par->width <= 0 || par->height <= 0) fail(name, "its video stream has no frame size");
  check_size(par->width, par->height, limits, name);
  if (!avcodec_find_decoder(par->codec_id))
    fail(name, std::string("FFmpeg has no decoder for its ") + avcodec_get_name(par->codec_id) + " video");

  const double stated = detail::stated_seconds(v.fmt, v.st);
  if (stated > limits.max_seconds)
    fail(name, "it lasts " + seconds(stated) + ", more than the limit of " + seconds(limits.max_seconds) +
                   " (VideoLimits::max_seconds)");
  const double tb = av_q2d(v.st->time_base);
  v.start = v.st->start_time != AV_NOPTS_VALUE ? v.st->start_time : 0;
  v.span = stated > 0 ? static_cast<int64_t>(std::llround(stated / tb)) : scan_span(v, limits);
  if (v.span <= 0) fail(name, "its video stream is empty (duration 0)");

  auto& in = v.info;
  in.container = v.fmt->iformat->name;
  in.codec = avcodec_get_name(par->codec_id);
  in.rotation = clockwise_rotation(v.st, name);
  const bool swap = in.rotation == 90 || in.rotation == 270;
  in.width = swap ? par->height : par->width;
  in.height = swap ? par->width : par->height;
  in.duration_s = v.span * tb;
  in.frame_rate = v.st->avg_frame_rate.num > 0 && v.st->avg_frame_rate.den > 0 ? av_q2d(v.st->avg_frame_rate) : 0;
  in.n_frames = std::max<int64_t>(v.st->nb_frames, 0);
  in.has_audio = audio;
  in.seekable = avformat_index_get_entries_count(v.st) > 0 && v.demux->fmt->pb &&
                (v.demux->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL);
  return v;
}

std::unique_ptr<detail::Demuxer> open_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a video file");
  if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) == 0) fail(path, "the file is empty");
  return detail::open_file_demuxer(path, kWhat);
}

int64_t frame_duration(const AVFrame& f) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
  return f.duration;  // FFmpeg >= 6.0
#else
  return f.pkt_duration;
#endif
}

// Sends packets of the chosen stream to the decoder and hands out its frames in presentation order.
class FrameReader {
 public:
  FrameReader(OpenVideo& v, const VideoLimits& limits) : v_(v) {
    const AVCodec* codec = avcodec_find_decoder(v.st->codecpar->codec_id);
    cc_.reset(avcodec_alloc_context3(codec));
    if (!cc_) fail(v.name, "out of memory");
    if (int err = avcodec_parameters_to_context(cc_.get(), v.st->codecpar); err < 0)
      fail(v.name, "FFmpeg: codec parameters: " + av_error(err));
    cc_->pkt_timebase = v.st->time_base;
    cc_->max_pixels = limits.max_pixels;
    cc_->thread_count = 0;  // FFmpeg picks (frame and slice threads)
    if (int err = avcodec_open2(cc_.get(), codec, nullptr); err < 0)
      fail(v.name, std::string("FFmpeg cannot open the ") + codec->name + " decoder: " + av_error(err));
    pkt_.reset(av_packet_alloc());
    if (!pkt_) fail(v.name, "out of memory");
  }

  // The next frame into `out` (its timestamp in ts); false at the end of the stream.
  bool next(AVFrame* out, int64_t& ts) {
    for (;;) {
      const int r = avcodec_receive_frame(cc_.get(), out);
      if (r == 0) {
        ++decoded_;
        ts = out->pts != AV_NOPTS_VALUE                      ? out->pts
             : out->best_effort_timestamp != AV_NOPTS_VALUE ? out->best_effort_timestamp
                                                             : last_ts_ + 1;
        if (decoded_ > 1 && !just_sought_) longest_ = std::max(longest_, ts - last_ts_);
        longest_ = std::max(longest_, frame_duration(*out));
        last_ts_ = ts;
        just_sought_ = false;
        return true;
      }
      if (r == AVERROR_EOF) return false;
      if (r != AVERROR(EAGAIN)) warn("corrupt frame data: " + av_error(r));
      if (flushed_) return false;
      const int err = av_read_frame(v_.fmt, pkt_.get());
      if (err < 0) {
        if (err != AVERROR_EOF) warn("reading stopped early: " + av_error(err));
        avcodec_send_packet(cc_.get(), nullptr);  // drain the frames still inside the decoder
        flushed_ = true;
        continue;
      }
      if (pkt_->stream_index == v_.stream) {
        const int s = avcodec_send_packet(cc_.get(), pkt_.get());
        if (s < 0 && s != AVERROR(EAGAIN)) warn("corrupt packet: " + av_error(s));
      }
      av_packet_unref(pkt_.get());
    }
  }

  // Jumps to the key frame at or before presentation time `ts`; false when the demuxer cannot.
  bool seek(int64_t ts) {
    if (av_seek_frame(v_.fmt, v_.stream, ts, AVSEEK_FLAG_BACKWARD) < 0) return false;
    avcodec_flush_buffers(cc_.get());
    flushed_ = false;
    just_sought_ = true;
    ++seeks_;
    return true;
  }

  int64_t decoded() const { return decoded_; }
  // The longest time between consecutive decoded frames (or a frame's stated duration), in time-base units.
  int64_t longest_frame() const { return std::max<int64_t>(longest_, 1); }
  int seeks() const { return seeks_; }
  void warn(const std::string& what) {
    if (warnings_++ < 3) std::cerr << "warning: " << v_.name << ": " << what << "\n";
  }

 private:
  OpenVideo& v_;
  std::unique_ptr<AVCodecContext, detail::CodecContextFreer> cc_;
  std::unique_ptr<AVPacket, detail::PacketFreer> pkt_;
  bool flushed_ = false, just_sought_ = false;
  int64_t decoded_ = 0, last_ts_ = -1, longest_ = 0;
  int seeks_ = 0, warnings_ = 0;
};

// Timestamp of the index entry (a key frame) at or before ts, or AV_NOPTS_VALUE.
int64_t key_frame_before(AVStream* st, int64_t ts) {
  const int i = av_index_search_timestamp(st, ts, AVSEEK_FLAG_BACKWARD);
  if (i < 0) return AV_NOPTS_VALUE;
  const AVIndexEntry* e = avformat_index_get_entry(st, i);
  return e ? e->timestamp : AV_NOPTS_VALUE;
}

bool is_key_frame(const AVFrame& f) {
#ifdef AV_FRAME_FLAG_KEY
  return (f.flags & AV_FRAME_FLAG_KEY) != 0;  // FFmpeg >= 6.1
#else
  return f.key_frame != 0;
#endif
}

// SeekMode::Auto's rule: key frames when there are at least 2n of them (each sample then moves by at most about
// half its spacing, and n distinct frames come out) and exact sampling would decode more than 10 % of the
// video: about min(all, n · frames per key frame / 2) frames.
bool exact_is_costly(const OpenVideo& v, int64_t n) {
  const int entries = avformat_index_get_entries_count(v.st);
  int64_t keys = 0;
  for (int i = 0; i < entries; ++i) {
    const AVIndexEntry* e = avformat_index_get_entry(v.st, i);
    if (e && (e->flags & AVINDEX_KEYFRAME)) ++keys;
  }
  const double total = v.info.frame_rate > 0 ? v.info.duration_s * v.info.frame_rate : static_cast<double>(entries);
  if (keys < 2 * n || total <= 0) return false;
  const double cost = std::min(total, n * (total / keys) / 2);
  return cost > 0.1 * total;
}

using FramePtr = std::unique_ptr<AVFrame, detail::FrameFreer>;

FramePtr new_frame(const std::string& name) {
  FramePtr f(av_frame_alloc());
  if (!f) fail(name, "out of memory");
  return f;
}

SampledVideo sample_open(OpenVideo& v, const VideoSampling& sampling, const VideoLimits& limits,
                         const FrameCallback& on_frame) {
  if (sampling.n_frames < 1 || sampling.n_frames > limits.max_frames)
    throw Error(ErrorKind::Usage, "the number of frames to sample must be between 1 and " +
                                      std::to_string(limits.max_frames) + " (got " + std::to_string(sampling.n_frames) + ")");
  SampledVideo out;
  out.info = v.info;
  FrameReader reader(v, limits);
  const double tb = av_q2d(v.st->time_base);
  const int64_t n = sampling.n_frames;
  const bool key_only = v.info.seekable && (sampling.seek == SeekMode::KeyFrame ||
                                            (sampling.seek == SeekMode::Auto && exact_is_costly(v, n)));
  out.seek = key_only ? SeekMode::KeyFrame : SeekMode::Exact;

  auto emit = [&](AVFrame& f, int64_t ts) {
    VideoFrame vf;
    vf.image = detail::apply_exif_orientation(detail::frame_to_rgb(f, v.name, kWhat), exif_orientation(v.info.rotation));
    vf.time_s = (ts - v.start) * tb;
    if (on_frame) on_frame(std::move(vf));
    else out.frames.push_back(std::move(vf));
  };

  FramePtr held = new_frame(v.name), ahead = new_frame(v.name);
  bool has_held = false, has_ahead = false, ended = false;
  int64_t held_ts = 0, ahead_ts = 0, last_emitted = AV_NOPTS_VALUE;
  int64_t emitted = 0;
  for (int64_t i = 0; i < n && !ended; ++i) {
    const int64_t target = v.start + (2 * i + 1) * v.span / (2 * n);
    if (key_only) {
      // The demuxer's own backward seek lands on the key frame at or before the target's presentation time.
      if (!reader.seek(target)) break;
      int64_t ts;
      bool got = false;
      while (!got && reader.next(ahead.get(), ts)) got = is_key_frame(*ahead);
      if (!got) break;
      if (ts != last_emitted) emit(*ahead, ts), last_emitted = ts, ++emitted;
      av_frame_unref(ahead.get());
      continue;
    }
    // Exact: seek when the key frame before the target lies beyond what has been decoded. Index timestamps may
    // be decoding times, a little before the presentation times, so this is a cost estimate only; the seek
    // itself goes by presentation time.
    if (v.info.seekable) {
      const int64_t key = key_frame_before(v.st, target);
      const int64_t pos = has_ahead ? ahead_ts : has_held ? held_ts : v.start - 1;
      int64_t seek_to = target, back = std::max<int64_t>(1, static_cast<int64_t>(1.0 / tb));
      for (int attempt = 0; key != AV_NOPTS_VALUE && key > pos && attempt < 4; ++attempt) {
        if (!reader.seek(seek_to)) break;
        has_held = has_ahead = false;
        av_frame_unref(held.get()), av_frame_unref(ahead.get());
        if (!reader.next(ahead.get(), ahead_ts)) break;
        has_ahead = true;
        if (ahead_ts <= target) break;
        // Landed after the target (the demuxer seeks by decoding time): go back 1 s, 2 s, 4 s before it.
        seek_to = target - back, back *= 2;
      }
    }
    while (!has_ahead || ahead_ts <= target) {
      if (has_ahead) {
        av_frame_unref(held.get());
        av_frame_move_ref(held.get(), ahead.get());
        held_ts = ahead_ts, has_held = true, has_ahead = false;
      }
      if (!reader.next(ahead.get(), ahead_ts)) {
        ended = true;
        break;
      }
      has_ahead = true;
    }
    AVFrame* chosen = has_held ? held.get() : has_ahead ? ahead.get() : nullptr;
    const int64_t chosen_ts = has_held ? held_ts : ahead_ts;
    if (!chosen) {
      if (emitted > 0) reader.warn("no frame decodes at " + seconds((target - v.start) * tb) + " (truncated or damaged data)");
      break;
    }
    if (ended) {
      // The stream stopped before the target: fine within the longest frame seen, else the data is cut short.
      if (target - chosen_ts > reader.longest_frame()) {
        reader.warn("the frames end at " + seconds((chosen_ts - v.start) * tb) + " of the stated " +
                    seconds(v.info.duration_s) + " (truncated or damaged data)");
        break;
      }
      ended = false;  // later targets keep the last frame (deduplicated below)
    }
    if (chosen_ts != last_emitted) emit(*chosen, chosen_ts), last_emitted = chosen_ts, ++emitted;
  }
  if (emitted == 0) fail(v.name, "no video frame could be decoded");
  out.frames_decoded = reader.decoded();
  out.seeks = reader.seeks();
  return out;
}

}  // namespace

VideoInfo probe_video_file(const std::string& path, const VideoLimits& limits) {
  return open_video(open_file(path), path, limits).info;
}

SampledVideo sample_video_file(const std::string& path, const VideoSampling& sampling, const VideoLimits& limits,
                               const FrameCallback& on_frame) {
  auto v = open_video(open_file(path), path, limits);
  return sample_open(v, sampling, limits, on_frame);
}

SampledVideo sample_video(const std::string& bytes, const std::string& name, const VideoSampling& sampling,
                          const VideoLimits& limits, const FrameCallback& on_frame) {
  if (bytes.empty()) fail(name, "the data is empty");
  auto v = open_video(detail::open_memory_demuxer(bytes, nullptr, name, kWhat), name, limits);
  return sample_open(v, sampling, limits, on_frame);
}

int64_t decode_all_frames(const std::string& path, const VideoLimits& limits) {
  auto v = open_video(open_file(path), path, limits);
  FrameReader reader(v, limits);
  FramePtr f = new_frame(path);
  int64_t ts;
  while (reader.next(f.get(), ts)) av_frame_unref(f.get());
  return reader.decoded();
}

bool is_video_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char head[64] = {0};
  in.read(head, sizeof(head));
  const auto format = detail::sniff_format(std::string_view(head, static_cast<size_t>(in.gcount())));
  if (format != detail::ImageFormat::Unknown && format != detail::ImageFormat::Gif) return false;
  try {
    auto v = open_video(open_file(path), path, VideoLimits{});
    return v.st->nb_frames != 1;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace llama_mm::media
