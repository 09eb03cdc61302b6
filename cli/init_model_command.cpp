// cli/init_model_command.cpp: `llama-mm init-model`: a random-weight checkpoint in Hugging Face layout
// (config.json, model.safetensors, tokenizer.json) for tests and benchmarks.
#include "adapters/adapters.h"
#include "cli/commands.h"
#include "cli/generation_options.h"
#include "llm/llm.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct InitModelOptions {
  std::string arch = "llama", preset, out, dtype = "f32", tokenizer, base, gates = "zero";
  uint64_t seed = 0;
};

// The tokenizer.json to ship: --tokenizer's (validated against the model's id range) or the byte-level one.
std::string tokenizer_json_for(const InitModelOptions& o, int64_t n_ids) {
  namespace fs = std::filesystem;
  if (o.tokenizer.empty()) return make_byte_level_tokenizer_json();
  auto tok = Tokenizer::from_file(o.tokenizer);  // validates it
  std::ifstream f(fs::is_directory(o.tokenizer) ? fs::path(o.tokenizer) / "tokenizer.json" : fs::path(o.tokenizer),
                  std::ios::binary);
  std::string json(std::istreambuf_iterator<char>(f), {});
  if (tok.n_vocab() > n_ids)
    throw Error(ErrorKind::Usage, o.tokenizer + ": tokenizer has " + std::to_string(tok.n_vocab()) +
                                      " ids but the model has " + std::to_string(n_ids));
  return json;
}

bool is_json_path(const std::string& s) { return s.size() > 5 && s.compare(s.size() - 5, 5, ".json") == 0; }

