// data/spoken_utterances.cpp: see spoken_utterances.h.
#include "data/spoken_utterances.h"

#include "data/dataset_writer.h"
#include "data/shape_scenes.h"
#include "llm/atomic_file.h"
#include "llm/error.h"
#include "media/audio_decode.h"
#include "media/audio_encode.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>

namespace llama_mm::data {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDigits = {"zero", "one", "two",   "three", "four",
                                          "five", "six", "seven", "eight", "nine"};
const std::vector<std::string> kNumbers = {"ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                           "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
                                           "twenty",  "thirty",  "forty",     "fifty",    "hundred"};
const std::vector<std::string> kColors = {"red",   "green", "blue", "yellow", "purple", "orange",
                                          "black", "white", "gray", "pink",   "brown"};
const std::vector<std::string> kShapes = {"circle", "square", "triangle", "star", "hexagon", "box", "ball", "line"};
const std::vector<std::string> kSizes = {"small", "big",   "large", "tiny", "long",   "short", "old",
                                         "new",   "heavy", "light", "dark", "bright", "round", "flat"};
const std::vector<std::string> kDirections = {"left", "right", "up", "down", "forward", "back", "around"};
const std::vector<std::string> kMoveVerbs = {"move", "turn", "push", "pull", "slide", "roll", "drag"};
const std::vector<std::string> kActions = {
    "open", "close", "show", "hide", "find", "take", "bring", "stop", "start", "check", "clean", "paint", "count",
    "lift", "drop",  "hold", "wash", "fix",  "move", "carry", "fold", "fill",  "empty", "read",  "call",  "play"};
const std::vector<std::string> kObjects = {
    "door", "window", "light",  "table",  "chair",  "book", "cup",   "box",   "car",    "phone",
    "lamp", "key",    "bag",    "bottle", "screen", "wall", "floor", "plate", "map",    "camera",
    "pen",  "paper",  "clock",  "shoe",   "coat",   "bed",  "desk",  "radio", "fridge", "oven",
    "sink", "mirror", "basket", "ladder", "bridge", "boat", "train", "bike",  "tree",   "flower"};
const std::vector<std::string> kPlaces = {"kitchen", "garden",  "office", "room",    "house", "street", "park",
                                          "school",  "station", "garage", "library", "shop",  "hall",   "yard"};
const std::vector<std::string> kTimes = {"now", "today", "tomorrow", "later", "again", "soon", "tonight"};
const std::vector<std::string> kRelations = {"near", "under", "next to", "on", "in", "behind"};
const std::vector<std::string> kFunction = {"the",  "a",      "an",   "and",  "to",   "in",    "on",
                                            "of",   "please", "is",   "it",   "near", "under", "then",
                                            "with", "my",     "this", "that", "at",   "next"};

const std::string& pick(std::mt19937_64& rng, const std::vector<std::string>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}

std::string plural(const std::string& noun) {
  const std::string tail = noun.substr(noun.size() - 1);
  return noun + (tail == "x" || tail == "s" ? "es" : "s");
}

// A sentence from one of a few command and description templates.
std::string random_sentence(std::mt19937_64& rng) {
  const int kind = std::uniform_int_distribution<int>(0, 7)(rng);
  std::string s;
  switch (kind) {
    case 0:
      s = pick(rng, kMoveVerbs) + " the " + pick(rng, kColors) + " " + pick(rng, kShapes) + " " +
          pick(rng, kDirections);
      break;
    case 1: {
      const int n = std::uniform_int_distribution<int>(3, 6)(rng);
      for (int i = 0; i < n; ++i) s += (i ? " " : "") + pick(rng, kDigits);
      break;
    }
    case 2:
      s = "please " + pick(rng, kActions) + " the " + pick(rng, kSizes) + " " + pick(rng, kColors) + " " +
          pick(rng, kObjects);
      break;
    case 3: {
      const auto& count = kDigits[std::uniform_int_distribution<size_t>(2, 9)(rng)];
      const auto& color = pick(rng, kColors);
      s = count + " " + pick(rng, kColors) + " " + plural(pick(rng, kShapes)) + " and " +
          (std::strchr("aeiou", color[0]) ? "an " : "a ") + color + " " + pick(rng, kShapes);
      break;
    }
    case 4:
      s = pick(rng, kActions) + " the " + pick(rng, kObjects) + " in the " + pick(rng, kPlaces) + " " +
          pick(rng, kTimes);
      break;
    case 5: s = "the " + pick(rng, kObjects) + " is " + pick(rng, kRelations) + " the " + pick(rng, kObjects); break;
    case 6: s = pick(rng, kNumbers) + " " + pick(rng, kDigits) + " " + plural(pick(rng, kObjects)); break;
    default:
      s = pick(rng, kMoveVerbs) + " " + pick(rng, kDirections) + " then " + pick(rng, kActions) + " it " +
          pick(rng, kTimes);
      break;
  }
  return s;
}

const std::vector<std::string> kVariants = {"",    "+m1", "+m2", "+m3", "+m4", "+m5",   "+m6",
                                            "+f1", "+f2", "+f3", "+f4", "+f5", "+klatt"};

// fork + exec, no shell: the arguments reach espeak-ng as they are. Returns the exit status (127: not found).
int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// espeak-ng's data folder, as `espeak-ng --version` reports it ("... Data at: PATH").
const std::string& espeak_data_dir() {
  static const std::string dir = [] {
    std::string out;
    if (FILE* f = ::popen("espeak-ng --version 2>/dev/null", "r")) {
      char buf[512];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
      ::pclose(f);
    }
    const auto at = out.find("Data at:");
    if (at == std::string::npos)
      throw Error(ErrorKind::Runtime,
                  "espeak-ng --version did not say where its data is (Debian: apt install espeak-ng)");
    std::string d = out.substr(at + 8);
    d.erase(0, d.find_first_not_of(" \t"));
    d.erase(d.find_last_not_of(" \t\r\n") + 1);
    return d;
  }();
  return dir;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The text of the voice file under espeak-ng's lang/ that defines `accent` (its first `language` line names it).
std::string accent_voice_text(const std::string& accent) {
  static const std::map<std::string, std::string> files = [] {
    std::map<std::string, std::string> m;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(fs::path(espeak_data_dir()) / "lang", ec), end; !ec && it != end;
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      std::ifstream in(it->path());
      std::stringstream text;
      text << in.rdbuf();
      std::istringstream lines(text.str());
      for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string key, name;
        if (words >> key >> name && key == "language") {
          m.emplace(lower(name), text.str());
          break;
        }
      }
    }
    return m;
  }();
  const auto it = files.find(lower(accent));
  if (it == files.end())
    throw Error(ErrorKind::Runtime, "espeak-ng has no voice file for '" + accent + "' under " + espeak_data_dir());
  return it->second;
}

