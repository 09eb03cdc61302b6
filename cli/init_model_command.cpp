// cli/init_model_command.cpp: `llama-mm init-model`: a random-weight checkpoint in Hugging Face layout
// (config.json, model.safetensors, tokenizer.json) for tests and benchmarks.
#include "cli/commands.h"
#include "llm/llm.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace llama_mm::cli {

namespace {

struct InitModelOptions {
  std::string arch = "llama", preset, out, dtype = "f32", tokenizer;
  uint64_t seed = 0;
};

// Writes `content` to `path` atomically (temp file, fsync, rename).
void write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  const auto tmp = path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
    f.flush();
    if (!f) throw Error(ErrorKind::Runtime, tmp + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

int run_init_model(const InitModelOptions& o) {
  namespace fs = std::filesystem;
  if (o.arch != "llama") throw Error(ErrorKind::Usage, "--arch: unsupported architecture '" + o.arch + "' (expected llama)");
  const bool from_file = o.preset.size() > 5 && o.preset.compare(o.preset.size() - 5, 5, ".json") == 0;
  LlamaConfig cfg = from_file ? LlamaConfig::from_file(o.preset) : LlamaConfig::preset(o.preset);
  const torch::Dtype dtype = parse_dtype(o.dtype);
  cfg.torch_dtype = dtype_name(dtype);

  std::string tokenizer_json;
  if (!o.tokenizer.empty()) {
    auto tok = Tokenizer::from_file(o.tokenizer);  // validates it
    std::ifstream f(fs::is_directory(o.tokenizer) ? fs::path(o.tokenizer) / "tokenizer.json" : fs::path(o.tokenizer),
                    std::ios::binary);
    tokenizer_json.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (tok.n_vocab() > cfg.vocab_size)
      throw Error(ErrorKind::Usage, o.tokenizer + ": tokenizer has " + std::to_string(tok.n_vocab()) +
                                        " ids but the model's vocab_size is " + std::to_string(cfg.vocab_size));
  } else {
    tokenizer_json = make_byte_level_tokenizer_json();
  }

  fs::create_directories(o.out);
  std::cerr << "init-model: " << cfg.n_params() / 1e6 << " M parameters, " << cfg.torch_dtype << ", seed " << o.seed
            << "\n";
  LlamaForCausalLM model(cfg, dtype);
  init_random_weights(*model, o.seed);
  std::map<std::string, torch::Tensor> tensors;
  for (auto& p : model->named_parameters()) tensors[p.key()] = p.value();
  write_safetensors((fs::path(o.out) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic(fs::path(o.out) / "config.json", cfg.to_json().dump(2) + "\n");
  write_file_atomic(fs::path(o.out) / "tokenizer.json", tokenizer_json);
  std::cout << o.out << "\n";
  return 0;
}

}  // namespace

void add_init_model_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<InitModelOptions>();
  auto* sub = app.add_subcommand("init-model", "Write a random-weight checkpoint (HF layout) for tests and benchmarks");
  sub->add_option("--arch", o->arch, "Architecture")->capture_default_str();
  sub->add_option("--preset", o->preset, "tiny, 1b, 8b, or a config.json")->required();
  sub->add_option("-o,--out", o->out, "Output directory")->required();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Weight dtype: f32 or bf16")->capture_default_str();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json to ship (default: a byte-level test tokenizer)");
  sub->callback([o, &action] { action = [o] { return run_init_model(*o); }; });
}

}  // namespace llama_mm::cli
