// media/video_encode.h: RGB frames into a video file with FFmpeg (libavformat + libavcodec + libswscale): H.264
// (libx264, CRF 20, yuv420p) in MP4, MKV or MOV by the file's extension; MPEG-4 Part 2 where libx264 is missing.
// Used by the synthetic motion data (data/). The file appears whole or not at all (a temp file in the same
// folder, renamed at the end). Failures are ErrorKind::Runtime naming the path.
//
//   VideoWriter w("clip.mp4", 128, 128, /*fps=*/8);
//   for (...) w.write(rgb);   // width · height · 3 bytes, RGB, row-major
//   w.finish();               // flushes and renames; without it the destructor discards the file
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llama_mm::media {

class VideoWriter {
 public:
  // width and height must be even (yuv420p).
  VideoWriter(const std::string& path, int width, int height, int fps);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write(const std::vector<uint8_t>& rgb);
  void finish();
  int64_t frames() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace llama_mm::media
