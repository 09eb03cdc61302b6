// media/audio_segment.cpp: energy-based splitting of long audio (see audio_segment.h).
#include "media/audio_segment.h"

#include <algorithm>
#include <cmath>

namespace llama_mm::media {

std::vector<AudioSegment> split_audio(const std::vector<float>& samples, int sample_rate, const SegmentOptions& opts) {
  std::vector<AudioSegment> out;
  const int64_t n = static_cast<int64_t>(samples.size());
  if (n == 0) return out;
  const int64_t max_len = std::max<int64_t>(1, static_cast<int64_t>(std::floor(opts.max_seconds * sample_rate)));
  if (n <= max_len) return {{0, n}};
  const int64_t frame = std::max<int64_t>(1, std::llround(opts.frame_ms / 1000.0 * sample_rate));
  const int64_t search =
      std::clamp<int64_t>(static_cast<int64_t>(std::floor(opts.search_seconds * sample_rate)), frame, max_len);
  // Energy of frame f, covering samples [f·frame, (f+1)·frame).
  const int64_t n_frames = (n + frame - 1) / frame;
  std::vector<double> energy(n_frames, 0.0);
  for (int64_t i = 0; i < n; ++i) energy[i / frame] += static_cast<double>(samples[i]) * samples[i];
  // A cut at boundary b (sample b·frame) is as quiet as the louder of frames b-1 and b.
  auto score = [&](int64_t b) { return std::max(energy[b - 1], b < n_frames ? energy[b] : 0.0); };

  int64_t begin = 0;  // always a frame boundary or the start
  while (n - begin > max_len) {
    // Candidate boundaries b with begin < b·frame and b·frame in [begin + max_len - search, begin + max_len].
    const int64_t hi = (begin + max_len) / frame;
    const int64_t lo = std::max<int64_t>(begin / frame + 1, (begin + max_len - search + frame - 1) / frame);
    int64_t cut = begin + max_len;  // no boundary in the window (frame longer than the search): a hard cut
    if (lo <= hi) {
      double best = score(lo);
      for (int64_t b = lo + 1; b <= hi; ++b) best = std::min(best, score(b));
      int64_t last = hi;
      while (score(last) > best) --last;
      int64_t first = last;
      while (first > lo && score(first - 1) <= best) --first;
      cut = (first + (last - first) / 2) * frame;
    }
    out.push_back({begin, cut});
    begin = cut;
  }
  out.push_back({begin, n});
  return out;
}

}  // namespace llama_mm::media
