// llm/tokenizer.h: the Llama 3 byte-level BPE tokenizer (mllama-spec.md §5.2), loaded from a Hugging Face
// tokenizer.json or from Meta's tiktoken tokenizer.model (base64 token + rank per line).
//
// Basic usage:
//   auto tok = llama_mm::Tokenizer::from_file("model_dir");      // tokenizer.json, else tokenizer.model
//   std::vector<int32_t> ids = tok.encode("Hello", /*parse_special=*/false);
//   std::string text = tok.decode(ids);
//   llama_mm::TokenStreamDecoder stream(tok);                    // for streaming output
//   for (int32_t id : ids) std::cout << stream.push(id);
//   std::cout << stream.flush();
//
// encode() never adds BOS/EOS; callers (chat_format, generate) decide. With parse_special=false, text
// such as "<|eot_id|>" is tokenized as ordinary text (use this for untrusted user content).
// Thread-safety: a Tokenizer is immutable after construction; encode/decode may run concurrently.
// This header does not depend on LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llama_mm {

class Tokenizer {
 public:
  // A tokenizer.json / tokenizer.model file, or a directory holding one (tokenizer.json preferred).
  // Throws llama_mm::Error(ModelLoad) naming the file and the offending key.
  static Tokenizer from_file(const std::string& path_or_dir);
  // The contents of a tokenizer.json (`origin` names it in errors).
  static Tokenizer from_json_string(const std::string& json, const std::string& origin = "<string>");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text, bool parse_special = false) const;
  // Concatenated token bytes (special tokens included unless skip_special); invalid UTF-8 is kept as bytes.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // Raw bytes of one token (its text for special tokens). Throws for ids outside the vocabulary.
  std::string token_bytes(int32_t id) const;
  // Id of a token given its exact text (special tokens by their text, e.g. "<|eot_id|>"), or nullopt.
  std::optional<int32_t> token_id(std::string_view text) const;
  bool is_special(int32_t id) const;
  // Number of ids (max id + 1), counting added/special tokens.
  int64_t n_vocab() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of ids into text chunks that are always complete UTF-8: bytes of a character split
// across tokens are held back until the character completes.
// `bytes` with every ill-formed UTF-8 subsequence replaced by U+FFFD, one per maximal subpart (Unicode §3.9, as
// Rust's from_utf8_lossy and Python's errors="replace" do it).
std::string to_valid_utf8(std::string_view bytes);

// Generated text as it becomes final: always valid UTF-8 (bytes that cannot form a character become U+FFFD, as
// Hugging Face's decode gives them).
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tok, bool skip_special = false);
  std::string push(int32_t id);  // text that became complete with this token (may be empty)
  std::string flush();           // whatever is still pending (possibly an incomplete sequence)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

// A small byte-level tokenizer.json for random test/benchmark models: the 256 byte tokens (ids 0-255,
// GPT-2 byte→unicode mapping), `n_merges` merges learned from nothing but fixed common English pairs,
// then the 256 Llama 3 special tokens (<|begin_of_text|> … in Meta's order) after them.
std::string make_byte_level_tokenizer_json(int n_merges = 0);

// `tokenizer_json` with one more special added token (e.g. Mllama's "<|image|>" after the vocabulary);
// an error when `id` or `content` is taken.
std::string with_added_special_token(const std::string& tokenizer_json, const std::string& content, int64_t id);

}  // namespace llama_mm