// preprocessor_config.json as the released Llama 3.2 Vision checkpoints ship it, for this tile size.
nlohmann::json mllama_preprocessor_config(const MllamaConfig& cfg) {
  return {{"do_convert_rgb", true},
          {"do_normalize", true},
          {"do_pad", true},
          {"do_rescale", true},
          {"do_resize", true},
          {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
          {"image_std", {0.26862954, 0.26130258, 0.27577711}},
          {"image_processor_type", "MllamaImageProcessor"},
          {"max_image_tiles", cfg.vision.max_num_tiles},
          {"processor_class", "MllamaProcessor"},
          {"resample", 2},
          {"rescale_factor", 1.0 / 255.0},
          {"size", {{"height", cfg.vision.image_size}, {"width", cfg.vision.image_size}}}};
}

// A speech adapter file (adapters/speech_model.h) with random weights for the base model in `o.base`.
int run_init_speech_adapter(const InitModelOptions& o) {
  if (o.base.empty()) throw Error(ErrorKind::Usage, "init-model --arch speech-adapter needs --base BASE_DIR (Llama 3.x or Llama 3.2 Vision)");
  // tiny: test-sized; paper-8b / paper-70b: the paper's 1B Conformer + ~100M adapter (the LLM width comes
  // from the base, so a paper-sized encoder can sit on a small base for benchmarks).
  std::string preset = o.preset;
  if (preset == "paper-8b" || preset == "paper-70b") preset = "paper";
  else if (preset != "tiny")
    throw Error(ErrorKind::Usage, "--preset: speech-adapter presets are tiny, paper-8b and paper-70b, not '" +
                                      o.preset + "'");
  // A Llama 3.2 Vision base: its language model is the Llama the adapter feeds.
  const auto base_cfg = is_mllama_config(o.base) ? MllamaConfig::from_file(o.base).text : LlamaConfig::from_file(o.base);
  const auto tok = Tokenizer::from_file(o.base);
  auto cfg = SpeechModelConfig::preset(preset, base_cfg.hidden_size);
  cfg.tokens = SpeechTokens::choose(tok);
  std::cerr << "init-model: speech adapter " << o.preset << ", " << cfg.n_params() / 1e6 << " M parameters, "
            << dtype_name(parse_dtype(o.dtype)) << ", seed " << o.seed << ", for " << o.base << "\n";
  SpeechModel model(cfg, parse_dtype(o.dtype));
  init_random_speech_weights(*model, o.seed);
  save_speech_adapter(*model, BaseModelInfo::of(base_cfg, tok), o.out);
  std::cout << o.out << "\n";
  return 0;
}

// A video adapter file (adapters/video_adapter.h) with random weights for the Mllama checkpoint in `o.base`.
int run_init_video_adapter(const InitModelOptions& o) {
  if (o.base.empty()) throw Error(ErrorKind::Usage, "init-model --arch video-adapter needs --base MLLAMA_DIR");
  if (o.gates != "zero" && o.gates != "random")
    throw Error(ErrorKind::Usage, "--gates must be zero (the paper's initialisation) or random, not '" + o.gates + "'");
  const auto base_cfg = MllamaConfig::from_file(o.base);
  const auto tok = Tokenizer::from_file(o.base);
  const auto cfg = VideoAdapterConfig::preset(o.preset, base_cfg);
  std::cerr << "init-model: video adapter " << o.preset << ", " << cfg.n_params(base_cfg.text) / 1e6
            << " M parameters, " << dtype_name(parse_dtype(o.dtype)) << ", gates " << o.gates << ", seed " << o.seed
            << ", for " << o.base << "\n";
  VideoAdapter adapter(cfg, base_cfg.text, parse_dtype(o.dtype));
  init_random_video_adapter(*adapter, o.seed, o.gates == "zero");
  save_video_adapter(*adapter, BaseModelInfo::of(base_cfg.text, tok), o.out);
  std::cout << o.out << "\n";
  return 0;
}

int run_init_model(const InitModelOptions& o) {
  namespace fs = std::filesystem;
  if (o.arch == "speech-adapter") return run_init_speech_adapter(o);
  if (o.arch == "video-adapter") return run_init_video_adapter(o);
  if (o.arch != "llama" && o.arch != "mllama")
    throw Error(ErrorKind::Usage, "--arch: unsupported architecture '" + o.arch +
                                      "' (expected llama, mllama, speech-adapter or video-adapter)");
  const torch::Dtype dtype = parse_dtype(o.dtype);
  std::map<std::string, torch::Tensor> tensors;
  nlohmann::json config;
  std::string tokenizer_json;
  fs::create_directories(o.out);
  if (o.arch == "llama") {
    LlamaConfig cfg = is_json_path(o.preset) ? LlamaConfig::from_file(o.preset) : LlamaConfig::preset(o.preset);
    cfg.torch_dtype = dtype_name(dtype);
    tokenizer_json = tokenizer_json_for(o, cfg.vocab_size);
    std::cerr << "init-model: " << cfg.n_params() / 1e6 << " M parameters, " << cfg.torch_dtype << ", seed " << o.seed
              << "\n";
    LlamaForCausalLM model(cfg, dtype);
    init_random_weights(*model, o.seed);
    for (auto& p : model->named_parameters()) tensors[p.key()] = p.value();
    write_safetensors((fs::path(o.out) / "model.safetensors").string(), tensors, {{"format", "pt"}});
    config = cfg.to_json();
  } else {
    MllamaConfig cfg = is_json_path(o.preset) ? MllamaConfig::from_file(o.preset) : MllamaConfig::preset(o.preset);
    cfg.text.torch_dtype = dtype_name(dtype);
    // The text tokenizer plus <|image|> right after the vocabulary, as Llama 3.2 Vision's tokenizer has it.
    tokenizer_json = tokenizer_json_for(o, cfg.text.vocab_size);
    if (!Tokenizer::from_json_string(tokenizer_json, "tokenizer").token_id("<|image|>"))
      tokenizer_json = with_added_special_token(tokenizer_json, "<|image|>", cfg.image_token_index);
    std::cerr << "init-model: mllama, " << cfg.text.torch_dtype << ", seed " << o.seed << "\n";
    MllamaForConditionalGeneration model(cfg, dtype);
    init_random_mllama_weights(*model, o.seed);
    save_mllama_weights(*model, (fs::path(o.out) / "model.safetensors").string());
    config = cfg.to_json();
    write_file_atomic((fs::path(o.out) / "preprocessor_config.json").string(), mllama_preprocessor_config(cfg).dump(2) + "\n");
  }
  write_file_atomic((fs::path(o.out) / "config.json").string(), config.dump(2) + "\n");
  write_file_atomic((fs::path(o.out) / "tokenizer.json").string(), tokenizer_json);
  std::cout << o.out << "\n";
  return 0;
}

}  // namespace

void add_init_model_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<InitModelOptions>();
  auto* sub = app.add_subcommand("init-model", "Write a random-weight checkpoint (HF layout) for tests and benchmarks");
  sub->add_option("--arch", o->arch, "Architecture: llama, mllama (Llama 3.2 Vision), speech-adapter or video-adapter")
      ->capture_default_str();
  sub->add_option("--preset", o->preset,
                  "llama: tiny, 1b, 8b; mllama: tiny, 11b, 90b (or a config.json); speech-adapter and video-adapter: "
                  "tiny, paper-8b, paper-70b")
      ->required();
  sub->add_option("-o,--out", o->out, "Output directory (adapters: output .safetensors file)")->required();
  sub->add_option("--base", o->base, "Adapters: the base model directory (Llama for speech, Mllama for video)");
  sub->add_option("--gates", o->gates, "video-adapter: cross-attention gates zero (paper) or random (demos)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Weight dtype: f32 or bf16")->capture_default_str();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json to ship (default: a byte-level test tokenizer)");
  sub->callback([o, &action] { action = [o] { return run_init_model(*o); }; });
}

}  // namespace llama_mm::cli
