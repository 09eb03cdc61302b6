// llm/sampler.h: next-token selection from logits.
//
// Order follows Hugging Face's logits processors (the reference we match): repetition penalty,
// temperature, top-k, top-p, min-p, then a draw from the renormalised distribution. temperature <= 0
// means greedy (argmax after the penalty). A fixed seed makes the draws reproducible.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <vector>

namespace llama_mm {

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // <= 0: disabled
  float top_p = 0.95f;          // 1: disabled
  float min_p = 0.05f;          // 0: disabled; keeps tokens with p >= min_p · p_max
  float repeat_penalty = 1.0f;  // 1: disabled; HF/CTRL style: logit > 0 ? logit / p : logit · p
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at (-1: all)
  int64_t seed = -1;            // < 0: random seed
};
SamplingParams default_sampling_params();

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // logits: [V] fp32 for one sequence; history: the ids so far (prompt + generated) for the penalty.
  int32_t sample(const torch::Tensor& logits, const std::vector<int32_t>& history);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> buf_;
};

}  // namespace llama_mm
