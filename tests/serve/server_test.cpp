// Tests `llama-mm serve` end to end: a random tiny Llama 3.2 Vision base with tiny video and speech adapters, started on a
// free loopback port with an API key, driven over HTTP (cpp-httplib's client):
//   - /health (no key needed), /v1/models with the input modalities, /tokenize and /detokenize;
//   - parity: greedy image and video chats equal `llama-mm caption`, a transcription equals `llama-mm transcribe`;
//   - streaming: SSE chunks whose deltas equal the non-streamed answer, the usage chunk, data: [DONE];
//   - concurrency: 16 simultaneous clients, each greedy answer equal to the same request alone;
//   - transcriptions in every response format;
//   - bad input: each a 4xx in the error envelope, and the server stays up with no slot left busy;
//   - SIGTERM: exit 0.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

namespace llama_mm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::run_cli;

const char* kKey = "test-key";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string b64(const std::string& s) { return test::base64_encode(s); }

class Server : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("server_test");
    ASSERT_EQ(run_cli("init-model --arch mllama --preset tiny --seed 3 -o '" + base() + "'").exit_code, 0);
    ASSERT_EQ(run_cli("init-model --arch speech-adapter --preset tiny --seed 4 --base '" + base() + "' -o '" +
                      speech() + "'").exit_code, 0);
    ASSERT_EQ(run_cli("init-model --arch video-adapter --preset tiny --gates random --seed 5 --base '" + base() +
                      "' -o '" + video() + "'").exit_code, 0);
    test::run_ffmpeg("-f lavfi -i sine=frequency=500:duration=1.5 -ar 16000 -ac 1 '" + wav() + "'");
    test::make_counter_clip(*dir_ / "clip.mp4", 40, "-c:v libx264 -pix_fmt yuv420p");
    // The server runs under a shell that records its exit code once it stops.
    const auto script = *dir_ / "serve.sh";
    std::ofstream(script) << "'" << LLAMA_MM_CLI_PATH << "' serve -m '" << base() << "' --adapter '" << speech()
                          << "' --adapter '" << video() << "' --frames 6 --port 0 -np 4 --api-key " << kKey << " --max-body-mb 1 --max-media 3 -c 1024 2>'"
                          << (*dir_ / "serve.err").string() << "' & echo $! >'" << (*dir_ / "pid").string()
                          << "'; wait $!; echo $? >'" << (*dir_ / "code").string() << "'\n";
    std::system(("bash '" + script.string() + "' &").c_str());
    for (int i = 0; i < 600 && port_ == 0; ++i) {  // up to 60 s for the port and the model
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const auto err = read_file(*dir_ / "serve.err");
      const auto at = err.find("listening on http://127.0.0.1:");
      if (at != std::string::npos && err.find("ready in") != std::string::npos)
        port_ = std::stoi(err.substr(at + std::string("listening on http://127.0.0.1:").size()));
    }
    ASSERT_GT(port_, 0) << read_file(*dir_ / "serve.err");
  }
  static void TearDownTestSuite() {
    if (port_ > 0) {
      const int pid = std::stoi(read_file(*dir_ / "pid"));
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 300 && !fs::exists(*dir_ / "code"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      EXPECT_EQ(read_file(*dir_ / "code"), "0\n") << read_file(*dir_ / "serve.err");  // a clean stop
    }
    delete dir_;
  }
  static std::string base() { return (*dir_ / "base").string(); }
  static std::string speech() { return (*dir_ / "speech.safetensors").string(); }
  static std::string wav() { return (*dir_ / "tone.wav").string(); }
  static std::string video() { return (*dir_ / "video.safetensors").string(); }
  static std::string clip() { return (*dir_ / "clip.mp4").string(); }
  static std::string image_path() { return test::fixture("images/small_40x30.bmp").string(); }

  static httplib::Client client(bool with_key = true) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    if (with_key) c.set_default_headers({{"Authorization", std::string("Bearer ") + kKey}});
    return c;
  }
  static json post(const std::string& path, const json& body, int expect = 200) {
    auto c = client();
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, expect) << r->body;
    return json::parse(r->body);
  }
  static json image_chat(const std::string& prompt, int max_tokens, bool stream = false) {
    return {{"model", "base"},
            {"messages",
             {{{"role", "user"},
               {"content",
                {{{"type", "image_url"}, {"image_url", {{"url", "data:image/bmp;base64," + b64(read_file(image_path()))}}}},
                 {{"type", "text"}, {"text", prompt}}}}}}},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"stream", stream},
            {"stream_options", {{"include_usage", true}}}};
  }
  // Slots are freed just after the last byte of an answer goes out: waits (up to 10 s) until none is busy.
  static int busy_slots_after_waiting() {
    int busy = -1;
    for (int i = 0; i < 100 && busy != 0; ++i) {
      busy = static_cast<int>(metric("llama_mm_requests_processing"));
      if (busy != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return busy;
  }
  static double metric(const std::string& name) {
    auto r = client().Get("/metrics");
    if (!r) return -1;
    const auto at = r->body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(r->body.substr(at + name.size() + 2));
  }

  static test::TempDir* dir_;
  static int port_;
};
test::TempDir* Server::dir_ = nullptr;
int Server::port_ = 0;

TEST_F(Server, HealthModelsAndTokenize) {
  auto open = client(false).Get("/health");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->status, 200);
  EXPECT_EQ(json::parse(open->body)["status"], "ok");
  const auto models = json::parse(client().Get("/v1/models")->body);
  EXPECT_EQ(models["data"][0]["id"], "base");
  EXPECT_EQ(models["data"][0]["architecture"]["input_modalities"], json({"text", "image", "video", "audio"}));
  // The try-it page needs no key and talks to the chat endpoint with streaming.
  auto page = client(false).Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_NE(page->body.find("stream: true"), std::string::npos);
  const auto t = post("/tokenize", {{"content", "hi<|image|>"}, {"with_pieces", true}});
  ASSERT_EQ(t["tokens"].size(), 3u);
  EXPECT_EQ(t["tokens"][2]["piece"], "<|image|>");
  const auto ids = post("/tokenize", {{"content", "hello"}})["tokens"];
  EXPECT_EQ(post("/detokenize", {{"tokens", ids}})["content"], "hello");
}

