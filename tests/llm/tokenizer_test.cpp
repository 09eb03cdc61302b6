// tests/llm/tokenizer_test.cpp: llm/tokenizer.cpp against mllama-spec.md §5.1-5.2 and an independent
// implementation (tests/fixtures/tokenizer/llama31_parity.json, written by scripts/fixtures/gen_tokenizer_fixture.mjs
// with @lenml/tokenizers). Needs the npm assets of scripts/setup.sh; their absence fails, never skips.
#include "llm/tokenizer.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

namespace llama_mm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

constexpr int32_t kBos = 128000, kEos = 128001, kEot = 128009;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::string base64(const std::string& bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? abc[v & 63] : '=';
  }
  return out;
}

template <class Fn>
Error expect_error(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected llama_mm::Error";
  return Error(ErrorKind::Runtime, "");
}

struct Case {
  std::string text;
  std::vector<int32_t> ids, ids_plain;
};

// The real Llama 3.1 tokenizer and the parity cases, loaded once for the whole binary.
class TokenizerLlama31 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path path = test::llama31_tokenizer_json();
    if (!fs::exists(path)) return;
    tok_ = new Tokenizer(Tokenizer::from_file(path.string()));
    const auto j = nlohmann::json::parse(slurp(test::fixture("tokenizer/llama31_parity.json")));
    for (const auto& c : j.at("cases"))
      cases_.push_back({c.at("text"), c.at("ids").get<std::vector<int32_t>>(), c.at("ids_plain").get<std::vector<int32_t>>()});
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(tok_, nullptr) << test::llama31_tokenizer_json() << " is missing: run scripts/setup.sh";
  }
  const Tokenizer& tok() const { return *tok_; }

  static Tokenizer* tok_;
  static std::vector<Case> cases_;
};
Tokenizer* TokenizerLlama31::tok_ = nullptr;
std::vector<Case> TokenizerLlama31::cases_;

TEST_F(TokenizerLlama31, SpecVectors) {
  // Meta test_tokenizer.py: bos + "This is a test sentence." + eos.
  std::vector<int32_t> ids = {kBos};
  for (int32_t id : tok().encode("This is a test sentence.")) ids.push_back(id);
  ids.push_back(kEos);
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 2028, 374, 264, 1296, 11914, 13, 128001}));
  EXPECT_EQ(tok().encode("This is a response."), (std::vector<int32_t>{2028, 374, 264, 2077, 13}));
  EXPECT_EQ(tok().encode("user"), std::vector<int32_t>{882});
  EXPECT_EQ(tok().encode("system"), std::vector<int32_t>{9125});
  EXPECT_EQ(tok().encode("assistant"), std::vector<int32_t>{78191});
  EXPECT_EQ(tok().encode("\n\n"), std::vector<int32_t>{271});
  // HF test_processor_mllama.py vector; <|image|> (128256) is not in the 3.1 tokenizer, so another special token
  // stands in for it: the text around it, and so every other id, is unchanged.
  const std::string prompt =
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nDescribe this image in two sentences"
      "<|reserved_special_token_0|> Test sentence   <|reserved_special_token_0|>ok\n<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(tok().encode(prompt, /*parse_special=*/true),
            (std::vector<int32_t>{128000, 128006, 882, 128007, 271, 75885, 420, 2217, 304, 1403, 23719, 128002, 3475,
                                  11914, 262, 128002, 564, 198, 128009, 128006, 78191, 128007, 271}));
}

