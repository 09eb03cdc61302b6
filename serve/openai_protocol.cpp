// serve/openai_protocol.cpp: request parsing and the error envelope (see openai_protocol.h).
#include "serve/openai_protocol.h"

#include "llm/tokenizer.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llama_mm::serve {

namespace fs = std::filesystem;
using nlohmann::json;

ApiError invalid_request(const std::string& message, const std::string& param) {
  return ApiError(400, "invalid_request_error", message, param);
}

json error_body(const ApiError& e) {
  json err = {{"message", valid_utf8(e.what())},
              {"type", e.type()},
              {"param", e.param().empty() ? json(nullptr) : json(e.param())},
              {"code", e.status()}};
  if (e.extra.is_object()) err.update(e.extra);
  return {{"error", err}};
}

const char* media_kind_name(MediaKind k) {
  switch (k) {
    case MediaKind::Image: return "image";
    case MediaKind::Audio: return "audio";
    case MediaKind::Video: return "video";
  }
  return "?";
}

std::string decode_base64(const std::string& text, const std::string& param) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // standard and URL-safe alphabets
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  size_t n_chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    const int v = value(c);
    if (v < 0 || pad > 0)
      throw invalid_request(param + ": not valid base64 (unexpected character at offset " + std::to_string(i) + ")",
                            param);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++n_chars;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (n_chars % 4 == 1 || pad > 2) throw invalid_request(param + ": not valid base64 (truncated)", param);
  if (out.empty()) throw invalid_request(param + ": no data", param);
  return out;
}

std::string valid_utf8(const std::string& s) { return to_valid_utf8(s); }

namespace {

std::string string_at(const json& j, const char* key, const std::string& where, bool required = true) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw invalid_request(where + "." + key + " is required", where + "." + key);
    return "";
  }
  if (!it->is_string()) throw invalid_request(where + "." + key + " must be a string", where + "." + key);
  return it->get<std::string>();
}

// The bytes a media URL stands for: a data URL, raw base64, or (with --media-path) a file:// path inside it.
std::string media_bytes(const std::string& url, const std::string& param, const ProtocolLimits& limits) {
  if (url.rfind("data:", 0) == 0) {
    const auto comma = url.find(',');
    if (comma == std::string::npos) throw invalid_request(param + ": a data URL needs a ',' before its data", param);
    if (url.substr(0, comma).find(";base64") == std::string::npos)
      throw invalid_request(param + ": only base64 data URLs are accepted", param);
    return decode_base64(url.substr(comma + 1), param);
  }
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)
    throw invalid_request(param + ": remote URLs are not fetched by this server; send the media as a data URL", param);
  if (url.rfind("file://", 0) == 0) {
    if (limits.media_path.empty())
      throw invalid_request(param + ": file:// URLs are off; start the server with --media-path DIR to allow files "
                                    "under DIR", param);
    std::error_code ec;
    const auto root = fs::weakly_canonical(limits.media_path, ec);
    const auto path = fs::weakly_canonical(fs::path(limits.media_path) / fs::path(url.substr(7)).relative_path(), ec);
    const auto rel = path.lexically_relative(root);
    if (ec || rel.empty() || *rel.begin() == "..")
      throw invalid_request(param + ": the file is outside --media-path", param);
    std::ifstream in(path, std::ios::binary);
    if (!in || fs::is_directory(path)) throw invalid_request(param + ": no such file under --media-path", param);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  return decode_base64(url, param);  // raw base64, as llama.cpp accepts it
}

std::string url_of(const json& part, const char* key, const std::string& where) {
  const auto it = part.find(key);
  if (it == part.end()) throw invalid_request(where + "." + key + " is required", where + "." + key);
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return string_at(*it, "url", where + "." + key);
  throw invalid_request(where + "." + key + " must be an object with a url", where + "." + key);
}

void add_media(ChatRequest& r, Message& m, MediaKind kind, std::string bytes, const std::string& where,
               const ProtocolLimits& limits) {
  if (m.role != "user")
    throw invalid_request(where + ": media is only accepted in user messages", where);
  if (static_cast<int>(r.media.size()) >= limits.max_media)
    throw invalid_request(where + ": more than " + std::to_string(limits.max_media) +
                              " media items in one request (the server's --max-media)", where);
  m.parts.push_back({"", static_cast<int>(r.media.size())});
  r.media.push_back({kind, std::move(bytes), where});
}

