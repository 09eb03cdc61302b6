// cli/generation_options.h: the sampling and generation options shared by `generate`, `caption` and
// `transcribe`, and how they print and write results.
#pragma once

#include "llm/generator.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace llama_mm::cli {

// -n, --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s, -c, -b, --stop, --ignore-eos.
void add_generation_options(CLI::App* sub, GenerateParams& gen);

// {"text", "prompt_ids", "tokens", "n_prompt_tokens", "stop_reason", "timings"} of one generation.
nlohmann::json result_json(const std::vector<int32_t>& prompt, const GenerateResult& r);
// One JSON object on one stdout line; bytes that are not UTF-8 (a random model emits them) are replaced.
void print_json_line(const nlohmann::json& j);
// Streams generated text to stdout as it becomes final.
TextCallback stdout_stream();


// One line of timings for stderr ("prompt 12 tokens in 3 ms (...); generated ...").
std::string timings_line(const GenerateTimings& t, const std::string& stop_reason);

}  // namespace llama_mm::cli
