// serve/openai_protocol.h: the OpenAI request and response shapes (docs: ecosystem.md (b)) turned into plain
// structs at the edge, so nothing past this file sees JSON:
//   - chat requests: `content` as a string or parts (text, image_url, input_audio, and the video_url extension),
//     media as data URLs or raw base64, file:// only under --media-path (never outside it), no remote URLs;
//   - sampling fields (temperature, top_p, top_k, min_p, seed, stop, max_tokens / max_completion_tokens);
//   - the error envelope {"error": {"message", "type", "param", "code"}}.
// Every problem with a request is an ApiError with its HTTP status and OpenAI error type; the message names the
// field ("messages[0].content[1].image_url.url").
#pragma once

#include "llm/sampler.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace llama_mm::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string param = "")
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  nlohmann::json extra;  // merged into the error object (n_prompt_tokens, n_ctx)

 private:
  int status_;
  std::string type_, param_;
};
// A 400 invalid_request_error naming `param`.
ApiError invalid_request(const std::string& message, const std::string& param = "");
// {"error": {"message", "type", "param", "code"}} (code: the HTTP status, as llama.cpp gives it).
nlohmann::json error_body(const ApiError& e);

enum class MediaKind { Image, Audio, Video };
const char* media_kind_name(MediaKind k);  // "image", "audio", "video"

struct MediaItem {
  MediaKind kind = MediaKind::Image;
  std::string bytes;  // the file's bytes
  std::string name;   // for messages: the field it came from
};

// A message is text and media in order; media refers to ChatRequest::media by index.
struct MessagePart {
  std::string text;
  int media = -1;  // >= 0: this part is that media item
};
struct Message {
  std::string role;  // system, user, assistant
  std::vector<MessagePart> parts;
};

struct ProtocolLimits {
  int max_media = 4;         // media items per request
  std::string media_path;    // "": file:// refused; else files under this directory only
};

struct ChatRequest {
  std::string model;
  std::vector<Message> messages;
  std::vector<MediaItem> media;
  int max_tokens = -1;  // -1: the server's default
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false;
  bool ignore_eos = false;  // llama.cpp's extension: generate max_tokens even past eos (benchmarks)
};

// Parses and checks a /v1/chat/completions body (ApiError 400 on any problem). `defaults` gives the sampling
// values the request leaves out.
ChatRequest parse_chat_request(const std::string& body, const ProtocolLimits& limits, const SamplingParams& defaults);

// Strict base64 (standard alphabet, padding optional, whitespace ignored); ApiError 400 naming `param` otherwise.
std::string decode_base64(const std::string& text, const std::string& param);

// Text with any ill-formed UTF-8 replaced by U+FFFD (llm's to_valid_utf8): output is always valid UTF-8.
std::string valid_utf8(const std::string& s);

}  // namespace llama_mm::serve
