// llm/chat_format.cpp: the Llama 3.1 Instruct prompt (mllama-spec.md §5.4, skeleton of §5.3), hard-coded
// instead of running the Hub's Jinja chat_template.
//
// encode_chat gives the same ids as encode(render_chat(...), parse_special=true) whenever no message contains
// special-token text: the text between two structural tokens ("\n\n" + content) is encoded as one piece, just
// as the pre-tokenizer sees it in the rendered string, and only the structural tokens are inserted as ids.
#include "llm/chat_format.h"

#include "llm/error.h"

#include <algorithm>

namespace llama_mm {

namespace {

constexpr const char* kBos = "<|begin_of_text|>";
constexpr const char* kStartHeader = "<|start_header_id|>";
constexpr const char* kEndHeader = "<|end_header_id|>";
constexpr const char* kEot = "<|eot_id|>";
constexpr const char* kImage = "<|image|>";

// Length of the UTF-8 whitespace character at s[i] by Python's str.isspace (what Jinja's |trim strips), or 0.
size_t space_len(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const unsigned c = b(0);
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
  if (c == 0xC2 && (b(1) == 0x85 || b(1) == 0xA0)) return 2;                            // NEL, NBSP
  if (c == 0xE1 && b(1) == 0x9A && b(2) == 0x80) return 3;                              // U+1680
  if (c == 0xE2 && b(1) == 0x80 && (b(2) <= 0x8A || b(2) == 0xA8 || b(2) == 0xA9 || b(2) == 0xAF)) return 3;
  if (c == 0xE2 && b(1) == 0x81 && b(2) == 0x9F) return 3;                              // U+205F
  if (c == 0xE3 && b(1) == 0x80 && b(2) == 0x80) return 3;                              // U+3000
  return 0;
}

// Python's str.lstrip / rstrip / strip for the whitespace space_len knows.
std::string trim_left(const std::string& s) {
  size_t begin = 0;
  while (begin < s.size()) {
    const size_t n = space_len(s, begin);
    if (n == 0) break;
    begin += n;
  }
  return s.substr(begin);
}

std::string trim_right(const std::string& s) {
  // Scan forward so multi-byte spaces are recognised; remember where the last non-space character ended.
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = space_len(s, i);
    if (n == 0) {
      ++i;
      end = i;
    } else {
      i += n;
    }
  }
  return s.substr(0, end);
}

std::string trim(const std::string& s) { return trim_right(trim_left(s)); }

// One "<|start_header_id|>role<|end_header_id|>" + body + "<|eot_id|>" block, as text pieces: a conversation is
// a list of (structural token | plain text) parts that render_chat joins and encode_chat tokenizes.
struct Part {
  bool special;
  std::string text;
};

std::vector<Part> chat_parts(const std::vector<ChatMessage>& messages, const ChatFormatOptions& opts) {
  std::vector<Part> parts = {{true, kBos}};
  const bool trim_content = opts.trim_content && !opts.vision;
  // A message made of parts: "\n\n" joins the first text; special runs go in as structural tokens.
  auto part_block = [&](const ChatMessage& m) {
    if (!m.content.empty() || m.n_images > 0)
      throw Error(ErrorKind::Usage, "a chat message with content parts must have no other content or images");
    parts.push_back({true, kStartHeader});
    parts.push_back({false, m.role});
    parts.push_back({true, kEndHeader});
    std::string pending = "\n\n";
    for (size_t k = 0; k < m.parts.size(); ++k) {
      const auto& p = m.parts[k];
      if (!p.text.empty() && !p.specials.empty())
        throw Error(ErrorKind::Usage, "a chat content part holds text or special tokens, not both");
      if (p.specials.empty()) {
        std::string text = p.text;
        if (trim_content && k == 0) text = trim_left(text);
        if (trim_content && k + 1 == m.parts.size()) text = trim_right(text);
        pending += text;
        continue;
      }
      if (!pending.empty()) parts.push_back({false, pending});
      pending.clear();
      for (const auto& s : p.specials) parts.push_back({true, s});
    }
    if (!pending.empty()) parts.push_back({false, pending});
    parts.push_back({true, kEot});
  };
  auto block = [&](const std::string& role, const std::string& body, bool end_turn, int n_images = 0) {
    parts.push_back({true, kStartHeader});
    parts.push_back({false, role});
    parts.push_back({true, kEndHeader});
    if (n_images > 0) {
      parts.push_back({false, "\n\n"});
      for (int k = 0; k < n_images; ++k) parts.push_back({true, kImage});
      if (!body.empty()) parts.push_back({false, body});
    } else {
      parts.push_back({false, "\n\n" + body});
    }
    if (end_turn) parts.push_back({true, kEot});
  };
  auto content = [&](const ChatMessage& m) { return trim_content ? trim(m.content) : m.content; };

  bool has_images = false;
  for (const auto& m : messages) {
    has_images = has_images || m.n_images > 0;
    for (const auto& p : m.parts)  // an image given as a content part counts the same
      has_images = has_images || std::find(p.specials.begin(), p.specials.end(), kImage) != p.specials.end();
    if (m.role == "system" && !m.parts.empty())
      throw Error(ErrorKind::Usage, "a system message cannot hold media content parts");
  }
  if (has_images && !opts.vision)
    throw Error(ErrorKind::Usage, "images in a chat need the Llama 3.2 Vision template (ChatFormatOptions::vision)");
  size_t first = 0;
  if (opts.vision && has_images) {
    // The 3.2 Vision template has no system block with images, and refuses a system message.
    if (!messages.empty() && messages[0].role == "system") {
      if (!trim(messages[0].content).empty())
        throw Error(ErrorKind::Usage, "Prompting with images is incompatible with system messages.");
      first = 1;
    }
  } else if (opts.system_block) {
    // The 3.1 template always opens with the system block; a leading system message is folded into it.
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = trim(messages[0].content);  // the templates trim the system message
      first = 1;
    }
    block("system", "Cutting Knowledge Date: December 2023\nToday Date: " + opts.date_string + "\n\n" + system, true);
  }
  for (size_t i = first; i < messages.size(); ++i) {
    if (!messages[i].parts.empty())
      part_block(messages[i]);
    else
      block(messages[i].role, content(messages[i]), true, messages[i].n_images);
  }
  if (opts.add_generation_prompt) block("assistant", "", false);
  return parts;
}

}  // namespace

ChatFormatOptions vision_chat_options(const std::string& date_string) {
  ChatFormatOptions o;
  o.date_string = date_string;
  o.vision = true;
  o.trim_content = false;
  return o;
}

std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                 const ChatFormatOptions& opts) {
  std::vector<int32_t> ids;
  for (const Part& p : chat_parts(messages, opts)) {
    if (p.special) {
      const auto id = tok.token_id(p.text);
      if (!id) throw Error(ErrorKind::ModelLoad, "encode_chat: the tokenizer has no \"" + p.text + "\" token");
      ids.push_back(*id);
    } else {
      // parse_special=false: message text can never produce a header, BOS or end-of-turn token.
      const auto piece = tok.encode(p.text, /*parse_special=*/false);
      ids.insert(ids.end(), piece.begin(), piece.end());
    }
  }
  return ids;
}

std::string render_chat(const std::vector<ChatMessage>& messages, const ChatFormatOptions& opts) {
  std::string out;
  for (const Part& p : chat_parts(messages, opts)) out += p.text;
  return out;
}

}  // namespace llama_mm
