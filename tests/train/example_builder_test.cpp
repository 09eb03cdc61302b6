// Tests train/example_builder's text view (text_model stages): conversations alone, no media read; an image sample
// keeps its media token, an audio sample's user turn holds its transcript, a text sample uses the Llama 3.1
// template; targets are the assistant turn only. Outside a text_model stage a text-only sample is refused.
#include "llm/error.h"
#include "llm/llm.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>

namespace llama_mm::train {
namespace {

class ExampleBuilderText : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("example_builder_test");
    auto r = test::run_cli("init-model --arch mllama --preset tiny --seed 3 -o '" + (*dir_ / "base").string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static Tokenizer tokenizer() { return Tokenizer::from_file((*dir_ / "base").string()); }
  static test::TempDir* dir_;
};
test::TempDir* ExampleBuilderText::dir_ = nullptr;

Sample sample(MediaKind kind, const std::string& media, const std::string& prompt, const std::string& answer) {
  Sample s;
  s.kind = kind;
  s.media = media;
  s.turns = {{"user", prompt}, {"assistant", answer}};
  s.origin = "m.jsonl:1";
  return s;
}

// The text of the learned tokens, and of the prompt before them.
std::pair<std::string, std::string> split(const Tokenizer& tok, const Example& ex) {
  std::vector<int32_t> prompt, learned;
  for (size_t i = 0; i < ex.tokens.size(); ++i) {
    if (i > 0 && ex.targets[i - 1] != kIgnoreTarget) learned.push_back(static_cast<int32_t>(ex.tokens[i]));
    else if (learned.empty()) prompt.push_back(static_cast<int32_t>(ex.tokens[i]));
  }
  return {tok.decode(prompt), tok.decode(learned)};
}

TEST_F(ExampleBuilderText, TextOnlyViewReadsNoMediaAndLearnsTheAnswer) {
  const auto tok = tokenizer();
  ExampleBuilderOptions o;
  o.image_token = 512;  // the tiny preset's <|image|>
  o.text_only = true;
  ExampleBuilder builder(tok, o);
  // An image that does not exist: the text view never reads it, and keeps the media token in the prompt.
  auto ex = builder.build(sample(MediaKind::Image, "/nonexistent.jpg", "", "a red cat"));
  EXPECT_EQ(ex.kind, MediaKind::Text);
  EXPECT_EQ(std::count(ex.tokens.begin(), ex.tokens.end(), 512), 1);
  auto [prompt, learned] = split(tok, ex);
  EXPECT_NE(prompt.find("Describe this image in one sentence."), std::string::npos) << prompt;
  EXPECT_EQ(learned, "a red cat<|eot_id|>");
  // An audio clip: the transcript in place of the speech, under the transcription system prompt.
  ex = builder.build(sample(MediaKind::Audio, "/nonexistent.wav", "", "three blue stars"));
  EXPECT_EQ(ex.kind, MediaKind::Text);
  std::tie(prompt, learned) = split(tok, ex);
  EXPECT_NE(prompt.find("Repeat after me in English:"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("user<|end_header_id|>\n\nthree blue stars<|eot_id|>"), std::string::npos) << prompt;
  EXPECT_EQ(learned, "three blue stars<|eot_id|>");
  // A text conversation: the plain template, no media token.
  ex = builder.build(sample(MediaKind::Text, "", "sky?", "blue"));
  EXPECT_EQ(std::count(ex.tokens.begin(), ex.tokens.end(), 512), 0);
  std::tie(prompt, learned) = split(tok, ex);
  EXPECT_NE(prompt.find("user<|end_header_id|>\n\nsky?<|eot_id|>"), std::string::npos) << prompt;
  EXPECT_EQ(learned, "blue<|eot_id|>");
  // Outside a text_model stage, a text sample has nothing to train.
  o.text_only = false;
  ExampleBuilder adapters(tok, o);
  try {
    adapters.build(sample(MediaKind::Text, "", "sky?", "blue"));
    FAIL() << "a text sample built for an adapter stage";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("m.jsonl:1: a text-only sample teaches only the LLM"), std::string::npos);
  }
}

}  // namespace
}  // namespace llama_mm::train