void parse_content(const json& content, ChatRequest& r, Message& m, const std::string& where,
                   const ProtocolLimits& limits) {
  if (content.is_null()) return;
  if (content.is_string()) {
    m.parts.push_back({content.get<std::string>(), -1});
    return;
  }
  if (!content.is_array()) throw invalid_request(where + " must be a string or a list of parts", where);
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& part = content[i];
    if (!part.is_object()) throw invalid_request(at + " must be an object", at);
    const std::string type = string_at(part, "type", at);
    if (type == "text") {
      m.parts.push_back({string_at(part, "text", at), -1});
    } else if (type == "image_url") {
      const std::string param = at + ".image_url.url";
      add_media(r, m, MediaKind::Image, media_bytes(url_of(part, "image_url", at), param, limits), param, limits);
    } else if (type == "video_url") {
      const std::string param = at + ".video_url.url";
      add_media(r, m, MediaKind::Video, media_bytes(url_of(part, "video_url", at), param, limits), param, limits);
    } else if (type == "audio_url") {
      const std::string param = at + ".audio_url.url";
      add_media(r, m, MediaKind::Audio, media_bytes(url_of(part, "audio_url", at), param, limits), param, limits);
    } else if (type == "input_audio") {
      const auto it = part.find("input_audio");
      if (it == part.end() || !it->is_object())
        throw invalid_request(at + ".input_audio must be an object with data and format", at + ".input_audio");
      // The format field is informative only: the bytes are sniffed.
      const std::string param = at + ".input_audio.data";
      std::string bytes = it->contains("data") ? decode_base64(string_at(*it, "data", at + ".input_audio"), param)
                                               : media_bytes(string_at(*it, "url", at + ".input_audio"),
                                                             at + ".input_audio.url", limits);
      add_media(r, m, MediaKind::Audio, std::move(bytes), param, limits);
    } else {
      throw invalid_request(at + ".type: unknown content part type '" + type +
                                "' (expected text, image_url, input_audio, audio_url or video_url)", at + ".type");
    }
  }
}

double number_at(const json& j, const char* key, double lo, double hi) {
  const auto& v = j[key];
  if (!v.is_number()) throw invalid_request(std::string(key) + " must be a number", key);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw invalid_request(std::string(key) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", key);
  return x;
}

int64_t integer_at(const json& j, const char* key, int64_t lo, int64_t hi) {
  const auto& v = j[key];
  if (!v.is_number_integer()) throw invalid_request(std::string(key) + " must be an integer", key);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw invalid_request(std::string(key) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", key);
  return x;
}

}  // namespace

ChatRequest parse_chat_request(const std::string& body, const ProtocolLimits& limits, const SamplingParams& defaults) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw invalid_request(std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw invalid_request("the request body must be a JSON object");
  ChatRequest r;
  r.sampling = defaults;
  r.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : "";
  const auto msgs = j.find("messages");
  if (msgs == j.end()) throw invalid_request("messages is required", "messages");
  if (!msgs->is_array() || msgs->empty()) throw invalid_request("messages must be a non-empty list", "messages");
  for (size_t i = 0; i < msgs->size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json& m = (*msgs)[i];
    if (!m.is_object()) throw invalid_request(at + " must be an object", at);
    Message msg;
    msg.role = string_at(m, "role", at);
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      throw invalid_request(at + ".role: unknown role '" + msg.role + "' (expected system, user or assistant)",
                            at + ".role");
    if (!m.contains("content")) throw invalid_request(at + ".content is required", at + ".content");
    parse_content(m["content"], r, msg, at + ".content", limits);
    r.messages.push_back(std::move(msg));
  }
  if (r.messages.back().role == "assistant")
    throw invalid_request("the last message must not be the assistant's (nothing to answer)", "messages");

  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (j.contains(key) && !j[key].is_null()) r.max_tokens = static_cast<int>(integer_at(j, key, 1, 1 << 20));
  if (j.contains("temperature") && !j["temperature"].is_null())
    r.sampling.temperature = static_cast<float>(number_at(j, "temperature", 0, 2));
  if (j.contains("top_p") && !j["top_p"].is_null()) r.sampling.top_p = static_cast<float>(number_at(j, "top_p", 0, 1));
  if (j.contains("top_k") && !j["top_k"].is_null()) r.sampling.top_k = static_cast<int>(integer_at(j, "top_k", 0, 1 << 20));
  if (j.contains("min_p") && !j["min_p"].is_null()) r.sampling.min_p = static_cast<float>(number_at(j, "min_p", 0, 1));
  if (j.contains("repeat_penalty") && !j["repeat_penalty"].is_null())
    r.sampling.repeat_penalty = static_cast<float>(number_at(j, "repeat_penalty", 0, 10));
  if (j.contains("seed") && !j["seed"].is_null()) r.sampling.seed = integer_at(j, "seed", INT64_MIN, INT64_MAX);
  if (j.contains("ignore_eos") && !j["ignore_eos"].is_null()) {
    if (!j["ignore_eos"].is_boolean()) throw invalid_request("ignore_eos must be a boolean", "ignore_eos");
    r.ignore_eos = j["ignore_eos"].get<bool>();
  }
  if (j.contains("n") && !j["n"].is_null() && integer_at(j, "n", 1, 128) != 1)
    throw invalid_request("n: only one choice per request is supported", "n");
  if (j.contains("stop") && !j["stop"].is_null()) {
    const auto& s = j["stop"];
    if (s.is_string()) r.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 16 && std::all_of(s.begin(), s.end(), [](const json& x) { return x.is_string(); }))
      for (const auto& x : s) r.stop.push_back(x.get<std::string>());
    else throw invalid_request("stop must be a string or a list of up to 16 strings", "stop");
  }
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) throw invalid_request("stream must be true or false", "stream");
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && j["stream_options"].is_object()) {
    const auto& so = j["stream_options"];
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        throw invalid_request("stream_options.include_usage must be true or false", "stream_options.include_usage");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  return r;
}

}  // namespace llama_mm::serve
