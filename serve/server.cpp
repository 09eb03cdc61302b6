// serve/server.cpp: routes, authentication, streaming and shutdown (see server.h).
#include "serve/server.h"

#include "serve/metrics.h"
#include "serve/web_page.h"

// httplib listens with a backlog of 5: a burst of clients (16 at once in the tests) overflows it, and a connection whose
// handshake the kernel dropped may deliver its request after httplib's 5 s read timeout. This is the only file that
// runs an httplib server.
#define CPPHTTPLIB_LISTEN_BACKLOG 512
#include <httplib.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

namespace llama_mm::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};
void on_serve_signal(int) { g_stop = true; }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status(), error_body(e)); }

json json_body(const httplib::Request& req) {
  try {
    return json::parse(req.body);
  } catch (const json::exception& e) {
    throw invalid_request(std::string("the request body is not valid JSON: ") + e.what());
  }
}

std::string random_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  std::mt19937_64 gen(std::random_device{}() ^ (++counter * 0x9E3779B97F4A7C15ULL));
  static const char* digits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[gen() % 62];
  return id;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* finish_reason(const std::string& stop_reason) {
  return stop_reason == "length" || stop_reason == "context" || stop_reason == "deadline" ? "length" : "stop";
}

// One generation's output on its way from its slot to the HTTP thread.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  bool done = false;
  GenerateResult result;
  std::optional<std::string> error;
  std::atomic<bool> cancelled{false};
  Clock::time_point first_text{};

  bool push(const std::string& piece) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (first_text == Clock::time_point{}) first_text = Clock::now();
      pieces.push_back(piece);
    }
    cv.notify_all();
    return !cancelled;
  }
  void finish(GenerateResult r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      result = std::move(r);
      done = true;
    }
    cv.notify_all();
  }
  void fail(const std::string& e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      error = e;
      done = true;
    }
    cv.notify_all();
  }
};

class Server {
 public:
  explicit Server(const ServeOptions& o) : o_(o) {}

  int run();

 private:
  void routes();
  Engine* engine() { return ready_ ? engine_.get() : nullptr; }
  void chat(const httplib::Request& req, httplib::Response& res);
  void transcription(const httplib::Request& req, httplib::Response& res, bool translate);
  void record(const std::string& endpoint, int status) { metrics_.request(endpoint, status); }

  ServeOptions o_;
  httplib::Server http_;
  int listen_fd_ = -1;  // the listening socket, seen through httplib's socket-options hook
  std::unique_ptr<Engine> engine_;
  std::atomic<bool> ready_{false};
  Metrics metrics_;
};

