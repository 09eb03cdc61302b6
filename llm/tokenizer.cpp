// llm/tokenizer.cpp: Llama 3 byte-level BPE (mllama-spec.md §5.1-5.2).
//
// Two sources, one engine:
//   * HF tokenizer.json: model.vocab + model.merges (merge rank = index), added_tokens, the Split regex;
//   * Meta tiktoken tokenizer.model: "base64(bytes) rank" lines; the merge of a pair (a,b) is implied by the
//     rank of the token a+b (tiktoken's _byte_pair_merge), and the 256 Llama 3 specials follow at 128000.
// Internally every token is its raw bytes; the GPT-2 byte→unicode alphabet only exists at the JSON boundary.
// Pre-tokenization uses PCRE2 (UTF + UCP, JIT) because std::regex lacks \p{L}, (?i:…) and (?!\S).
#include "llm/tokenizer.h"

#include "llm/error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <functional>
#include <queue>
#include <sstream>
#include <unordered_map>

namespace llama_mm {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Meta's Tokenizer.pat_str (= the Split pattern of every Llama 3 tokenizer.json).
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex=true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr int kNumLlama3Specials = 256;
constexpr int32_t kMaxTokenId = 1 << 24;  // far above any real vocabulary; guards against absurd allocations

// The 256 Llama 3 special tokens with Meta's names (ref: meta-llama/llama-models models/llama3/tokenizer.py).
std::vector<std::string> llama3_special_tokens() {
  std::vector<std::string> s = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
                                "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                                "<|python_tag|>"};
  for (int i = 2; static_cast<int>(s.size()) < kNumLlama3Specials; ++i)
    s.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
  return s;
}

// GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100.. in byte order.
struct ByteUnicode {
  std::array<uint32_t, 256> byte_to_cp{};
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  ByteUnicode() {
    uint32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byte_to_cp[b] = printable ? b : 256 + extra++;
      cp_to_byte[byte_to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteUnicode& byte_unicode() {
  static const ByteUnicode table;
  return table;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) append_utf8(out, byte_unicode().byte_to_cp[c]);
  return out;
}

// Byte-level token text (GPT-2 alphabet, UTF-8) → raw bytes; nullopt if a char is outside the alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  const auto& map = byte_unicode().cp_to_byte;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return std::nullopt;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    const auto it = map.find(cp);
    if (it == map.end()) return std::nullopt;
    out += static_cast<char>(it->second);
    i += n;
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(abc[i])] = static_cast<int8_t>(i);
    return t;
  }();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    if (table[c] < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(table[c]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorKind::ModelLoad, path.string() + ": cannot open tokenizer file");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

struct Merge {
  int32_t rank;    // lower merges first
  int32_t result;  // id of the merged token
};

// A compiled pattern; matching is thread-safe because each call brings its own match data.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    // MATCH_INVALID_UTF: invalid UTF-8 input never matches instead of failing the whole call; the gaps become
    // their own pre-tokens, so any byte string still encodes and round-trips.
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(ErrorKind::ModelLoad, where + ": cannot compile the pre-tokenizer regex at offset " +
                                            std::to_string(offset) + ": " + reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // on failure pcre2_match interprets; same results
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Splits `text` into matches and the (rare) unmatched gaps between them, in order ("Isolated").
  template <class Fn>
  void split(std::string_view text, Fn&& emit) const {
    MatchState st{pcre2_match_data_create_from_pattern(code_, nullptr)};
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    while (pos < text.size()) {
      const int rc = pcre2_match(code_, subject, text.size(), pos, 0, st.md, st.mctx);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !st.stack) {  // long whitespace runs can need more than 32 KiB
        st.stack = pcre2_jit_stack_create(32 * 1024, 256 * 1024 * 1024, nullptr);
        st.mctx = pcre2_match_context_create(nullptr);
        pcre2_jit_stack_assign(st.mctx, nullptr, st.stack);
        continue;
      }
      if (rc == PCRE2_ERROR_NOMATCH) {
        emit(text.substr(pos));
        break;
      }
      if (rc < 0)
        throw Error(ErrorKind::Runtime, "Tokenizer::encode: pre-tokenizer regex failed with PCRE2 error " +
                                            std::to_string(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
      if (ov[0] > pos) emit(text.substr(pos, ov[0] - pos));
      const size_t end = std::max<size_t>(ov[1], ov[0] + 1);  // an empty match would not make progress
      emit(text.substr(ov[0], end - ov[0]));
      pos = end;
    }
  }

 private:
  struct MatchState {
    pcre2_match_data* md = nullptr;
    pcre2_match_context* mctx = nullptr;
    pcre2_jit_stack* stack = nullptr;
    ~MatchState() {
      pcre2_match_data_free(md);
      pcre2_match_context_free(mctx);
      pcre2_jit_stack_free(stack);
    }
  };
  pcre2_code* code_ = nullptr;
};

}  // namespace

struct Tokenizer::Impl {
  std::string origin;                                      // file name for messages
  std::vector<std::string> id_bytes;                       // raw bytes per id (added tokens: their content)
  std::vector<uint8_t> has_id, special;                    // per id: defined? special?
  std::unordered_map<std::string, int32_t> vocab;          // raw bytes → id (BPE model vocabulary)
  std::unordered_map<std::string, int32_t> added;          // added token content → id
  std::unordered_map<uint64_t, Merge> merges;              // (left id, right id) → merge
  std::array<int32_t, 256> byte_id{};                      // single-byte tokens, the BPE starting point
  std::array<std::vector<int32_t>, 256> added_by_first{};  // added ids by first byte, longest first
  bool ignore_merges = false;
  std::unique_ptr<Regex> regex;

  static std::unique_ptr<Impl> load_hf_json(const std::string& text, const std::string& origin);
  static std::unique_ptr<Impl> load_tiktoken(const std::string& text, const std::string& origin);

  void define(int32_t id, std::string bytes, bool is_special) {
    if (id < 0 || id >= kMaxTokenId)
      throw Error(ErrorKind::ModelLoad, origin + ": token id " + std::to_string(id) + " is out of range");
    // An added token may restate a vocabulary entry, but one id cannot name two different byte strings.
    if (static_cast<size_t>(id) < has_id.size() && has_id[id] && id_bytes[id] != bytes)
      throw Error(ErrorKind::ModelLoad, origin + ": token id " + std::to_string(id) + " is given to two tokens");
    if (static_cast<size_t>(id) >= id_bytes.size()) {
      id_bytes.resize(id + 1);
      has_id.resize(id + 1, 0);
      special.resize(id + 1, 0);
    }
    id_bytes[id] = std::move(bytes);
    has_id[id] = 1;
    special[id] = is_special ? 1 : 0;
  }

  void add_token(int32_t id, const std::string& content, bool is_special) {
    define(id, content, is_special);
    added[content] = id;
  }

  // Called once the vocabulary is complete: byte tokens and the added-token match lists.
  void finish() {
    for (int b = 0; b < 256; ++b) {
      const auto it = vocab.find(std::string(1, static_cast<char>(b)));
      if (it == vocab.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", b);
        throw Error(ErrorKind::ModelLoad, origin + ": the vocabulary lacks the byte token for " + hex +
                                              " (a byte-level BPE needs all 256)");
      }
      byte_id[b] = it->second;
    }
    for (const auto& [content, id] : added)
      if (!content.empty()) added_by_first[static_cast<unsigned char>(content[0])].push_back(id);
    for (auto& ids : added_by_first)
      std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
        return id_bytes[a].size() != id_bytes[b].size() ? id_bytes[a].size() > id_bytes[b].size() : a < b;
      });
  }

