// tests/adapters/speech_prompt_test.cpp: adapters/speech_prompt.cpp: the paper's ASR/AST prompts, language
// names and the speech run in the Llama 3 chat format.
#include "adapters/speech_prompt.h"

#include "llm/error.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace llama_mm {
namespace {

TEST(SpeechPrompt, PaperPromptsAndLanguages) {
  EXPECT_EQ(speech_language_name("en"), "English");
  EXPECT_EQ(speech_language_name("FRENCH"), "French");
  EXPECT_EQ(speech_language_name("zh"), "Chinese");
  EXPECT_THROW(speech_language_name("klingon"), Error);
  EXPECT_EQ(speech_system_prompt(SpeechTask::Transcribe, "English"), "Repeat after me in English:");
  EXPECT_EQ(speech_system_prompt(SpeechTask::Translate, "German"), "Translate the following sentence into German:");
  EXPECT_EQ(speech_system_prompt(SpeechTask::Dialogue, "English"), "");
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  const auto st = SpeechTokens::choose(tok);
  auto ids = encode_speech_prompt(tok, SpeechTask::Translate, "German", {speech_part(tok, st, 7), {"thanks", {}}});
  EXPECT_EQ(std::count(ids.begin(), ids.end(), st.placeholder), 7);
  const auto text = tok.decode(ids);
  EXPECT_NE(text.find("Translate the following sentence into German:<|eot_id|>"), std::string::npos) << text;
  const auto start = std::find(ids.begin(), ids.end(), st.start);
  ASSERT_NE(start, ids.end());
  EXPECT_EQ(*(start + 8), st.end);
  // Dialogue: no task prompt at all.
  const auto d = tok.decode(encode_speech_prompt(tok, SpeechTask::Dialogue, "", {speech_part(tok, st, 1)}));
  EXPECT_EQ(d.find("Repeat"), std::string::npos);
}

}  // namespace
}  // namespace llama_mm
