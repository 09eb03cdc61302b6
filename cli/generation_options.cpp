// cli/generation_options.cpp: see generation_options.h.
#include "cli/generation_options.h"

#include "llm/error.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace llama_mm::cli {

void add_generation_options(CLI::App* sub, GenerateParams& gen) {
  sub->add_option("-n,--n-predict", gen.n_predict, "Maximum tokens to generate (-1: until eos)")->capture_default_str();
  sub->add_option("--temp", gen.sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", gen.sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", gen.sampling.top_p, "Top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", gen.sampling.min_p, "Min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", gen.sampling.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
  sub->add_option("--repeat-last-n", gen.sampling.repeat_last_n, "Tokens the penalty considers (-1: all)")->capture_default_str();
  sub->add_option("-s,--seed", gen.sampling.seed, "Sampling seed (-1: random)")->capture_default_str();
  sub->add_option("-c,--ctx-size", gen.n_ctx, "Context size in tokens")->capture_default_str();
  sub->add_option("-b,--batch-size", gen.n_batch, "Prompt tokens per forward pass")->capture_default_str();
  sub->add_option("--stop", gen.stop, "Stop string (repeatable)");
  sub->add_flag("--ignore-eos", gen.ignore_eos, "Do not stop at end-of-sequence tokens");
}

nlohmann::json result_json(const std::vector<int32_t>& prompt, const GenerateResult& r) {
  const auto& t = r.timings;
  nlohmann::json timings = {{"prompt_ms", t.prompt_ms},
                      {"prompt_tok_per_s", t.prompt_tok_per_s()},
                      {"n_generated", t.n_generated},
                      {"generate_ms", t.generate_ms},
                      {"generate_tok_per_s", t.generate_tok_per_s()}};
  if (t.n_images > 0) timings["n_images"] = t.n_images, timings["image_encode_ms"] = t.image_encode_ms;
  if (t.n_video_frames > 0)
    timings["n_video_frames"] = t.n_video_frames, timings["video_encode_ms"] = t.video_encode_ms;
  return {{"text", r.text},          {"prompt_ids", prompt},         {"tokens", r.tokens},
          {"n_prompt_tokens", prompt.size()}, {"stop_reason", r.stop_reason}, {"timings", timings}};
}

void print_json_line(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n" << std::flush;
}

TextCallback stdout_stream() {
  return [](const std::string& piece) {
    std::cout << piece << std::flush;
    return true;
  };
}

std::string timings_line(const GenerateTimings& t, const std::string& stop_reason) {
  std::ostringstream o;
  if (t.n_images > 0) o << t.n_images << " images encoded in " << t.image_encode_ms << " ms; ";
  if (t.n_video_frames > 0) o << t.n_video_frames << " video frames encoded in " << t.video_encode_ms << " ms; ";
  o << "prompt " << t.n_prompt << " tokens in " << t.prompt_ms << " ms (" << t.prompt_tok_per_s()
    << " tok/s); generated " << t.n_generated << " tokens in " << t.generate_ms << " ms (" << t.generate_tok_per_s()
    << " tok/s); stop: " << stop_reason;
  return o.str();
}

}  // namespace llama_mm::cli
