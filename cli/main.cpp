// cli/main.cpp: the llama-mm binary. Results go to stdout, logs and progress to stderr.
// Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 model load failure, 4 input decode failure, 5 config error.
#include "cli/commands.h"
#include "llm/error.h"

#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <unistd.h>

// Idle worker threads must not spin on the cores the next kernel needs (docs/performance.md):
//  - LibTorch's OpenMP workers spin after each parallel region and steal OpenBLAS's cores
//    (1B bf16 prefill: 54 -> 63 tok/s with OMP_WAIT_POLICY=PASSIVE);
//  - OpenBLAS's workers call sched_yield for ~2^28 cycles after each GEMM while LibTorch runs softmax, GELU
//    and conversions (vision encoder: 31 -> 26.5 s per image, kernel time 44 -> 8 s with OPENBLAS_THREAD_TIMEOUT=4).
// Both libraries read these variables only when they load, before main(), so set them and re-execute once.
static void ensure_passive_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // the user's choice, or already re-executed
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);  // keep a user's value
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on with the default policy
}

int main(int argc, char** argv) {
  ensure_passive_waiting(argv);
  CLI::App app{"llama-mm: Llama 3 with eyes and ears (text generation, tokenization, model tools)"};
  app.require_subcommand(1);
  llama_mm::cli::Action action;
  llama_mm::cli::add_generate_command(app, action);
  llama_mm::cli::add_caption_command(app, action);
  llama_mm::cli::add_transcribe_command(app, action);
  llama_mm::cli::add_tokenize_commands(app, action);
  llama_mm::cli::add_init_model_command(app, action);
  llama_mm::cli::add_bench_command(app, action);
  llama_mm::cli::add_train_command(app, action);
#if LLAMA_MM_MEDIA
  llama_mm::cli::add_plot_command(app, action);
#endif
  llama_mm::cli::add_serve_command(app, action);
#if LLAMA_MM_MEDIA
  llama_mm::cli::add_data_command(app, action);
#endif
  llama_mm::cli::add_eval_command(app, action);
  // llama-server's multi-letter short option -np (CLI11 takes one-letter short names only).
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "-np") argv[i] = const_cast<char*>("--parallel");
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