// The lines of a voice variant's file (espeak-ng-data/voices/!v/NAME) that set the voice, keyed by their first
// word and, for `formant`, its number ("formant 2").
std::vector<std::pair<std::string, std::string>> variant_lines(const std::string& variant) {
  std::vector<std::pair<std::string, std::string>> out;
  if (variant.empty()) return out;
  std::ifstream in(fs::path(espeak_data_dir()) / "voices" / "!v" / variant);
  if (!in) throw Error(ErrorKind::Runtime, "espeak-ng has no voice variant '" + variant + "'");
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key, n;
    if (!(words >> key) || key == "language" || key == "name" || key.rfind("//", 0) == 0) continue;
    if (key == "formant" && words >> n) key += " " + n;
    out.emplace_back(key, line);
  }
  return out;
}

// A scratch espeak-ng data folder: links to the installed one's entries, plus voices/llama-mm/v, one voice file
// with the accent's lines, then the variant's, then the tweaks (later lines override earlier ones; a formant
// tweak scales the variant's frequency for that formant). Removed on destruction.
class TweakedVoice {
 public:
  TweakedVoice(const std::string& scratch_dir, const std::string& accent, const std::string& variant,
               const VoiceTweaks& t, uint64_t seed)
      : root_(fs::path(scratch_dir) / (".espeak-data-" + std::to_string(::getpid()) + "-" + std::to_string(seed))) {
    const fs::path data(espeak_data_dir()), mine = root_ / "espeak-ng-data";
    std::ostringstream v;
    v << accent_voice_text(accent) << '\n';
    const auto lines = variant_lines(variant);
    for (const auto& [key, line] : lines) v << line << '\n';
    v << "stressLength";
    for (int x : t.stress_length) v << ' ' << x;
    v << "\nintonation " << t.intonation << '\n';
    for (int i = 0; i < 3; ++i) {
      const std::string key = "formant " + std::to_string(i + 1);
      int freq = 100, height = 100, width = 100;
      for (const auto& [k, line] : lines)
        if (k == key) std::istringstream(line.substr(line.find(key) + key.size())) >> freq >> height >> width;
      v << key << ' ' << freq * t.formant_pct[i] / 100 << ' ' << height << ' ' << width << '\n';
    }
    try {
      fs::remove_all(root_);
      fs::create_directories(mine / "voices" / "llama-mm");
      for (const auto& e : fs::directory_iterator(data))
        if (e.path().filename() != "voices") fs::create_symlink(e.path(), mine / e.path().filename());
      write_file_atomic((mine / "voices" / "llama-mm" / "v").string(), v.str());
    } catch (...) {
      remove();
      throw;
    }
  }
  ~TweakedVoice() { remove(); }
  TweakedVoice(const TweakedVoice&) = delete;
  TweakedVoice& operator=(const TweakedVoice&) = delete;
  std::string path() const { return root_.string(); }

