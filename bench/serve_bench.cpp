// bench/serve_bench.cpp: `llama-mm bench serve`: concurrent streaming clients against the real server (see bench.h).
#include "bench/bench.h"

#include "serve/server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

namespace llama_mm::bench {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

struct Sample {
  double ttft_s = 0, latency_s = 0, decode_s = 0;
  int64_t tokens = 0, prompt_tokens = 0;
};

// One streaming chat request; throws on any failure.
Sample stream_once(int port, const std::string& prompt, int n_gen) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(3600, 0);
  const json body = {{"messages", {{{"role", "user"}, {"content", prompt}}}},
                     {"max_tokens", n_gen},
                     {"temperature", 0},
                     {"ignore_eos", true},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buffer;
  Sample s;
  Clock::time_point first{}, last{};
  const auto t0 = Clock::now();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    for (size_t cut; (cut = buffer.find("\n\n")) != std::string::npos;) {
      const std::string event = buffer.substr(0, cut);
      buffer.erase(0, cut + 2);
      if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
      const auto chunk = json::parse(event.substr(6));
      if (chunk.contains("error")) throw std::runtime_error(chunk["error"].dump());
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        s.tokens = chunk["usage"]["completion_tokens"];
        s.prompt_tokens = chunk["usage"]["prompt_tokens"];
      }
      for (const auto& c : chunk["choices"]) {
        const bool content = c.contains("delta") && c["delta"].contains("content") &&
                             !c["delta"]["content"].get<std::string>().empty();
        if (content || !c["finish_reason"].is_null()) {
          if (first == Clock::time_point{}) first = Clock::now();
          last = Clock::now();
        }
      }
    }
    return true;
  };
  auto res = client.send(req);
  if (!res || res->status != 200)
    throw Error(ErrorKind::Runtime, "bench serve: request failed: " + (res ? std::to_string(res->status) : httplib::to_string(res.error())));
  s.latency_s = seconds_since(t0);
  s.ttft_s = std::chrono::duration<double>(first - t0).count();
  s.decode_s = std::chrono::duration<double>(last - first).count();
  return s;
}

// A counter from GET /metrics.
double metric(int port, const std::string& name) {
  httplib::Client client("127.0.0.1", port);
  auto r = client.Get("/metrics");
  if (!r) return 0;
  const auto at = r->body.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stod(r->body.substr(at + name.size() + 2));
}

std::string prompt_text(int words, int client, int request) {
  std::string s = "Client " + std::to_string(client) + ", request " + std::to_string(request) + ":";
  static const char* vocab[] = {"red", "circle", "moves", "left", "small", "blue", "square", "grows", "under", "the"};
  for (int i = 0; i < words; ++i) s += std::string(" ") + vocab[(i * 7 + client * 3 + request) % 10];
  return s;
}

}  // namespace

ServeBenchResult run_serve_bench(const ServeBenchParams& p) {
  if (p.clients.empty()) throw Error(ErrorKind::Usage, "bench serve: --clients needs at least one count");
  configure_threads(p.threads);
  serve::ServeOptions so;
  so.engine.model_dir = p.model_dir;
  so.engine.dtype = p.dtype;
  so.engine.n_ctx = p.n_ctx;
  so.engine.slots = *std::max_element(p.clients.begin(), p.clients.end());
  so.engine.queue = so.engine.slots * 4;
  so.port = 0;
  std::promise<int> ready;
  std::atomic<bool> announced{false};
  so.on_ready = [&](int port) {
    announced = true;
    ready.set_value(port);
  };
  std::atomic<int> code{0};
  std::thread server([&] {
    code = serve::run_server(so);
    if (!announced.exchange(true)) ready.set_value(-1);
  });
  const int port = ready.get_future().get();
  ServeBenchResult r;
  try {
    if (port < 0) throw Error(static_cast<ErrorKind>(code.load()), "bench serve: the server did not start (see above)");
    {
      httplib::Client c("127.0.0.1", port);
      auto models = c.Get("/v1/models");
      if (!models) throw Error(ErrorKind::Runtime, "bench serve: GET /v1/models failed");
      r.model = json::parse(models->body)["data"][0]["id"];
    }
    r.dtype = p.dtype.empty() ? "checkpoint" : p.dtype;
    r.threads = at::get_num_threads();
    r.slots = so.engine.slots;
    std::cerr << "bench serve: warm-up\n";
    stream_once(port, prompt_text(p.n_prompt, 0, 0), std::min(p.n_gen, 4));
    for (int clients : p.clients) {
      ServeBenchRound round;
      round.clients = clients;
      round.requests = clients * p.requests_per_client;
      std::cerr << "bench serve: " << clients << " client(s) x " << p.requests_per_client << " request(s)\n";
      const double steps0 = metric(port, "llama_mm_decode_steps_total");
      const double rows0 = metric(port, "llama_mm_decode_step_sequences_total");
      const double decode_s0 = metric(port, "llama_mm_decode_seconds_total");
      const double prefill_s0 = metric(port, "llama_mm_prefill_seconds_total");
      std::vector<Sample> samples;
      std::mutex mu;
      std::string failure;
      const auto t0 = Clock::now();
      std::vector<std::thread> threads;
      for (int c = 0; c < clients; ++c)
        threads.emplace_back([&, c] {
          for (int q = 0; q < p.requests_per_client; ++q) {
            try {
              auto s = stream_once(port, prompt_text(p.n_prompt, c + 1, q), p.n_gen);
              std::lock_guard<std::mutex> lock(mu);
              samples.push_back(s);
            } catch (const std::exception& e) {
              std::lock_guard<std::mutex> lock(mu);
              failure = e.what();
            }
          }
        });
      for (auto& t : threads) t.join();
      round.wall_s = seconds_since(t0);
      if (!failure.empty()) throw Error(ErrorKind::Runtime, failure);
      const double steps = metric(port, "llama_mm_decode_steps_total") - steps0;
      const double rows = metric(port, "llama_mm_decode_step_sequences_total") - rows0;
      round.mean_batch = steps > 0 ? rows / steps : 0;
      const double decode_s = metric(port, "llama_mm_decode_seconds_total") - decode_s0;
      round.loop_decode_tok_per_s = decode_s > 0 ? rows / decode_s : 0;
      round.prefill_s = metric(port, "llama_mm_prefill_seconds_total") - prefill_s0;
      std::vector<double> ttft, latency;
      double decode_rate = 0;
      for (const auto& s : samples) {
        round.tokens += s.tokens;
        round.prompt_tokens = s.prompt_tokens;
        ttft.push_back(s.ttft_s * 1000);
        latency.push_back(s.latency_s * 1000);
        // Streams whose text arrived in one piece (a tokenizer that decodes few of the ids) have no decode span.
        if (s.decode_s > 1e-3 && s.tokens > 1) decode_rate += (s.tokens - 1) / s.decode_s;
      }
      // Clients run requests one after another: on average `clients` streams decode at once.
      round.decode_tok_per_s = samples.empty() ? 0 : decode_rate / p.requests_per_client;
      round.tok_per_s = round.tokens / round.wall_s;
      round.ttft_p50_ms = percentile(ttft, 0.5), round.ttft_p99_ms = percentile(ttft, 0.99);
      round.latency_p50_ms = percentile(latency, 0.5), round.latency_p99_ms = percentile(latency, 0.99);
      r.rounds.push_back(round);
    }
  } catch (...) {
    serve::stop_server();
    server.join();
    throw;
  }
  serve::stop_server();
  server.join();
  return r;
}

}  // namespace llama_mm::bench
