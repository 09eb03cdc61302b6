// cli/caption_command.cpp: `llama-mm caption`: describe images and videos with a Llama 3.2 Vision (Mllama)
// checkpoint; videos need a video adapter (adapters/video_adapter.h).
//
//   llama-mm caption -m DIR a.jpg b.png            one caption per image
//   llama-mm caption -m DIR --image a.jpg --image b.jpg --together -p "What differs?"   one answer about all
//   llama-mm caption -m DIR --adapter video.safetensors clip.mp4 --frames 32 --json    a video (content-sniffed)
//   llama-mm caption -m DIR --adapter run/adapters/image.safetensors photo.jpg          trained image parts
// A file that cannot be read or decoded is reported on stderr (and as {"file","error"} with --json) without
// stopping the others; the exit code is then 4 (InputDecode).
#include "adapters/adapters.h"
#include "cli/bundled_model.h"
#include "cli/commands.h"
#include "cli/generation_options.h"
#include "llm/llm.h"
#include "media/media.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct CaptionOptions {
  std::string model_dir, dtype;
  std::vector<std::string> adapters;  // image and/or video adapter files
  std::string prompt;  // default per input: kDefaultImagePrompt or kDefaultVideoPrompt
  std::vector<std::string> files, images;  // positional, --image
  bool together = false, json = false, raw = false;
  int threads = 0;
  int64_t max_pixels = media::ImageLimits{}.max_pixels;
  int frames = 0;  // 0: the adapter's default
  std::string seek = "auto";
  double max_seconds = media::VideoLimits{}.max_seconds;
  GenerateParams gen = [] {
    auto g = default_generate_params();
    g.n_predict = 96;
    return g;
  }();
};