 private:
  void remove() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path root_;
};

}  // namespace

const std::vector<std::string>& speech_vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> all;
    for (const auto* list : {&kDigits, &kNumbers, &kColors, &kShapes, &kSizes, &kDirections, &kMoveVerbs, &kActions,
                             &kObjects, &kPlaces, &kTimes, &kRelations, &kFunction})
      for (const auto& phrase : *list) {
        std::istringstream words(phrase);
        for (std::string w; words >> w;) all.push_back(w);
      }
    for (const auto& s : kShapes) all.push_back(plural(s));
    for (const auto& o : kObjects) all.push_back(plural(o));
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
  }();
  return words;
}

const std::vector<std::string>& speech_accents() {
  static const std::vector<std::string> v = {"en-us",          "en-gb",          "en-gb-scotland", "en-gb-x-rp",
                                             "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"};
  return v;
}

const std::vector<std::string>& held_out_accents() {
  static const std::vector<std::string> v = {"en-gb-x-gbcwmd", "en-029"};
  return v;
}

Utterance random_utterance(uint64_t seed, SpeechSplit split, bool vary_voices) {
  if (vary_voices && split != SpeechSplit::Train)
    throw Error(ErrorKind::Usage, "data speech: varied voices are for the training split only");
  std::mt19937_64 rng(seed);
  Utterance u;
  u.text = random_sentence(rng);
  std::vector<std::string> accents;
  for (const auto& a : speech_accents())
    if (split == SpeechSplit::Test ||
        std::find(held_out_accents().begin(), held_out_accents().end(), a) == held_out_accents().end())
      accents.push_back(a);
  u.voice = pick(rng, accents) + pick(rng, kVariants);
  u.speed_wpm = std::uniform_int_distribution<int>(130, 200)(rng);
  u.pitch = std::uniform_int_distribution<int>(25, 75)(rng);
  u.snr_db = std::uniform_real_distribution<double>(20, 40)(rng);
  u.gain = std::uniform_real_distribution<double>(0.4, 1.0)(rng);
  if (vary_voices) {  // drawn after everything else: the other draws stay as they are without
    auto& t = u.tweaks;
    t.on = true;
    std::uniform_int_distribution<int> stress(140, 300), formant(90, 110);
    for (auto& x : t.stress_length) x = stress(rng);
    t.intonation = std::uniform_int_distribution<int>(1, 4)(rng);
    for (auto& x : t.formant_pct) x = formant(rng);
    t.word_gap = std::uniform_int_distribution<int>(0, 6)(rng);
  }
  return u;
}

