// Tests for cli/bench_command.cpp: the figures are present and consistent (never asserted on speed).
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

namespace llama_mm {
namespace {

TEST(BenchCommand, GenerateReportsConsistentFigures) {
  auto r = test::run_cli("bench generate --preset tiny --dtype f32,q8 -p 16 -n 8 -t 1,2 --batch 1,3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 4u);  // every format x thread count, formats in the order given
  const char* formats[] = {"float32", "float32", "q8", "q8"};
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& j = rows[i];
    EXPECT_EQ(j["device"], "cpu");  // no --device: CUDA only where there is one (tests/test_main.cpp)
    EXPECT_EQ(j["format"], formats[i]);
    EXPECT_EQ(j["threads"], i % 2 == 0 ? 1 : 2);
    EXPECT_EQ(j["n_prompt"], 16);
    EXPECT_EQ(j["n_gen"], 8);
    EXPECT_GT(j["prefill_tok_per_s"].get<double>(), 0);
    EXPECT_GT(j["machine_bandwidth_gbs"].get<double>(), 0);
    EXPECT_NEAR(j["decode_bandwidth_gbs"].get<double>(),
                j["decode_tok_per_s"].get<double>() * j["weight_bytes_per_token"].get<double>() / 1e9, 1e-9);
    ASSERT_EQ(j["batched"].size(), 2u);
    EXPECT_EQ(j["batched"][1]["sequences"], 3);
    EXPECT_NEAR(j["batched"][1]["vs_one_stream"].get<double>(),
                j["batched"][1]["tok_per_s"].get<double>() / j["decode_tok_per_s"].get<double>(), 1e-9);
  }
  // The tiny preset reads every layer weight, the final norm and the tied embedding once per token: 106816 fp32
  // values; in q8 the 106496 projection weights are one byte each plus an fp16 scale per 32, the 320 norm
  // weights stay fp32.
  EXPECT_DOUBLE_EQ(rows[0]["weight_bytes_per_token"].get<double>(), 4.0 * 106816);
  EXPECT_DOUBLE_EQ(rows[2]["weight_bytes_per_token"].get<double>(), 106496 + 106496 / 32 * 2 + 320 * 4);
  EXPECT_EQ(test::run_cli("bench generate -p 4").exit_code, 2);  // neither model nor preset
  auto bad = test::run_cli("bench generate --preset tiny --dtype q8,bf16 -p 4 -n 1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("q8 must be the last"), std::string::npos) << bad.err;
  // Short prompts work too (the warm-up does not depend on the prompt length).
  EXPECT_EQ(test::run_cli("bench generate --preset tiny -p 1 -n 1 -t 1").exit_code, 0);
  // --device: named explicitly; an unknown device is a usage error naming the flag.
  auto cpu = test::run_cli("bench generate --preset tiny --device cpu -p 2 -n 1 -t 1 --json");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(nlohmann::json::parse(cpu.out)[0]["device"], "cpu");
  for (const char* d : {"tpu", "cuda:x"}) {
    auto r = test::run_cli(std::string("bench generate --preset tiny --device ") + d + " -p 2 -n 1");
    EXPECT_EQ(r.exit_code, 2) << d;
    EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
  }
}

TEST(BenchCommand, CudaDeviceIsRefusedWithoutAGpu) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a GPU";
  auto r = test::run_cli("bench generate --preset tiny --device cuda -p 2 -n 1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no CUDA device"), std::string::npos) << r.err;
}

TEST(BenchCommand, GenerateOnCudaReportsTheCopyBandwidth_CUDA) {
  auto r = test::run_cli("bench generate --preset tiny --device cuda -p 8 -n 4 --batch 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out)[0];
  EXPECT_EQ(j["device"], "cuda:0");
  EXPECT_GT(j["machine_bandwidth_gbs"].get<double>(), 100);  // HBM, not host memory
  EXPECT_GT(j["decode_tok_per_s"].get<double>(), 0);
  auto q8 = test::run_cli("bench generate --preset tiny --device cuda --dtype bf16,q8 -p 2 -n 1");
  EXPECT_EQ(q8.exit_code, 2);  // q8 kernels are CPU kernels
}

TEST(BenchCommand, TrainReportsConsistentFigures) {
  auto r = test::run_cli("bench train --preset tiny --batch 2 --seq 16 --tiles 2 --steps 1 -t 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["batch"], 2);
  EXPECT_EQ(j["seq"], 16);
  EXPECT_EQ(j["tiles"], 2);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_GT(j["n_trainable"].get<int64_t>(), 0);
  EXPECT_LT(j["n_trainable"].get<int64_t>(), j["n_params"].get<int64_t>());  // the LLM and vision encoder are frozen
  EXPECT_NEAR(j["samples_per_s"].get<double>(), 2 / (j["step_ms"].get<double>() / 1000), 1e-6);
  EXPECT_NEAR(j["mfu_percent"].get<double>(), 100 * j["achieved_gflops"].get<double>() / j["peak_gflops"].get<double>(), 1e-6);
  EXPECT_EQ(test::run_cli("bench train --preset huge").exit_code, 2);
  EXPECT_EQ(test::run_cli("bench train --tiles 3").exit_code, 2);
}

TEST(BenchCommand, CaptionVideoReportsSamplingAgainstDecodingEverything) {
  test::TempDir dir;
  const auto clip = (dir / "clip.mp4").string();
  test::make_counter_clip(clip, 300, "-c:v libx264 -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0");
  auto r = test::run_cli("bench caption --video --video-file '" + clip +
                         "' --frames 8 --preset tiny --tiles 1 --dtype f32 -t 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["all_frames"], 300);
  EXPECT_EQ(j["codec"], "h264");
  ASSERT_EQ(j["sampling"].size(), 3u);
  for (const auto& s : j["sampling"]) {
    EXPECT_EQ(s["frames"], 8) << s;
    EXPECT_LT(s["decoded"].get<int64_t>(), 300) << s;  // seeking, not decoding every frame
    EXPECT_NEAR(s["percent_of_decoding_all"].get<double>(), 100 * s["ms"].get<double>() / j["decode_all_ms"].get<double>(),
                1e-6);
  }
  EXPECT_EQ(j["tokens_per_frame"], 17);  // one tile of the tiny encoder
  EXPECT_GT(j["encoder_ms_per_frame"].get<double>(), 0);
  EXPECT_GT(j["aggregator_gflop"].get<double>(), 0);
  EXPECT_EQ(test::run_cli("bench caption --video -m /x --video-file '" + clip + "'").exit_code, 2);
}

TEST(BenchCommand, ServeReportsConsistentFigures) {
  test::TempDir dir("llama_mm_bench_serve");
  const std::string model = (dir.path() / "base").string();
  ASSERT_EQ(test::run_cli("init-model --arch llama --preset tiny --seed 2 -o '" + model + "'").exit_code, 0);
  auto r = test::run_cli("bench serve -m '" + model + "' --clients 1,3 -p 4 -n 6 --requests 2 -t 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["slots"], 3);
  ASSERT_EQ(j["rounds"].size(), 2u);
  for (const auto& round : j["rounds"]) {
    const int clients = round["clients"];
    EXPECT_EQ(round["requests"], clients * 2);
    EXPECT_EQ(round["tokens"], clients * 2 * 6);  // ignore_eos: every answer is -n tokens long
    EXPECT_GT(round["prompt_tokens"].get<int>(), 4);
    EXPECT_GT(round["tok_per_s"].get<double>(), 0);
    EXPECT_GT(round["loop_decode_tok_per_s"].get<double>(), 0);
    EXPECT_GT(round["prefill_s"].get<double>(), 0);
    EXPECT_LE(round["ttft_p50_ms"].get<double>(), round["ttft_p99_ms"].get<double>());
    EXPECT_LE(round["ttft_p99_ms"].get<double>(), round["latency_p99_ms"].get<double>());
    EXPECT_GE(round["mean_batch"].get<double>(), 1.0);
    EXPECT_LE(round["mean_batch"].get<double>(), clients);
  }
  EXPECT_DOUBLE_EQ(j["rounds"][0]["loop_decode_ratio_to_first_round"].get<double>(), 1.0);
  EXPECT_EQ(test::run_cli("bench serve --clients 1").exit_code, 2);  // no model
  EXPECT_EQ(test::run_cli("bench serve -m '" + model + "' --clients 0").exit_code, 2);
}

}  // namespace
}  // namespace llama_mm
