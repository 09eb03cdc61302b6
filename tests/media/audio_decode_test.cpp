// tests/media/audio_decode_test.cpp: media/audio_decode.cpp on one tone in every container and codec
// (tests/fixtures/audio, made by scripts/fixtures/gen_audio_fixtures.sh): 16 kHz out, the duration within the
// codec's padding, the tone's frequency (FFT peak) and level kept; stereo averaged; 22.05/44.1/48 kHz resampled;
// memory input; raw PCM against directly computed samples; the duration limit; damaged and non-audio input.
#include "media/audio_decode.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

namespace llama_mm::media {
namespace {

using test::fixture;

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// The middle `len` samples (codec start-up and tail excluded).
torch::Tensor middle(const Audio& a, int64_t len) {
  const int64_t n = static_cast<int64_t>(a.samples.size());
  return torch::from_blob(const_cast<float*>(a.samples.data()), {n}, torch::kFloat32).narrow(0, (n - len) / 2, len);
}

// |FFT| of the Hann-windowed middle 4000 samples: 4 Hz per bin at 16 kHz.
constexpr int64_t kFftLen = 4000;
torch::Tensor spectrum(const Audio& a) {
  return torch::fft_rfft(middle(a, kFftLen) * torch::hann_window(kFftLen, torch::kFloat32)).abs();
}
double peak_hz(const Audio& a) {
  return spectrum(a).argmax().item<int64_t>() * static_cast<double>(a.sample_rate) / kFftLen;
}
double magnitude_at(const Audio& a, double hz) {
  return spectrum(a)[std::lround(hz * kFftLen / a.sample_rate)].item<double>();
}
double rms(const Audio& a) {
  return middle(a, static_cast<int64_t>(a.samples.size()) / 2).pow(2).mean().sqrt().item<double>();
}

// Max |decoded - expected| over the middle half, expected(t) a function of time in seconds.
double max_error(const Audio& a, const std::function<double(double)>& expected) {
  const size_t n = a.samples.size();
  double e = 0;
  for (size_t i = n / 4; i < 3 * n / 4; ++i)
    e = std::max(e, std::abs(a.samples[i] - expected(static_cast<double>(i) / a.sample_rate)));
  return e;
}

double tone(double t) { return 0.5 * std::sin(2 * M_PI * 1000 * t); }  // the fixtures' tone

// Runs f, which must throw llama_mm::Error(InputDecode); returns its message.
std::string decode_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "'" << (haystack) << "' lacks '" << (needle) << "'"

TEST(AudioDecode, EveryFormatGives16kHzWithTheToneKept) {
  // file, expected seconds, tolerance: lossless files are exact, and so are MP3 with its LAME gapless header and
  // Opus (pre-skip); an MP3 without it keeps the encoder's delay and padding (~45 ms at 44.1 kHz), and FFmpeg's
  // own AAC files keep ~22 ms (the ffmpeg CLI decodes the same lengths).
  const std::vector<std::tuple<std::string, double, double>> cases = {
      {"tone_1k.wav", 1.0, 0.0},         {"tone_1k.flac", 1.0, 0.0},      {"tone_1k.mp3", 1.0, 0.002},
      {"tone_1k_noxing.mp3", 1.0, 0.06}, {"tone_1k.ogg", 1.0, 0.002},     {"tone_1k.m4a", 1.0, 0.03},
      {"tone_1k.webm", 1.0, 0.002},      {"tone_1k_video.mp4", 1.0, 0.03}};
  for (const auto& [file, seconds, tol] : cases) {
    SCOPED_TRACE(file);
    const auto a = load_audio_file(fixture("audio/" + file).string());
    EXPECT_EQ(a.sample_rate, kSpeechSampleRate);
    EXPECT_NEAR(a.duration_s(), seconds, tol + 1e-9);
    EXPECT_NEAR(peak_hz(a), 1000.0, 16000.0 / kFftLen);              // within one FFT bin
    EXPECT_NEAR(rms(a), 0.5 / std::sqrt(2.0), 0.02);                 // the level kept (amplitude 0.5)
    EXPECT_LT(magnitude_at(a, 3000) / magnitude_at(a, 1000), 0.01);  // and no strong distortion
  }
}

// The 16 kHz s16 WAV is lossless: each sample is the tone quantised to 16 bits, and equals what decode_raw_pcm
// makes of the file's data chunk.
TEST(AudioDecode, LosslessWavIsExact) {
  const auto a = load_audio_file(fixture("audio/tone_1k.wav").string());
  ASSERT_EQ(a.samples.size(), 16000u);
  for (size_t i = 0; i < a.samples.size(); ++i) ASSERT_NEAR(a.samples[i], tone(i / 16000.0), 0.6 / 32768) << i;
  const std::string wav = read_bytes(fixture("audio/tone_1k.wav"));
  ASSERT_EQ(wav.substr(36, 4), "data");  // -bitexact: the canonical 44-byte header
  const auto raw = decode_raw_pcm(wav.data() + 44, wav.size() - 44, PcmFormat::S16LE, 16000, 1, "data chunk");
  EXPECT_EQ(raw.samples, a.samples);
}

TEST(AudioDecode, StereoIsAveragedAndResampled) {
  // 44.1 kHz, the tone on the left, silence on the right: (L + R) / 2 is the tone at half its amplitude.
  const auto l = load_audio_file(fixture("audio/stereo_44k.flac").string());
  EXPECT_EQ(l.samples.size(), 8000u);
  EXPECT_NEAR(peak_hz(l), 1000.0, 16000.0 / kFftLen);
  EXPECT_LT(max_error(l, [](double t) { return tone(t) / 2; }), 2e-3);
  // 48 kHz AAC, 1 kHz on the left and 2.5 kHz on the right: both at half amplitude.
  const auto b = load_audio_file(fixture("audio/stereo_48k.m4a").string());
  EXPECT_NEAR(b.duration_s(), 1.0, 0.03);
  const double m1 = magnitude_at(b, 1000), m2 = magnitude_at(b, 2500);
  EXPECT_NEAR(m2 / m1, 1.0, 0.1);
  EXPECT_NEAR(rms(b), 0.25, 0.02);  // sqrt(0.25^2 / 2 + 0.25^2 / 2)
}

TEST(AudioDecode, FromMemoryEqualsFromFile) {
  for (auto file : {"tone_1k.wav", "tone_1k.flac", "tone_1k.mp3", "tone_1k.ogg", "tone_1k_video.mp4"}) {
    const auto path = fixture(std::string("audio/") + file);
    EXPECT_EQ(decode_audio(read_bytes(path), file).samples, load_audio_file(path.string()).samples) << file;
  }
}

TEST(AudioDecode, RawPcmEqualsTheDirectComputation) {
  // s16 stereo at 16 kHz: mono = (L + R) / 2, exactly.
  std::vector<int16_t> s16;
  for (int i = 0; i < 1600; ++i)
    s16.push_back(static_cast<int16_t>(i * 7 - 5000)), s16.push_back(static_cast<int16_t>(-3 * i));
  auto a = decode_raw_pcm(s16.data(), s16.size() * 2, PcmFormat::S16LE, 16000, 2, "s16");
  ASSERT_EQ(a.samples.size(), 1600u);
  for (int i = 0; i < 1600; ++i)
    ASSERT_FLOAT_EQ(a.samples[i], (s16[2 * i] / 32768.0f + s16[2 * i + 1] / 32768.0f) / 2) << i;
  // f32 stereo at 16 kHz, the same.
  std::vector<float> f32;
  for (int i = 0; i < 1000; ++i) f32.push_back(std::sin(0.01f * i)), f32.push_back(0.25f);
  a = decode_raw_pcm(f32.data(), f32.size() * 4, PcmFormat::F32LE, 16000, 2, "f32");
  ASSERT_EQ(a.samples.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_FLOAT_EQ(a.samples[i], (f32[2 * i] + 0.25f) / 2) << i;
  // u8 and s32 mono.
  const uint8_t u8[4] = {0, 128, 192, 255};
  a = decode_raw_pcm(u8, 4, PcmFormat::U8, 16000, 1, "u8");
  EXPECT_EQ(a.samples, (std::vector<float>{-1.0f, 0.0f, 0.5f, 127 / 128.0f}));
  const int32_t s32[2] = {INT32_MIN, 1 << 30};
  a = decode_raw_pcm(s32, 8, PcmFormat::S32LE, 16000, 1, "s32");
  EXPECT_EQ(a.samples, (std::vector<float>{-1.0f, 0.5f}));
  // f32 stereo at 48 kHz (tone left, silence right) -> 16 kHz: the tone at half amplitude, a third as many samples.
  std::vector<float> st48;
  for (int i = 0; i < 48000; ++i) st48.push_back(static_cast<float>(tone(i / 48000.0))), st48.push_back(0.0f);
  a = decode_raw_pcm(st48.data(), st48.size() * 4, PcmFormat::F32LE, 48000, 2, "pcm48");
  EXPECT_EQ(a.samples.size(), 16000u);  // the resampler's tail is flushed: nothing lost
  EXPECT_LT(max_error(a, [](double t) { return tone(t) / 2; }), 1e-3);
}

TEST(AudioDecode, BadRawPcmIsANamedError) {
  std::vector<float> f(100, 0.1f);
  f[42] = std::nanf("");
  auto msg = decode_error([&] { decode_raw_pcm(f.data(), f.size() * 4, PcmFormat::F32LE, 16000, 1, "upload.raw"); });
  EXPECT_CONTAINS(msg, "upload.raw");
  EXPECT_CONTAINS(msg, "sample 42");
  auto expect_named_error = [](const void* data, size_t n_bytes, PcmFormat format, int rate, int channels,
                               const std::string& name) {
    EXPECT_CONTAINS(decode_error([&] { decode_raw_pcm(data, n_bytes, format, rate, channels, name); }), name);
  };
  f[42] = INFINITY;
  expect_named_error(f.data(), 400, PcmFormat::F32LE, 16000, 1, "inf.raw");
  f[42] = -INFINITY;
  expect_named_error(f.data(), 400, PcmFormat::F32LE, 16000, 2, "ninf.raw");
  expect_named_error(f.data(), 0, PcmFormat::F32LE, 16000, 1, "empty.raw");  // 0 samples
  expect_named_error(f.data(), 6, PcmFormat::S16LE, 16000, 2, "odd.raw");    // 1.5 frames
  expect_named_error(f.data(), 400, PcmFormat::F32LE, 16000, 0, "nochan.raw");
  expect_named_error(f.data(), 400, PcmFormat::F32LE, 0, 1, "norate.raw");
  expect_named_error(f.data(), 400, PcmFormat::F32LE, -16000, 1, "neg.raw");
}

TEST(AudioDecode, ProbeReadsTheStatedDurationOnly) {
  for (auto file : {"tone_1k.wav", "tone_1k.flac", "tone_1k.ogg", "tone_1k.m4a", "stereo_44k.flac"}) {
    const auto path = fixture(std::string("audio/") + file).string();
    EXPECT_NEAR(probe_audio_seconds(path), load_audio_file(path).duration_s(), 0.06) << file;
  }
  // A bit-rate guess is not a statement.
  EXPECT_EQ(probe_audio_seconds(fixture("audio/tone_1k_noxing.mp3").string()), -1.0);
  EXPECT_CONTAINS(decode_error([] { probe_audio_seconds("/nonexistent/clip.wav"); }), "/nonexistent/clip.wav");
  EXPECT_CONTAINS(decode_error([] { probe_audio_seconds(fixture("images/small_40x30.bmp").string()); }),
                  "small_40x30.bmp");
}

TEST(AudioDecode, DurationLimit) {
  AudioLimits limits;
  limits.max_seconds = 0.5;
  // A stated duration: refused before any packet is decoded.
  for (auto file : {"tone_1k.wav", "tone_1k.flac", "tone_1k.mp3", "tone_1k.ogg", "tone_1k.m4a", "tone_1k.webm",
                    "tone_1k_video.mp4"}) {
    const auto msg = decode_error([&] { load_audio_file(fixture(std::string("audio/") + file).string(), limits); });
    EXPECT_CONTAINS(msg, file);
    EXPECT_CONTAINS(msg, "as its header states");
  }
  // Only a bit-rate estimate (MP3 without a Xing header): decoding stops just past the limit.
  for (bool memory : {false, true}) {
    const auto path = fixture("audio/tone_1k_noxing.mp3");
    const auto msg = decode_error([&] {
      memory ? decode_audio(read_bytes(path), "upload.mp3", limits) : load_audio_file(path.string(), limits);
    });
    EXPECT_CONTAINS(msg, memory ? "upload.mp3" : "tone_1k_noxing.mp3");
    const auto at = msg.find("decoding stopped at ");
    ASSERT_NE(at, std::string::npos) << msg;
    EXPECT_LT(std::stod(msg.substr(at + 20)), 0.6) << msg;  // not decoded in full
  }
  limits.max_seconds = 1.1;
  EXPECT_NO_THROW(load_audio_file(fixture("audio/tone_1k_noxing.mp3").string(), limits));
  // At the stated duration exactly: accepted, though AAC decodes 22 ms more than its header states.
  limits.max_seconds = 1.0;
  for (auto file : {"tone_1k.wav", "tone_1k.m4a", "tone_1k_video.mp4"})
    EXPECT_NO_THROW(load_audio_file(fixture(std::string("audio/") + file).string(), limits)) << file;
  limits.max_seconds = 0.5;
  std::vector<int16_t> s16(16000, 0);
  EXPECT_CONTAINS(
      decode_error([&] { decode_raw_pcm(s16.data(), s16.size() * 2, PcmFormat::S16LE, 16000, 1, "long.raw", limits); }),
      "long.raw");
}

// A truncated file gives its decodable prefix and a warning naming it; a file cut inside its header, and
// anything that is not audio, is an error naming the file.
TEST(AudioDecode, TruncatedFilesGiveTheirPrefixWithAWarning) {
  test::TempDir tmp;
  for (auto file : {"tone_1k.flac", "tone_1k.wav", "tone_1k.mp3"}) {
    SCOPED_TRACE(file);
    const auto bytes = read_bytes(fixture(std::string("audio/") + file));
    const auto cut = tmp / (std::string("cut_") + file);
    write_bytes(cut, bytes.substr(0, bytes.size() * 3 / 4));
    testing::internal::CaptureStderr();
    const auto a = load_audio_file(cut.string());
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_GT(a.duration_s(), 0.4);
    EXPECT_LT(a.duration_s(), 0.9);
    EXPECT_CONTAINS(err, "warning: " + cut.string());
    EXPECT_CONTAINS(err, "truncated");
    EXPECT_LT(max_error(a, tone), std::string(file) == "tone_1k.mp3" ? 0.1 : 1e-4);  // what decoded is right
  }
}

TEST(AudioDecode, DamagedAndNonAudioInputIsANamedError) {
  test::TempDir tmp;
  write_bytes(tmp / "cut_header.flac", read_bytes(fixture("audio/tone_1k.flac")).substr(0, 30));
  write_bytes(tmp / "empty.wav", "");
  write_bytes(tmp / "notes.wav", "this is a text file, not audio\nsecond line\n");
  std::filesystem::create_directory(tmp / "dir.wav");
  for (auto name : {"cut_header.flac", "empty.wav", "notes.wav", "dir.wav", "missing.ogg"}) {
    SCOPED_TRACE(name);
    const auto msg = decode_error([&] { load_audio_file((tmp / name).string()); });
    EXPECT_CONTAINS(msg, (tmp / name).string());
    EXPECT_CONTAINS(msg, "cannot decode audio");
  }
  // A picture has no audio stream.
  EXPECT_CONTAINS(decode_error([&] { load_audio_file(fixture("images/orient1_5x7.png").string()); }),
                  "no audio stream");
  EXPECT_CONTAINS(decode_error([&] { decode_audio("", "zero-bytes"); }), "zero-bytes");
  EXPECT_CONTAINS(decode_error([&] { decode_audio(std::string(1000, '\x7f'), "noise.bin"); }), "noise.bin");
  EXPECT_CONTAINS(decode_error([&] { decode_audio(std::string("RIFF\x10\0\0\0WAVEfmt ", 16), "header.wav"); }),
                  "header.wav");
}

// Bytes from memory (uploads) may not make FFmpeg open anything else: an ffconcat list naming a file next to it
// decodes from disk (the control) but is refused from memory.
TEST(AudioDecode, MemoryInputCannotOpenOtherFiles) {
  test::TempDir tmp;
  std::filesystem::copy_file(fixture("audio/tone_1k.wav"), tmp / "tone.wav");
  const std::string list = "ffconcat version 1.0\nfile tone.wav\n";
  write_bytes(tmp / "list.ffconcat", list);
  EXPECT_EQ(load_audio_file((tmp / "list.ffconcat").string()).samples.size(), 16000u);
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(tmp.path());  // where a relative name would resolve
  const auto msg = decode_error([&] { decode_audio(list, "upload.txt"); });
  std::filesystem::current_path(cwd);
  EXPECT_CONTAINS(msg, "upload.txt");
}

}  // namespace
}  // namespace llama_mm::media
