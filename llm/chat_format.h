// llm/chat_format.h: the Llama 3.x chat prompt (mllama-spec.md §5.3-5.4), rendered without a Jinja engine.
//
//   <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n
//   Today Date: 26 Jul 2024\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>
//   <|start_header_id|>assistant<|end_header_id|>\n\n
//
// Message contents are tokenized with parse_special=false (user text cannot inject header tokens);
// the structural tokens are inserted as ids, and BOS appears exactly once.
#pragma once

#include "llm/tokenizer.h"

#include <string>
#include <vector>

namespace llama_mm {

// One piece of a message whose content mixes text and media: plain text, or special tokens (by their text)
// that stand for media, e.g. a speech clip's <start> <placeholder>×N <end> (adapters/speech_prompt.h).
struct ChatContentPart {
  std::string text;                   // tokenized with parse_special=false, like content
  std::vector<std::string> specials;  // inserted as ids; a part holds text or specials, not both
};

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "ipython"
  std::string content;
  int n_images = 0;     // <|image|> tokens placed before the content (Llama 3.2 Vision; Meta's recommended spot)
  // When non-empty, the content in order (`content` must then be empty). Trimming applies to the first and
  // last parts when they are text.
  std::vector<ChatContentPart> parts;
};

struct ChatFormatOptions {
  std::string date_string = "26 Jul 2024";  // Llama 3.1 template default; pin it for reproducible prompts
  bool system_block = true;                 // emit the system header block even without a system message
  bool trim_content = true;                 // Llama 3.1 template trims message content
  bool add_generation_prompt = true;        // end with the assistant header
  // Llama 3.2 Vision template (§5.3): contents verbatim (no trim); with images there is no system block and
  // a system message is an error; without images the system block is as above.
  bool vision = false;
};

// The options of the Llama 3.2 Vision Instruct template with a pinned date.
ChatFormatOptions vision_chat_options(const std::string& date_string = "26 Jul 2024");

// Token ids of the whole conversation, starting with one BOS.
std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                 const ChatFormatOptions& opts = {});
// The same prompt as text (special tokens written out), for logs and --verbose-prompt.
std::string render_chat(const std::vector<ChatMessage>& messages, const ChatFormatOptions& opts = {});

}  // namespace llama_mm
