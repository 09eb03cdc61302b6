// media/transcript_format.cpp: text, JSON, SRT and WebVTT transcripts.
#include "media/transcript_format.h"

#include "llm/error.h"

#include <cmath>
#include <cstdio>

namespace llama_mm::media {

namespace {

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::string Transcript::text() const {
  std::string out;
  for (const auto& s : segments) {
    const auto t = trimmed(s.text);
    if (t.empty()) continue;
    out += (out.empty() ? "" : " ") + t;
  }
  return out;
}

TranscriptFormat parse_transcript_format(const std::string& name) {
  if (name == "txt" || name == "text") return TranscriptFormat::Text;
  if (name == "json") return TranscriptFormat::Json;
  if (name == "verbose_json") return TranscriptFormat::VerboseJson;
  if (name == "srt") return TranscriptFormat::Srt;
  if (name == "vtt") return TranscriptFormat::Vtt;
  throw Error(ErrorKind::Usage, "unknown output format '" + name + "' (expected txt, json, verbose_json, srt or vtt)");
}

std::string transcript_format_extension(TranscriptFormat f) {
  switch (f) {
    case TranscriptFormat::Text: return "txt";
    case TranscriptFormat::Json: return "json";
    case TranscriptFormat::VerboseJson: return "verbose.json";
    case TranscriptFormat::Srt: return "srt";
    case TranscriptFormat::Vtt: return "vtt";
  }
  return "txt";
}

std::string format_timestamp(double seconds, char ms_separator) {
  const int64_t ms = std::llround(std::max(0.0, seconds) * 1000.0);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", static_cast<long long>(ms / 3600000),
                static_cast<long long>(ms / 60000 % 60), static_cast<long long>(ms / 1000 % 60), ms_separator,
                static_cast<long long>(ms % 1000));
  return buf;
}

nlohmann::json transcript_json(const Transcript& t, bool verbose) {
  if (!verbose) return {{"text", t.text()}};
  auto segments = nlohmann::json::array();
  for (size_t i = 0; i < t.segments.size(); ++i) {
    const auto& s = t.segments[i];
    segments.push_back({{"id", i},
                        {"seek", std::llround(s.start * 100.0)},  // in 10 ms frames, as OpenAI's seek
                        {"start", s.start},
                        {"end", s.end},
                        {"text", trimmed(s.text)},
                        {"tokens", s.tokens}});
  }
  return {{"task", t.task}, {"language", t.language}, {"duration", t.duration}, {"text", t.text()},
          {"segments", segments}};
}

std::string format_transcript(const Transcript& t, TranscriptFormat f) {
  std::string out;
  switch (f) {
    case TranscriptFormat::Text: return t.text() + "\n";
    case TranscriptFormat::Json: return transcript_json(t, false).dump() + "\n";
    case TranscriptFormat::VerboseJson: return transcript_json(t, true).dump(2) + "\n";
    case TranscriptFormat::Srt:
      for (size_t i = 0; i < t.segments.size(); ++i) {
        const auto& s = t.segments[i];
        out += std::to_string(i + 1) + "\n" + format_timestamp(s.start, ',') + " --> " + format_timestamp(s.end, ',') +
               "\n" + trimmed(s.text) + "\n\n";
      }
      return out;
    case TranscriptFormat::Vtt:
      out = "WEBVTT\n\n";
      for (const auto& s : t.segments)
        out += format_timestamp(s.start, '.') + " --> " + format_timestamp(s.end, '.') + "\n" + trimmed(s.text) + "\n\n";
      return out;
  }
  return out;
}

}  // namespace llama_mm::media
