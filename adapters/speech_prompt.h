// adapters/speech_prompt.h: the paper's speech prompts (paper-spec.md §2.5) in the Llama 3 chat format.
//
//   ASR: system "Repeat after me in {language}:"                 user: <speech>
//   AST: system "Translate the following sentence into {language}:"  user: <speech>
//   Dialogue: no task system prompt; the user turn mixes text and speech freely.
// The prompts name only the target language (so code-switched input and unseen directions work), as in the
// paper. A speech clip of N vectors is the special run <start> <placeholder>×N <end> (speech_model.h).
#pragma once

#include "adapters/speech_model.h"
#include "llm/chat_format.h"

#include <string>
#include <vector>

namespace llama_mm {

enum class SpeechTask { Transcribe, Translate, Dialogue };

// English name of a language given as an ISO 639-1 code or a name, case-insensitive ("en", "English",
// "zh" -> "Chinese"); the 34 languages of the paper's ASR data. Unknown: ErrorKind::Usage listing the codes.
std::string speech_language_name(const std::string& code_or_name);

// "Repeat after me in English:" / "Translate the following sentence into French:" / "" (dialogue).
std::string speech_system_prompt(SpeechTask task, const std::string& language_name);

// The content part for one clip of `n_vectors` speech vectors.
ChatContentPart speech_part(const Tokenizer& tok, const SpeechTokens& tokens, int64_t n_vectors);

// The whole chat: the task's system prompt (if any) and one user turn of `parts`, ending with the assistant
// header (Llama 3.1 template, date pinned by `opts`).
std::vector<int32_t> encode_speech_prompt(const Tokenizer& tok, SpeechTask task, const std::string& language_name,
                                          const std::vector<ChatContentPart>& parts, const ChatFormatOptions& opts = {});

}  // namespace llama_mm
