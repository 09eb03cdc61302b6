// Tests for cli/transcribe_command.cpp (and init-model --arch speech-adapter, bench transcribe): a random tiny
// speech adapter on a random tiny Llama transcribes every committed audio format end to end and writes every
// output format; long audio is split into timed segments; bad files fail one by one (exit 4); an adapter made
// for another base model is refused (exit 3).
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "media/media.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace llama_mm {
namespace {

using test::fixture;
using test::json_lines;
using test::run_cli;
namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

std::string q(const std::string& s) { return "'" + s + "'"; }

// A 16 kHz mono s16 WAV written by hand.
void write_wav(const fs::path& path, const std::vector<float>& samples) {
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  const uint32_t data = static_cast<uint32_t>(samples.size() * 2);
  f << "RIFF";
  u32(36 + data);
  f << "WAVEfmt ";
  u32(16), u16(1), u16(1), u32(16000), u32(32000), u16(2), u16(16);
  f << "data";
  u32(data);
  for (float s : samples) {
    const auto v = static_cast<int16_t>(std::lround(std::clamp(s, -1.0f, 1.0f) * 32767));
    f.write(reinterpret_cast<const char*>(&v), 2);
  }
}

class TranscribeCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("transcribe_test");
    auto r = run_cli("init-model --arch llama --preset tiny --seed 3 -o " + q(base()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_cli("init-model --arch speech-adapter --preset tiny --seed 4 --base " + q(base()) + " -o " + q(adapter()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string base() { return (*dir_ / "base").string(); }
  static std::string adapter() { return (*dir_ / "speech.safetensors").string(); }
  static std::string cmd() { return "transcribe -m " + q(base()) + " --adapter " + q(adapter()) + " -n 4 "; }
  static test::TempDir* dir_;
};
test::TempDir* TranscribeCommand::dir_ = nullptr;

// Every committed audio/video fixture (tests/fixtures/audio, made by scripts/fixtures/gen_audio_fixtures.sh).
std::vector<std::string> audio_fixtures() {
  const std::set<std::string> exts = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".mp4", ".mkv"};
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(fixture("audio")))
    if (exts.count(e.path().extension().string())) v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(TranscribeCommand, InitModelWritesAnAdapterForTheBase) {
  auto f = read_adapter_file(adapter(), "speech");
  EXPECT_EQ(f.header.base.hidden_size, 64);
  EXPECT_EQ(f.header.base.tokenizer_sha256, tokenizer_fingerprint(Tokenizer::from_file(base())));
  EXPECT_TRUE(f.tensors->contains("encoder.input_proj.weight"));
  EXPECT_TRUE(f.tensors->contains("adapter.boundary"));
  EXPECT_EQ(f.header.config["tokens"]["start"], 256 + 250);
}

TEST_F(TranscribeCommand, TranscribesEveryFormatEndToEnd) {
  const auto files = audio_fixtures();
  std::set<std::string> exts;
  for (const auto& f : files) exts.insert(fs::path(f).extension().string());
  for (auto e : {".wav", ".flac", ".mp3", ".m4a", ".webm", ".mp4"}) EXPECT_TRUE(exts.count(e)) << "no " << e << " fixture";
  EXPECT_TRUE(exts.count(".ogg") || exts.count(".opus")) << "no Ogg/Opus fixture";
  std::string args;
  for (const auto& f : files) args += " " + q(f);
  auto r = run_cli(cmd() + "--json" + args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), files.size()) << r.out;
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(lines[i]["file"], files[i]);
    EXPECT_FALSE(lines[i].contains("error")) << lines[i].dump();
    EXPECT_GT(lines[i]["duration"].get<double>(), 0.1) << files[i];
    ASSERT_EQ(lines[i]["segments"].size(), 1u) << files[i];
    EXPECT_EQ(lines[i]["segments"][0]["tokens"].size(), 4u) << files[i];  // -n 4, a random model rarely stops
    EXPECT_EQ(lines[i]["task"], "transcribe");
    EXPECT_EQ(lines[i]["language"], "English");
  }
}

TEST_F(TranscribeCommand, WritesEveryOutputFormat) {
  test::TempDir tmp;
  const auto wav = audio_fixtures().front();
  const auto out = (tmp / "out").string();
  auto r = run_cli(cmd() + "--translate-to de -o txt -o json -o verbose_json -o srt -o vtt --output-file " + q(out) +
                   " " + q(wav));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto verbose = nlohmann::json::parse(read(out + ".verbose.json"));
  EXPECT_EQ(verbose["task"], "translate");
  EXPECT_EQ(verbose["language"], "German");
  const std::string text = verbose["text"];
  EXPECT_EQ(read(out + ".txt"), text + "\n");
  EXPECT_EQ(nlohmann::json::parse(read(out + ".json")), nlohmann::json({{"text", text}}));
  const auto& seg = verbose["segments"][0];
  const std::string srt = read(out + ".srt"), vtt = read(out + ".vtt");
  EXPECT_EQ(srt, "1\n00:00:00,000 --> " + media::format_timestamp(seg["end"].get<double>(), ',') + "\n" +
                     seg["text"].get<std::string>() + "\n\n");
  EXPECT_EQ(vtt, "WEBVTT\n\n00:00:00.000 --> " + media::format_timestamp(seg["end"].get<double>(), '.') + "\n" +
                     seg["text"].get<std::string>() + "\n\n");
  // The text streamed to stdout is the transcript.
  EXPECT_NE(r.out.find(text), std::string::npos);
}

TEST_F(TranscribeCommand, LongAudioIsSplitIntoTimedSegments) {
  test::TempDir tmp;
  // 130 s of tone with silent gaps at 50-52 s and 100-102 s: three segments of at most 60 s.
  std::vector<float> s(130 * 16000);
  for (size_t i = 0; i < s.size(); ++i) {
    const double t = i / 16000.0;
    const bool quiet = (t >= 50 && t < 52) || (t >= 100 && t < 102);
    s[i] = quiet ? 0.0f : 0.3f * static_cast<float>(std::sin(2 * M_PI * 440 * t));
  }
  write_wav(tmp / "long.wav", s);
  auto r = run_cli(cmd() + "-o srt --json " + q((tmp / "long.wav").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json_lines(r.out).at(0);
  const auto& segs = j["segments"];
  ASSERT_EQ(segs.size(), 3u) << j.dump();
  EXPECT_DOUBLE_EQ(segs[0]["start"].get<double>(), 0.0);
  EXPECT_NEAR(segs[2]["end"].get<double>(), 130.0, 1e-6);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LE(segs[i]["end"].get<double>() - segs[i]["start"].get<double>(), 60.0 + 1e-9);
    if (i > 0) EXPECT_EQ(segs[i]["start"], segs[i - 1]["end"]);
  }
  EXPECT_GE(segs[0]["end"].get<double>(), 50.0);  // the split falls in the silence
  EXPECT_LE(segs[0]["end"].get<double>(), 52.0);
  const auto srt = read((tmp / "long.wav.srt").string());
  EXPECT_EQ(srt.rfind("1\n00:00:00,000 --> 00:00:5", 0), 0u) << srt;
  EXPECT_NE(srt.find("\n3\n00:01:4"), std::string::npos) << srt;
}

TEST_F(TranscribeCommand, BadFilesFailOneByOneWithExit4) {
  test::TempDir tmp;
  std::ofstream(tmp / "empty.wav").close();
  std::ofstream(tmp / "notes.wav") << "this is not audio\n";
  const auto good = audio_fixtures().front();
  const auto bad1 = (tmp / "empty.wav").string(), bad2 = (tmp / "notes.wav").string();
  auto r = run_cli(cmd() + "--json " + q(bad1) + " " + q(good) + " " + q(bad2) + " " + q((tmp / "missing.mp3").string()));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_NE(lines[0]["error"].get<std::string>().find("empty.wav"), std::string::npos);
  EXPECT_FALSE(lines[1].contains("error"));
  EXPECT_NE(lines[2]["error"].get<std::string>().find("notes.wav"), std::string::npos);
  EXPECT_NE(lines[3]["error"].get<std::string>().find("missing.mp3"), std::string::npos);
}

TEST_F(TranscribeCommand, AdapterForAnotherBaseIsExit3) {
  test::TempDir tmp;
  const auto other = tmp / "other";
  fs::copy(base(), other);
  std::ofstream(other / "tokenizer.json") << make_byte_level_tokenizer_json(10);
  auto r = run_cli("transcribe -m " + q(other.string()) + " --adapter " + q(adapter()) + " " + q(audio_fixtures().front()));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("tokenizer_sha256"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("speech.safetensors"), std::string::npos) << r.err;
  // A base model file given as --adapter.
  r = run_cli("transcribe -m " + q(base()) + " --adapter " + q(base() + "/model.safetensors") + " " +
              q(audio_fixtures().front()));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("not a llama-mm adapter"), std::string::npos) << r.err;
  // Usage errors.
  EXPECT_EQ(run_cli(cmd() + "--language xx " + q(audio_fixtures().front())).exit_code, 2);
  EXPECT_EQ(run_cli(cmd() + "-o docx " + q(audio_fixtures().front())).exit_code, 2);
}

TEST(BenchTranscribe, TinyPresetReportsFramesAndRates) {
  auto r = run_cli("bench transcribe --preset tiny --dtype f32 --seconds 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mel_frames"], 200);
  EXPECT_EQ(j["encoder_frames"], 50);
  EXPECT_EQ(j["adapter_vectors"], 25);
  EXPECT_GT(j["gflops"].get<double>(), 0);
  EXPECT_GT(j["matmul_gflops"].get<double>(), 0);
}

}  // namespace
}  // namespace llama_mm
