// cli/commands.h: the llama-mm subcommands. Each add_*_command registers its options on `app` and,
// when the subcommand is chosen, stores the work to run in `action` (run after parsing, so errors
// from the work are mapped to exit codes in one place: cli/main.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace llama_mm::cli {

using Action = std::function<int()>;  // returns the exit code

void add_generate_command(CLI::App& app, Action& action);
void add_tokenize_commands(CLI::App& app, Action& action);  // tokenize, detokenize
void add_init_model_command(CLI::App& app, Action& action);
void add_bench_command(CLI::App& app, Action& action);
void add_caption_command(CLI::App& app, Action& action);
void add_transcribe_command(CLI::App& app, Action& action);
void add_train_command(CLI::App& app, Action& action);
void add_plot_command(CLI::App& app, Action& action);
void add_serve_command(CLI::App& app, Action& action);
void add_data_command(CLI::App& app, Action& action);
void add_eval_command(CLI::App& app, Action& action);

}  // namespace llama_mm::cli

#include <iostream>
#include <iterator>
#include <string>

namespace llama_mm::cli {

inline std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

}  // namespace llama_mm::cli
