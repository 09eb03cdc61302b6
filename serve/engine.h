// serve/engine.h: the loaded model as the server uses it: a Llama 3.x text base or a Llama 3.2 Vision base, plus
// adapter files (image, video, speech), and the two things requests ask of it:
//   - prepare(): a chat request's messages and media into a prompt (the same templates and media preprocessing as
//     `caption` / `transcribe`, so a greedy answer equals the CLI's), with the media encoded;
//   - submit(): a generation from a prepared prompt, queued on the continuous-batching decode loop (BatchGenerator:
//     `slots` sequences decode together in one forward pass per token), streaming text through callbacks.
// Media the base or adapters cannot take, undecodable media and prompts over the context are ApiErrors (4xx).
// Thread-safety: prepare() and submit() may run on several threads at once.
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
  int slots = 4;         // sequences decoded together (-np)
  int queue = 64;        // requests waiting for a slot before submit() refuses
};

// A request made ready to generate.
struct PreparedPrompt {
  std::vector<int32_t> ids;
  int64_t n_media_tokens = 0;  // positions media stand for (image tiles · tokens per tile, video latents, speech)
  int64_t n_images = 0, n_videos = 0, n_audio = 0;
  double image_encode_s = 0, video_encode_s = 0, audio_encode_s = 0;  // preprocessing and encoder time
  torch::Tensor prompt_embeds;                 // [1, T, D] with speech vectors spliced in; undefined: plain tokens
  std::shared_ptr<CrossAttentionContext> cross;  // encoded images/videos for the cross layers; null: none
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
  // Queues a generation: the job's params, eos (empty: the model's), callbacks and should_stop are the caller's;
  // prompt, embeddings and cross-attention come from `prompt`. ApiError 503 when the queue is full.
  void submit(std::shared_ptr<const PreparedPrompt> prompt, BatchJob job);
  // ApiError 503 when a submit now would be refused (checked before costly media encoding).
  void check_capacity() const;
  const BatchGenerator& batch() const { return *batch_; }
  void shutdown() { batch_->shutdown(); }  // finishes queued and running generations

  // /v1/audio/transcriptions and /translations: audio bytes into a transcript (the CLI's segmentation and prompts),
  // each segment generated on the batched decode loop (ApiError 503 when its queue is full).
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
  std::unique_ptr<BatchGenerator> batch_;  // declared last: its loop thread stops before the models go
};

}  // namespace llama_mm::serve