void Server::chat(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  ProtocolLimits limits;
  limits.max_media = o_.max_media;
  limits.media_path = o_.media_path;
  auto* eng = engine();
  const auto request = parse_chat_request(req.body, limits, default_sampling_params());
  eng->check_capacity();
  auto prompt = std::make_shared<PreparedPrompt>(eng->prepare(request));  // media encoded here, off the slots
  metrics_.media("image", prompt->n_images, prompt->image_encode_s);
  metrics_.media("video", prompt->n_videos, prompt->video_encode_s);
  metrics_.media("audio", prompt->n_audio, prompt->audio_encode_s);
  GenerateParams gp = default_generate_params();
  gp.n_predict = request.max_tokens > 0 ? request.max_tokens : o_.default_max_tokens;
  gp.sampling = request.sampling;
  gp.stop = request.stop;
  gp.ignore_eos = request.ignore_eos;
  const int64_t n_prompt = static_cast<int64_t>(prompt->ids.size()) + prompt->n_media_tokens;

  auto ch = std::make_shared<Channel>();
  BatchJob job;
  job.params = gp;
  job.on_text = [ch](const std::string& piece) { return ch->push(piece); };
  const auto deadline = o_.request_timeout_s > 0
                            ? t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.request_timeout_s))
                            : Clock::time_point::max();
  job.should_stop = [ch, deadline]() -> std::string {
    if (ch->cancelled) return "cancelled";
    if (Clock::now() >= deadline) return "deadline";
    return "";
  };
  job.on_done = [ch](GenerateResult r) { ch->finish(std::move(r)); };
  job.on_error = [ch](const std::string& e) { ch->fail(e); };
  eng->submit(prompt, std::move(job));

  const std::string id = random_id("chatcmpl-");
  const int64_t created = unix_time();
  const std::string model = eng->model_id();
  auto usage = [n_prompt](const GenerateResult& r) {
    const auto n = static_cast<int64_t>(r.tokens.size());
    return json{{"prompt_tokens", n_prompt}, {"completion_tokens", n}, {"total_tokens", n_prompt + n}};
  };
  auto timings = [](const GenerateResult& r) {
    return json{{"prompt_n", r.timings.n_prompt}, {"prompt_ms", r.timings.prompt_ms},
                {"predicted_n", r.timings.n_generated}, {"predicted_ms", r.timings.generate_ms},
                {"predicted_per_second", r.timings.generate_tok_per_s()}};
  };
  auto account = [this, t0, n_prompt, ch](const GenerateResult& r) {
    metrics_.tokens(n_prompt, static_cast<int64_t>(r.tokens.size()));
    if (ch->first_text != Clock::time_point{})
      metrics_.time_to_first_token(std::chrono::duration<double>(ch->first_text - t0).count());
    metrics_.latency(seconds_since(t0));
  };

  if (!request.stream) {
    std::unique_lock<std::mutex> lock(ch->mu);
    ch->cv.wait(lock, [&] { return ch->done; });
    if (ch->error) throw std::runtime_error(*ch->error);
    const auto& r = ch->result;
    account(r);
    send_json(res, 200,
              {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model},
               {"choices", json::array({{{"index", 0},
                                         {"message", {{"role", "assistant"}, {"content", valid_utf8(r.text)}}},
                                         {"logprobs", nullptr},
                                         {"finish_reason", finish_reason(r.stop_reason)}}})},
               {"usage", usage(r)}, {"timings", timings(r)}});
    record("chat", 200);
    return;
  }

  const bool include_usage = request.include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, ch, id, created, model, include_usage, usage, timings, account](size_t, httplib::DataSink& sink) {
        auto chunk = [&](const json& delta, const json& finish) {
          return json{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                      {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
        };
        auto send = [&](const std::string& data) {
          const std::string event = "data: " + data + "\n\n";
          if (!sink.write(event.data(), event.size())) {
            ch->cancelled = true;  // the client is gone: the slot stops at its next token
            return false;
          }
          return true;
        };
        if (!send(dump(chunk({{"role", "assistant"}, {"content", ""}}, nullptr)))) return false;
        for (;;) {
          std::deque<std::string> pieces;
          bool done = false;
          {
            std::unique_lock<std::mutex> lock(ch->mu);
            ch->cv.wait_for(lock, std::chrono::seconds(15), [&] { return ch->done || !ch->pieces.empty(); });
            pieces.swap(ch->pieces);
            done = ch->done;
          }
          if (pieces.empty() && !done) {  // keep-alive while waiting (slow media or a full queue)
            static const char ping[] = ": ping\n\n";
            if (!sink.write(ping, sizeof ping - 1)) {
              ch->cancelled = true;
              return false;
            }
            continue;
          }
          for (const auto& piece : pieces)
            if (!send(dump(chunk({{"content", valid_utf8(piece)}}, nullptr)))) return false;
          if (!done) continue;
          if (ch->error) {
            send(dump(error_body(ApiError(500, "server_error", *ch->error))));
          } else {
            const auto& r = ch->result;
            account(r);
            json last = chunk(json::object(), finish_reason(r.stop_reason));
            last["timings"] = timings(r);
            send(dump(last));
            if (include_usage)
              send(dump({{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                         {"choices", json::array()}, {"usage", usage(r)}}));
          }
          send("[DONE]");
          record("chat", ch->error ? 500 : 200);
          sink.done();
          return true;
        }
      },
      [ch](bool success) {
        if (!success) ch->cancelled = true;
      });
}

void Server::transcription(const httplib::Request& req, httplib::Response& res, bool translate) {
  auto* eng = engine();
  if (!req.is_multipart_form_data())
    throw invalid_request("send the audio as multipart/form-data with a 'file' field", "file");
  if (!req.has_file("file")) throw invalid_request("the 'file' field is required", "file");
  const auto file = req.get_file_value("file");
  auto field = [&](const char* key, const std::string& fallback) {
    return req.has_file(key) ? req.get_file_value(key).content : fallback;
  };
  const std::string format_name = field("response_format", "json");
  media::TranscriptFormat format;
  try {
    format = media::parse_transcript_format(format_name);
    if (format_name == "txt") throw Error(ErrorKind::Usage, "txt");
  } catch (const Error&) {
    throw invalid_request("response_format must be json, text, srt, vtt or verbose_json (got '" + format_name + "')",
                          "response_format");
  }
  GenerateParams gp = default_generate_params();
  gp.n_predict = 224;  // as `transcribe`
  gp.sampling.temperature = 0;
  const std::string temperature = field("temperature", "");
  if (!temperature.empty()) {
    try {
      size_t used = 0;
      gp.sampling.temperature = std::stof(temperature, &used);
      if (used != temperature.size() || gp.sampling.temperature < 0 || gp.sampling.temperature > 1) throw 0;
    } catch (...) {
      throw invalid_request("temperature must be a number in [0, 1]", "temperature");
    }
  }
  std::string language;
  try {
    language = speech_language_name(translate ? "en" : field("language", "en"));
  } catch (const Error& e) {
    throw invalid_request(e.what(), "language");
  }
  const auto t0 = Clock::now();
  // Each audio segment's generation is queued on the batched decode loop (Engine::transcribe).
  const auto t = eng->transcribe(file.content, file.filename.empty() ? "file" : file.filename,
                                 translate ? SpeechTask::Translate : SpeechTask::Transcribe, language, gp, {});
  metrics_.media("audio", 1, seconds_since(t0));
  int64_t n_tokens = 0;
  for (const auto& s : t.segments) n_tokens += static_cast<int64_t>(s.tokens.size());
  metrics_.tokens(0, n_tokens);
  metrics_.latency(seconds_since(t0));
  const std::string body = valid_utf8(media::format_transcript(t, format));
  const char* type = format == media::TranscriptFormat::Text  ? "text/plain; charset=utf-8"
                     : format == media::TranscriptFormat::Srt ? "application/x-subrip"
                     : format == media::TranscriptFormat::Vtt ? "text/vtt"
                                                              : "application/json";
  res.status = 200;
  res.set_content(body, type);
  record(translate ? "translations" : "transcriptions", 200);
}

void Server::routes() {
  http_.set_payload_max_length(static_cast<size_t>(o_.max_body_mb * 1024 * 1024));
  http_.new_task_queue = [n = o_.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health" || req.path == "/") return httplib::Server::HandlerResponse::Unhandled;
    if (!o_.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + o_.api_key) {
      send_error(res, ApiError(401, "authentication_error", "Invalid API Key"));
      record("auth", 401);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!ready_) {
      res.set_header("Retry-After", "5");
      send_error(res, ApiError(503, "unavailable_error", "the model is loading"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_error(res, ApiError(404, "not_found_error", "no route for " + req.method + " " + req.path));
    else if (res.status == 413)
      send_error(res, ApiError(413, "invalid_request_error", "the request body is larger than the server's --max-body-mb"));
    else if (res.status == 405)
      send_error(res, ApiError(405, "invalid_request_error", req.method + " is not allowed on " + req.path));
    else
      send_error(res, ApiError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                               "HTTP status " + std::to_string(res.status)));
  });
  // Handlers catch their own errors: ApiError as given, anything else a 500 with its message.
  auto guarded = [this](const char* endpoint, auto&& handler) {
    return [this, endpoint, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        handler(req, res);
      } catch (const ApiError& e) {
        if (e.status() == 503) res.set_header("Retry-After", "1");
        send_error(res, e);
        record(endpoint, e.status());
      } catch (const std::exception& e) {
        std::cerr << "serve: " << req.method << " " << req.path << ": " << e.what() << "\n";
        send_error(res, ApiError(500, "server_error", e.what()));
        record(endpoint, 500);
      }
    };
  };

  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(web_page_html(), "text/html; charset=utf-8");
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (ready_) send_json(res, 200, {{"status", "ok"}});
    else send_error(res, ApiError(503, "unavailable_error", "the model is loading"));
  });
  http_.Get("/v1/models", guarded("models", [this](const httplib::Request&, httplib::Response& res) {
    auto* eng = engine();
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", eng->model_id()},
                                      {"object", "model"},
                                      {"created", unix_time()},
                                      {"owned_by", "llama-mm"},
                                      {"architecture", {{"input_modalities", eng->input_modalities()},
                                                        {"output_modalities", {"text"}}}},
                                      {"meta", {{"n_ctx", eng->n_ctx()}, {"slots", eng->batch().slots()}}}}})}});
  }));
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto* eng = engine();
    BatchStats loop;
    loop.slots = o_.engine.slots;
    if (eng) loop = eng->batch().stats();
    res.set_content(metrics_.render(loop), "text/plain; version=0.0.4");
  });
  http_.Post("/v1/chat/completions", guarded("chat", [this](const httplib::Request& req, httplib::Response& res) {
    chat(req, res);
  }));
  http_.Post("/v1/audio/transcriptions", guarded("transcriptions", [this](const httplib::Request& req, httplib::Response& res) {
    transcription(req, res, false);
  }));
  http_.Post("/v1/audio/translations", guarded("translations", [this](const httplib::Request& req, httplib::Response& res) {
    transcription(req, res, true);
  }));
  http_.Post("/tokenize", guarded("tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = json_body(req);
    if (!j.is_object() || !j.contains("content") || !j["content"].is_string())
      throw invalid_request("content must be a string", "content");
    const auto& tok = engine()->tokenizer();
    auto ids = tok.encode(j["content"].get<std::string>(), /*parse_special=*/true);
    if (j.value("add_special", false)) {
      if (auto bos = tok.token_id("<|begin_of_text|>")) ids.insert(ids.begin(), *bos);
    }
    json tokens = json::array();
    for (int32_t id : ids) {
      if (j.value("with_pieces", false)) tokens.push_back({{"id", id}, {"piece", valid_utf8(tok.decode({id}))}});
      else tokens.push_back(id);
    }
    send_json(res, 200, {{"tokens", tokens}});
  }));
  http_.Post("/detokenize", guarded("detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = json_body(req);
    if (!j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
      throw invalid_request("tokens must be a list of token ids", "tokens");
    const auto& tok = engine()->tokenizer();
    std::vector<int32_t> ids;
    for (const auto& t : j["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
        throw invalid_request("tokens must be ids in [0, " + std::to_string(tok.n_vocab()) + ")", "tokens");
      ids.push_back(t.get<int32_t>());
    }
    send_json(res, 200, {{"content", valid_utf8(tok.decode(ids))}});
  }));
}

