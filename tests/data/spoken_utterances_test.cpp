// Tests for data/spoken_utterances.cpp: utterances use only the vocabulary, the train split never uses the
// held-out accents and the test split does, espeak-ng output is seeded and varies with the voice, and the writer
// gives WAV files equal to what was spoken with a manifest `llama-mm train` reads.
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
    const auto t = random_utterance(item_seed(4, i), SpeechSplit::Test);
    accents_test.insert(t.voice.substr(0, t.voice.find('+')));
  }
  EXPECT_GT(texts.size(), 550u);
  EXPECT_GT(seen_words.size(), 150u);
  EXPECT_EQ(accents_train.size(), speech_accents().size() - held_out_accents().size());
  EXPECT_EQ(accents_test.size(), speech_accents().size());
  EXPECT_EQ(random_utterance(77, SpeechSplit::Train).text, random_utterance(77, SpeechSplit::Train).text);
  EXPECT_EQ(random_utterance(77, SpeechSplit::Train).voice, random_utterance(77, SpeechSplit::Train).voice);
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
  train::DataConfig data;
  data.format = "jsonl";
  data.path = manifest;
  const auto samples = train::read_dataset(data);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[1].kind, train::MediaKind::Audio);
  EXPECT_GT(samples[1].duration_s, 0.3);
  o.n = 0;
  EXPECT_THROW(write_speech_dataset(o), Error);
}

}  // namespace
}  // namespace llama_mm::data
