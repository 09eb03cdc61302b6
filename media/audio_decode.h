// media/audio_decode.h: audio to 16 kHz mono float, the speech front end's input (paper-spec.md §2.1).
//
// Reads whatever FFmpeg's libraries read: WAV, FLAC, MP3, Ogg (Opus, Vorbis), M4A/AAC, WebM, and the best
// audio stream of a video file; from a path, from bytes in memory (server uploads, through a custom
// AVIOContext that may not open anything else), or raw interleaved PCM. libswresample converts the rate to
// 16 kHz (its tail is flushed, so no samples are lost), then the channels are averaged: stereo gives (L+R)/2.
//
// Limits: an input whose container or stream states a duration above AudioLimits::max_seconds is refused
// before any packet is decoded. A duration FFmpeg only estimates from the bit rate (an MP3 without a Xing
// header, ADTS AAC) is not trusted for that; such input, and input without any duration, is refused as soon
// as the decoded audio passes the limit, so an over-long file is never decoded in full.
// Damaged data [choice]: packets the demuxer or decoder rejects are skipped with a warning on stderr, so a
// truncated FLAC/MP3/WAV gives its decodable prefix; the warning also fires when the decoded audio is clearly
// shorter than the duration the header states. A file cut inside its header, or any input that yields no
// sample at all, is an error; so are NaN/inf samples (from a float codec or raw f32 PCM).
// Every error is llama_mm::Error(ErrorKind::InputDecode) "<name>: cannot decode audio: <reason>".
// Thread-safety: all functions are reentrant.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace llama_mm::media {

constexpr int kSpeechSampleRate = 16000;

struct Audio {
  std::vector<float> samples;  // mono; in [-1, 1] up to a lossy codec's overshoot
  int sample_rate = kSpeechSampleRate;
  double duration_s() const { return static_cast<double>(samples.size()) / sample_rate; }
};

struct AudioLimits {
  double max_seconds = 7200.0;  // 2 h
};

// The file at `path` (always a local file: "http://..." or "concat:..." is a file name like any other).
Audio load_audio_file(const std::string& path, const AudioLimits& limits = {});
// The duration the file's headers state, in seconds, or -1 when they state none (nothing is decoded; bit-rate
// guesses are not used). Cheap: for ordering training clips by length. Errors as for load_audio_file.
double probe_audio_seconds(const std::string& path);
// An in-memory file; `name` is used in error messages. The format comes from the bytes, never from `name`.
Audio decode_audio(const std::string& bytes, const std::string& name, const AudioLimits& limits = {});

enum class PcmFormat { S16LE, S32LE, F32LE, U8 };
// Raw interleaved PCM of `channels` (1..64) channels at `sample_rate` (1000..768000 Hz), resampled to 16 kHz
// mono. Errors: no samples, a byte count that is not a whole number of frames, a bad rate or channel count,
// NaN/inf samples (F32LE), more than limits.max_seconds.
Audio decode_raw_pcm(const void* data, size_t n_bytes, PcmFormat format, int sample_rate, int channels,
                     const std::string& name, const AudioLimits& limits = {});

}  // namespace llama_mm::media