std::vector<float> speak(const Utterance& u, uint64_t noise_seed, const std::string& scratch_dir) {
  // espeak-ng silently falls back to its default voice for a name it does not know: check the name here.
  const std::string accent = u.voice.substr(0, u.voice.find('+'));
  const std::string variant = u.voice.substr(accent.size());
  if (std::find(speech_accents().begin(), speech_accents().end(), accent) == speech_accents().end() ||
      std::find(kVariants.begin(), kVariants.end(), variant) == kVariants.end())
    throw Error(ErrorKind::Usage, "data speech: unknown voice '" + u.voice + "'");
  const std::string wav =
      (fs::path(scratch_dir) / (".espeak-" + std::to_string(::getpid()) + "-" + std::to_string(noise_seed) + ".wav"))
          .string();
  std::vector<std::string> args = {"espeak-ng", "-v", u.voice, "-s", std::to_string(u.speed_wpm), "-p",
                                   std::to_string(u.pitch), "-w", wav};
  std::unique_ptr<TweakedVoice> tweaked;
  if (u.tweaks.on) {
    tweaked = std::make_unique<TweakedVoice>(scratch_dir, accent, variant.empty() ? "" : variant.substr(1), u.tweaks,
                                             noise_seed);
    args[2] = "llama-mm/v";
    args.insert(args.begin() + 1, "--path=" + tweaked->path());
    args.insert(args.end(), {"-g", std::to_string(u.tweaks.word_gap)});
  }
  args.push_back(u.text);
  const int rc = run_program(args);
  tweaked.reset();
  if (rc != 0) {
    std::error_code ec;
    fs::remove(wav, ec);
    throw Error(ErrorKind::Runtime, rc == 127 ? "espeak-ng was not found on PATH (Debian: apt install espeak-ng)"
                                              : "espeak-ng failed (exit status " + std::to_string(rc) +
                                                    ") for voice '" + u.voice + "' and text '" + u.text + "'");
  }
  media::Audio audio;
  try {
    audio = media::load_audio_file(wav);
  } catch (...) {
    std::error_code ec;
    fs::remove(wav, ec);
    throw;
  }
  std::error_code ec;
  fs::remove(wav, ec);
  double power = 0;
  for (float x : audio.samples) power += double(x) * x;
  power /= std::max<size_t>(1, audio.samples.size());
  const double sigma = std::sqrt(power / std::pow(10.0, u.snr_db / 10));
  std::mt19937_64 rng(noise_seed);
  std::normal_distribution<double> noise(0, sigma);
  for (auto& x : audio.samples) x = static_cast<float>(u.gain * (x + noise(rng)));
  return audio.samples;
}

std::string write_speech_dataset(const SpeechDatasetOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  if (o.vary_voices && o.split != SpeechSplit::Train)
    throw Error(ErrorKind::Usage, "data speech: varied voices are for the training split only");
  return detail::write_dataset(
      "data speech", o.out_dir, o.n, "audio", "transcripts.jsonl",
      [&](int64_t i, const fs::path& audio_dir) {
        const uint64_t s = item_seed(o.seed, i);
        const auto u = random_utterance(s, o.split, o.vary_voices);
        const auto samples = speak(u, s, audio_dir.string());
        const std::string name = detail::item_file_name(i, "wav");
        write_file_atomic((audio_dir / name).string(), media::encode_wav_pcm16(samples, media::kSpeechSampleRate));
        const double seconds = static_cast<double>(samples.size()) / media::kSpeechSampleRate;
        nlohmann::json row{{"audio", "audio/" + name},
                           {"text", u.text},
                           {"duration", std::round(seconds * 1000) / 1000},
                           {"voice", u.voice}};
        if (u.tweaks.on)
          row["voice_tweaks"] = {{"stress_length", u.tweaks.stress_length},
                                 {"intonation", u.tweaks.intonation},
                                 {"formant_pct", u.tweaks.formant_pct},
                                 {"word_gap", u.tweaks.word_gap}};
        return row;
      },
      progress);
}

}  // namespace llama_mm::data
