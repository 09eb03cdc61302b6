// Tests for data/spoken_utterances.cpp: utterances use only the vocabulary, the train split never uses the
// held-out accents and the test split does, the test split's draws are those it has always had, espeak-ng output
// is seeded and varies with the voice and its tweaks, and the writer gives WAV files equal to what was spoken with
// a manifest `llama-mm train` reads.
#include "data/data.h"

#include "media/media.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace llama_mm::data {
namespace {

bool held_out(const std::string& voice) {
  const std::string accent = voice.substr(0, voice.find('+'));
  return std::find(held_out_accents().begin(), held_out_accents().end(), accent) != held_out_accents().end();
}

TEST(SpokenUtterances, TextsUseTheVocabularyAndSplitsKeepTheirAccents) {
  const auto& vocab = speech_vocabulary();
  EXPECT_GE(vocab.size(), 200u);
  const std::set<std::string> words(vocab.begin(), vocab.end());
  std::set<std::string> seen_words, texts, accents_train, accents_test;
  for (int64_t i = 0; i < 600; ++i) {
    const auto u = random_utterance(item_seed(3, i), SpeechSplit::Train);
    std::istringstream in(u.text);
    int n = 0;
    for (std::string w; in >> w; ++n) {
      EXPECT_TRUE(words.count(w)) << "'" << w << "' in '" << u.text << "'";
      seen_words.insert(w);
    }
    EXPECT_GE(n, 3) << u.text;
    texts.insert(u.text);
    EXPECT_FALSE(held_out(u.voice)) << u.voice;
    accents_train.insert(u.voice.substr(0, u.voice.find('+')));
    EXPECT_GE(u.speed_wpm, 130);
    EXPECT_LE(u.speed_wpm, 200);
    EXPECT_FALSE(u.tweaks.on);
    const auto varied = random_utterance(item_seed(3, i), SpeechSplit::Train, true);
    EXPECT_EQ(varied.text, u.text);
    EXPECT_EQ(varied.voice, u.voice);
    EXPECT_EQ(varied.pitch, u.pitch);
    ASSERT_TRUE(varied.tweaks.on);
    for (int x : varied.tweaks.stress_length) EXPECT_TRUE(x >= 140 && x <= 300) << x;
    for (int x : varied.tweaks.formant_pct) EXPECT_TRUE(x >= 90 && x <= 110) << x;
    EXPECT_TRUE(varied.tweaks.intonation >= 1 && varied.tweaks.intonation <= 4);
    EXPECT_TRUE(varied.tweaks.word_gap >= 0 && varied.tweaks.word_gap <= 6);
    const auto t = random_utterance(item_seed(4, i), SpeechSplit::Test);
    EXPECT_FALSE(t.tweaks.on);
    accents_test.insert(t.voice.substr(0, t.voice.find('+')));
  }
  EXPECT_GT(texts.size(), 550u);
  EXPECT_GT(seen_words.size(), 150u);
  EXPECT_EQ(accents_train.size(), speech_accents().size() - held_out_accents().size());
  EXPECT_EQ(accents_test.size(), speech_accents().size());
  EXPECT_EQ(random_utterance(77, SpeechSplit::Train).text, random_utterance(77, SpeechSplit::Train).text);
  EXPECT_EQ(random_utterance(77, SpeechSplit::Train).voice, random_utterance(77, SpeechSplit::Train).voice);
  EXPECT_THROW(random_utterance(77, SpeechSplit::Test, true), Error);
}

// The held-out set (seed 2) and examples/speech-*.wav (seed 7) come from the test split: its draws must not move.
TEST(SpokenUtterances, TestSplitDrawsAreTheShippedOnes) {
  const auto a = random_utterance(item_seed(2, 0), SpeechSplit::Test);
  EXPECT_EQ(a.text, "one seven nine zero zero");
  EXPECT_EQ(a.voice, "en-gb-x-rp+m3");
  const auto b = random_utterance(item_seed(2, 1), SpeechSplit::Test);
  EXPECT_EQ(b.text, "fifteen seven windows");
  EXPECT_EQ(b.voice, "en-gb-x-rp+m2");
  const auto c = random_utterance(item_seed(2, 2), SpeechSplit::Test);
  EXPECT_EQ(c.text, "twelve four bags");
  EXPECT_EQ(c.voice, "en-us+f5");
  test::TempDir dir("llama_mm_speak_shipped");
  EXPECT_NEAR(static_cast<double>(speak(a, item_seed(2, 0), dir.path().string()).size()) / media::kSpeechSampleRate,
              2.521, 1e-3);
}

TEST(SpokenUtterances, VoiceTweaksChangeRhythmAndTimbre) {
  test::TempDir dir("llama_mm_speak_tweaks");
  Utterance u;
  u.text = "please clean the light green window";
  u.voice = "en-gb+m2";
  const auto preset = speak(u, 5, dir.path().string());
  u.tweaks.on = true;
  u.tweaks.stress_length.fill(140);
  const auto quick = speak(u, 5, dir.path().string());
  EXPECT_EQ(speak(u, 5, dir.path().string()), quick);
  EXPECT_NE(quick, preset);
  u.tweaks.stress_length.fill(300);
  const auto slow = speak(u, 5, dir.path().string());
  EXPECT_GT(static_cast<double>(slow.size()), 1.2 * static_cast<double>(quick.size()));
  u.tweaks.word_gap = 6;
  EXPECT_GT(speak(u, 5, dir.path().string()).size(), slow.size() + media::kSpeechSampleRate / 4);
  u.tweaks.word_gap = 0;
  u.tweaks.formant_pct = {90, 110, 95};
  const auto formants = speak(u, 5, dir.path().string());
  EXPECT_NE(formants, slow);
  EXPECT_NEAR(static_cast<double>(formants.size()), static_cast<double>(slow.size()), 0.02 * slow.size());
  // The scratch espeak-ng data folder is gone.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 0);
}

TEST(SpokenUtterances, EspeakSpeechIsSeededAndFollowsTheVoice) {
  test::TempDir dir("llama_mm_speak");
  Utterance u;
  u.text = "move the red circle left";
  u.voice = "en-us";
  const auto a = speak(u, 5, dir.path().string()), b = speak(u, 5, dir.path().string());
  EXPECT_EQ(a, b);
  const double seconds = static_cast<double>(a.size()) / media::kSpeechSampleRate;
  EXPECT_GT(seconds, 0.8);
  EXPECT_LT(seconds, 5.0);
  float peak = 0;
  for (float x : a) peak = std::max(peak, std::abs(x));
  EXPECT_GT(peak, 0.05f);
  EXPECT_LE(peak, 1.2f);
  u.voice = "en-gb-scotland+f3";
  EXPECT_NE(speak(u, 5, dir.path().string()), a);
  // Nothing is left behind in the scratch folder.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 0);
  u.voice = "no-such-voice";
  EXPECT_THROW(speak(u, 5, dir.path().string()), Error);
}

TEST(SpokenUtterances, WriterGivesWavFilesAndATrainManifest) {
  test::TempDir dir("llama_mm_speech_set");
  SpeechDatasetOptions o;
  o.out_dir = (dir.path() / "s").string();
  o.n = 3;
  o.seed = 8;
  o.split = SpeechSplit::Test;
  const auto manifest = write_speech_dataset(o);
  std::ifstream in(manifest);
  std::string line;
  int64_t i = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto u = random_utterance(item_seed(8, i), SpeechSplit::Test);
    EXPECT_EQ(j["text"], u.text);
    EXPECT_EQ(j["voice"], u.voice);
    const auto audio = media::load_audio_file((dir.path() / "s" / j["audio"].get<std::string>()).string());
    const auto spoken = speak(u, item_seed(8, i), dir.path().string());
    ASSERT_EQ(audio.samples.size(), spoken.size());
    for (size_t k = 0; k < spoken.size(); k += 97)
      EXPECT_NEAR(audio.samples[k], std::clamp(spoken[k], -1.0f, 1.0f), 1.0 / 32768 + 1e-6);
    EXPECT_NEAR(j["duration"].get<double>(), audio.duration_s(), 1e-3);
    ++i;
  }
  EXPECT_EQ(i, 3);
  // A varied training set records its voices' tweaks.
  o.out_dir = (dir.path() / "t").string();
  o.n = 1;
  o.split = SpeechSplit::Train;
  o.vary_voices = true;
  std::ifstream varied_in(write_speech_dataset(o));
  ASSERT_TRUE(std::getline(varied_in, line));
  const auto tweaks = nlohmann::json::parse(line).at("voice_tweaks");
  EXPECT_EQ(tweaks.at("stress_length").get<std::vector<int>>().size(), 8u);
  EXPECT_EQ(tweaks.at("word_gap").get<int>(),
            random_utterance(item_seed(8, 0), SpeechSplit::Train, true).tweaks.word_gap);
  train::DataConfig data;
  data.format = "jsonl";
  data.path = manifest;
  const auto samples = train::read_dataset(data);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[1].kind, train::MediaKind::Audio);
  EXPECT_GT(samples[1].duration_s, 0.3);
  o.n = 0;
  EXPECT_THROW(write_speech_dataset(o), Error);
  o.n = 1;
  o.split = SpeechSplit::Test;
  o.out_dir = (dir.path() / "u").string();
  EXPECT_THROW(write_speech_dataset(o), Error);
  EXPECT_FALSE(std::filesystem::exists(o.out_dir));
}

}  // namespace
}  // namespace llama_mm::data
