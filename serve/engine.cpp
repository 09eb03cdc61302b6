// serve/engine.cpp: model loading, chat prompts with media, generation (see engine.h).
#include "serve/engine.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>

namespace llama_mm::serve {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

ApiError unsupported(const std::string& message) { return ApiError(400, "invalid_request_error", message); }

ApiError queue_full() {
  return ApiError(503, "unavailable_error", "every slot is busy and the queue is full; retry shortly");
}

// A request's bytes as a temporary file (video decoding reads files), removed with this object.
class TempFile {
 public:
  explicit TempFile(const std::string& bytes) {
    std::string pattern = (fs::temp_directory_path() / "llama-mm-upload-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) throw Error(ErrorKind::Runtime, "cannot create a temporary file in " + fs::temp_directory_path().string());
    ::close(fd);
    path_ = pattern;
    std::ofstream out(path_, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error(ErrorKind::Runtime, "cannot write the temporary file " + path_);
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Engine::Engine(const EngineOptions& opts) : opts_(opts) {
  const auto format = parse_weight_format(opts.dtype);
  const auto dtype = format.dtype;
  tok_ = std::make_unique<Tokenizer>(Tokenizer::from_file(opts.model_dir));
  if (is_mllama_config(opts.model_dir)) {
    mllama_ = load_mllama(opts.model_dir, dtype);
    llm_ = mllama_->language_model;
    processor_ = std::make_unique<media::MllamaImageProcessor>(load_image_processor(opts.model_dir, mllama_->config()));
  } else {
    llm_ = load_llama(opts.model_dir, dtype);
  }
  if (format.q8) llm_->quantize_q8();
  const auto base = BaseModelInfo::of(llm_->config(), *tok_);
  for (const auto& path : opts.adapters) {
    const std::string modality = read_adapter_file(path).header.modality;
    if ((modality == "image" || modality == "video") && !mllama_)
      throw Error(ErrorKind::ModelLoad, path + ": a " + modality + " adapter needs a Llama 3.2 Vision base");
    if (modality == "image") {
      load_image_adapter(*mllama_, path, base);
    } else if (modality == "video") {
      mllama_->attach_video_adapter(load_video_adapter(path, base, mllama_->config(), mllama_->dtype()), path);
    } else if (modality == "speech") {
      speech_ = load_speech_adapter(path, base, llm_->dtype());
      speech_->config().tokens.check(*tok_, path);
    } else {
      throw Error(ErrorKind::ModelLoad, path + ": unknown adapter modality '" + modality + "'");
    }
  }
  n_ctx_ = std::min<int64_t>(opts.n_ctx, llm_->config().max_position_embeddings);
  batch_ = std::make_unique<BatchGenerator>(*llm_, *tok_, opts.slots, opts.queue, n_ctx_);
  id_ = !opts.alias.empty() ? opts.alias : fs::path(opts.model_dir).lexically_normal().filename().string();
  if (id_.empty() || id_ == ".") id_ = fs::path(opts.model_dir).lexically_normal().parent_path().filename().string();
}

Engine::~Engine() = default;

std::vector<std::string> Engine::input_modalities() const {
  std::vector<std::string> m = {"text"};
  if (mllama_) m.push_back("image");
  if (mllama_ && mllama_->video_adapter) m.push_back("video");
  if (speech_) m.push_back("audio");
  return m;
}

PreparedPrompt Engine::prepare(const ChatRequest& req) {
  torch::NoGradGuard no_grad;
  PreparedPrompt p;
  bool visual = false, audio = false;
  for (const auto& m : req.media) (m.kind == MediaKind::Audio ? audio : visual) = true;
  if (audio && visual)
    throw unsupported("images or videos together with audio in one request are not supported yet");
  for (const auto& m : req.media) {
    if (m.kind != MediaKind::Audio && !mllama_)
      throw unsupported(m.name + ": this server's model takes no " + media_kind_name(m.kind) +
                        " input (it needs a Llama 3.2 Vision base; see GET /v1/models for its input modalities)");
    if (m.kind == MediaKind::Video && !mllama_->video_adapter)
      throw unsupported(m.name + ": this server has no video adapter (start it with --adapter video.safetensors)");
    if (m.kind == MediaKind::Audio && !speech_)
      throw unsupported(m.name + ": this server has no speech adapter (start it with --adapter speech.safetensors)");
  }

  std::vector<media::ProcessedImage> images;
  MllamaImageBatch image_batch;
  std::vector<MllamaImageBatch> videos;
  std::vector<torch::Tensor> speech;  // [N, hidden] per clip, in prompt order
  std::vector<ChatContentPart> media_parts(req.media.size());
  try {
    for (size_t i = 0; i < req.media.size(); ++i) {
      const auto& m = req.media[i];
      const auto t0 = std::chrono::steady_clock::now();
      if (m.kind == MediaKind::Image) {
        media::ImageLimits limits;
        limits.max_pixels = opts_.max_pixels;
        images.push_back(processor_->preprocess(media::decode_image(m.bytes, m.name, limits)));
        const auto& vc = mllama_->config().vision;
        p.n_media_tokens += images.back().tiles.size(0) * (vc.patches_per_side() * vc.patches_per_side() + 1) - 1;
        media_parts[i].specials = {"<|image|>"};
        ++p.n_images;
        p.image_encode_s += seconds_since(t0);
      } else if (m.kind == MediaKind::Video) {
        media::VideoLimits limits;
        limits.max_seconds = opts_.max_video_seconds;
        limits.max_pixels = opts_.max_pixels;
        media::VideoSampling sampling;
        sampling.n_frames = opts_.video_frames > 0 ? opts_.video_frames
                                                   : static_cast<int>(mllama_->video_adapter->config().frames);
        TempFile file(m.bytes);
        try {
          videos.push_back(sample_video_frames(*processor_, file.path(), sampling, limits));
        } catch (const Error& e) {  // name the request field, not the temporary file
          std::string msg = e.what();
          if (const auto at = msg.find(file.path()); at != std::string::npos) msg.replace(at, file.path().size(), m.name);
          throw Error(e.kind(), msg);
        }
        const auto& pv = videos.back().pixel_values;
        if (pv.size(1) == 0) throw Error(ErrorKind::InputDecode, m.name + ": no video frame could be decoded");
        const auto& vc = mllama_->config().vision;
        p.n_media_tokens += pv.size(1) * pv.size(2) * (vc.patches_per_side() * vc.patches_per_side() + 1) - 1;
        media_parts[i].specials = {"<|image|>"};  // becomes the video token below
        ++p.n_videos;
        p.video_encode_s += seconds_since(t0);
      } else {
        media::AudioLimits limits;
        limits.max_seconds = opts_.max_audio_seconds;
        const auto a = media::decode_audio(m.bytes, m.name, limits);
        if (a.duration_s() > speech_->config().max_segment_seconds)
          throw unsupported(m.name + ": audio in a chat message may last at most " +
                            std::to_string(static_cast<int>(speech_->config().max_segment_seconds)) +
                            " s; use /v1/audio/transcriptions for longer audio");
        speech.push_back(speech_->embed_audio(a.samples.data(), static_cast<int64_t>(a.samples.size())));
        media_parts[i] = speech_part(*tok_, speech_->config().tokens, speech.back().size(0));
        ++p.n_audio;
        p.audio_encode_s += seconds_since(t0);
      }
    }
    if (!images.empty()) image_batch = processor_->pack({images});

    std::vector<ChatMessage> chat;
    for (const auto& m : req.messages) {
      ChatMessage cm;
      cm.role = m.role;
      if (m.parts.size() == 1 && m.parts[0].media < 0) {
        cm.content = m.parts[0].text;
      } else {
        for (const auto& part : m.parts) {
          if (part.media >= 0) cm.parts.push_back(media_parts[part.media]);
          else if (!part.text.empty()) cm.parts.push_back({part.text, {}});
        }
      }
      chat.push_back(std::move(cm));
    }
    const bool vision_template = mllama_ && !audio;
    p.ids = encode_chat(*tok_, chat, vision_template ? vision_chat_options() : ChatFormatOptions{});
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::InputDecode || e.kind() == ErrorKind::Usage) throw invalid_request(e.what());
    throw;
  }
  if (p.n_videos > 0) {  // the k-th visual marker is the k-th visual media item
    const auto image_id = static_cast<int32_t>(mllama_->config().image_token_index);
    const auto video_id = static_cast<int32_t>(mllama_->video_adapter->config().video_token_index);
    size_t k = 0;
    std::vector<MediaKind> visual_kinds;
    for (const auto& m : req.media) visual_kinds.push_back(m.kind);
    for (auto& id : p.ids)
      if (id == image_id && k < visual_kinds.size()) id = visual_kinds[k++] == MediaKind::Video ? video_id : image_id;
  }
  const auto n = static_cast<int64_t>(p.ids.size());
  if (n >= n_ctx_) {
    ApiError e(400, "exceed_context_size_error",
               "request (" + std::to_string(n) + " tokens) exceeds the available context size (" +
                   std::to_string(n_ctx_) + " tokens)");
    e.extra = {{"n_prompt_tokens", n}, {"n_ctx", n_ctx_}};
    throw e;
  }
  // The encoders run here, on the request's own thread, never inside the decode loop.
  try {
    if (!speech.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      p.prompt_embeds = speech_prompt_embeds(*llm_, *speech_, p.ids, speech);
      p.audio_encode_s += seconds_since(t0);
    } else if (mllama_ && (p.n_images > 0 || p.n_videos > 0)) {
      GenerateTimings t;
      auto ctx = mllama_context(*mllama_, p.ids, image_batch, videos, t);
      if (ctx) p.cross = std::make_shared<CrossAttentionContext>(std::move(*ctx));
      p.image_encode_s += t.image_encode_ms / 1000;
      p.video_encode_s += t.video_encode_ms / 1000;
    }
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::InputDecode || e.kind() == ErrorKind::Usage) throw invalid_request(e.what());
    throw;
  }
  return p;
}

void Engine::check_capacity() const {
  if (batch_->full()) throw queue_full();
}

void Engine::submit(std::shared_ptr<const PreparedPrompt> prompt, BatchJob job) {
  job.prompt = prompt->ids;
  job.prompt_embeds = prompt->prompt_embeds;
  if (prompt->cross) {
    auto* model = mllama_.get();
    job.interleave = [model, prompt](int64_t pos, int64_t T) {
      return model->cross_interleave(prompt->cross.get(), 1, pos, T);
    };
  }
  if (job.eos.empty()) job.eos = llm_->config().eos_token_ids;
  if (!batch_->submit(std::move(job))) throw queue_full();
}

media::Transcript Engine::transcribe(const std::string& bytes, const std::string& name, SpeechTask task,
                                     const std::string& language_name, const GenerateParams& params,
                                     const TextCallback& on_text) {
  if (!speech_) throw unsupported("this server has no speech adapter (start it with --adapter speech.safetensors)");
  media::AudioLimits limits;
  limits.max_seconds = opts_.max_audio_seconds;
  try {
    const auto audio = media::decode_audio(bytes, name, limits);
    GenerateParams gp = params;
    gp.n_ctx = n_ctx_;
    // Each segment's generation joins the batched decode loop beside the chat requests.
    auto run = [this](const std::vector<int32_t>& prompt, const torch::Tensor& embeds, const GenerateParams& p,
                      const TextCallback& text) {
      const auto& cfg = llm_->config();
      check_prompt(prompt, n_ctx_, cfg.max_position_embeddings, cfg.vocab_size);
      auto segment = std::make_shared<PreparedPrompt>();
      segment->ids = prompt;
      segment->prompt_embeds = embeds;
      auto done = std::make_shared<std::promise<GenerateResult>>();
      BatchJob job;
      job.params = p;
      job.eos = p.eos_ids;
      job.on_text = text;
      job.on_done = [done](GenerateResult r) { done->set_value(std::move(r)); };
      job.on_error = [done](const std::string& e) {
        done->set_exception(std::make_exception_ptr(Error(ErrorKind::Runtime, e)));
      };
      auto result = done->get_future();
      submit(std::move(segment), std::move(job));
      return result.get();
    };
    return transcribe_audio(audio, *llm_, *speech_, *tok_, task, language_name, gp, on_text, {}, run);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::InputDecode || e.kind() == ErrorKind::Usage) throw invalid_request(e.what(), "file");
    throw;
  }
}

}  // namespace llama_mm::serve
