// serve/server.h: `llama-mm serve`: the OpenAI-compatible HTTP server (docs: serve/README.md).
//
//   POST /v1/chat/completions       text, image_url, input_audio, video_url parts; stream (SSE) or not
//   POST /v1/audio/transcriptions   multipart; response_format json, text, srt, vtt, verbose_json
//   POST /v1/audio/translations     the same, into English
//   GET  /v1/models, /health, /metrics;  POST /tokenize, /detokenize
//   GET  /                          a page to try it (web_page.h)
// Binds 127.0.0.1 unless told otherwise; with an API key every route but /health and / needs
// "Authorization: Bearer".
// Client errors are 4xx in the OpenAI error envelope. SIGTERM / SIGINT: stop accepting, finish the work in
// flight, exit 0.
#pragma once

#include "serve/engine.h"

#include <functional>
#include <string>

namespace llama_mm::serve {

struct ServeOptions {
  EngineOptions engine;            // the model, adapters, context, slots (-np) and queue
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (the chosen one is printed)
  std::string api_key;             // "": no authentication
  double request_timeout_s = 600;  // a generation still running this long after its request arrived stops (0: never)
  double max_body_mb = 64;         // larger bodies are 413
  int max_media = 4;               // media items per request
  std::string media_path;          // file:// URLs allowed under this folder ("": none)
  int default_max_tokens = 512;    // when the request sets none
  int http_threads = 64;
  // Called once the model is loaded and requests are being served, with the bound port (benchmarks, embedding).
  std::function<void(int port)> on_ready;
};

// Runs until SIGTERM / SIGINT; returns the process exit code. Prints "serve: listening on http://HOST:PORT" on
// stderr once the port is bound (the model then loads; /health answers 503 until it is ready).
int run_server(const ServeOptions& opts);
// Asks the running run_server() to stop as SIGTERM does (from another thread).
void stop_server();

}  // namespace llama_mm::serve
