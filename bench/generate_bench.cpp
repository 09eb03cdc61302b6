// bench/generate_bench.cpp: prefill and decode throughput of the Llama decoder, and decode's share of
// the machine's memory bandwidth (decode reads every weight once per token).
#include "bench/bench.h"

#include <chrono>
#include <iostream>
#include <map>

namespace llama_mm::bench {

namespace {

// Prefill of n_prompt random tokens, then n_gen greedy decode steps, on the current thread setting.
void measure(LlamaForCausalLMImpl& model, const GenerateBenchParams& p, GenerateBenchResult& r) {
  c10::InferenceMode inference;  // as generate() runs (llm/generator.cpp)
  const auto& cfg = model.config();
  const auto device = model.lm_head_weight().device();
  // The clock is read after the device has finished (CUDA work is queued asynchronously).
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  auto gen = at::detail::createCPUGenerator(p.seed);
  auto prompt = torch::randint(0, cfg.vocab_size, {1, p.n_prompt}, gen, torch::kInt64).to(device);
  KVCache cache(cfg, 1, p.n_prompt + p.n_gen + 1, model.dtype(), device);
  std::cerr << "bench: " << r.format << ", " << r.threads << " threads: warm-up\n";
  {
    KVCache warm(cfg, 1, 16, model.dtype(), device);
    auto tokens = torch::randint(0, cfg.vocab_size, {1, 9}, gen, torch::kInt64).to(device);
    model.forward(tokens.narrow(1, 0, 8), &warm);  // a small prefill, then one decode step
    model.forward(tokens.narrow(1, 8, 1), &warm);
    sync();
  }
  std::cerr << "bench: prefill of " << p.n_prompt << " tokens\n";
  auto t0 = std::chrono::steady_clock::now();
  auto logits = model.forward(prompt, &cache);
  sync();
  r.prefill_tok_per_s = p.n_prompt / seconds_since(t0);

  // On CPU the machine's bandwidth is measured just before and just after the decode and averaged: on a shared
  // VM it moves by 10-30 % from minute to minute, so a figure from the start of the run can misstate the share.
  double before = 0;
  if (device.is_cpu()) before = measure_read_bandwidth(r.threads);
  std::cerr << "bench: decode of " << p.n_gen << " tokens\n";
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < p.n_gen; ++i) {
    auto next = logits[0][-1].argmax().view({1, 1});
    logits = model.forward(next, &cache);
    if ((i + 1) % 32 == 0) std::cerr << "bench: " << (i + 1) << "/" << p.n_gen << " tokens\n";
  }
  sync();
  r.decode_tok_per_s = p.n_gen / seconds_since(t0);
  if (device.is_cpu()) r.machine_bandwidth_gbs = (before + measure_read_bandwidth(r.threads)) / 2;
  r.decode_bandwidth_gbs = r.decode_tok_per_s * r.weight_bytes_per_token / 1e9;
  r.bandwidth_percent = 100.0 * r.decode_bandwidth_gbs / r.machine_bandwidth_gbs;

  for (int B : p.batch_rows) {
    std::cerr << "bench: batched decode, " << B << " sequences x " << p.n_gen << " steps\n";
    KVCache rows_cache(cfg, B, p.n_prompt + p.n_gen + 1, model.dtype(), device);
    std::vector<int64_t> rows(B), positions(B);
    for (int b = 0; b < B; ++b) rows[b] = b;
    auto ids = torch::randint(0, cfg.vocab_size, {B, 1}, gen, torch::kInt64).to(device);
    model.logits(model.hidden_rows(model.embed(ids), rows_cache, rows, std::vector<int64_t>(B, 0)), false);  // warm-up
    sync();
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < p.n_gen; ++i) {
      for (int b = 0; b < B; ++b) positions[b] = p.n_prompt + i;
      auto step_logits = model.logits(model.hidden_rows(model.embed(ids), rows_cache, rows, positions), false);
      ids = step_logits.argmax(-1).view({B, 1});
    }
    sync();
    r.batched_tok_per_s.push_back({B, double(B) * p.n_gen / seconds_since(t0)});
  }
}

}  // namespace

std::vector<GenerateBenchResult> run_generate_bench(const GenerateBenchParams& p) {
  torch::NoGradGuard no_grad;
  // At most one dtype, then q8 (quantizing is one-way, so it comes last).
  std::optional<torch::Dtype> dtype;
  bool q8 = false;
  for (size_t i = 0; i < p.formats.size(); ++i) {
    const auto f = parse_weight_format(p.formats[i]);
    if (f.q8) {
      if (i + 1 != p.formats.size()) throw Error(ErrorKind::Usage, "bench generate: q8 must be the last --dtype");
      q8 = true;
      if (i == 0) dtype = f.dtype;
    } else {
      if (i > 0) throw Error(ErrorKind::Usage, "bench generate: give one dtype, optionally followed by q8");
      dtype = f.dtype;
    }
  }
  const bool measure_unquantized = p.formats.empty() || !parse_weight_format(p.formats.front()).q8;

  const auto device = resolve_device(p.device);
  if (q8 && !device.is_cpu()) throw Error(ErrorKind::Usage, "bench generate: q8 is a CPU format; use --device cpu");
  configure_threads(0);
  LlamaForCausalLM model{nullptr};
  std::string what;
  if (!p.model_dir.empty()) {
    std::cerr << "bench: loading " << p.model_dir << "\n";
    model = load_llama(p.model_dir, dtype);
    model->to(device);
    what = p.model_dir;
  } else {
    const auto cfg = LlamaConfig::preset(p.preset);
    std::cerr << "bench: building random preset '" << p.preset << "' on " << device << "\n";
    model = LlamaForCausalLM(cfg, dtype.value_or(torch::kBFloat16));
    model->to(device);  // before the weights are drawn: on a GPU they are drawn there
    init_random_weights(*model, p.seed);
    model->eval();
    what = "preset " + p.preset;
  }

  std::map<int, double> bandwidth;  // GPU: per thread count, measured once (CPU: around each decode, in measure())
  std::vector<GenerateBenchResult> rows;
  auto run_all = [&](const std::string& format) {
    for (int t : p.threads) {
      GenerateBenchResult r;
      r.model = what;
      r.device = device.str();
      r.format = format;
      r.n_params = model->config().n_params();
      r.n_prompt = p.n_prompt;
      r.n_gen = p.n_gen;
      r.threads = configure_threads(t);
      r.weight_bytes_per_token = static_cast<double>(model->decode_weight_bytes());
      if (!device.is_cpu()) {
        if (!bandwidth.count(r.threads)) bandwidth[r.threads] = measure_device_copy_bandwidth(device);
        r.machine_bandwidth_gbs = bandwidth[r.threads];
      }
      measure(*model, p, r);
      rows.push_back(r);
    }
  };
  if (measure_unquantized) run_all(dtype_name(model->dtype()));
  if (q8) {
    std::cerr << "bench: quantizing to q8\n";
    model->quantize_q8();
    run_all("q8");
  }
  return rows;
}

}  // namespace llama_mm::bench
