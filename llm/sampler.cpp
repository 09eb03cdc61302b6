// llm/sampler.cpp: repetition penalty, temperature, top-k, top-p and min-p sampling.
// ref: transformers v4.45.2 src/transformers/generation/logits_process.py (the same warpers, same order).
#include "llm/sampler.h"

#include "llm/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

namespace llama_mm {

SamplingParams default_sampling_params() { return SamplingParams{}; }

Sampler::Sampler(const SamplingParams& p) : params_(p) {
  if (p.top_p <= 0.f || p.top_p > 1.f) throw Error(ErrorKind::Usage, "top_p must be in (0, 1], got " + std::to_string(p.top_p));
  if (p.min_p < 0.f || p.min_p > 1.f) throw Error(ErrorKind::Usage, "min_p must be in [0, 1], got " + std::to_string(p.min_p));
  if (p.repeat_penalty <= 0.f)
    throw Error(ErrorKind::Usage, "repeat_penalty must be positive, got " + std::to_string(p.repeat_penalty));
  rng_.seed(p.seed >= 0 ? static_cast<uint64_t>(p.seed) : std::random_device{}());
}

int32_t Sampler::sample(const torch::Tensor& logits, const std::vector<int32_t>& history) {
  auto l = logits.to(torch::kFloat32).contiguous().view(-1);
  const int64_t V = l.numel();
  buf_.assign(l.data_ptr<float>(), l.data_ptr<float>() + V);

  if (params_.repeat_penalty != 1.f) {
    const size_t n = params_.repeat_last_n < 0 ? history.size()
                                               : std::min<size_t>(history.size(), params_.repeat_last_n);
    std::unordered_set<int32_t> seen(history.end() - n, history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= V) continue;
      float& x = buf_[id];
      x = x > 0 ? x / params_.repeat_penalty : x * params_.repeat_penalty;
    }
  }
  if (params_.temperature <= 0.f)
    return static_cast<int32_t>(std::max_element(buf_.begin(), buf_.end()) - buf_.begin());

  // Candidates sorted by logit, cut by top-k first (cheap partial sort).
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = params_.top_k > 0 ? std::min<int64_t>(params_.top_k, V) : V;
  auto by_logit = [&](int32_t a, int32_t b) { return buf_[a] > buf_[b] || (buf_[a] == buf_[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  idx.resize(k);

  // Softmax of logit / T over the candidates (max first, for stability).
  std::vector<double> p(idx.size());
  const double inv_t = 1.0 / params_.temperature, top = buf_[idx[0]] * inv_t;
  double z = 0;
  for (size_t i = 0; i < idx.size(); ++i) z += (p[i] = std::exp(buf_[idx[i]] * inv_t - top));
  for (auto& x : p) x /= z;

  // top-p: the smallest prefix whose mass reaches top_p (always at least one token).
  size_t keep = p.size();
  if (params_.top_p < 1.f) {
    double cum = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  // min-p: drop tokens below min_p times the most likely one.
  if (params_.min_p > 0.f) {
    const double floor = params_.min_p * p[0];
    size_t i = 1;
    while (i < keep && p[i] >= floor) ++i;
    keep = i;
  }
  std::discrete_distribution<size_t> dist(p.begin(), p.begin() + keep);
  return idx[dist(rng_)];
}

}  // namespace llama_mm
