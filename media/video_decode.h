// media/video_decode.h: uniform frame sampling from video files (paper-spec.md §1.1: "up to 64 frames sampled
// uniformly over the whole video"), the input of the video path. FFmpeg's libavformat/libavcodec read every
// container and codec they know (MP4/MOV H.264, MKV, WebM VP8/9, AVI MJPEG, animated GIF, ...), from a file or
// from bytes in memory (uploads).
//
// Which frames: the stream's presentation span [start, start + D) is cut into n equal parts and the frame on
// screen at the middle of each part is taken, i.e. the last frame whose timestamp is <= start + (i + 0.5)·D/n.
// For a constant-rate clip of F frames that is frame floor((2i + 1)·F / (2n)); timestamps, not frame counts,
// decide, so variable-frame-rate video is sampled uniformly in time. A frame chosen twice (n above the frame
// count) is returned once: a 3-frame clip asked for 64 gives 3 frames.
//
// How: by seeking. With a seek index (MP4/MOV, MKV/WebM cues, AVI) the decoder jumps to the key frame before
// each chosen time and decodes from there (SeekMode::Exact: the exact frame) or takes the key frame itself
// (SeekMode::KeyFrame: the key frame at or before, cheapest); it decodes straight on when the next key frame is
// not ahead of it. SeekMode::Auto takes key frames when the video has at least 2n of them and exact sampling
// would decode more than 10 % of it (about n · frames-per-key-frame / 2 frames), else exact frames.
// Without an index (GIF) frames are decoded in order, stopping after the last one.
//
// Frames come out upright (the display-matrix rotation of phone videos is applied: 90, 180, 270 degrees) as
// 8-bit RGB, converted with the stream's colour matrix and range; alpha (GIF, VP9 alpha) is composited over
// white, as for images. Limits (VideoLimits) are checked from the headers before any frame is decoded.
//
// Errors are llama_mm::Error(InputDecode) naming the input: no video stream (an audio file, cover art only),
// no decodable frame, a size or duration over the limits, a container FFmpeg cannot open (truncated MP4
// without its index). Damaged data after some good frames gives the frames that decode, with a warning on
// stderr. Thread-safety: the functions are reentrant.
#pragma once

#include "media/image_decode.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace llama_mm::media {

struct VideoLimits {
  double max_seconds = 4 * 3600.0;  // longer videos are refused from the header's duration
  int64_t max_pixels = 35'389'440;  // per frame (width * height); 8192 x 4320
  int max_frames = 1024;            // the most frames one request may sample
};

enum class SeekMode { Auto, Exact, KeyFrame };

struct VideoSampling {
  int n_frames = 64;
  SeekMode seek = SeekMode::Auto;
};

struct VideoInfo {
  std::string container, codec;  // FFmpeg's short names ("mov,mp4,m4a,3gp,3g2,mj2", "h264")
  int width = 0, height = 0;     // of the frames as returned, i.e. after rotation
  int rotation = 0;              // clockwise degrees applied to the stored frames: 0, 90, 180 or 270
  double duration_s = 0;         // the span sampled over
  double frame_rate = 0;         // the stream's average rate (0 when unknown)
  int64_t n_frames = 0;          // as the container states it (0 when unknown)
  bool has_audio = false;        // the audio track can go to load_audio_file / decode_audio
  bool seekable = false;         // a seek index exists
};

struct VideoFrame {
  Image image;
  double time_s = 0;  // presentation time, from the start of the stream
};

struct SampledVideo {
  VideoInfo info;
  std::vector<VideoFrame> frames;
  SeekMode seek = SeekMode::Exact;  // the mode used (Auto resolved)
  int64_t frames_decoded = 0;       // how many frames the decoder produced to get them (cost)
  int seeks = 0;
};

// The headers only: streams, size, rotation, duration. Applies the size and duration limits.
VideoInfo probe_video_file(const std::string& path, const VideoLimits& limits = {});

// Samples frames as described above. on_frame, when given, receives each frame as soon as it is decoded
// (in time order) and the returned SampledVideo::frames stays empty: memory then holds one frame at a time.
using FrameCallback = std::function<void(VideoFrame&&)>;
SampledVideo sample_video_file(const std::string& path, const VideoSampling& sampling, const VideoLimits& limits = {},
                               const FrameCallback& on_frame = {});
SampledVideo sample_video(const std::string& bytes, const std::string& name, const VideoSampling& sampling,
                          const VideoLimits& limits = {}, const FrameCallback& on_frame = {});

// Decodes every frame of the video stream and returns how many there were (the cost sampling avoids;
// used by `llama-mm bench caption --video`). No conversion to RGB.
int64_t decode_all_frames(const std::string& path, const VideoLimits& limits = {});

// True when FFmpeg finds a video stream with more than one frame (or of unknown length) that is not cover
// art: such a file is captioned as a video. A still image or an audio file gives false; an unreadable file
// false too (the image decoder then reports why).
bool is_video_file(const std::string& path);

}  // namespace llama_mm::media
