// tests/media/audio_segment_test.cpp: media/audio_segment.cpp: cuts land inside the silences, segments are
// contiguous, cover everything and never exceed the maximum; short audio is one segment.
#include "media/audio_segment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace llama_mm::media {
namespace {

constexpr int kSr = 16000;

// A loud "voice" (noise-modulated tones) with near-silent gaps [a, b) in seconds.
std::vector<float> speech_with_gaps(double seconds, const std::vector<std::pair<double, double>>& gaps) {
  std::mt19937 rng(7);
  std::normal_distribution<float> hiss(0.0f, 1e-3f);
  std::vector<float> s(static_cast<size_t>(seconds * kSr));
  for (size_t i = 0; i < s.size(); ++i) {
    const double t = static_cast<double>(i) / kSr;
    bool quiet = false;
    for (const auto& [a, b] : gaps) quiet = quiet || (t >= a && t < b);
    const double voice = 0.3 * std::sin(2 * M_PI * 220 * t) * (0.6 + 0.4 * std::sin(2 * M_PI * 3 * t)) +
                         0.1 * std::sin(2 * M_PI * 1300 * t);
    s[i] = hiss(rng) + (quiet ? 0.0f : static_cast<float>(voice));
  }
  return s;
}

void expect_tiling(const std::vector<AudioSegment>& segs, int64_t n, int64_t max_len) {
  ASSERT_FALSE(segs.empty());
  EXPECT_EQ(segs.front().begin, 0);
  EXPECT_EQ(segs.back().end, n);
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_GT(segs[i].end, segs[i].begin) << i;
    EXPECT_LE(segs[i].end - segs[i].begin, max_len) << i;
    if (i > 0) EXPECT_EQ(segs[i].begin, segs[i - 1].end) << i;
  }
}

TEST(AudioSegment, CutsLandInsideTheSilences) {
  // 150 s: gaps inside the search windows [50, 60] and [cut1 + 50, cut1 + 60], and one decoy gap too early.
  const std::vector<std::pair<double, double>> gaps = {{30.0, 31.0}, {53.0, 53.8}, {108.2, 109.4}};
  const auto s = speech_with_gaps(150, gaps);
  const auto segs = split_audio(s, kSr);
  ASSERT_EQ(segs.size(), 3u);
  expect_tiling(segs, static_cast<int64_t>(s.size()), 60 * kSr);
  EXPECT_GT(segs[0].end_s(kSr), 53.0);
  EXPECT_LT(segs[0].end_s(kSr), 53.8);
  EXPECT_GT(segs[1].end_s(kSr), 108.2);
  EXPECT_LT(segs[1].end_s(kSr), 109.4);
  EXPECT_DOUBLE_EQ(segs[1].start_s(kSr), segs[0].end_s(kSr));
  // Digital silence ties everywhere inside the gap: the cut goes to its middle, not its edge.
  auto d = s;
  for (size_t i = 53 * kSr; i < static_cast<size_t>(53.8 * kSr); ++i) d[i] = 0.0f;
  EXPECT_NEAR(split_audio(d, kSr)[0].end_s(kSr), 53.4, 0.05);
}

TEST(AudioSegment, WithoutSilenceSegmentsStillRespectTheMaximum) {
  const std::vector<float> s(130 * kSr, 0.2f);  // a constant level: every boundary ties
  const auto segs = split_audio(s, kSr);
  expect_tiling(segs, static_cast<int64_t>(s.size()), 60 * kSr);
  EXPECT_EQ(segs.size(), 3u);
  // Options: 10 s segments, 2 s search window.
  SegmentOptions o;
  o.max_seconds = 10;
  o.search_seconds = 2;
  const auto v = speech_with_gaps(35, {});
  const auto short_segs = split_audio(v, kSr, o);
  expect_tiling(short_segs, static_cast<int64_t>(v.size()), 10 * kSr);
  for (size_t i = 0; i + 1 < short_segs.size(); ++i)  // each cut in the last 2 s of its window
    EXPECT_GE(short_segs[i].end - short_segs[i].begin, 8 * kSr - 400) << i;
}

TEST(AudioSegment, ShortAudioIsOneSegment) {
  const std::vector<float> minute(60 * kSr, 0.1f);
  auto segs = split_audio(minute, kSr);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].begin, 0);
  EXPECT_EQ(segs[0].end, 60 * kSr);
  EXPECT_EQ(split_audio(std::vector<float>(10, 0.0f), kSr).size(), 1u);
  EXPECT_TRUE(split_audio({}, kSr).empty());
  SegmentOptions o;
  o.max_seconds = 0.5;
  const std::vector<float> second(kSr, 0.1f);
  segs = split_audio(second, kSr, o);
  expect_tiling(segs, kSr, kSr / 2);
  EXPECT_GE(segs.size(), 2u);
}

}  // namespace
}  // namespace llama_mm::media
