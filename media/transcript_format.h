// media/transcript_format.h: transcripts as the tools users compare us with write them (ecosystem.md):
// plain text, OpenAI's json / verbose_json, SubRip (SRT) and WebVTT, as whisper-cli and the OpenAI
// transcription API produce them.
//
//   SRT:  "1\n00:00:00,000 --> 00:00:04,250\nHello.\n\n2\n…"   (1-based indices, comma before milliseconds)
//   VTT:  "WEBVTT\n\n00:00:00.000 --> 00:00:04.250\nHello.\n\n…" (no indices, dot before milliseconds)
// Segment texts are trimmed of surrounding whitespace in every format; times are rounded to the millisecond.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace llama_mm::media {

struct TranscriptSegment {
  double start = 0, end = 0;  // seconds from the start of the input
  std::string text;
  std::vector<int32_t> tokens;  // generated ids (verbose_json)
};

struct Transcript {
  std::string task = "transcribe";  // or "translate"
  std::string language;             // the target language's name, e.g. "English"
  double duration = 0;              // seconds of input audio
  std::vector<TranscriptSegment> segments;
  std::string text() const;  // trimmed segment texts joined by single spaces
};

enum class TranscriptFormat { Text, Json, VerboseJson, Srt, Vtt };
// "txt"/"text", "json", "verbose_json", "srt", "vtt"; anything else is ErrorKind::Usage naming it.
TranscriptFormat parse_transcript_format(const std::string& name);
std::string transcript_format_extension(TranscriptFormat f);  // "txt", "json", "verbose.json", "srt", "vtt"

// "HH:MM:SS,mmm" (SRT, sep ',') or "HH:MM:SS.mmm" (VTT, sep '.'); hours are not wrapped at 24.
std::string format_timestamp(double seconds, char ms_separator);

// The whole document in `f`, ending with a newline.
std::string format_transcript(const Transcript& t, TranscriptFormat f);
// {"text"} (json) or {"task","language","duration","text","segments":[{"id","seek","start","end","text","tokens"}]}.
nlohmann::json transcript_json(const Transcript& t, bool verbose);

}  // namespace llama_mm::media
