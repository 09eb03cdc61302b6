// serve/engine.h: the loaded model as the server uses it: a Llama 3.x text base or a Llama 3.2 Vision base, plus
// adapter files (image, video, speech), and the two things requests ask of it:
//   - prepare(): a chat request's messages and media into a prompt (the same templates and media preprocessing as
//     `caption` / `transcribe`, so a greedy answer equals the CLI's), with the media encoded;
//   - generate(): one generation from a prepared prompt, streaming text through a callback that may cancel.
// Media the base or adapters cannot take, undecodable media and prompts over the context are ApiErrors (4xx).
// Thread-safety: prepare() and generate() may run on several threads at once (each generation has its own KV cache).
#pragma once

#include "adapters/adapters.h"
#include "llm/llm.h"
#include "media/media.h"
#include "serve/openai_protocol.h"

#include <memory>
#include <string>
#include <vector>

namespace llama_mm::serve {

struct EngineOptions {
  std::string model_dir, dtype;       // dtype "": the checkpoint's
  std::vector<std::string> adapters;  // adapter files; the modality comes from each file's header
  std::string alias;                  // the model id clients see ("": the model folder's name)
  int64_t n_ctx = 4096;               // per request: prompt + answer
  int64_t max_pixels = media::ImageLimits{}.max_pixels;
  double max_audio_seconds = 600, max_video_seconds = 600;
  int video_frames = 0;  // 0: the video adapter's
};

// A request made ready to generate.
struct PreparedPrompt {
  std::vector<int32_t> ids;
  int64_t n_media_tokens = 0;  // positions media stand for (image tiles · tokens per tile, video latents, speech)
  int64_t n_images = 0, n_videos = 0, n_audio = 0;
  double image_encode_s = 0, video_encode_s = 0, audio_encode_s = 0;  // preprocessing and encoder time
  MllamaImageBatch images;
  std::vector<MllamaImageBatch> videos;
  std::vector<torch::Tensor> speech;  // [N, hidden] per clip, in prompt order
};

class Engine {
 public:
  explicit Engine(const EngineOptions& opts);
  ~Engine();

  const std::string& model_id() const { return id_; }
  std::vector<std::string> input_modalities() const;  // "text", then "image", "video", "audio" as loaded
  const Tokenizer& tokenizer() const { return *tok_; }
  int64_t n_ctx() const { return n_ctx_; }
  const EngineOptions& options() const { return opts_; }

  PreparedPrompt prepare(const ChatRequest& request);
  GenerateResult generate(const PreparedPrompt& prompt, const GenerateParams& params, const TextCallback& on_text);

  // /v1/audio/transcriptions and /translations: audio bytes into a transcript (the CLI's segmentation and prompts).
  media::Transcript transcribe(const std::string& bytes, const std::string& name, SpeechTask task,
                               const std::string& language_name, const GenerateParams& params,
                               const TextCallback& on_text);
  bool has_speech() const { return static_cast<bool>(speech_); }

 private:
  EngineOptions opts_;
  std::string id_;
  int64_t n_ctx_ = 0;
  std::unique_ptr<Tokenizer> tok_;
  MllamaForConditionalGeneration mllama_{nullptr};
  LlamaForCausalLM llm_{nullptr};  // the frozen text model (Mllama's language model on a vision base)
  std::unique_ptr<media::MllamaImageProcessor> processor_;
  SpeechModel speech_{nullptr};
};

}  // namespace llama_mm::serve
