// cli/generation_options.h: the sampling and generation options shared by `generate` and `caption`, and the
// JSON form of generation timings.
#pragma once

#include "llm/generator.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace llama_mm::cli {

// -n, --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s, -c, -b, --stop, --ignore-eos.
void add_generation_options(CLI::App* sub, GenerateParams& gen);

nlohmann::json timings_json(const GenerateTimings& t);

// One line of timings for stderr ("prompt 12 tokens in 3 ms (...); generated ...").
std::string timings_line(const GenerateTimings& t, const std::string& stop_reason);

}  // namespace llama_mm::cli
