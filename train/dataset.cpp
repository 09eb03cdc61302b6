// train/dataset.cpp: manifest readers (see dataset.h).
#include "train/dataset.h"

#include "llm/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace llama_mm::train {

namespace fs = std::filesystem;
using nlohmann::json;

const char* media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::Image: return "image";
    case MediaKind::Video: return "video";
    case MediaKind::Audio: return "audio";
    case MediaKind::Text: return "text";
  }
  return "?";
}

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::InputDecode, where + ": " + what);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot read the manifest");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string resolve(const std::string& root, const std::string& p) {
  return fs::path(p).is_relative() ? (fs::path(root) / p).lexically_normal().string() : p;
}

std::string string_field(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(where, std::string("missing \"") + key + "\"");
  if (!it->is_string()) fail(where, std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

// The optional "duration" in seconds, or -1.
double duration_field(const json& j, const std::string& where) {
  const auto it = j.find("duration");
  if (it == j.end() || it->is_null()) return -1;
  if (!it->is_number() || it->get<double>() < 0) fail(where, "\"duration\" must be a number of seconds >= 0");
  return it->get<double>();
}

// Removes the LLaVA-style media markers and the whitespace they leave at the edges.
std::string strip_markers(std::string s) {
  for (const char* m : {"<image>", "<video>", "<audio>", "<speech>"})
    for (size_t at; (at = s.find(m)) != std::string::npos;) s.erase(at, std::string(m).size());
  const auto b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<Turn> conversation(const json& list, const std::string& where) {
  if (!list.is_array() || list.empty()) fail(where, "\"conversations\" must be a non-empty list");
  std::vector<Turn> turns;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + ": conversations[" + std::to_string(i) + "]";
    if (!list[i].is_object()) fail(at, "expected an object");
    const std::string from = list[i].contains("from") ? string_field(list[i], "from", at) : string_field(list[i], "role", at);
    const std::string value = list[i].contains("value") ? string_field(list[i], "value", at) : string_field(list[i], "content", at);
    std::string role;
    if (from == "human" || from == "user") role = "user";
    else if (from == "gpt" || from == "assistant") role = "assistant";
    else if (from == "system") role = "system";
    else fail(at, "unknown speaker '" + from + "' (expected human, gpt or system)");
    turns.push_back({role, strip_markers(value)});
  }
  if (std::none_of(turns.begin(), turns.end(), [](const Turn& t) { return t.role == "assistant"; }))
    fail(where, "the conversation has no assistant (gpt) turn to learn");
  if (std::none_of(turns.begin(), turns.end(), [](const Turn& t) { return t.role == "user"; }))
    fail(where, "the conversation has no user (human) turn for the media");
  return turns;
}

// One manifest object (jsonl and sharegpt).
Sample sample_of(const json& j, const std::string& root, const std::string& where, bool need_conversations) {
  if (!j.is_object()) fail(where, "expected a JSON object");
  Sample s;
  s.origin = where;
  int n_media = 0;
  for (auto [key, kind] : {std::pair{"image", MediaKind::Image}, {"video", MediaKind::Video}, {"audio", MediaKind::Audio}})
    if (j.contains(key)) {
      s.kind = kind;
      s.media = resolve(root, string_field(j, key, where));
      ++n_media;
    }
  if (n_media > 1) fail(where, "expected one of \"image\", \"video\" and \"audio\" (or none: a text-only sample)");
  if (n_media == 0) s.kind = MediaKind::Text;
  if (j.contains("language")) s.language = string_field(j, "language", where);
  s.duration_s = duration_field(j, where);
  if (j.contains("conversations")) {
    s.turns = conversation(j["conversations"], where);
  } else if (need_conversations) {
    fail(where, "missing \"conversations\"");
  } else {
    const std::string prompt = j.contains("prompt") ? string_field(j, "prompt", where) : "";
    s.turns = {{"user", prompt}, {"assistant", string_field(j, "text", where)}};
  }
  return s;
}

// Calls f(object, "file:line") for every non-blank line.
template <typename F>
void for_each_line(const std::string& path, F f) {
  std::istringstream in(read_text(path));
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail(where, std::string("not valid JSON: ") + e.what());
    }
    f(j, where);
  }
}

std::vector<Sample> read_jsonl(const std::string& path, const std::string& root, bool sharegpt) {
  std::vector<Sample> out;
  for_each_line(path, [&](const json& j, const std::string& where) { out.push_back(sample_of(j, root, where, sharegpt)); });
  return out;
}