TEST_F(TokenizerLlama31, FixtureParity) {
  ASSERT_GE(cases_.size(), 300u);
  int mismatches = 0;
  for (const Case& c : cases_) {
    const auto ids = tok().encode(c.text, /*parse_special=*/true);
    const auto plain = tok().encode(c.text, /*parse_special=*/false);
    const bool ok = ids == c.ids && plain == c.ids_plain && tok().decode(ids) == c.text && tok().decode(plain) == c.text;
    if (!ok && ++mismatches <= 10) {
      ADD_FAILURE() << "text " << nlohmann::json(c.text).dump() << "\n  ids       " << nlohmann::json(ids).dump()
                    << "\n  expected  " << nlohmann::json(c.ids).dump() << "\n  plain     "
                    << nlohmann::json(plain).dump() << "\n  expected  " << nlohmann::json(c.ids_plain).dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases_.size() << " cases";
}

TEST_F(TokenizerLlama31, SpecialTextIsOrdinaryWithoutParseSpecial) {
  EXPECT_EQ(tok().encode("<|eot_id|>", true), std::vector<int32_t>{kEot});
  EXPECT_EQ(tok().encode("<|begin_of_text|>hi", true), (std::vector<int32_t>{kBos, 6151}));
  for (const char* text : {"<|eot_id|>", "<|begin_of_text|>hi", "a<|start_header_id|>b"}) {
    const auto ids = tok().encode(text, false);
    EXPECT_GT(ids.size(), 2u) << text;
    for (int32_t id : ids) {
      EXPECT_LT(id, kBos) << text;
      EXPECT_FALSE(tok().is_special(id)) << text;
    }
    EXPECT_EQ(tok().decode(ids), text);
  }
}

TEST_F(TokenizerLlama31, Lookups) {
  EXPECT_EQ(tok().n_vocab(), 128256);
  EXPECT_EQ(tok().token_id("<|eot_id|>"), kEot);
  EXPECT_EQ(tok().token_id("<|start_header_id|>"), 128006);
  EXPECT_EQ(tok().token_id("Hello"), 9906);
  EXPECT_EQ(tok().token_id(" "), 220);
  EXPECT_FALSE(tok().token_id("no such token here").has_value());
  EXPECT_TRUE(tok().is_special(kEot));
  EXPECT_FALSE(tok().is_special(9906));
  EXPECT_FALSE(tok().is_special(-1));
  EXPECT_EQ(tok().token_bytes(kEot), "<|eot_id|>");
  EXPECT_EQ(tok().token_bytes(220), " ");
  EXPECT_EQ(tok().token_bytes(198), "\n");
  EXPECT_THROW(tok().token_bytes(-1), Error);
  EXPECT_THROW(tok().token_bytes(128256), Error);
  const std::vector<int32_t> ids = {kBos, 9906, kEot};
  EXPECT_EQ(tok().decode(ids), "<|begin_of_text|>Hello<|eot_id|>");
  EXPECT_EQ(tok().decode(ids, /*skip_special=*/true), "Hello");
}

TEST_F(TokenizerLlama31, StreamDecoderHoldsBackPartialCharacters) {
  const std::string text = "表情：👨‍👩‍👧‍👦🇯🇵👍🏽 🫠 和谐 齉龘 ꙮ 𝔘𝔫𝔦 done";
  const auto ids = tok().encode(text);
  // The test only means something if some token ends inside a character.
  EXPECT_TRUE(std::any_of(ids.begin(), ids.end(), [&](int32_t id) { return !valid_utf8(tok().token_bytes(id)); }));
  TokenStreamDecoder stream(tok());
  std::string all;
  int held = 0;
  for (int32_t id : ids) {
    const std::string chunk = stream.push(id);
    EXPECT_TRUE(valid_utf8(chunk)) << "after id " << id;
    held += chunk.size() < tok().token_bytes(id).size();
    all += chunk;
  }
  all += stream.flush();
  EXPECT_EQ(all, text);
  EXPECT_GT(held, 0);

  TokenStreamDecoder skipping(tok(), /*skip_special=*/true);
  EXPECT_EQ(skipping.push(kBos), "");
  EXPECT_EQ(skipping.push(9906), "Hello");
  EXPECT_EQ(skipping.flush(), "");
}

TEST_F(TokenizerLlama31, LongInputsAndConcurrency) {
  const std::string spaces = std::string(100000, ' ') + "x", letters(20000, 'a');
  EXPECT_EQ(tok().decode(tok().encode(spaces)), spaces);
  EXPECT_EQ(tok().decode(tok().encode(letters)), letters);
  std::string prompt;  // a prompt of several thousand tokens
  for (size_t i = 0; i < 40; ++i) prompt += cases_[i % cases_.size()].text + "\n";
  const auto ref = tok().encode(prompt, true);
  // A Tokenizer is immutable: concurrent encodes agree with the serial one.
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 5; ++r) same[t] += tok().encode(prompt, true) == ref;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(same, std::vector<int>(4, 5));
}

// Meta's tokenizer.model holds the same 128000 ranks; write it from the JSON vocabulary and compare.
TEST_F(TokenizerLlama31, TiktokenModelMatchesJson) {
  TempDir dir("llama_mm_tiktoken");
  std::string model;
  for (int32_t id = 0; id < kBos; ++id) model += base64(tok().token_bytes(id)) + " " + std::to_string(id) + "\n";
  write_file(dir / "tokenizer.model", model);
  const Tokenizer tt = Tokenizer::from_file(dir.path().string());  // a directory with only tokenizer.model

  EXPECT_EQ(tt.n_vocab(), 128256);
  // Meta's special-token names (mllama-spec.md §5.1).
  EXPECT_EQ(tt.token_id("<|begin_of_text|>"), 128000);
  EXPECT_EQ(tt.token_id("<|finetune_right_pad_id|>"), 128004);
  EXPECT_EQ(tt.token_id("<|step_id|>"), 128005);
  EXPECT_EQ(tt.token_id("<|eom_id|>"), 128008);
  EXPECT_EQ(tt.token_id("<|eot_id|>"), 128009);
  EXPECT_EQ(tt.token_id("<|python_tag|>"), 128010);
  EXPECT_EQ(tt.token_id("<|reserved_special_token_2|>"), 128011);
  EXPECT_EQ(tt.token_id("<|reserved_special_token_246|>"), 128255);
  EXPECT_TRUE(tt.is_special(128255));

  int mismatches = 0;
  for (const Case& c : cases_) {
    // Special-token names differ between the two files, so parse_special=true is compared where none occurs.
    bool ok = tt.encode(c.text, false) == c.ids_plain;
    if (c.text.find("<|") == std::string::npos) ok = ok && tt.encode(c.text, true) == c.ids;
    if (!ok && ++mismatches <= 10) ADD_FAILURE() << "tiktoken path differs on " << nlohmann::json(c.text).dump();
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(tt.encode("<|eot_id|>hi", true), (std::vector<int32_t>{kEot, 6151}));
}

TEST(TokenizerErrors, NameTheFileAndKey) {
  TempDir dir("llama_mm_tokerr");
  const auto load = [](const fs::path& p) { return [p] { Tokenizer::from_file(p.string()); }; };

  Error e = expect_error(load(dir / "absent.json"));
  EXPECT_EQ(e.kind(), ErrorKind::ModelLoad);
  EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos) << e.what();

  e = expect_error(load(dir.path()));  // an empty directory
  EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();

  write_file(dir / "bad.json", "{\"model\": {\"type\": \"BPE\",");
  e = expect_error(load(dir / "bad.json"));
  EXPECT_EQ(e.kind(), ErrorKind::ModelLoad);
  EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("invalid JSON"), std::string::npos) << e.what();

  write_file(dir / "nomodel.json", "{\"added_tokens\": []}");
  e = expect_error(load(dir / "nomodel.json"));
  EXPECT_NE(std::string(e.what()).find("nomodel.json"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("\"model\""), std::string::npos) << e.what();

  write_file(dir / "wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  e = expect_error(load(dir / "wordpiece.json"));
  EXPECT_NE(std::string(e.what()).find("wordpiece.json"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("model.type"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("WordPiece"), std::string::npos) << e.what();

  auto j = nlohmann::json::parse(make_byte_level_tokenizer_json(0));
  j["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "zz"})});
  e = expect_error([&] { Tokenizer::from_json_string(j.dump(), "merges.json"); });
  EXPECT_NE(std::string(e.what()).find("merges.json: model.merges[0]"), std::string::npos) << e.what();

  j = nlohmann::json::parse(make_byte_level_tokenizer_json(0));
  j["model"]["vocab"] = 7;
  e = expect_error([&] { Tokenizer::from_json_string(j.dump(), "vocab.json"); });
  EXPECT_NE(std::string(e.what()).find("model.vocab"), std::string::npos) << e.what();

  write_file(dir / "tokenizer.model", "IQ== 0\nnot-base64! 1\n");
  e = expect_error(load(dir / "tokenizer.model"));
  EXPECT_NE(std::string(e.what()).find("tokenizer.model:2"), std::string::npos) << e.what();
}

TEST(TokenizerByteLevel, SpecialsFollowTheByteTokens) {
  const Tokenizer tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json(0), "byte_level");
  EXPECT_EQ(tok.n_vocab(), 512);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tok.token_bytes(b), std::string(1, static_cast<char>(b)));
  EXPECT_EQ(tok.token_id("<|begin_of_text|>"), 256);
  EXPECT_EQ(tok.token_id("<|finetune_right_pad_id|>"), 256 + 4);
  EXPECT_EQ(tok.token_id("<|eot_id|>"), 256 + 9);
  EXPECT_EQ(tok.token_id("<|python_tag|>"), 256 + 10);
  EXPECT_EQ(tok.token_id("<|reserved_special_token_246|>"), 511);
  EXPECT_TRUE(tok.is_special(256));
  EXPECT_FALSE(tok.is_special(255));
  EXPECT_EQ(tok.encode("hi"), (std::vector<int32_t>{'h', 'i'}));
  EXPECT_EQ(tok.encode("<|eot_id|>", true), std::vector<int32_t>{265});
}

TEST(TokenizerByteLevel, MergesAreDeterministicAndRoundTrip) {
  const std::string json = make_byte_level_tokenizer_json(300);
  EXPECT_EQ(json, make_byte_level_tokenizer_json(300));
  const Tokenizer tok = Tokenizer::from_json_string(json, "byte_level_300");
  EXPECT_EQ(tok.n_vocab(), 256 + 300 + 256);
  EXPECT_EQ(tok.token_id("<|begin_of_text|>"), 556);
  const auto the = tok.token_id(" the");
  ASSERT_TRUE(the.has_value());
  EXPECT_GE(*the, 256);
  EXPECT_EQ(tok.encode(" the"), std::vector<int32_t>{*the});
  EXPECT_LT(tok.encode("the cat and the hat").size(), 19u);

  // The legacy "a b" merge strings load to the same tokenizer.
  auto j = nlohmann::json::parse(json);
  for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const Tokenizer legacy = Tokenizer::from_json_string(j.dump(), "legacy_merges");

  const std::vector<std::string> pieces = {"the", " cat", "\t", "\n", " 123", "  ", "é", "ö", "中", "😀", "'s", "!"};
  std::mt19937 rng(7);
  for (int n = 0; n < 200; ++n) {  // odd n: arbitrary bytes; even n: text-like UTF-8
    std::string s;
    for (size_t k = rng() % 64; k > 0; --k)
      s += n % 2 ? std::string(1, static_cast<char>(rng() % 256)) : pieces[rng() % pieces.size()];
    const auto ids = tok.encode(s);
    EXPECT_EQ(tok.decode(ids), s);  // any bytes, valid UTF-8 or not
    EXPECT_EQ(legacy.encode(s), ids);
  }
  // The supply of merges does not run out.
  EXPECT_EQ(Tokenizer::from_json_string(make_byte_level_tokenizer_json(2000)).n_vocab(), 256 + 2000 + 256);
}

}  // namespace
}  // namespace llama_mm

namespace llama_mm {
namespace {

TEST(ValidUtf8, MaximalSubpartsBecomeOneReplacementEach) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(to_valid_utf8("plain \xC3\xA9 \xF0\x9F\x98\x80"), "plain \xC3\xA9 \xF0\x9F\x98\x80");
  // Unicode 15 Table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  EXPECT_EQ(to_valid_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), r + r + r);  // a surrogate: E D is a lead whose next byte is out of range
  EXPECT_EQ(to_valid_utf8("\xE2\x82"), r);             // cut short at the end
  // The stream decoder never emits ill-formed text, even for byte tokens that cannot form a character.
  const auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  TokenStreamDecoder d(tok);
  std::string text;
  for (int32_t id : {0x61, 0x96, 0xE2, 0x82, 0x62}) text += d.push(id);  // byte ids are the bytes
  text += d.flush();
  EXPECT_EQ(text, to_valid_utf8(text));
  EXPECT_NE(text.find(r), std::string::npos);
}

}  // namespace
}  // namespace llama_mm
