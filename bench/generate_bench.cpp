// bench/generate_bench.cpp: prefill and decode throughput of the Llama decoder, and decode's share of
// the machine's memory bandwidth (decode reads every weight once per token).
#include "bench/bench.h"

#include <chrono>
#include <iostream>

namespace llama_mm::bench {

GenerateBenchResult run_generate_bench(const GenerateBenchParams& p) {
  torch::NoGradGuard no_grad;
  GenerateBenchResult r;
  r.threads = configure_threads(p.threads);
  r.n_prompt = p.n_prompt;
  r.n_gen = p.n_gen;

  LlamaForCausalLM model{nullptr};
  if (!p.model_dir.empty()) {
    std::cerr << "bench: loading " << p.model_dir << "\n";
    model = load_llama(p.model_dir, p.dtype);
    r.model = p.model_dir;
  } else {
    const auto cfg = LlamaConfig::preset(p.preset);
    std::cerr << "bench: building random preset '" << p.preset << "'\n";
    model = LlamaForCausalLM(cfg, p.dtype.value_or(torch::kBFloat16));
    init_random_weights(*model, p.seed);
    model->eval();
    r.model = "preset " + p.preset;
  }
  const auto& cfg = model->config();
  r.dtype = dtype_name(model->dtype());
  r.n_params = cfg.n_params();
  r.weight_bytes_per_token = static_cast<double>(model->decode_weight_bytes());

  std::cerr << "bench: measuring memory bandwidth with " << r.threads << " threads\n";
  r.machine_bandwidth_gbs = measure_read_bandwidth(r.threads);

  auto gen = at::detail::createCPUGenerator(p.seed);
  auto prompt = torch::randint(0, cfg.vocab_size, {1, p.n_prompt}, gen, torch::kInt64);
  KVCache cache(cfg, 1, p.n_prompt + p.n_gen + 1, model->dtype(), torch::kCPU);

  std::cerr << "bench: warm-up\n";
  {
    KVCache warm(cfg, 1, 16, model->dtype(), torch::kCPU);
    auto tokens = torch::randint(0, cfg.vocab_size, {1, 9}, gen, torch::kInt64);
    model->forward(tokens.narrow(1, 0, 8), &warm);  // a small prefill, then one decode step
    model->forward(tokens.narrow(1, 8, 1), &warm);
  }
  std::cerr << "bench: prefill of " << p.n_prompt << " tokens\n";
  auto t0 = std::chrono::steady_clock::now();
  auto logits = model->forward(prompt, &cache);
  r.prefill_tok_per_s = p.n_prompt / seconds_since(t0);

  std::cerr << "bench: decode of " << p.n_gen << " tokens\n";
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < p.n_gen; ++i) {
    auto next = logits[0][-1].argmax().view({1, 1});
    logits = model->forward(next, &cache);
    if ((i + 1) % 32 == 0) std::cerr << "bench: " << (i + 1) << "/" << p.n_gen << " tokens\n";
  }
  r.decode_tok_per_s = p.n_gen / seconds_since(t0);
  r.decode_bandwidth_gbs = r.decode_tok_per_s * r.weight_bytes_per_token / 1e9;
  r.bandwidth_percent = 100.0 * r.decode_bandwidth_gbs / r.machine_bandwidth_gbs;
  return r;
}

}  // namespace llama_mm::bench
