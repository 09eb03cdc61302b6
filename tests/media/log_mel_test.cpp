// tests/media/log_mel_test.cpp: media/log_mel.cpp against an independent numpy implementation of Whisper's
// log-mel and of Kaldi's fbank (tests/fixtures/audio/log_mel_reference.safetensors, made by
// scripts/fixtures/gen_log_mel_reference.py from chirp_16k.wav), against a naive per-frame DFT across the chunk
// boundaries of a long input, plus frame counts, value ranges, short inputs and the config's JSON.
#include "media/log_mel.h"

#include "llm/error.h"
#include "llm/safetensors.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

namespace llama_mm::media {
namespace {

using test::fixture;

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

LogMelConfig kaldi() {
  LogMelConfig c;
  c.kind = LogMelConfig::Kind::KaldiFbank;
  return c;
}

std::vector<float> noise(int64_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.1f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

// Whisper's mel power of frame f, the naive way: reflect-pad by hand, periodic Hann, a direct DFT in double.
std::vector<double> naive_whisper_mel_power(const std::vector<float>& x, int64_t f, const torch::Tensor& filters) {
  const int64_t n = static_cast<int64_t>(x.size()), W = 400, pad = 200;
  auto at = [&](int64_t i) {  // x of the reflect-padded signal at padded index i
    i -= pad;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return static_cast<double>(x[i]);
  };
  std::vector<double> power(201);
  for (int k = 0; k < 201; ++k) {
    double re = 0, im = 0;
    for (int64_t t = 0; t < W; ++t) {
      const double v = at(f * 160 + t) * (0.5 - 0.5 * std::cos(2 * M_PI * t / W));
      re += v * std::cos(2 * M_PI * k * t / W);
      im -= v * std::sin(2 * M_PI * k * t / W);
    }
    power[k] = re * re + im * im;
  }
  auto fa = filters.accessor<float, 2>();
  std::vector<double> mel(80, 0.0);
  for (int m = 0; m < 80; ++m)
    for (int k = 0; k < 201; ++k) mel[m] += fa[m][k] * power[k];
  return mel;
}

class LogMelReference : public ::testing::Test {
 protected:
  SafetensorsFile ref{fixture("audio/log_mel_reference.safetensors").string()};
  Audio chirp = load_audio_file(fixture("audio/chirp_16k.wav").string());
};

TEST_F(LogMelReference, SlaneyFilterbankMatchesLibrosasDefinition) {
  const auto f = slaney_mel_filterbank(16000, 400, 80);
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{80, 201}));
  ASSERT_EQ(f.scalar_type(), torch::kFloat32);
  EXPECT_LT(max_abs_diff(f.index({torch::indexing::Slice(0, 80, 4)}), ref.get("whisper_filters")), 1e-7);
  EXPECT_LT((f.sum(1).to(torch::kFloat64) / ref.get("whisper_filters_sum") - 1).abs().max().item<double>(), 1e-5);
  // Triangles: non-negative, each row's peak bin after the previous row's, unit area in Hz (about; the narrow
  // low bands are coarsely sampled by 40 Hz bins).
  EXPECT_GE(f.min().item<float>(), 0.0f);
  const auto peaks = f.argmax(1);
  for (int m = 1; m < 80; ++m) EXPECT_GE(peaks[m].item<int64_t>(), peaks[m - 1].item<int64_t>()) << m;
  EXPECT_NEAR((f.sum(1) * 40.0).mean().item<double>(), 1.0, 0.1);
  // fmax: nothing above it.
  const auto low = slaney_mel_filterbank(16000, 400, 40, 0.0, 4000.0);
  EXPECT_EQ(low.index({torch::indexing::Slice(), torch::indexing::Slice(101, 201)}).abs().max().item<float>(), 0.0f);
}

TEST_F(LogMelReference, WhisperMatchesTheNumpyReference) {
  const auto mel = log_mel_spectrogram(chirp);  // [100, 80]
  const auto want = ref.get("whisper");
  ASSERT_EQ(mel.sizes(), want.sizes());
  EXPECT_EQ(mel.size(0), 100);
  EXPECT_LT(max_abs_diff(mel, want), 1e-4);
  // Everything within [(max - 8 + 4) / 4, (max + 4) / 4] in log10 units, i.e. 2 below the top; the leading
  // 0.1 s of digital silence sits at the clamp.
  const double top = mel.max().item<double>();
  EXPECT_GE(mel.min().item<double>(), top - 2.0 - 1e-6);
  EXPECT_NEAR(mel.narrow(0, 0, 8).max().item<double>(), top - 2.0, 1e-6);
}

TEST_F(LogMelReference, KaldiFbankMatchesTheNumpyReference) {
  const auto fb = log_mel_spectrogram(chirp, kaldi());
  const auto want = ref.get("kaldi");
  ASSERT_EQ(fb.sizes(), want.sizes());
  EXPECT_EQ(fb.size(0), 1 + (16000 - 400) / 160);  // snip_edges
  EXPECT_LT(max_abs_diff(fb, want), 1e-4);
  // Digital silence: every band at ln(float epsilon).
  EXPECT_NEAR(fb[0].max().item<double>(), std::log(std::numeric_limits<float>::epsilon()), 1e-5);
}

// Long input is computed in chunks of frames; frames on both sides of a chunk boundary, and the reflect-padded
// ends, equal a naive per-frame DFT (with the same global clamp).
TEST(LogMel, ChunkedLongInputEqualsANaiveDft) {
  const auto x = noise(16000 * 50);  // 5000 frames: one chunk boundary at 4096
  const auto mel = log_mel_spectrogram(x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(mel.size(0), 5000);
  const auto filters = slaney_mel_filterbank(16000, 400, 80);
  const double top = mel.max().item<double>();
  for (int64_t f : {0, 1, 4095, 4096, 4097, 4999}) {
    const auto power = naive_whisper_mel_power(x, f, filters);
    for (int m = 0; m < 80; ++m) {
      const double want = std::max((std::log10(std::max(power[m], 1e-10)) + 4) / 4, top - 2.0);
      ASSERT_NEAR(mel[f][m].item<float>(), want, 1e-5) << "frame " << f << " bin " << m;
    }
  }
}

TEST(LogMel, FrameCounts) {
  LogMelConfig w;
  EXPECT_EQ(w.n_frames(16000), 100);
  EXPECT_EQ(w.n_frames(60 * 16000), 6000);
  EXPECT_EQ(w.n_frames(159), 0);
  const auto one = noise(16000);
  EXPECT_EQ(log_mel_spectrogram(one.data(), 16000).sizes(), (std::vector<int64_t>{100, 80}));
  const auto minute = noise(60 * 16000);
  EXPECT_EQ(log_mel_spectrogram(minute.data(), 60 * 16000).sizes(), (std::vector<int64_t>{6000, 80}));
  const auto k = kaldi();
  EXPECT_EQ(k.n_frames(16000), 98);
  EXPECT_EQ(k.n_frames(399), 0);
  EXPECT_EQ(k.n_frames(400), 1);
  EXPECT_EQ(k.n_frames(560), 2);
  EXPECT_EQ(log_mel_spectrogram(one.data(), 16000, k).sizes(), (std::vector<int64_t>{98, 80}));
}

// Shorter than n_fft/2 + 1 samples cannot be reflect-padded: zeros are used; shorter than a hop (Whisper) or
// a frame (Kaldi) gives no frame at all. Nothing crashes and everything is finite.
TEST(LogMel, ZeroLengthAndVeryShortInputs) {
  const auto x = noise(500);
  for (int64_t n : {0, 1, 100, 159, 160, 200, 201, 399, 400, 401, 500}) {
    SCOPED_TRACE(n);
    const auto w = log_mel_spectrogram(x.data(), n);
    EXPECT_EQ(w.sizes(), (std::vector<int64_t>{n / 160, 80}));
    EXPECT_TRUE(torch::isfinite(w).all().item<bool>());
    const auto k = log_mel_spectrogram(x.data(), n, kaldi());
    EXPECT_EQ(k.sizes(), (std::vector<int64_t>{kaldi().n_frames(n), 80}));
    EXPECT_TRUE(torch::isfinite(k).all().item<bool>());
  }
  EXPECT_EQ(log_mel_spectrogram(nullptr, 0).size(0), 0);
  EXPECT_EQ(log_mel_spectrogram(Audio{}).size(0), 0);
  // Digital silence: the 1e-10 floor, (log10(1e-10) + 4) / 4 = -1.5 everywhere.
  const std::vector<float> zeros(1600, 0.0f);
  const auto m = log_mel_spectrogram(zeros.data(), 1600);
  EXPECT_NEAR(m.max().item<double>(), -1.5, 1e-6);
  EXPECT_NEAR(m.min().item<double>(), -1.5, 1e-6);
}

TEST(LogMel, AudioAtAnotherRateIsRefused) {
  Audio a;
  a.samples.assign(1000, 0.0f);
  a.sample_rate = 8000;
  try {
    log_mel_spectrogram(a);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode);
    EXPECT_NE(std::string(e.what()).find("8000"), std::string::npos) << e.what();
  }
}

TEST(LogMel, ConfigJson) {
  const LogMelConfig d;
  EXPECT_EQ(d.kind, LogMelConfig::Kind::Whisper);  // the documented defaults
  EXPECT_EQ(d.sample_rate, 16000);
  EXPECT_EQ(d.n_fft, 400);
  EXPECT_EQ(d.hop_length, 160);
  EXPECT_EQ(d.n_mels, 80);
  EXPECT_EQ(d.to_json(), nlohmann::json::parse(
                             R"({"kind":"whisper","sample_rate":16000,"n_fft":400,"hop_length":160,"n_mels":80})"));
  EXPECT_EQ(kaldi().to_json()["kind"], "kaldi_fbank");
  EXPECT_EQ(LogMelConfig::from_json(kaldi().to_json(), "x").to_json(), kaldi().to_json());
  EXPECT_EQ(LogMelConfig::from_json(nlohmann::json::object(), "x").to_json(), d.to_json());  // absent: defaults
  auto expect_config_error = [](nlohmann::json j, const std::string& key) {
    try {
      LogMelConfig::from_json(j, "speech.safetensors");
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      EXPECT_NE(std::string(e.what()).find("speech.safetensors"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_config_error({{"hop", 160}}, "frontend.hop");
  expect_config_error({{"kind", "mfcc"}}, "frontend.kind");
  expect_config_error({{"n_mels", 0}}, "frontend.n_mels");
  expect_config_error({{"n_mels", "80"}}, "frontend.n_mels");
  expect_config_error({{"hop_length", 500}}, "frontend.hop_length");
  expect_config_error({{"sample_rate", 8000}}, "frontend.sample_rate");
}

// Speed: one hour of audio must take seconds, not minutes (run with --gtest_also_run_disabled_tests).
TEST(LogMel, DISABLED_OneHourTakesAFewSeconds) {
  const auto x = noise(int64_t{16000} * 3600);
  for (const auto& cfg : {LogMelConfig{}, kaldi()}) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto mel = log_mel_spectrogram(x.data(), static_cast<int64_t>(x.size()), cfg);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: 1 h -> [%lld, 80] in %.2f s\n", cfg.to_json()["kind"].get<std::string>().c_str(),
                static_cast<long long>(mel.size(0)), s);
    EXPECT_LT(s, 20.0);
  }
}

}  // namespace
}  // namespace llama_mm::media
