// cli/bundled_model.cpp: the bundled demo model and a model folder's adapters (see bundled_model.h).
#include "cli/bundled_model.h"

#include "llm/error.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace llama_mm::cli {

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> candidates() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("LLAMA_MM_MODEL"); env && *env) out.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path() / ".." / ".." / "models" / "demo");               // build/cli/llama-mm
    out.push_back(exe.parent_path() / ".." / "share" / "llama-mm" / "models" / "demo");  // PREFIX/bin/llama-mm
  }
  out.push_back(fs::path(LLAMA_MM_SOURCE_DIR) / "models" / "demo");
  return out;
}

}  // namespace

std::string model_or_bundled(const std::string& model_dir, const std::string& command) {
  if (!model_dir.empty()) return model_dir;
  std::string looked;
  for (const auto& c : candidates()) {
    if (fs::is_regular_file(c / "config.json")) {
      const std::string dir = c.lexically_normal().string();
      std::cerr << command << ": no -m given: the bundled demo model " << dir << "\n";
      return dir;
    }
    looked += (looked.empty() ? "" : ", ") + c.lexically_normal().string();
  }
  throw Error(ErrorKind::Usage, command + ": no -m given and no bundled demo model found (looked in " + looked + ")");
}

std::vector<std::string> model_adapters(const std::string& model_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(model_dir) / "adapters", ec))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace llama_mm::cli
