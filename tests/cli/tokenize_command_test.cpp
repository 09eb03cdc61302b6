// Tests for cli/tokenize_command.cpp on the real Llama 3.1 tokenizer.
#include "test_util.h"

#include <gtest/gtest.h>

namespace llama_mm {
namespace {

using test::run_cli;

std::string tokenizer_arg() {
  const auto p = test::llama31_tokenizer_json();
  EXPECT_TRUE(std::filesystem::exists(p)) << p << " is missing: run scripts/setup.sh";
  return "--tokenizer '" + p.string() + "'";
}

TEST(TokenizeCommand, IdsAndRoundTrip) {
  auto r = run_cli("tokenize " + tokenizer_arg(), "This is a test sentence.");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[2028,374,264,1296,11914,13]\n");
  auto back = run_cli("detokenize " + tokenizer_arg(), r.out);
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, "This is a test sentence.");
}

TEST(TokenizeCommand, SpecialTokensOnlyWhenAsked) {
  auto plain = run_cli("tokenize " + tokenizer_arg(), "<|eot_id|>");
  auto special = run_cli("tokenize --parse-special " + tokenizer_arg(), "<|eot_id|>");
  EXPECT_EQ(special.out, "[128009]\n");
  EXPECT_NE(plain.out, special.out);
  EXPECT_EQ(plain.out.find("128009"), std::string::npos);
  EXPECT_EQ(run_cli("detokenize --skip-special " + tokenizer_arg(), "[128000, 9906]").out, "Hello");
}

TEST(TokenizeCommand, BadInputExitCodes) {
  auto r = run_cli("detokenize " + tokenizer_arg(), "[1, \"x\"]");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("element 1"), std::string::npos) << r.err;
  EXPECT_EQ(run_cli("detokenize " + tokenizer_arg(), "not json").exit_code, 4);
  EXPECT_EQ(run_cli("detokenize " + tokenizer_arg(), "[999999999]").exit_code, 4);
  r = run_cli("tokenize --tokenizer /nonexistent/tokenizer.json", "hi");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("/nonexistent/tokenizer.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace llama_mm