  // BPE of one pre-token: repeatedly merge the adjacent pair with the lowest rank, leftmost on ties.
  void bpe(std::string_view piece, std::vector<int32_t>& out) const {
    if (const auto it = vocab.find(std::string(piece)); ignore_merges && it != vocab.end()) {
      out.push_back(it->second);  // tiktoken / ignore_merges: a whole known pre-token is one token
      return;
    }
    struct Sym {
      int32_t id;
      int prev, next;  // linked list over the original byte positions; -1 ends it
      bool alive;
    };
    const int n = static_cast<int>(piece.size());
    std::vector<Sym> sym(n);
    for (int i = 0; i < n; ++i) sym[i] = {byte_id[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
    struct Cand {
      int32_t rank;
      int left, right;
      int32_t left_id, right_id, result;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto consider = [&](int l) {
      if (l < 0 || sym[l].next < 0) return;
      const int r = sym[l].next;
      const auto it = merges.find(pair_key(sym[l].id, sym[r].id));
      if (it != merges.end()) heap.push({it->second.rank, l, r, sym[l].id, sym[r].id, it->second.result});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!heap.empty()) {
      const Cand c = heap.top();
      heap.pop();
      Sym& l = sym[c.left];
      // Entries go stale when a neighbour merged since they were pushed; the ids and link tell.
      if (!l.alive || l.next != c.right || l.id != c.left_id || sym[c.right].id != c.right_id) continue;
      Sym& r = sym[c.right];
      l.id = c.result;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = c.left;
      r.alive = false;
      consider(l.prev);
      consider(c.left);
    }
    for (int i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
  }

  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
    regex->split(text, [&](std::string_view piece) { bpe(piece, out); });
  }

  // The longest added token starting at text[pos] (non-special ones always, special ones if asked).
  std::optional<int32_t> added_at(std::string_view text, size_t pos, bool parse_special) const {
    for (int32_t id : added_by_first[static_cast<unsigned char>(text[pos])]) {
      if (special[id] && !parse_special) continue;
      if (text.compare(pos, id_bytes[id].size(), id_bytes[id]) == 0) return id;
    }
    return std::nullopt;
  }
};

namespace {

// The regex of one pre-tokenizer step: a Split's pattern, GPT-2's for ByteLevel(use_regex=true), else none.
std::optional<std::string> step_pattern(const json& pt, const std::string& origin) {
  const std::string type = pt.value("type", "");
  if (type == "Split") {
    if (pt.value("behavior", "Isolated") != "Isolated" || pt.value("invert", false))
      throw Error(ErrorKind::ModelLoad, origin + ": pre_tokenizer Split: only behavior \"Isolated\" with "
                                                 "invert=false is supported");
    if (!pt.at("pattern").contains("Regex"))
      throw Error(ErrorKind::ModelLoad, origin + ": pre_tokenizer Split: key \"pattern.Regex\" missing "
                                                 "(string patterns are not supported)");
    return pt.at("pattern").at("Regex").get<std::string>();
  }
  if (type == "ByteLevel") {
    if (pt.value("add_prefix_space", false))
      throw Error(ErrorKind::ModelLoad, origin + ": pre_tokenizer ByteLevel.add_prefix_space=true is not supported");
    return pt.value("use_regex", true) ? std::optional<std::string>(kGpt2Pattern) : std::nullopt;
  }
  throw Error(ErrorKind::ModelLoad, origin + ": pre_tokenizer type \"" + type + "\" is not supported");
}

// The pre-tokenizer regex of a tokenizer.json, the Llama 3 pattern when the file names none.
std::string pre_tokenizer_pattern(const json& pt, const std::string& origin) {
  if (pt.is_null()) return kLlama3Pattern;
  std::vector<std::string> found;
  for (const json& step : pt.value("type", "") == "Sequence" ? pt.at("pretokenizers") : json::array({pt}))
    if (auto p = step_pattern(step, origin)) found.push_back(std::move(*p));
  if (found.size() > 1)
    throw Error(ErrorKind::ModelLoad, origin + ": pre_tokenizer has several regex steps; only one is supported");
  return found.empty() ? kLlama3Pattern : found[0];
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> Tokenizer::Impl::load_hf_json(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(ErrorKind::ModelLoad, origin + ": invalid JSON: " + e.what());
  }
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->origin = origin;
  std::string key = "model";  // the key being read, for type errors thrown by nlohmann
  try {
    if (!j.is_object() || !j.contains("model"))
      throw Error(ErrorKind::ModelLoad, origin + ": key \"model\" missing (not a tokenizer.json?)");
    const json& model = j.at("model");
    key = "model.type";
    const std::string type = model.contains("type") ? model.at("type").get<std::string>() : "";
    if (type != "BPE")
      throw Error(ErrorKind::ModelLoad, origin + ": model.type \"" + type + "\" is not supported (expected \"BPE\")");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model.at(k).is_null())
        throw Error(ErrorKind::ModelLoad, origin + ": model." + k + " is not supported by a byte-level BPE");
    if (model.value("byte_fallback", false))
      throw Error(ErrorKind::ModelLoad, origin + ": model.byte_fallback=true is not supported");
    if (j.contains("normalizer") && !j.at("normalizer").is_null())
      throw Error(ErrorKind::ModelLoad, origin + ": key \"normalizer\" must be null (Llama 3 has none)");
    key = "model.ignore_merges";
    impl->ignore_merges = model.value("ignore_merges", false);

    key = "model.vocab";
    if (!model.contains("vocab") || !model.at("vocab").is_object())
      throw Error(ErrorKind::ModelLoad, origin + ": key \"model.vocab\" missing or not an object");
    for (const auto& [tok, id_json] : model.at("vocab").items()) {
      auto bytes = byte_level_to_bytes(tok);
      if (!bytes)
        throw Error(ErrorKind::ModelLoad, origin + ": model.vocab: token \"" + tok +
                                              "\" has characters outside the GPT-2 byte-level alphabet");
      const auto id = id_json.get<int32_t>();
      impl->define(id, *bytes, false);
      impl->vocab.emplace(std::move(*bytes), id);
    }

    key = "model.merges";
    if (!model.contains("merges") || !model.at("merges").is_array())
      throw Error(ErrorKind::ModelLoad, origin + ": key \"model.merges\" missing or not an array");
    const json& merges = model.at("merges");
    impl->merges.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const json& m = merges[rank];
      std::string a, b;
      if (m.is_string()) {  // legacy "a b"
        const auto s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos)
          throw Error(ErrorKind::ModelLoad, origin + ": model.merges[" + std::to_string(rank) + "] \"" + s +
                                                "\" is not of the form \"a b\"");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {  // current [a, b]
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        throw Error(ErrorKind::ModelLoad, origin + ": model.merges[" + std::to_string(rank) +
                                              "] is neither \"a b\" nor [a, b]");
      }
      const auto ab = byte_level_to_bytes(a), bb = byte_level_to_bytes(b);
      const auto ia = ab ? impl->vocab.find(*ab) : impl->vocab.end();
      const auto ib = bb ? impl->vocab.find(*bb) : impl->vocab.end();
      const auto ir = ab && bb ? impl->vocab.find(*ab + *bb) : impl->vocab.end();
      if (ia == impl->vocab.end() || ib == impl->vocab.end() || ir == impl->vocab.end())
        throw Error(ErrorKind::ModelLoad, origin + ": model.merges[" + std::to_string(rank) + "] (\"" + a +
                                              "\", \"" + b + "\") uses or makes a token missing from model.vocab");
      // A pair listed twice keeps its first (lowest) rank, as HF does.
      impl->merges.emplace(pair_key(ia->second, ib->second), Merge{static_cast<int32_t>(rank), ir->second});
    }

    key = "added_tokens";
    if (j.contains("added_tokens")) {
      for (const json& t : j.at("added_tokens")) {
        const auto content = t.at("content").get<std::string>();
        if (content.empty()) throw Error(ErrorKind::ModelLoad, origin + ": added_tokens: empty content");
        impl->add_token(t.at("id").get<int32_t>(), content, t.value("special", false));
      }
    }

    key = "pre_tokenizer";
    const std::string pattern = pre_tokenizer_pattern(j.value("pre_tokenizer", json()), origin);
    impl->regex = std::make_unique<Regex>(pattern, origin);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::ModelLoad, origin + ": key \"" + key + "\": " + e.what());
  }
  impl->finish();
  return impl;
}

std::unique_ptr<Tokenizer::Impl> Tokenizer::Impl::load_tiktoken(const std::string& text, const std::string& origin) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->origin = origin;
  impl->ignore_merges = true;  // tiktoken looks a whole pre-token up before merging
  std::istringstream in(text);
  std::string line;
  int32_t max_rank = -1;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    const auto bytes = sp == std::string::npos ? std::nullopt : base64_decode(std::string_view(line).substr(0, sp));
    char* end = nullptr;
    const long rank = sp == std::string::npos ? -1 : std::strtol(line.c_str() + sp + 1, &end, 10);
    if (!bytes || bytes->empty() || rank < 0 || rank > INT32_MAX || (end && *end != '\0'))
      throw Error(ErrorKind::ModelLoad, origin + ":" + std::to_string(line_no) +
                                            ": expected \"base64(token bytes) rank\", got \"" + line.substr(0, 80) + "\"");
    if (!impl->vocab.emplace(*bytes, static_cast<int32_t>(rank)).second ||
        (static_cast<size_t>(rank) < impl->has_id.size() && impl->has_id[rank]))
      throw Error(ErrorKind::ModelLoad, origin + ":" + std::to_string(line_no) + ": duplicate token or rank " +
                                            std::to_string(rank));
    impl->define(static_cast<int32_t>(rank), *bytes, false);
    max_rank = std::max<int32_t>(max_rank, static_cast<int32_t>(rank));
  }
  if (max_rank < 0) throw Error(ErrorKind::ModelLoad, origin + ": empty tiktoken file");
  // Every split of a token into two known tokens is a merge ranked by the token's own rank: merging the pair
  // whose concatenation ranks lowest is exactly tiktoken's rule.
  for (const auto& [bytes, id] : impl->vocab) {
    for (size_t k = 1; k < bytes.size(); ++k) {
      const auto l = impl->vocab.find(bytes.substr(0, k));
      if (l == impl->vocab.end()) continue;
      const auto r = impl->vocab.find(bytes.substr(k));
      if (r != impl->vocab.end()) impl->merges.emplace(pair_key(l->second, r->second), Merge{id, id});
    }
  }
  const auto specials = llama3_special_tokens();
  for (size_t i = 0; i < specials.size(); ++i) impl->add_token(max_rank + 1 + static_cast<int32_t>(i), specials[i], true);
  impl->regex = std::make_unique<Regex>(kLlama3Pattern, origin);
  impl->finish();
  return impl;
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path_or_dir) {
  fs::path path = path_or_dir;
  if (fs::is_directory(path)) {
    if (fs::exists(path / "tokenizer.json")) path /= "tokenizer.json";
    else if (fs::exists(path / "tokenizer.model")) path /= "tokenizer.model";
    else throw Error(ErrorKind::ModelLoad, path_or_dir + ": neither tokenizer.json nor tokenizer.model found");
  }
  const std::string text = read_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  // Sniff instead of trusting the extension: tokenizer.model is never JSON, tokenizer.json always an object.
  if (first != std::string::npos && text[first] == '{') return Tokenizer(Impl::load_hf_json(text, path.string()));
  return Tokenizer(Impl::load_tiktoken(text, path.string()));
}

