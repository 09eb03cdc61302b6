// media/audio_segment.h: long audio split into segments of at most 60 s (the paper's speech segments are at
// most 60 s long, paper-spec.md §2.6) at low-energy points, keeping each segment's exact start and end so that
// transcripts can carry timestamps.
//
// A simple energy VAD: the signal's energy (sum of squares) in frames of frame_ms. Each cut is a frame boundary
// within the last search_seconds of the window that starts at the previous cut, the one whose two neighbouring
// frames are quietest (the louder of the two is minimal); when several boundaries tie (digital silence), the
// middle of the latest run of tied boundaries, so the cut sits inside the pause rather than at its edge.
// Segments are contiguous, cover the whole input and are never longer than max_seconds.
// Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <vector>

namespace llama_mm::media {

struct AudioSegment {
  int64_t begin = 0, end = 0;  // sample indices, end exclusive
  double start_s(int sample_rate) const { return static_cast<double>(begin) / sample_rate; }
  double end_s(int sample_rate) const { return static_cast<double>(end) / sample_rate; }
};

struct SegmentOptions {
  double max_seconds = 60.0;     // longest segment
  double search_seconds = 10.0;  // the cut is looked for in the last search_seconds of each window
  double frame_ms = 25.0;        // energy frame
};

// Audio of at most max_seconds is one segment; empty input gives none.
std::vector<AudioSegment> split_audio(const std::vector<float>& samples, int sample_rate,
                                      const SegmentOptions& opts = {});

}  // namespace llama_mm::media