// `video_token` >= 0: one video in place of the (single) image, marked by that id.
std::vector<int32_t> build_prompt(const Tokenizer& tok, const MllamaConfig& cfg, const std::string& text, int n_images,
                                  bool raw, int64_t video_token = -1) {
  std::vector<int32_t> ids;
  if (!raw) {
    ids = encode_chat(tok, {{"user", text, n_images}}, vision_chat_options());
  } else {
    // Base-model format: <|begin_of_text|><|image|>...<|image|>{text}
    ids = {static_cast<int32_t>(cfg.text.bos_token_id)};
    ids.insert(ids.end(), n_images, static_cast<int32_t>(cfg.image_token_index));
    const auto body = tok.encode(text, /*parse_special=*/false);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  // The video token has no text form: it takes the place the template gives the image.
  if (video_token >= 0) std::replace(ids.begin(), ids.end(), static_cast<int32_t>(cfg.image_token_index),
                                     static_cast<int32_t>(video_token));
  return ids;
}

media::SeekMode parse_seek(const std::string& s) {
  if (s == "auto") return media::SeekMode::Auto;
  if (s == "exact") return media::SeekMode::Exact;
  if (s == "keyframe") return media::SeekMode::KeyFrame;
  throw Error(ErrorKind::Usage, "caption: --seek must be auto, exact or keyframe (got '" + s + "')");
}

int run_caption(CaptionOptions o) {
  o.model_dir = model_or_bundled(o.model_dir, "caption");
  if (o.adapters.empty())  // the image and video adapters the model folder carries
    for (const auto& path : model_adapters(o.model_dir))
      if (const auto m = read_adapter_file(path).header.modality; m == "image" || m == "video") o.adapters.push_back(path);
  const int threads = configure_threads(o.threads);
  auto t0 = std::chrono::steady_clock::now();
  const auto format = parse_weight_format(o.dtype);
  const auto dtype = format.dtype;
  auto model = load_mllama(o.model_dir, dtype);
  if (format.q8) model->language_model->quantize_q8();
  const auto& cfg = model->config();
  auto tok = Tokenizer::from_file(o.model_dir);
  if (tok.token_id("<|image|>") != std::optional<int32_t>(static_cast<int32_t>(cfg.image_token_index)))
    throw Error(ErrorKind::ModelLoad, o.model_dir + ": the tokenizer's <|image|> is not the model's image_token_index " +
                                          std::to_string(cfg.image_token_index));
  auto processor = load_image_processor(o.model_dir, cfg);
  for (const auto& path : o.adapters) {
    const auto base = BaseModelInfo::of(cfg.text, tok);
    const std::string modality = read_adapter_file(path).header.modality;
    if (modality == "image") load_image_adapter(*model, path, base);
    else if (modality == "video") model->attach_video_adapter(load_video_adapter(path, base, cfg, model->dtype()), path);
    else throw Error(ErrorKind::ModelLoad, path + ": a " + modality + " adapter; caption takes image and video adapters");
    std::cerr << "caption: " << modality << " adapter " << path << "\n";
  }
  std::cerr << "caption: loaded " << o.model_dir << " (" << (format.q8 ? "q8" : dtype_name(model->dtype())) << ") in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s, " << threads
            << " threads\n";

  std::vector<std::string> inputs = o.files;
  inputs.insert(inputs.end(), o.images.begin(), o.images.end());
  if (inputs.empty()) throw Error(ErrorKind::Usage, "caption: no image or video given");
  std::vector<std::vector<std::string>> groups;
  if (o.together) groups.push_back(inputs);
  else
    for (const auto& f : inputs) groups.push_back({f});

  media::ImageLimits limits;
  limits.max_pixels = o.max_pixels;
  media::VideoLimits video_limits;
  video_limits.max_seconds = o.max_seconds;
  video_limits.max_pixels = o.max_pixels;
  media::VideoSampling sampling;
  sampling.seek = parse_seek(o.seek);
  sampling.n_frames = o.frames > 0 ? o.frames : model->video_adapter ? static_cast<int>(model->video_adapter->config().frames) : 64;
  bool any_failed = false;
  for (const auto& group : groups) {
    const std::string name = group.size() == 1 ? group[0] : "[" + std::to_string(group.size()) + " images]";
    nlohmann::json j;
    j["file"] = group.size() == 1 ? nlohmann::json(group[0]) : nlohmann::json(group);
    try {
      const bool video = group.size() == 1 && media::is_video_file(group[0]);
      std::vector<media::ProcessedImage> processed;
      std::vector<MllamaImageBatch> videos;
      std::vector<int32_t> prompt;
      if (video) {
        if (!model->video_adapter)
          throw Error(ErrorKind::Usage, "caption: " + group[0] + " is a video: give a video adapter with --adapter");
        nlohmann::json info;
        videos.push_back(sample_video_frames(processor, group[0], sampling, video_limits, &info));
        std::cerr << "caption: " << group[0] << ": " << info["frame_times_s"].size() << " frames of "
                  << info["duration_s"] << " s (" << info["frames_decoded"] << " decoded, " << info["seeks"]
                  << " seeks)\n";
        info.erase("frames_decoded");
        info.erase("seeks");
        j["video"] = info;
        prompt = build_prompt(tok, cfg, o.prompt.empty() ? kDefaultVideoPrompt : o.prompt, 1, o.raw,
                              model->video_adapter->config().video_token_index);
      } else {
        for (const auto& f : group) {
          if (group.size() > 1 && media::is_video_file(f))
            throw Error(ErrorKind::Usage, "caption: " + f + " is a video; --together takes images only");
          processed.push_back(processor.preprocess(media::load_image_file(f, limits)));
        }
        prompt = build_prompt(tok, cfg, o.prompt.empty() ? kDefaultImagePrompt : o.prompt, static_cast<int>(group.size()), o.raw);
      }
      auto batch = processed.empty() ? MllamaImageBatch{} : processor.pack({processed});
      if (!o.json && groups.size() > 1) std::cout << "# " << name << "\n" << std::flush;
      const TextCallback stream = o.json ? TextCallback() : stdout_stream();
      auto r = generate_mllama(*model, tok, prompt, batch, o.gen, stream, videos);
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
  auto* sub = app.add_subcommand("caption", "Describe images and videos with a Llama 3.2 Vision checkpoint");
  sub->add_option("-m,--model", o->model_dir, "Mllama model directory (config.json, *.safetensors, tokenizer.json, "
                                              "preprocessor_config.json; default: the bundled demo model)");
  sub->add_option("files", o->files, "Image or video files (one caption each; the type comes from the content)");
  sub->add_option("--image", o->images, "Image file (repeatable; with --together, all in one prompt)");
  sub->add_flag("--together", o->together, "One answer about all the images instead of one per image");
  sub->add_option("-p,--prompt", o->prompt,
                  std::string("Instruction placed after the media (default: \"") + kDefaultImagePrompt + "\" or \"" +
                      kDefaultVideoPrompt + "\")");
  sub->add_option("--adapter", o->adapters,
                  "Image or video adapter file (llama-mm train, init-model --arch video-adapter); repeatable "
                  "(default: those in MODEL/adapters/)")
      ->allow_extra_args(false);
  sub->add_option("--frames", o->frames, "Frames sampled uniformly from a video (default: the adapter's, 64 for paper presets)")
      ->check(CLI::Range(1, media::VideoLimits{}.max_frames));
  sub->add_option("--seek", o->seek, "Video frame seeking: auto, exact (the frame at each time), keyframe (fastest)")
      ->capture_default_str();
  sub->add_option("--max-seconds", o->max_seconds, "Refuse videos longer than this")->capture_default_str();
  sub->add_flag("--raw", o->raw, "Base-model format <|begin_of_text|><|image|>PROMPT instead of the chat template");
  add_generation_options(sub, o->gen);
  sub->add_option("--max-pixels", o->max_pixels, "Refuse images (and video frames) with more pixels than this")->capture_default_str();
  sub->add_flag("--json", o->json, "Print one JSON object per input (file, text, prompt_ids, tokens, timings; "
                                   "for videos the sampled frame times)");
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Weights: f32, bf16, or q8 (int8 LLM projections, bf16 elsewhere) (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_caption(*o); }; });
}

}  // namespace llama_mm::cli
