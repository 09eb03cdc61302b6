// cli/caption_command.cpp: `llama-mm caption`: describe images with a Llama 3.2 Vision (Mllama) checkpoint.
//
//   llama-mm caption -m DIR a.jpg b.png            one caption per image
//   llama-mm caption -m DIR --image a.jpg --image b.jpg --together -p "What differs?"   one answer about all
// A file that cannot be read or decoded is reported on stderr (and as {"file","error"} with --json) without
// stopping the others; the exit code is then 4 (InputDecode).
#include "adapters/adapters.h"
#include "cli/commands.h"
#include "cli/generation_options.h"
#include "llm/llm.h"
#include "media/media.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct CaptionOptions {
  std::string model_dir, dtype;
  std::string prompt = "Describe this image in one sentence.";
  std::vector<std::string> files, images;  // positional, --image
  bool together = false, json = false, raw = false;
  int threads = 0;
  int64_t max_pixels = media::ImageLimits{}.max_pixels;
  GenerateParams gen = [] {
    auto g = default_generate_params();
    g.n_predict = 96;
    return g;
  }();
};

// The image processor of the checkpoint (preprocessor_config.json), checked against the vision encoder.
media::MllamaImageProcessor load_processor(const std::string& dir, const MllamaConfig& cfg) {
  namespace fs = std::filesystem;
  const auto path = fs::path(dir) / "preprocessor_config.json";
  media::MllamaImageProcessorConfig pc;
  if (fs::exists(path)) {
    pc = media::MllamaImageProcessorConfig::from_file(path.string());
  } else {
    pc = media::MllamaImageProcessorConfig::llama_3_2_vision();
    pc.size = {cfg.vision.image_size, cfg.vision.image_size};
    pc.max_image_tiles = cfg.vision.max_num_tiles;
    std::cerr << "caption: " << path.string() << " not found; using the Llama 3.2 Vision preprocessing\n";
  }
  if (pc.tile_size() != cfg.vision.image_size || pc.max_image_tiles != cfg.vision.max_num_tiles)
    throw Error(ErrorKind::Config, path.string() + ": tile size " + std::to_string(pc.tile_size()) + " x " +
                                       std::to_string(pc.max_image_tiles) + " tiles does not match the vision encoder (" +
                                       std::to_string(cfg.vision.image_size) + " x " +
                                       std::to_string(cfg.vision.max_num_tiles) + ")");
  return media::MllamaImageProcessor(pc);
}

std::vector<int32_t> build_prompt(const Tokenizer& tok, const MllamaConfig& cfg, const std::string& text, int n_images,
                                  bool raw) {
  if (!raw) return encode_chat(tok, {{"user", text, n_images}}, vision_chat_options());
  // Base-model format: <|begin_of_text|><|image|>...<|image|>{text}
  std::vector<int32_t> ids = {static_cast<int32_t>(cfg.text.bos_token_id)};
  ids.insert(ids.end(), n_images, static_cast<int32_t>(cfg.image_token_index));
  const auto body = tok.encode(text, /*parse_special=*/false);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

int run_caption(const CaptionOptions& o) {
  const int threads = configure_threads(o.threads);
  auto t0 = std::chrono::steady_clock::now();
  std::optional<torch::Dtype> dtype;
  if (!o.dtype.empty()) dtype = parse_dtype(o.dtype);
  auto model = load_mllama(o.model_dir, dtype);
  const auto& cfg = model->config();
  auto tok = Tokenizer::from_file(o.model_dir);
  if (tok.token_id("<|image|>") != std::optional<int32_t>(static_cast<int32_t>(cfg.image_token_index)))
    throw Error(ErrorKind::ModelLoad, o.model_dir + ": the tokenizer's <|image|> is not the model's image_token_index " +
                                          std::to_string(cfg.image_token_index));
  auto processor = load_processor(o.model_dir, cfg);
  std::cerr << "caption: loaded " << o.model_dir << " (" << dtype_name(model->dtype()) << ") in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s, " << threads
            << " threads\n";

  std::vector<std::string> inputs = o.files;
  inputs.insert(inputs.end(), o.images.begin(), o.images.end());
  if (inputs.empty()) throw Error(ErrorKind::Usage, "caption: no image given");
  std::vector<std::vector<std::string>> groups;
  if (o.together) groups.push_back(inputs);
  else
    for (const auto& f : inputs) groups.push_back({f});

  media::ImageLimits limits;
  limits.max_pixels = o.max_pixels;
  bool any_failed = false;
  for (const auto& group : groups) {
    const std::string name = group.size() == 1 ? group[0] : "[" + std::to_string(group.size()) + " images]";
    nlohmann::json j;
    j["file"] = group.size() == 1 ? nlohmann::json(group[0]) : nlohmann::json(group);
    try {
      std::vector<media::ProcessedImage> processed;
      for (const auto& f : group) processed.push_back(processor.preprocess(media::load_image_file(f, limits)));
      auto batch = processor.pack({processed});
      auto prompt = build_prompt(tok, cfg, o.prompt, static_cast<int>(group.size()), o.raw);
      if (!o.json && groups.size() > 1) std::cout << "# " << name << "\n" << std::flush;
      const TextCallback stream = o.json ? TextCallback() : stdout_stream();
      auto r = generate_mllama(*model, tok, prompt, batch, o.gen, stream);
      std::cerr << "caption: " << name << ": " << timings_line(r.timings, r.stop_reason) << "\n";
      if (o.json) {
        j.update(result_json(prompt, r));
      } else {
        std::cout << "\n" << std::flush;
      }
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::InputDecode) throw;  // a model or config problem stops the batch
      any_failed = true;
      std::string msg = e.what();
      if (msg.find(group[0]) == std::string::npos) msg = name + ": " + msg;  // every message names the input
      std::cerr << "caption: " << msg << "\n";
      j["error"] = msg;
    }
    if (o.json) print_json_line(j);
  }
  return any_failed ? static_cast<int>(ErrorKind::InputDecode) : 0;
}

}  // namespace

void add_caption_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<CaptionOptions>();
  auto* sub = app.add_subcommand("caption", "Describe images with a Llama 3.2 Vision checkpoint");
  sub->add_option("-m,--model", o->model_dir, "Mllama model directory (config.json, *.safetensors, tokenizer.json, "
                                              "preprocessor_config.json)")->required();
  sub->add_option("files", o->files, "Image files (one caption each)");
  sub->add_option("--image", o->images, "Image file (repeatable; with --together, all in one prompt)");
  sub->add_flag("--together", o->together, "One answer about all the images instead of one per image");
  sub->add_option("-p,--prompt", o->prompt, "Instruction placed after the images")->capture_default_str();
  sub->add_flag("--raw", o->raw, "Base-model format <|begin_of_text|><|image|>PROMPT instead of the chat template");
  add_generation_options(sub, o->gen);
  sub->add_option("--max-pixels", o->max_pixels, "Refuse images with more pixels than this")->capture_default_str();
  sub->add_flag("--json", o->json, "Print one JSON object per input (file, text, prompt_ids, tokens, timings)");
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Compute dtype: f32, bf16 (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_caption(*o); }; });
}

}  // namespace llama_mm::cli
