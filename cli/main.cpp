// cli/main.cpp: the llama-mm binary. Results go to stdout, logs and progress to stderr.
// Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 model load failure, 4 input decode failure, 5 config error.
#include "cli/commands.h"
#include "llm/error.h"

#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <unistd.h>

// LibTorch's OpenMP workers spin after each parallel region and steal the cores OpenBLAS's own threads need
// for the GEMM that follows (1B bf16 prefill: 54 -> 63 tok/s with passive waiting, docs/performance.md).
// libgomp reads OMP_WAIT_POLICY only when it loads, before main(), so set it and re-execute once.
static void ensure_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // the user's choice, or already re-executed
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on with the default policy
}

int main(int argc, char** argv) {
  ensure_passive_openmp_wait(argv);
  CLI::App app{"llama-mm: Llama 3 with eyes and ears (text generation, tokenization, model tools)"};
  app.require_subcommand(1);
  llama_mm::cli::Action action;
  llama_mm::cli::add_generate_command(app, action);
  llama_mm::cli::add_caption_command(app, action);
  llama_mm::cli::add_tokenize_commands(app, action);
  llama_mm::cli::add_init_model_command(app, action);
  llama_mm::cli::add_bench_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help or the usage error
    return rc == 0 ? 0 : static_cast<int>(llama_mm::ErrorKind::Usage);
  }
  try {
    return action ? action() : 0;
  } catch (const llama_mm::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return static_cast<int>(llama_mm::ErrorKind::Runtime);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(llama_mm::ErrorKind::Runtime);
  }
}
