// adapters/speech_prompt.cpp: ASR/AST prompts and speech content parts.
#include "adapters/speech_prompt.h"

#include "llm/error.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace llama_mm {

namespace {

// The 34 ASR languages of the paper (§8.1.1), ISO 639-1 code -> English name.
const std::vector<std::pair<std::string, std::string>>& languages() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"ar", "Arabic"},    {"bn", "Bengali"},   {"zh", "Chinese"},    {"cs", "Czech"},      {"nl", "Dutch"},
      {"en", "English"},   {"fi", "Finnish"},   {"fr", "French"},     {"de", "German"},     {"el", "Greek"},
      {"gu", "Gujarati"},  {"hi", "Hindi"},     {"hu", "Hungarian"},  {"id", "Indonesian"}, {"it", "Italian"},
      {"ja", "Japanese"},  {"kn", "Kannada"},   {"ko", "Korean"},     {"ml", "Malayalam"},  {"mr", "Marathi"},
      {"fa", "Persian"},   {"pl", "Polish"},    {"pt", "Portuguese"}, {"ro", "Romanian"},   {"ru", "Russian"},
      {"es", "Spanish"},   {"sw", "Swahili"},   {"sv", "Swedish"},    {"ta", "Tamil"},      {"te", "Telugu"},
      {"th", "Thai"},      {"tr", "Turkish"},   {"ur", "Urdu"},       {"vi", "Vietnamese"}};
  return table;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string speech_language_name(const std::string& code_or_name) {
  const std::string key = lower(code_or_name);
  for (const auto& [code, name] : languages())
    if (key == code || key == lower(name)) return name;
  std::string known;
  for (const auto& [code, name] : languages()) known += (known.empty() ? "" : " ") + code;
  throw Error(ErrorKind::Usage, "unknown language '" + code_or_name + "' (expected one of: " + known + ")");
}

std::string speech_system_prompt(SpeechTask task, const std::string& language_name) {
  switch (task) {
    case SpeechTask::Transcribe: return "Repeat after me in " + language_name + ":";
    case SpeechTask::Translate: return "Translate the following sentence into " + language_name + ":";
    case SpeechTask::Dialogue: return "";
  }
  return "";
}

ChatContentPart speech_part(const Tokenizer& tok, const SpeechTokens& tokens, int64_t n_vectors) {
  ChatContentPart p;
  p.specials.reserve(static_cast<size_t>(n_vectors) + 2);
  p.specials.push_back(tok.token_bytes(tokens.start));
  const std::string placeholder = tok.token_bytes(tokens.placeholder);
  for (int64_t i = 0; i < n_vectors; ++i) p.specials.push_back(placeholder);
  p.specials.push_back(tok.token_bytes(tokens.end));
  return p;
}

std::vector<int32_t> encode_speech_prompt(const Tokenizer& tok, SpeechTask task, const std::string& language_name,
                                          const std::vector<ChatContentPart>& parts, const ChatFormatOptions& opts) {
  std::vector<ChatMessage> msgs;
  const std::string system = speech_system_prompt(task, language_name);
  if (!system.empty()) msgs.push_back({"system", system});
  ChatMessage user;
  user.role = "user";
  user.parts = parts;
  msgs.push_back(std::move(user));
  return encode_chat(tok, msgs, opts);
}

}  // namespace llama_mm