Tokenizer Tokenizer::from_json_string(const std::string& json_text, const std::string& origin) {
  return Tokenizer(Impl::load_hf_json(json_text, origin));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  // Added tokens are cut out of the raw text first (leftmost, then longest); the text between them is
  // pre-tokenized and BPE'd on its own, as HF's AddedVocabulary does.
  size_t start = 0;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (impl_->added_by_first[static_cast<unsigned char>(text[pos])].empty()) continue;
    const auto id = impl_->added_at(text, pos, parse_special);
    if (!id) continue;
    impl_->encode_ordinary(text.substr(start, pos - start), out);
    out.push_back(*id);
    pos += impl_->id_bytes[*id].size() - 1;
    start = pos + 1;
  }
  impl_->encode_ordinary(text.substr(start), out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids)
    if (!(skip_special && is_special(id))) out += token_bytes(id);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->has_id.size() || !impl_->has_id[id])
    throw Error(ErrorKind::Runtime, "Tokenizer: token id " + std::to_string(id) + " is not in the vocabulary of " +
                                        impl_->origin + " (n_vocab " + std::to_string(n_vocab()) + ")");
  return impl_->id_bytes[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view text) const {
  const std::string key(text);
  if (const auto it = impl_->added.find(key); it != impl_->added.end()) return it->second;
  if (const auto it = impl_->vocab.find(key); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

int64_t Tokenizer::n_vocab() const { return static_cast<int64_t>(impl_->id_bytes.size()); }

TokenStreamDecoder::TokenStreamDecoder(const Tokenizer& tok, bool skip_special)
    : tok_(tok), skip_special_(skip_special) {}

std::string to_valid_utf8(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    size_t k = 1;  // bytes of the sequence that are well-formed so far
    if (len > 0)
      while (k < len && i + k < s.size() && byte(i + k) >= (k == 1 ? lo : 0x80) && byte(i + k) <= (k == 1 ? hi : 0xBF)) ++k;
    if (len > 0 && k == len) out.append(s.substr(i, len));
    else out += kReplacement;
    i += k;
  }
  return out;
}

std::string TokenStreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return "";
  pending_ += tok_.token_bytes(id);
  // Hold back a trailing lead byte whose continuation bytes have not all arrived yet.
  size_t lead = pending_.size();
  for (size_t k = 0; k < 4 && lead > 0; ++k) {
    --lead;
    if ((static_cast<unsigned char>(pending_[lead]) & 0xC0) != 0x80) break;
  }
  size_t keep = 0;
  if (lead < pending_.size()) {
    const auto c = static_cast<unsigned char>(pending_[lead]);
    const size_t need = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    const size_t have = pending_.size() - lead;
    if (need > have) keep = have;
  }
  std::string ready = to_valid_utf8(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string TokenStreamDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return to_valid_utf8(rest);
}

std::string make_byte_level_tokenizer_json(int n_merges) {
  if (n_merges < 0) throw Error(ErrorKind::Usage, "make_byte_level_tokenizer_json: n_merges must be >= 0");
  // Common English chunks, most frequent first ("Ġ" = a leading space). A chunk whose prefix is not a token
  // yet gets that prefix merged first; after the list, lowercase strings in length-then-alphabetical order
  // keep the supply unbounded and deterministic.
  static const char* kChunks[] = {
      " t", "he", "in", " a", "er", "on", " the", "re", "at", "en", "nd", " s", "or", "es", " o", "is", " w",
      "an", "ed", "it", " c", "ing", " f", " b", "ar", " p", "ou", " of", "al", " m", "le", " and", "as", "ic",
      " to", "ion", "ent", " in", " d", "st", " h", "ro", "ll", "om", "ve", "ly", " l", " th", "th", "ch", "ct",
      "ce", "se", "ur", "id", "et", "ow", "ut", "ot", " n", " re", " is", " be", " that", " for",
      "ation", " you", " it", " with", " on", "ter", "ers", " as", " was", "ight", " he", " I", " T",
      " A", " S", " C", " we", " are", " this", " or", " by", " from", " an", " at", " not", " have"};
  const auto& bu = byte_unicode();
  auto level = [&](const std::string& bytes) { return bytes_to_byte_level(bytes); };

  nlohmann::ordered_json vocab = nlohmann::ordered_json::object(), merges = nlohmann::ordered_json::array();
  std::unordered_map<std::string, int> have;  // raw bytes → id
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, bu.byte_to_cp[b]);
    vocab[s] = b;
    have[std::string(1, static_cast<char>(b))] = b;
  }
  int next_id = 256;
  // Adds `chunk` (and any missing prefix) as "prefix + last byte" merges until n_merges are made.
  std::function<void(const std::string&)> add = [&](const std::string& chunk) {
    if (next_id - 256 >= n_merges || have.count(chunk) || chunk.size() < 2) return;
    const std::string prefix = chunk.substr(0, chunk.size() - 1), last = chunk.substr(chunk.size() - 1);
    add(prefix);
    if (next_id - 256 >= n_merges) return;
    merges.push_back({level(prefix), level(last)});
    vocab[level(chunk)] = next_id;
    have[chunk] = next_id++;
  };
  for (const char* c : kChunks) add(c);
  for (size_t len = 2; next_id - 256 < n_merges; ++len) {  // "aa".."zz", then "aaa".., each prefix first
    std::string s(len, 'a');
    while (next_id - 256 < n_merges) {
      add(s);
      size_t i = len;
      while (i > 0 && s[i - 1] == 'z') s[--i] = 'a';
      if (i == 0) break;
      ++s[i - 1];
    }
  }

  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  const auto specials = llama3_special_tokens();
  for (size_t i = 0; i < specials.size(); ++i)
    added.push_back({{"id", next_id + static_cast<int>(i)}, {"content", specials[i]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}});

  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", kLlama3Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"},        {"dropout", nullptr},       {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},    {"byte_fallback", false},   {"ignore_merges", true},
                {"vocab", vocab},       {"merges", merges}};
  return j.dump();
}

std::string with_added_special_token(const std::string& tokenizer_json, const std::string& content, int64_t id) {
  auto j = nlohmann::ordered_json::parse(tokenizer_json);
  auto& added = j["added_tokens"];
  if (!added.is_array()) added = nlohmann::ordered_json::array();
  for (const auto& t : added)
    if (t.value("id", int64_t(-1)) == id || t.value("content", std::string()) == content)
      throw Error(ErrorKind::Usage, "tokenizer already has token id " + std::to_string(id) + " or \"" + content + "\"");
  added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                   {"normalized", false}, {"special", true}});
  return j.dump();
}

}  // namespace llama_mm
