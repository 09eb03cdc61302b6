// cli/serve_command.cpp: `llama-mm serve`: the OpenAI-compatible multimodal HTTP server (serve/server.h).
//
//   llama-mm serve -m Llama-3.2-11B-Vision-Instruct --adapter video.safetensors --port 8080 -np 4
//   llama-mm serve -m Llama-3.1-8B-Instruct --adapter speech.safetensors --api-key-file key.txt
#include "cli/bundled_model.h"
#include "cli/commands.h"
#include "llm/llm.h"
#include "serve/server.h"

#include <fstream>
#include <memory>
#include <sstream>

namespace llama_mm::cli {

namespace {

struct ServeCliOptions {
  serve::ServeOptions server;
  std::string api_key_file;
  int threads = 0;
};

int run_serve(ServeCliOptions o) {
  auto& engine = o.server.engine;
  engine.model_dir = model_or_bundled(engine.model_dir, "serve");
  if (engine.adapters.empty()) engine.adapters = model_adapters(engine.model_dir);
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    if (!in) throw Error(ErrorKind::Usage, "serve: cannot read --api-key-file " + o.api_key_file);
    std::getline(in, o.server.api_key);
    while (!o.server.api_key.empty() && (o.server.api_key.back() == '\r' || o.server.api_key.back() == ' '))
      o.server.api_key.pop_back();
    if (o.server.api_key.empty()) throw Error(ErrorKind::Usage, "serve: " + o.api_key_file + " holds no key");
  }
  configure_threads(o.threads);
  return serve::run_server(o.server);
}

}  // namespace

void add_serve_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeCliOptions>();
  auto& s = o->server;
  auto* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server for chat with images, video and audio, "
                                          "and transcription");
  sub->add_option("-m,--model", s.engine.model_dir,
                  "Base model directory (Llama 3.x or Llama 3.2 Vision; default: the bundled demo model)");
  sub->add_option("--adapter", s.engine.adapters,
                  "Image, video or speech adapter file (repeatable; default: those in MODEL/adapters/)")
      ->allow_extra_args(false);
  sub->add_option("--alias", s.engine.alias, "Model id shown to clients (default: the model folder's name)");
  sub->add_option("--host", s.host, "Address to bind")->capture_default_str();
  sub->add_option("--port", s.port, "Port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  sub->add_option("--api-key", s.api_key, "Require 'Authorization: Bearer KEY' on every route but /health");
  sub->add_option("--api-key-file", o->api_key_file, "Read the API key from the first line of this file");
  sub->add_option("--parallel", s.engine.slots, "Concurrent generations (slots; -np works too)")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--queue", s.engine.queue, "Requests that may wait for a slot; beyond that 503")->capture_default_str()
      ->check(CLI::Range(0, 100000));
  sub->add_option("-c,--ctx-size", s.engine.n_ctx, "Context per request (prompt + answer)")->capture_default_str()
      ->check(CLI::Range(16, 1 << 20));
  sub->add_option("-n,--max-tokens", s.default_max_tokens, "Answer length when the request gives none")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--request-timeout", s.request_timeout_s,
                  "Seconds after which a request's generation stops (finish_reason length; 0: never)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e7));
  sub->add_option("--max-body-mb", s.max_body_mb, "Larger request bodies are refused (413)")->capture_default_str()
      ->check(CLI::Range(0.001, 4096.0));
  sub->add_option("--max-media", s.max_media, "Media items per request")->capture_default_str()->check(CLI::Range(0, 64));
  sub->add_option("--max-pixels", s.engine.max_pixels, "Refuse images (and video frames) with more pixels")
      ->capture_default_str();
  sub->add_option("--max-audio-seconds", s.engine.max_audio_seconds, "Refuse longer audio")->capture_default_str();
  sub->add_option("--max-video-seconds", s.engine.max_video_seconds, "Refuse longer videos")->capture_default_str();
  sub->add_option("--frames", s.engine.video_frames, "Frames sampled from a video (default: the adapter's)");
  sub->add_option("--media-path", s.media_path, "Allow file:// media URLs for files under this folder");
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", s.engine.dtype, "Weights: f32, bf16, or q8 (int8 LLM projections, bf16 elsewhere) (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_serve(*o); }; });
}

}  // namespace llama_mm::cli