int Server::run() {
  routes();
  http_.set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = sock;
  });
  const int port = o_.port == 0 ? http_.bind_to_any_port(o_.host) : (http_.bind_to_port(o_.host, o_.port) ? o_.port : -1);
  if (port < 0) throw Error(ErrorKind::Usage, "serve: cannot listen on " + o_.host + ":" + std::to_string(o_.port) +
                                                  " (in use, or not an address of this machine)");
  // Debian's cpp-httplib 0.11 listens with a backlog of 5: a burst of new clients overflowed it and the
  // kernel dropped their connections, which came back one second later (TCP's SYN retry). Listening again
  // on the bound socket only raises the backlog.
  if (listen_fd_ >= 0) ::listen(listen_fd_, 1024);
  std::thread listener([this] { http_.listen_after_bind(); });
  std::cerr << "serve: listening on http://" << o_.host << ":" << port << "\n" << std::flush;

  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_serve_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  std::thread watcher([this] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::cerr << "serve: stopping: no new connections; finishing the requests in flight\n";
    http_.stop();
  });

  int code = 0;
  try {
    const auto t0 = Clock::now();
    engine_ = std::make_unique<Engine>(o_.engine);
    ready_ = true;
    std::cerr << "serve: model " << engine_->model_id() << " ready in " << seconds_since(t0) << " s (";
    for (const auto& m : engine_->input_modalities()) std::cerr << m << (m == engine_->input_modalities().back() ? "" : ", ");
    std::cerr << "); " << engine_->batch().slots() << " slots, context " << engine_->n_ctx() << "\n" << std::flush;
    if (o_.on_ready) o_.on_ready(port);
  } catch (const Error& e) {
    std::cerr << "serve: " << e.what() << "\n";
    code = static_cast<int>(e.kind());
    g_stop = true;
  }
  listener.join();
  g_stop = true;
  watcher.join();
  if (engine_) engine_->shutdown();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (code == 0) std::cerr << "serve: stopped\n";
  return code;
}

}  // namespace

void stop_server() { g_stop = true; }

int run_server(const ServeOptions& opts) {
  g_stop = false;
  Server server(opts);
  return server.run();
}

}  // namespace llama_mm::serve
