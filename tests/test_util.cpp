#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace llama_mm::test {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CommandResult run_cli(const std::string& args, const std::string& stdin_text, const std::string& env) {
  TempDir dir("llama_mm_cli");
  const fs::path in = dir / "stdin", out = dir / "stdout", err = dir / "stderr";
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string cmd = (env.empty() ? "" : env + " ") + "'" + LLAMA_MM_CLI_PATH + "' " + args + " <'" + in.string() + "' >'" +
                          out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
  }
  return out;
}

void run_ffmpeg(const std::string& args) {
  TempDir dir("llama_mm_ffmpeg");
  const fs::path err = dir / "stderr";
  const std::string cmd = "ffmpeg -v error -nostdin -y " + args + " 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  if (status != 0) throw std::runtime_error("ffmpeg failed (exit status " + std::to_string(status) + "): " + cmd + "\n" + slurp(err));
}

void make_counter_clip(const fs::path& out, int n_frames, const std::string& codec, const std::string& filters, int fps) {
  const std::string draw = "geq=lum='if(bitand(N\\,pow(2\\,floor(X/8)))\\,235\\,16)':cb=128:cr=128";
  run_ffmpeg("-f lavfi -i color=c=black:s=" + std::to_string(kCounterWidth) + "x" + std::to_string(kCounterHeight) +
             ":r=" + std::to_string(fps) + " -frames:v " + std::to_string(n_frames) + " -vf \"" + draw + filters +
             "\" " + codec + " '" + out.string() + "'");
}

}  // namespace llama_mm::test