TEST_F(Server, ImageChatEqualsCaptionAndStreamsTheSameText) {
  const std::string prompt = "Describe this image in one sentence.";
  const auto r = post("/v1/chat/completions", image_chat(prompt, 12));
  const std::string text = r["choices"][0]["message"]["content"];
  auto cli = run_cli("caption -m '" + base() + "' '" + image_path() + "' -n 12 --temp 0 --json");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  const auto cj = test::json_lines(cli.out).at(0);
  EXPECT_EQ(text, cj["text"].get<std::string>());
  EXPECT_EQ(r["choices"][0]["finish_reason"], cj["stop_reason"] == "eos" ? "stop" : "length");
  // usage counts the image's tokens (tiles x (patches + 1)) on top of the text tokens.
  EXPECT_GT(r["usage"]["prompt_tokens"].get<int64_t>(), static_cast<int64_t>(cj["prompt_ids"].size()));
  EXPECT_EQ(r["usage"]["completion_tokens"], cj["tokens"].size());

  auto c = client();
  auto s = c.Post("/v1/chat/completions", image_chat(prompt, 12, true).dump(), "application/json");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const std::string& body = s->body;
  ASSERT_GE(body.size(), 14u);
  EXPECT_EQ(body.substr(body.size() - 14), "data: [DONE]\n\n");
  std::string streamed;
  json usage;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("data: {", 0) != 0) continue;
    const auto chunk = json::parse(line.substr(6));
    if (chunk.contains("usage")) usage = chunk["usage"];
    for (const auto& ch : chunk["choices"])
      if (ch["delta"].contains("content")) streamed += ch["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(usage, r["usage"]);
}

