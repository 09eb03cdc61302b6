// llm/config_json.cpp: reading config.json-style files (see config_json.h).
#include "llm/config_json.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace llama_mm {

namespace config_json {
json read_file(const std::string& path, std::string* resolved) {
  namespace fs = std::filesystem;
  fs::path p = path;
  if (fs::is_directory(p)) p /= "config.json";
  if (resolved) *resolved = p.string();
  std::ifstream f(p);
  if (!f) throw Error(ErrorKind::ModelLoad, p.string() + ": cannot open config file");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Config, p.string() + ": invalid JSON: " + e.what());
  }
}
}  // namespace config_json

}  // namespace llama_mm
