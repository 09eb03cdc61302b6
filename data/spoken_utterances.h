// data/spoken_utterances.h: the synthetic speech data of the demo model (issue 8): short utterances from a
// vocabulary of over 200 words (digits and numbers, colours, shapes, directions, commands, everyday words),
// spoken by `espeak-ng` with many voices (7 English accents x 13 voice variants), speeds and pitches, resampled to
// 16 kHz, with light noise and a random gain, and the text as the transcript:
//
//   "move the red circle left"   "seven three nine two"   "please open the small blue door"
//
// Two accents are held out of the training split (`held_out_accents()`): the test split draws from every accent,
// so word error rate on it includes voices never heard in training. A training split can also redraw its voices'
// rhythm, intonation and formants (`vary_voices`, VoiceTweaks: domain randomisation over the five training
// accents), so that the model learns words rather than five accents; the test split speaks espeak-ng's voices as
// they ship. Everything is a function of the seed.
//
//   auto u = random_utterance(seed, SpeechSplit::Train);  // text, voice, speed, pitch
//   write_speech_dataset({"out/speech", 1000, /*seed=*/1});   // out/speech/audio/*.wav + transcripts.jsonl
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace llama_mm::data {

const std::vector<std::string>& speech_vocabulary();  // every word an utterance can use
const std::vector<std::string>& speech_accents();     // espeak-ng English voices
const std::vector<std::string>& held_out_accents();   // the two accents only the test split uses

enum class SpeechSplit { Train, Test };

// Changes to an accent's espeak-ng voice (varied training voices). When `on`, speak() writes one voice file, the
// accent's lines, the variant's, then these, into a scratch espeak-ng data folder and speaks with it.
struct VoiceTweaks {
  bool on = false;
  std::array<int, 8> stress_length{};             // espeak-ng `stressLength`: syllable lengths by stress, 140-300
  int intonation = 1;                             // espeak-ng `intonation`: 1-4
  std::array<int, 3> formant_pct{100, 100, 100};  // formants 1-3: frequency in percent of the variant's, 90-110
  int word_gap = 0;                               // espeak-ng -g: pause between words in units of 10 ms, 0-6
};

struct Utterance {
  std::string text;
  std::string voice;  // espeak-ng voice: accent, or accent+variant ("en-us+f3")
  int speed_wpm = 160, pitch = 50;
  double snr_db = 30, gain = 1;
  VoiceTweaks tweaks;  // drawn for a training split with vary_voices only
};

// vary_voices draws VoiceTweaks (the training split only: Usage error for the test split) after every other draw,
// so the text and the rest of the voice are the same as without.
Utterance random_utterance(uint64_t seed, SpeechSplit split, bool vary_voices = false);

// Runs espeak-ng (found on PATH) and returns 16 kHz mono samples with the utterance's noise and gain.
// ErrorKind::Runtime when espeak-ng is missing or fails. `scratch_dir` holds its temporary WAV.
std::vector<float> speak(const Utterance& u, uint64_t noise_seed, const std::string& scratch_dir);

struct SpeechDatasetOptions {
  std::string out_dir;
  int64_t n = 0;
  uint64_t seed = 0;
  SpeechSplit split = SpeechSplit::Train;
  bool vary_voices = false;  // see random_utterance
};

// Writes out_dir/audio/NNNNNN.wav (16-bit, 16 kHz) and out_dir/transcripts.jsonl ({"audio", "text", "duration",
// "voice", and "voice_tweaks" when drawn} per line; `llama-mm train` reads it as jsonl), the manifest last and
// atomically. Utterance i is random_utterance(item_seed(seed, i), split, vary_voices). Returns the manifest's path.
std::string write_speech_dataset(const SpeechDatasetOptions& opts,
                                 const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace llama_mm::data