TEST_F(Server, VideoChatEqualsCaption) {
  const auto r = post("/v1/chat/completions",
                      {{"messages", {{{"role", "user"}, {"content", {{{"type", "video_url"},
                                                                      {"video_url", {{"url", "data:video/mp4;base64," + b64(read_file(clip()))}}}},
                                                                     {{"type", "text"}, {"text", "Describe this video in one sentence."}}}}}}},
                       {"max_tokens", 6}, {"temperature", 0}});
  auto cli = run_cli("caption -m '" + base() + "' --adapter '" + video() + "' '" + clip() + "' --frames 6 -n 6 --temp 0 --json");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(r["choices"][0]["message"]["content"], test::json_lines(cli.out).at(0)["text"]);
}

TEST_F(Server, SixteenConcurrentClientsEachGetTheirAnswerAlone) {
  std::vector<json> requests;
  for (int i = 0; i < 16; ++i)
    requests.push_back(i % 2 ? image_chat("What is " + std::to_string(i) + "?", 6)
                             : json{{"messages", {{{"role", "user"}, {"content", "Count to " + std::to_string(i)}}}},
                                    {"max_tokens", 6}, {"temperature", 0}});
  std::vector<std::string> alone, together(16);
  for (const auto& r : requests) alone.push_back(post("/v1/chat/completions", r)["choices"][0]["message"]["content"]);
  const double prefilled0 = metric("llama_mm_prefill_tokens_total"), steps0 = metric("llama_mm_decode_steps_total");
  const double decode_s0 = metric("llama_mm_decode_seconds_total");
  std::vector<std::thread> threads;
  std::atomic<int64_t> prompt_positions{0};
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      auto c = client();
      auto r = c.Post("/v1/chat/completions", requests[i].dump(), "application/json");
      if (r && r->status == 200) {
        const auto body = json::parse(r->body);
        together[i] = body["choices"][0]["message"]["content"];
        prompt_positions += body["timings"]["prompt_n"].get<int64_t>();
      } else {
        together[i] = "<failed: " + (r ? r->body : "no response: " + httplib::to_string(r.error())) + ">";
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(together[i], alone[i]) << i;
  EXPECT_EQ(busy_slots_after_waiting(), 0);
  // The loop's counters: every prompt position prefilled once, decode steps run and timed.
  EXPECT_EQ(metric("llama_mm_prefill_tokens_total") - prefilled0, static_cast<double>(prompt_positions));
  EXPECT_GT(metric("llama_mm_decode_steps_total"), steps0);
  EXPECT_GT(metric("llama_mm_decode_seconds_total"), decode_s0);
}

TEST_F(Server, TranscriptionsInEveryFormatEqualTheCli) {
  const auto cli = run_cli("transcribe -m '" + base() + "' --adapter '" + speech() + "' '" + wav() + "' --json");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  const std::string expected = test::json_lines(cli.out).at(0)["text"];
  auto c = client();
  const std::string audio = read_file(wav());
  auto send = [&](const std::string& format) {
    httplib::MultipartFormDataItems items = {{"file", audio, "tone.wav", "audio/wav"},
                                             {"model", "base", "", ""},
                                             {"response_format", format, "", ""}};
    return c.Post("/v1/audio/transcriptions", items);
  };
  auto j = send("json");
  ASSERT_TRUE(j);
  ASSERT_EQ(j->status, 200) << j->body;
  EXPECT_EQ(json::parse(j->body)["text"], expected);
  auto text = send("text");
  EXPECT_NE(text->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(text->body.find(expected), std::string::npos);
  auto srt = send("srt");
  EXPECT_EQ(srt->body.rfind("1\n00:00:00,000 --> 00:00:01,500\n", 0), 0u) << srt->body;
  auto vtt = send("vtt");
  EXPECT_EQ(vtt->body.rfind("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n", 0), 0u) << vtt->body;
  auto verbose = json::parse(send("verbose_json")->body);
  EXPECT_EQ(verbose["task"], "transcribe");
  EXPECT_NEAR(verbose["duration"].get<double>(), 1.5, 0.01);
  EXPECT_EQ(verbose["segments"].size(), 1u);
  EXPECT_EQ(send("docx")->status, 400);
  // Concurrent transcriptions share the batched decode loop and each still equals the CLI.
  std::vector<std::string> texts(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      auto ci = client();
      httplib::MultipartFormDataItems items = {{"file", audio, "tone.wav", "audio/wav"}, {"model", "base", "", ""}};
      auto r = ci.Post("/v1/audio/transcriptions", items);
      texts[i] = r && r->status == 200 ? json::parse(r->body)["text"].get<std::string>() : "<failed>";
    });
  for (auto& th : threads) th.join();
  for (const auto& tx : texts) EXPECT_EQ(tx, expected);
  // An audio part in a chat is spliced in as speech vectors.
  const auto chat = post("/v1/chat/completions",
                         {{"messages", {{{"role", "user"}, {"content", {{{"type", "input_audio"},
                                                                         {"input_audio", {{"data", b64(audio)}, {"format", "wav"}}}}}}}}},
                          {"max_tokens", 4}, {"temperature", 0}});
  EXPECT_EQ(chat["usage"]["completion_tokens"], 4);
}

// The official OpenAI Node client (npm `openai`, pinned by scripts/setup.sh) against the server, used unchanged.
TEST_F(Server, OfficialOpenAiNodeClientWorksUnchanged) {
  const auto module = test::source_dir() / ".cache/npm/node_modules/openai";
  ASSERT_TRUE(fs::exists(module / "package.json")) << module << " is missing: run scripts/setup.sh";
  const auto out_file = *dir_ / "openai.json", err_file = *dir_ / "openai.err";
  const std::string cmd = "node '" + (test::source_dir() / "tests/serve/openai_client.cjs").string() + "' '" +
                          module.string() + "' 'http://127.0.0.1:" + std::to_string(port_) + "/v1' " + kKey + " '" +
                          image_path() + "' '" + wav() + "' >'" + out_file.string() + "' 2>'" + err_file.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(err_file);
  const auto out = json::parse(read_file(out_file));
  EXPECT_EQ(out["models"], json::array({"base"}));
  // Chat with an image: the same answer and usage as a plain HTTP request; streamed, the same text.
  const auto direct = post("/v1/chat/completions", image_chat("Describe the image.", 8));
  EXPECT_EQ(out["image"]["content"], direct["choices"][0]["message"]["content"]);
  EXPECT_EQ(out["image"]["usage"], direct["usage"]);
  EXPECT_EQ(out["stream"]["content"], out["image"]["content"]);
  EXPECT_EQ(out["stream"]["usage"], direct["usage"]);
  EXPECT_EQ(out["stream"]["finish_reason"], out["image"]["finish_reason"]);
  EXPECT_GE(out["stream"]["chunks"].get<int>(), 3);  // role, content, finish (+ usage)
  // Chat with audio.
  EXPECT_EQ(out["audio"]["usage"]["completion_tokens"], 4);
  EXPECT_GT(out["audio"]["usage"]["prompt_tokens"].get<int>(), 10);
  // Transcriptions in every format equal the CLI's transcript.
  const auto cli = run_cli("transcribe -m '" + base() + "' --adapter '" + speech() + "' '" + wav() + "' --json");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  const std::string expected = test::json_lines(cli.out).at(0)["text"];
  const auto& t = out["transcriptions"];
  EXPECT_EQ(t["json"]["text"], expected);
  ASSERT_TRUE(t["text"].is_string()) << t["text"];
  EXPECT_NE(t["text"].get<std::string>().find(expected), std::string::npos);
  EXPECT_EQ(t["srt"].get<std::string>().rfind("1\n00:00:00,000 --> 00:00:01,500\n", 0), 0u) << t["srt"];
  EXPECT_EQ(t["vtt"].get<std::string>().rfind("WEBVTT\n", 0), 0u) << t["vtt"];
  EXPECT_EQ(t["verbose_json"]["task"], "transcribe");
  EXPECT_EQ(t["verbose_json"]["text"], expected);
  EXPECT_EQ(t["verbose_json"]["segments"].size(), 1u);
  EXPECT_TRUE(out["translation"]["text"].is_string());
  // Errors arrive as the client's own exception classes.
  EXPECT_EQ(out["bad_request"]["status"], 400);
  EXPECT_EQ(out["bad_request"]["class"], "BadRequestError");
  EXPECT_EQ(out["bad_request"]["type"], "invalid_request_error");
  EXPECT_EQ(out["bad_key"]["status"], 401);
  EXPECT_EQ(out["bad_key"]["class"], "AuthenticationError");
}

// The page at / in headless Chromium (Debian's, driven by npm playwright-core; both from scripts/setup.sh).
TEST_F(Server, WebPageInHeadlessChromiumCaptionsAnImageWithStreamedText) {
  const auto pw = test::source_dir() / ".cache/npm/node_modules/playwright-core";
  ASSERT_TRUE(fs::exists(pw / "package.json")) << pw << " is missing: run scripts/setup.sh";
  const std::string chromium = "/usr/bin/chromium";
  ASSERT_TRUE(fs::exists(chromium)) << chromium << " is missing: run scripts/setup.sh";
  const std::string prompt = "What is in this picture?";
  const auto out_file = *dir_ / "page.json", err_file = *dir_ / "page.err";
  const std::string cmd = "node '" + (test::source_dir() / "tests/serve/web_page.cjs").string() + "' '" + pw.string() +
                          "' " + chromium + " 'http://127.0.0.1:" + std::to_string(port_) + "/' " + kKey + " '" +
                          image_path() + "' '" + prompt + "' 12 >'" + out_file.string() + "' 2>'" + err_file.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(err_file);
  const auto out = json::parse(read_file(out_file));
  const auto direct = post("/v1/chat/completions", image_chat(prompt, 12));
  const auto& usage = direct["usage"];
  EXPECT_EQ(out["model"], "Model base (input: text, image, video, audio)");
  EXPECT_FALSE(out["error"].get<bool>()) << out["answer"];
  EXPECT_EQ(out["answer"], direct["choices"][0]["message"]["content"]) << out.dump();
  EXPECT_EQ(out["status"], "Done: " + std::to_string(usage["prompt_tokens"].get<int>()) + " prompt tokens, " +
                               std::to_string(usage["completion_tokens"].get<int>()) + " generated.");
  EXPECT_GE(out["updates"].get<int>(), 2) << "the answer should grow piece by piece: " << out.dump();
  EXPECT_TRUE(out["page_errors"].empty()) << out["page_errors"];
}

TEST_F(Server, BadInputGetsTheRight4xxAndTheServerStaysUp) {
  auto c = client();
  auto expect_error = [&](const httplib::Result& r, int status, const std::string& type, const std::string& what) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j["error"]["type"], type) << r->body;
    EXPECT_EQ(j["error"]["code"], status) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(what), std::string::npos) << r->body;
  };
  auto chat_with = [&](const json& content) {
    return c.Post("/v1/chat/completions",
                  json{{"messages", {{{"role", "user"}, {"content", content}}}}, {"max_tokens", 2}}.dump(),
                  "application/json");
  };
  expect_error(c.Post("/v1/chat/completions", "{oops", "application/json"), 400, "invalid_request_error", "JSON");
  expect_error(chat_with({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,%%%"}}}}}), 400,
               "invalid_request_error", "base64");
  expect_error(chat_with({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + b64("not a picture")}}}}}),
               400, "invalid_request_error", "image_url.url");
  expect_error(chat_with({{{"type", "input_audio"}, {"input_audio", {{"data", b64("not audio at all")}, {"format", "wav"}}}}}),
               400, "invalid_request_error", "input_audio.data");
  expect_error(chat_with({{{"type", "video_url"}, {"video_url", {{"url", b64("not a video")}}}}}), 400,
               "invalid_request_error", "video_url.url");
  json four = json::array();
  for (int i = 0; i < 4; ++i) four.push_back({{"type", "image_url"}, {"image_url", {{"url", b64("x")}}}});
  expect_error(chat_with(four), 400, "invalid_request_error", "more than 3 media items");
  expect_error(chat_with(std::string(1500, 'a')), 400, "exceed_context_size_error", "exceeds the available context size");
  expect_error(c.Post("/v1/chat/completions", std::string(2 << 20, ' '), "application/json"), 413,
               "invalid_request_error", "--max-body-mb");
  expect_error(c.Get("/v1/nothing"), 404, "not_found_error", "/v1/nothing");
  expect_error(client(false).Get("/v1/models"), 401, "authentication_error", "Invalid API Key");
  auto wrong = httplib::Client("127.0.0.1", port_);
  wrong.set_default_headers({{"Authorization", "Bearer nope"}});
  expect_error(wrong.Get("/v1/models"), 401, "authentication_error", "Invalid API Key");
  expect_error(c.Post("/v1/audio/transcriptions", "x", "text/plain"), 400, "invalid_request_error", "multipart");

  // A client that goes away mid-stream: the server cancels its generation and frees the slot.
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.headers = {{"Authorization", std::string("Bearer ") + kKey}, {"Content-Type", "application/json"}};
  req.body = json{{"messages", {{{"role", "user"}, {"content", "go on"}}}}, {"max_tokens", 900}, {"stream", true},
                  {"temperature", 1.0}, {"seed", 1}}.dump();
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };
  httplib::Client gone("127.0.0.1", port_);
  gone.send(req);
  EXPECT_EQ(chunks, 3);
  EXPECT_EQ(busy_slots_after_waiting(), 0);
  EXPECT_EQ(client().Get("/health")->status, 200);
  // ignore_eos: a sampled reply (random seed) may draw the end token first.
  const auto ok = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                                {"max_tokens", 2},
                                                {"ignore_eos", true}});
  EXPECT_EQ(ok["usage"]["completion_tokens"], 2);
}

