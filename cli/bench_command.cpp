// cli/bench_command.cpp: `llama-mm bench generate`: prefill/decode throughput and bandwidth use.
#include "bench/bench.h"
#include "cli/commands.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {
struct BenchOptions {
  bench::GenerateBenchParams p;
  std::string dtype;
  bool json = false;
};

int run_bench_generate(const BenchOptions& o) {
  auto p = o.p;
  if (p.model_dir.empty() == p.preset.empty())
    throw Error(ErrorKind::Usage, "bench generate: give exactly one of -m/--model and --preset");
  if (p.n_prompt < 1 || p.n_gen < 0)
    throw Error(ErrorKind::Usage, "bench generate: -p must be >= 1 and -n >= 0");
  if (!o.dtype.empty()) p.dtype = parse_dtype(o.dtype);
  const auto r = bench::run_generate_bench(p);
  if (o.json) {
    nlohmann::json j = {{"model", r.model},
                        {"dtype", r.dtype},
                        {"n_params", r.n_params},
                        {"threads", r.threads},
                        {"n_prompt", r.n_prompt},
                        {"n_gen", r.n_gen},
                        {"prefill_tok_per_s", r.prefill_tok_per_s},
                        {"decode_tok_per_s", r.decode_tok_per_s},
                        {"weight_bytes_per_token", r.weight_bytes_per_token},
                        {"machine_bandwidth_gbs", r.machine_bandwidth_gbs},
                        {"decode_bandwidth_gbs", r.decode_bandwidth_gbs},
                        {"bandwidth_percent", r.bandwidth_percent},
                        {"libtorch", compat::torch_version()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model:            %s (%.3f B params, %s), %d threads, LibTorch %s\n", r.model.c_str(),
              r.n_params / 1e9, r.dtype.c_str(), r.threads, compat::torch_version().c_str());
  std::printf("prefill:          %d tokens  %10.2f tok/s\n", r.n_prompt, r.prefill_tok_per_s);
  std::printf("decode:           %d tokens  %10.2f tok/s\n", r.n_gen, r.decode_tok_per_s);
  std::printf("weights/token:    %.1f MB read per decode step\n", r.weight_bytes_per_token / 1e6);
  std::printf("memory bandwidth: %.2f GB/s measured; decode uses %.2f GB/s = %.1f%%\n", r.machine_bandwidth_gbs,
              r.decode_bandwidth_gbs, r.bandwidth_percent);
  return 0;
}
}  // namespace

void add_bench_command(CLI::App& app, Action& action) {
  auto* bench_cmd = app.add_subcommand("bench", "Benchmarks (figures on stdout)");
  bench_cmd->require_subcommand(1);
  auto o = std::make_shared<BenchOptions>();
  auto* gen = bench_cmd->add_subcommand("generate", "Prefill and decode throughput of the text decoder");
  gen->add_option("-m,--model", o->p.model_dir, "Model directory");
  gen->add_option("--preset", o->p.preset, "Random-weight preset instead of a model: tiny, 1b, 8b");
  gen->add_option("--dtype", o->dtype, "f32 or bf16 (default: checkpoint dtype; bf16 for presets)");
  gen->add_option("-p,--n-prompt", o->p.n_prompt, "Prompt tokens")->capture_default_str();
  gen->add_option("-n,--n-gen", o->p.n_gen, "Generated tokens")->capture_default_str();
  gen->add_option("-t,--threads", o->p.threads, "CPU threads (0: all cores)")->capture_default_str();
  gen->add_flag("--json", o->json, "Print the figures as JSON");
  gen->callback([o, &action] { action = [o] { return run_bench_generate(*o); }; });
}

}  // namespace llama_mm::cli
