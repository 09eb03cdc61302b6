// media/audio_encode.h: mono float samples into a WAV file's bytes (16-bit PCM: x · 2^15, clipped to the 16-bit range),
// the format every tool reads. Used by the synthetic speech data (data/); write the bytes with write_file_atomic.
#pragma once

#include <string>
#include <vector>

namespace llama_mm::media {

std::string encode_wav_pcm16(const std::vector<float>& samples, int sample_rate);

}  // namespace llama_mm::media
