// Tests for media/audio_encode.cpp: a WAV made here decodes (FFmpeg) to the same samples within 16-bit rounding,
// with the stated rate and length; out-of-range samples are clipped.
#include "media/media.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama_mm::media {
namespace {

TEST(AudioEncode, WavRoundTripsThroughTheDecoder) {
  std::vector<float> s(16000);
  for (size_t i = 0; i < s.size(); ++i) s[i] = 0.8f * std::sin(2 * M_PI * 440 * i / 16000.0);
  s[10] = 1.7f, s[11] = -3.0f;  // clipped
  const auto bytes = encode_wav_pcm16(s, 16000);
  EXPECT_EQ(bytes.size(), 44 + 2 * s.size());
  EXPECT_EQ(bytes.substr(0, 4), "RIFF");
  EXPECT_EQ(bytes.substr(8, 8), "WAVEfmt ");
  const auto a = decode_audio(bytes, "tone.wav");
  ASSERT_EQ(a.samples.size(), s.size());
  EXPECT_EQ(a.sample_rate, 16000);
  for (size_t i = 0; i < s.size(); ++i)
    ASSERT_NEAR(a.samples[i], std::clamp(s[i], -1.0f, 1.0f), 1.0 / 32768 + 1e-6) << i;
  EXPECT_THROW(encode_wav_pcm16(s, 0), Error);
}

}  // namespace
}  // namespace llama_mm::media
