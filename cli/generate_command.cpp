// cli/generate_command.cpp: `llama-mm generate`: text generation from a prompt, plain or chat-formatted.
#include "cli/commands.h"
#include "llm/llm.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct GenerateOptions {
  std::string model_dir, prompt, system, dtype;
  bool chat = false, json = false, parse_special = false;
  int threads = 0;
  GenerateParams gen = default_generate_params();
};

int run_generate(const GenerateOptions& o) {
  const int threads = configure_threads(o.threads);
  auto t0 = std::chrono::steady_clock::now();
  std::optional<torch::Dtype> dtype;
  if (!o.dtype.empty()) dtype = parse_dtype(o.dtype);
  auto model = load_llama(o.model_dir, dtype);
  auto tok = Tokenizer::from_file(o.model_dir);
  std::cerr << "generate: loaded " << o.model_dir << " (" << dtype_name(model->dtype()) << ", "
            << model->config().n_params() / 1e6 << " M params) in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s, " << threads
            << " threads\n";

  std::vector<int32_t> prompt;
  if (o.chat) {
    std::vector<ChatMessage> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    msgs.push_back({"user", o.prompt});
    prompt = encode_chat(tok, msgs);
  } else {
    // One BOS: added unless the (special-parsed) prompt already starts with it.
    prompt = tok.encode(o.prompt, o.parse_special);
    const auto bos = static_cast<int32_t>(model->config().bos_token_id);
    if (prompt.empty() || prompt.front() != bos) prompt.insert(prompt.begin(), bos);
  }

  TextCallback stream;
  if (!o.json) stream = [](const std::string& piece) {
    std::cout << piece << std::flush;
    return true;
  };
  auto r = generate(*model, tok, prompt, o.gen, stream);
  const auto& t = r.timings;
  std::cerr << "\ngenerate: prompt " << t.n_prompt << " tokens in " << t.prompt_ms << " ms ("
            << t.prompt_tok_per_s() << " tok/s); generated " << t.n_generated << " tokens in " << t.generate_ms
            << " ms (" << t.generate_tok_per_s() << " tok/s); stop: " << r.stop_reason << "\n";
  if (o.json) {
    nlohmann::json j;
    j["text"] = r.text;
    j["prompt_ids"] = prompt;
    j["tokens"] = r.tokens;
    j["n_prompt_tokens"] = prompt.size();
    j["stop_reason"] = r.stop_reason;
    j["timings"] = {{"prompt_ms", t.prompt_ms},
                    {"prompt_tok_per_s", t.prompt_tok_per_s()},
                    {"n_generated", t.n_generated},
                    {"generate_ms", t.generate_ms},
                    {"generate_tok_per_s", t.generate_tok_per_s()}};
    // A random model can emit bytes that are not UTF-8: replace them rather than fail.
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<GenerateOptions>();
  auto* sub = app.add_subcommand("generate", "Generate text from a prompt");
  sub->add_option("-m,--model", o->model_dir, "Model directory (config.json, *.safetensors, tokenizer.json)")->required();
  sub->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  sub->add_option("-n,--n-predict", o->gen.n_predict, "Maximum tokens to generate (-1: until eos)")->capture_default_str();
  sub->add_option("--temp", o->gen.sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", o->gen.sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", o->gen.sampling.top_p, "Top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->gen.sampling.min_p, "Min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->gen.sampling.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  sub->add_option("--repeat-last-n", o->gen.sampling.repeat_last_n, "Tokens the penalty considers (-1: all)")->capture_default_str();
  sub->add_option("-s,--seed", o->gen.sampling.seed, "Sampling seed (-1: random)")->capture_default_str();
  sub->add_option("-c,--ctx-size", o->gen.n_ctx, "Context size in tokens")->capture_default_str();
  sub->add_option("-b,--batch-size", o->gen.n_batch, "Prompt tokens per forward pass")->capture_default_str();
  sub->add_option("--stop", o->gen.stop, "Stop string (repeatable)");
  sub->add_flag("--ignore-eos", o->gen.ignore_eos, "Do not stop at end-of-sequence tokens");
  sub->add_flag("--chat", o->chat, "Wrap the prompt in the Llama 3 chat format");
  sub->add_option("--system", o->system, "System message (with --chat)");
  sub->add_flag("--parse-special", o->parse_special, "Turn special-token text in the prompt into special tokens");
  sub->add_flag("--json", o->json, "Print one JSON object with text, ids and timings instead of streaming");
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Compute dtype: f32, bf16 (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_generate(*o); }; });
}

}  // namespace llama_mm::cli
