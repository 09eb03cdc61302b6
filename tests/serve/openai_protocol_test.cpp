// Tests serve/openai_protocol: chat requests with interleaved media parts (data URLs, raw base64, file:// only
// under --media-path), sampling fields, every malformed shape a 400 naming its field, strict base64, UTF-8 repair
// and the error envelope.
#include "serve/openai_protocol.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm::serve {
namespace {

using nlohmann::json;

std::string b64(const std::string& s) { return test::base64_encode(s); }

ChatRequest parse(const json& j, const ProtocolLimits& limits = {}) {
  return parse_chat_request(j.dump(), limits, default_sampling_params());
}

// The ApiError a body gives (its status, type, param and message).
ApiError error_of(const std::string& body, const ProtocolLimits& limits = {}) {
  try {
    parse_chat_request(body, limits, default_sampling_params());
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return ApiError(0, "", "");
}

TEST(OpenAiProtocol, InterleavedPartsAndSamplingFields) {
  const json j = {
      {"model", "m"},
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "user"},
         {"content",
          {{{"type", "text"}, {"text", "first"}},
           {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + b64("PNGBYTES")}, {"detail", "low"}}}},
           {{"type", "text"}, {"text", "then"}},
           {{"type", "input_audio"}, {"input_audio", {{"data", b64("RIFFWAVE")}, {"format", "mp3"}}}},
           {{"type", "video_url"}, {"video_url", {{"url", b64("MP4!")}}}}}}}}},
      {"max_completion_tokens", 7}, {"temperature", 0.0}, {"top_p", 0.5}, {"top_k", 3}, {"seed", 11},
      {"stop", {"\n\n", "END"}}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
      {"ignore_eos", true}, {"presence_penalty", 0.3}};  // unknown sampling fields are tolerated
  const auto r = parse(j);
  ASSERT_EQ(r.messages.size(), 2u);
  const auto& parts = r.messages[1].parts;
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0].text, "first");
  EXPECT_EQ(parts[1].media, 0);
  EXPECT_EQ(parts[2].text, "then");
  EXPECT_EQ(parts[3].media, 1);
  EXPECT_EQ(parts[4].media, 2);
  ASSERT_EQ(r.media.size(), 3u);
  EXPECT_EQ(r.media[0].kind, MediaKind::Image);
  EXPECT_EQ(r.media[0].bytes, "PNGBYTES");
  EXPECT_EQ(r.media[1].kind, MediaKind::Audio);  // the format field is not trusted: the bytes are sniffed later
  EXPECT_EQ(r.media[1].bytes, "RIFFWAVE");
  EXPECT_EQ(r.media[2].kind, MediaKind::Video);
  EXPECT_EQ(r.media[2].bytes, "MP4!");  // raw base64 without a data: prefix
  EXPECT_EQ(r.media[0].name, "messages[1].content[1].image_url.url");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_EQ(r.sampling.seed, 11);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.ignore_eos);
  // Absent fields keep the defaults; a string content is one text part.
  const auto plain = parse({{"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  EXPECT_EQ(plain.sampling.temperature, default_sampling_params().temperature);
  EXPECT_EQ(plain.max_tokens, -1);
  EXPECT_FALSE(plain.stream);
  EXPECT_FALSE(plain.ignore_eos);
  ASSERT_EQ(plain.messages[0].parts.size(), 1u);
  EXPECT_EQ(plain.messages[0].parts[0].text, "hi");
}

TEST(OpenAiProtocol, MalformedRequestsAre400sNamingTheField) {
  const auto user = [](const json& content) { return json{{"messages", {{{"role", "user"}, {"content", content}}}}}; };
  struct Case {
    std::string body, param, in_message;
  };
  const std::vector<Case> cases = {
      {"{not json", "", "not valid JSON"},
      {"[1, 2]", "", "JSON object"},
      {json{{"model", "m"}}.dump(), "messages", "required"},
      {json{{"messages", json::array()}}.dump(), "messages", "non-empty"},
      {json{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}.dump(), "messages[0].role", "unknown role"},
      {user(42).dump(), "messages[0].content", "string or a list"},
      {user({{{"type", "image_file"}}}).dump(), "messages[0].content[0].type", "image_file"},
      {user({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,@@@@"}}}}}).dump(),
       "messages[0].content[0].image_url.url", "base64"},
      {user({{{"type", "image_url"}, {"image_url", {{"url", "https://example.com/cat.jpg"}}}}}).dump(),
       "messages[0].content[0].image_url.url", "remote URLs"},
      {user({{{"type", "image_url"}, {"image_url", {{"url", "file:///etc/passwd"}}}}}).dump(),
       "messages[0].content[0].image_url.url", "--media-path"},
      {user({{{"type", "input_audio"}, {"input_audio", "x"}}}).dump(), "messages[0].content[0].input_audio", "object"},
      {user({{{"type", "text"}}}).dump(), "messages[0].content[0].text", "required"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"temperature", "hot"}}.dump(), "temperature",
       "number"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"temperature", 3}}.dump(), "temperature", "[0"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", 0}}.dump(), "max_tokens", "[1"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"n", 2}}.dump(), "n", "one choice"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"stop", 5}}.dump(), "stop", "string"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"stream", "yes"}}.dump(), "stream", "true or false"},
      {json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"ignore_eos", 1}}.dump(), "ignore_eos", "boolean"},
      {json{{"messages", {{{"role", "assistant"}, {"content", "x"}}}}}.dump(), "messages", "assistant"},
      {json{{"messages", {{{"role", "system"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", b64("x")}}}}}}}}}}.dump(),
       "messages[0].content[0].image_url.url", "user messages"},
  };
  for (const auto& c : cases) {
    const auto e = error_of(c.body);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.type(), "invalid_request_error") << c.body;
    EXPECT_EQ(e.param(), c.param) << c.body;
    EXPECT_NE(std::string(e.what()).find(c.in_message), std::string::npos) << c.body << ": " << e.what();
  }
  // Too many media items for the limit.
  ProtocolLimits two;
  two.max_media = 2;
  json parts = json::array();
  for (int i = 0; i < 3; ++i) parts.push_back({{"type", "image_url"}, {"image_url", {{"url", b64("img")}}}});
  const auto e = error_of(user(parts).dump(), two);
  EXPECT_EQ(e.status(), 400);
  EXPECT_NE(std::string(e.what()).find("more than 2 media items"), std::string::npos) << e.what();
}

TEST(OpenAiProtocol, FileUrlsOnlyInsideTheMediaPath) {
  test::TempDir dir("protocol_test");
  std::filesystem::create_directories(dir / "media");
  std::ofstream(dir / "media" / "a.jpg") << "JPEGDATA";
  std::ofstream(dir / "secret.txt") << "SECRET";
  ProtocolLimits limits;
  limits.media_path = (dir / "media").string();
  auto request = [](const std::string& url) {
    return json{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", url}}}}}}}}}};
  };
  EXPECT_EQ(parse(request("file://a.jpg"), limits).media.at(0).bytes, "JPEGDATA");
  EXPECT_EQ(parse(request("file:///a.jpg"), limits).media.at(0).bytes, "JPEGDATA");  // absolute = under the root
  for (const std::string bad : {"file://../secret.txt", "file://a/../../secret.txt", "file://missing.jpg"})
    EXPECT_EQ(error_of(request(bad).dump(), limits).status(), 400) << bad;
}

TEST(OpenAiProtocol, Base64Utf8AndTheErrorEnvelope) {
  EXPECT_EQ(decode_base64(b64("hello world"), "x"), "hello world");
  EXPECT_EQ(decode_base64("aGVs\nbG8=", "x"), "hello");
  EXPECT_EQ(decode_base64("aGVsbG8", "x"), "hello");  // padding optional
  for (const std::string bad : {"aGVsbG8=x", "a", "!!!!", ""}) EXPECT_THROW(decode_base64(bad, "x"), ApiError) << bad;
  EXPECT_EQ(valid_utf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(valid_utf8("\xE2\x82"), "\xEF\xBF\xBD");  // a truncated sequence: one maximal subpart
  EXPECT_EQ(valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  ApiError e(400, "exceed_context_size_error", "request (9 tokens) exceeds the available context size (8 tokens)");
  e.extra = {{"n_prompt_tokens", 9}, {"n_ctx", 8}};
  const auto body = error_body(e);
  EXPECT_EQ(body["error"]["type"], "exceed_context_size_error");
  EXPECT_EQ(body["error"]["code"], 400);
  EXPECT_EQ(body["error"]["n_ctx"], 8);
  EXPECT_TRUE(body["error"]["param"].is_null());
}

}  // namespace
}  // namespace llama_mm::serve
