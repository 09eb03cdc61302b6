// media/audio_encode.cpp: see audio_encode.h.
#include "media/audio_encode.h"

#include "llm/error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace llama_mm::media {

namespace {

void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

}  // namespace

std::string encode_wav_pcm16(const std::vector<float>& samples, int sample_rate) {
  if (sample_rate < 1) throw Error(ErrorKind::Usage, "WAV: the sample rate must be positive");
  const uint64_t data_bytes = samples.size() * 2;
  if (data_bytes > 0xFFFFFFFFull - 36) throw Error(ErrorKind::Usage, "WAV: more than 4 GiB of samples");
  std::string out;
  out.reserve(44 + data_bytes);
  out += "RIFF";
  put_le(out, static_cast<uint32_t>(36 + data_bytes), 4);
  out += "WAVEfmt ";
  put_le(out, 16, 4);  // fmt chunk size
  put_le(out, 1, 2);   // PCM
  put_le(out, 1, 2);   // mono
  put_le(out, static_cast<uint32_t>(sample_rate), 4);
  put_le(out, static_cast<uint32_t>(sample_rate) * 2, 4);  // bytes per second
  put_le(out, 2, 2);                                       // block align
  put_le(out, 16, 2);                                      // bits per sample
  out += "data";
  put_le(out, static_cast<uint32_t>(data_bytes), 4);
  for (float x : samples) {
    // The usual 2^15 scale (what decoders divide by), clipped to the 16-bit range.
    const auto v = static_cast<int16_t>(std::clamp<long>(std::lround(double(x) * 32768.0), -32768, 32767));
    put_le(out, static_cast<uint16_t>(v), 2);
  }
  return out;
}

}  // namespace llama_mm::media