// --request-timeout: a generation still running when its request's deadline passes stops there, with what it has
// and finish_reason "length"; the server goes on serving.
TEST(ServerDeadline, AGenerationPastItsDeadlineStopsWithWhatItHas) {
  test::TempDir dir("server_deadline");
  const auto model = (dir / "llama").string();
  ASSERT_EQ(run_cli("init-model --arch llama --preset tiny --seed 2 -o '" + model + "'").exit_code, 0);
  const auto script = dir / "serve.sh";
  std::ofstream(script) << "'" << LLAMA_MM_CLI_PATH << "' serve -m '" << model
                        << "' --port 0 -np 1 -c 65536 --request-timeout 0.5 2>'" << (dir / "serve.err").string()
                        << "' & echo $! >'" << (dir / "pid").string() << "'; wait $!; echo $? >'"
                        << (dir / "code").string() << "'\n";
  std::system(("bash '" + script.string() + "' &").c_str());
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto err = read_file(dir / "serve.err");
    const auto at = err.find("listening on http://127.0.0.1:");
    if (at != std::string::npos && err.find("ready in") != std::string::npos)
      port = std::stoi(err.substr(at + std::string("listening on http://127.0.0.1:").size()));
  }
  ASSERT_GT(port, 0) << read_file(dir / "serve.err");
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(600, 0);
  // 60000 tokens would take minutes; the deadline cuts the answer after half a second.
  const json body = {{"messages", {{{"role", "user"}, {"content", "go on"}}}},
                     {"max_tokens", 60000}, {"ignore_eos", true}, {"temperature", 1.0}, {"seed", 1}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const int n = j["usage"]["completion_tokens"];
  EXPECT_GT(n, 0);
  EXPECT_LT(n, 30000);
  auto small = c.Post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 3}, {"ignore_eos", true}}.dump(),
                      "application/json");
  ASSERT_TRUE(small);
  EXPECT_EQ(json::parse(small->body)["usage"]["completion_tokens"], 3);
  ::kill(std::stoi(read_file(dir / "pid")), SIGTERM);
  for (int i = 0; i < 300 && !fs::exists(dir / "code"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(read_file(dir / "code"), "0\n") << read_file(dir / "serve.err");
}

}  // namespace
}  // namespace llama_mm
