// Tests for cli/bench_command.cpp: the figures are present and consistent (never asserted on speed).
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace llama_mm {
namespace {

TEST(BenchCommand, GenerateReportsConsistentFigures) {
  auto r = test::run_cli("bench generate --preset tiny --dtype f32 -p 16 -n 8 -t 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_prompt"], 16);
  EXPECT_EQ(j["n_gen"], 8);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["dtype"], "float32");
  EXPECT_GT(j["prefill_tok_per_s"].get<double>(), 0);
  EXPECT_GT(j["machine_bandwidth_gbs"].get<double>(), 0);
  // The tiny preset reads every layer weight, the final norm and the tied embedding once per token.
  EXPECT_DOUBLE_EQ(j["weight_bytes_per_token"].get<double>(), 4.0 * (106816 - 0));
  EXPECT_NEAR(j["decode_bandwidth_gbs"].get<double>(),
              j["decode_tok_per_s"].get<double>() * j["weight_bytes_per_token"].get<double>() / 1e9, 1e-9);
  EXPECT_EQ(test::run_cli("bench generate -p 4").exit_code, 2);  // neither model nor preset
  // Short prompts work too (the warm-up does not depend on the prompt length).
  EXPECT_EQ(test::run_cli("bench generate --preset tiny -p 1 -n 1 -t 1").exit_code, 0);
}

}  // namespace
}  // namespace llama_mm
