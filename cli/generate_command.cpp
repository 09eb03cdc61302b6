// cli/generate_command.cpp: `llama-mm generate`: text generation from a prompt, plain or chat-formatted.
#include "adapters/adapters.h"
#include "cli/bundled_model.h"
#include "cli/commands.h"
#include "cli/generation_options.h"
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

int run_generate(GenerateOptions o) {
  o.model_dir = model_or_bundled(o.model_dir, "generate");
  const int threads = configure_threads(o.threads);
  auto t0 = std::chrono::steady_clock::now();
  const auto format = parse_weight_format(o.dtype);
  const auto dtype = format.dtype;
  // A Llama 3.2 Vision checkpoint runs text-only prompts as its frozen Llama (cross layers skipped).
  const bool mllama = is_mllama_config(o.model_dir);
  LlamaForCausalLM llama{nullptr};
  MllamaForConditionalGeneration mm{nullptr};
  if (mllama) mm = load_mllama(o.model_dir, dtype);
  else llama = load_llama(o.model_dir, dtype);
  if (format.q8) (mllama ? mm->language_model : llama)->quantize_q8();
  const LlamaConfig& cfg = mllama ? mm->config().text : llama->config();
  auto tok = Tokenizer::from_file(o.model_dir);
  std::cerr << "generate: loaded " << o.model_dir << " (" << (mllama ? "mllama, " : "")
            << (format.q8 ? "q8" : dtype_name(mllama ? mm->dtype() : llama->dtype())) << ", " << cfg.n_params() / 1e6
            << " M text params) in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s, " << threads << " threads\n";

  std::vector<int32_t> prompt;
  if (o.chat) {
    std::vector<ChatMessage> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    msgs.push_back({"user", o.prompt});
    prompt = encode_chat(tok, msgs, mllama ? vision_chat_options() : ChatFormatOptions{});
  } else {
    // One BOS: added unless the (special-parsed) prompt already starts with it.
    prompt = tok.encode(o.prompt, o.parse_special);
    const auto bos = static_cast<int32_t>(cfg.bos_token_id);
    if (prompt.empty() || prompt.front() != bos) prompt.insert(prompt.begin(), bos);
  }

  const TextCallback stream = o.json ? TextCallback() : stdout_stream();
  auto r = mllama ? generate_mllama(*mm, tok, prompt, {}, o.gen, stream) : generate(*llama, tok, prompt, o.gen, stream);
  std::cerr << "\ngenerate: " << timings_line(r.timings, r.stop_reason) << "\n";
  if (o.json) {
    print_json_line(result_json(prompt, r));
  } else {
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<GenerateOptions>();
  auto* sub = app.add_subcommand("generate", "Generate text from a prompt");
  sub->add_option("-m,--model", o->model_dir,
                  "Model directory (config.json, *.safetensors, tokenizer.json; default: the bundled demo model)");
  sub->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  add_generation_options(sub, o->gen);
  sub->add_flag("--chat", o->chat, "Wrap the prompt in the Llama 3 chat format");
  sub->add_option("--system", o->system, "System message (with --chat)");
  sub->add_flag("--parse-special", o->parse_special, "Turn special-token text in the prompt into special tokens");
  sub->add_flag("--json", o->json, "Print one JSON object with text, ids and timings instead of streaming");
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Weights: f32, bf16, or q8 (int8 LLM projections, bf16 elsewhere) (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_generate(*o); }; });
}

}  // namespace llama_mm::cli
