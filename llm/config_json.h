// llm/config_json.h: typed, error-naming access to config.json-style objects, shared by every config
// parser (LlamaConfig, MllamaVisionConfig, MllamaConfig, ...). Errors are ErrorKind::Config and name
// the file and the (dotted) key.
#pragma once

#include "llm/error.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace llama_mm::config_json {

using json = nlohmann::json;

[[noreturn]] inline void fail(const std::string& origin, const std::string& key, const std::string& what) {
  throw Error(ErrorKind::Config, origin + ": key '" + key + "': " + what);
}

// Reads j[key] as T; absent or null takes `dflt`, or is an error when there is none. Errors name the key
// as `shown` (e.g. "rope_scaling.factor" for nested keys), or as `key`.
template <typename T>
T get(const json& j, const std::string& key, const std::string& origin, std::optional<T> dflt,
      const std::string& shown = "") {
  const std::string& name = shown.empty() ? key : shown;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (!dflt) fail(origin, name, "missing required key");
    return *dflt;
  }
  bool ok;
  const char* want;
  if constexpr (std::is_same_v<T, bool>) ok = it->is_boolean(), want = "true/false";
  else if constexpr (std::is_integral_v<T>) ok = it->is_number_integer(), want = "an integer";
  else if constexpr (std::is_floating_point_v<T>) ok = it->is_number(), want = "a number";
  else ok = it->is_string(), want = "a string";
  if (!ok) fail(origin, name, std::string("expected ") + want + ", got " + it->dump());
  return it->get<T>();
}

// A list of integers (absent or null: `dflt`).
inline std::vector<int64_t> get_ints(const json& j, const std::string& key, const std::string& origin,
                                     std::optional<std::vector<int64_t>> dflt, const std::string& shown = "") {
  const std::string& name = shown.empty() ? key : shown;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (!dflt) fail(origin, name, "missing required key");
    return *dflt;
  }
  if (!it->is_array()) fail(origin, name, "expected a list of integers, got " + it->dump());
  std::vector<int64_t> out;
  for (const auto& e : *it) {
    if (!e.is_number_integer()) fail(origin, name, "expected integers, got " + e.dump());
    out.push_back(e.get<int64_t>());
  }
  return out;
}

// An integer that must be > 0 (absent or null: `dflt`).
inline int64_t get_positive(const json& j, const std::string& key, const std::string& origin,
                            std::optional<int64_t> dflt) {
  const auto v = get<int64_t>(j, key, origin, dflt);
  if (v <= 0) fail(origin, key, "must be positive, got " + std::to_string(v));
  return v;
}

// Fails on the first key of object `j` not in `known` (our own formats refuse unknown keys: a typo must not
// silently fall back to a default). `prefix` is prepended to the key in the message ("encoder.").
inline void check_known_keys(const json& j, const std::vector<std::string>& known, const std::string& origin,
                             const std::string& prefix = "") {
  if (!j.is_object()) fail(origin, prefix.empty() ? "<root>" : prefix, "expected an object");
  for (const auto& [k, v] : j.items()) {
    bool found = false;
    for (const auto& name : known) found = found || name == k;
    if (!found) fail(origin, prefix + k, "unknown key");
  }
}

// Parses a JSON file; `path` may be a directory holding config.json. Missing file: ModelLoad; bad JSON: Config.
json read_file(const std::string& path, std::string* resolved = nullptr);

}  // namespace llama_mm::config_json
