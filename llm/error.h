// llm/error.h: the one exception type of llama-mm.
//
// Library code throws llama_mm::Error with a kind and a message that names the culprit
// (file, key, tensor, field); the edges convert it: the CLI maps the kind to an exit code,
// serve/ to an HTTP status. Asserts (TORCH_CHECK/TORCH_INTERNAL_ASSERT) stay for programmer bugs.
#pragma once

#include <stdexcept>
#include <string>

namespace llama_mm {

// Values are the CLI exit codes.
enum class ErrorKind : int {
  Runtime = 1,      // anything that went wrong while running
  Usage = 2,        // bad command-line usage
  ModelLoad = 3,    // checkpoint, tokenizer or weights could not be loaded
  InputDecode = 4,  // user input (text, image, audio, request) could not be decoded
  Config = 5,       // a config file (config.json, YAML) is invalid
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

}  // namespace llama_mm