std::vector<Sample> read_sharegpt(const std::string& path, const std::string& root) {
  const std::string text = read_text(path);
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '[') return read_jsonl(path, root, true);
  json all;
  try {
    all = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
  std::vector<Sample> out;
  for (size_t i = 0; i < all.size(); ++i) out.push_back(sample_of(all[i], root, path + ": [" + std::to_string(i) + "]", true));
  return out;
}

std::vector<Sample> read_coco(const std::string& path, const std::string& root) {
  json j;
  try {
    j = json::parse(read_text(path));
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("images") || !j.contains("annotations") || !j["images"].is_array() ||
      !j["annotations"].is_array())
    fail(path, "expected COCO captions: {\"images\": [...], \"annotations\": [...]}");
  std::map<int64_t, std::string> files;
  for (size_t i = 0; i < j["images"].size(); ++i) {
    const auto& im = j["images"][i];
    const std::string where = path + ": images[" + std::to_string(i) + "]";
    if (!im.is_object() || !im.contains("id") || !im["id"].is_number_integer()) fail(where, "missing integer \"id\"");
    files[im["id"].get<int64_t>()] = string_field(im, "file_name", where);
  }
  std::vector<Sample> out;
  for (size_t i = 0; i < j["annotations"].size(); ++i) {
    const auto& a = j["annotations"][i];
    const std::string where = path + ": annotations[" + std::to_string(i) + "]";
    if (!a.is_object() || !a.contains("image_id") || !a["image_id"].is_number_integer())
      fail(where, "missing integer \"image_id\"");
    const auto it = files.find(a["image_id"].get<int64_t>());
    if (it == files.end()) fail(where, "image_id " + std::to_string(a["image_id"].get<int64_t>()) + " is not in \"images\"");
    Sample s;
    s.kind = MediaKind::Image;
    s.media = resolve(root, it->second);
    s.turns = {{"user", ""}, {"assistant", string_field(a, "caption", where)}};
    s.origin = where;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<Sample> read_librispeech(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, "a LibriSpeech dataset is a directory");
  std::vector<std::string> transcripts;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() > 10 && name.compare(name.size() - 10, 10, ".trans.txt") == 0)
      transcripts.push_back(e.path().string());
  }
  std::sort(transcripts.begin(), transcripts.end());  // directory order is not stable
  if (transcripts.empty()) fail(dir, "no *.trans.txt transcript files");
  std::vector<Sample> out;
  for (const auto& t : transcripts) {
    std::istringstream in(read_text(t));
    int64_t n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const auto sp = line.find(' ');
      const std::string where = t + ":" + std::to_string(n);
      if (sp == std::string::npos || sp == 0) fail(where, "expected 'UTTERANCE-ID TRANSCRIPT'");
      Sample s;
      s.kind = MediaKind::Audio;
      s.media = (fs::path(t).parent_path() / (line.substr(0, sp) + ".flac")).string();
      s.turns = {{"user", ""}, {"assistant", line.substr(sp + 1)}};
      s.origin = where;
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<Sample> read_nemo(const std::string& path, const std::string& root) {
  std::vector<Sample> out;
  for_each_line(path, [&](const json& j, const std::string& where) {
    if (!j.is_object()) fail(where, "expected a JSON object");
    Sample s;
    s.kind = MediaKind::Audio;
    s.media = resolve(root, string_field(j, "audio_filepath", where));
    s.turns = {{"user", ""}, {"assistant", string_field(j, "text", where)}};
    if (j.contains("lang")) s.language = string_field(j, "lang", where);
    s.duration_s = duration_field(j, where);
    s.origin = where;
    out.push_back(std::move(s));
  });
  return out;
}

}  // namespace

std::vector<Sample> read_dataset(const DataConfig& data) {
  const std::string root = !data.root.empty() ? data.root
                           : fs::is_directory(data.path) ? data.path
                                                         : fs::path(data.path).parent_path().string();
  std::vector<Sample> out;
  if (data.format == "jsonl") out = read_jsonl(data.path, root, false);
  else if (data.format == "sharegpt") out = read_sharegpt(data.path, root);
  else if (data.format == "coco") out = read_coco(data.path, root);
  else if (data.format == "librispeech") out = read_librispeech(data.path);
  else if (data.format == "nemo") out = read_nemo(data.path, root);
  else throw Error(ErrorKind::Config, "data.format: unknown format '" + data.format + "'");
  if (out.empty()) fail(data.path, "the dataset has no samples");
  return out;
}

}  // namespace llama_mm::train
