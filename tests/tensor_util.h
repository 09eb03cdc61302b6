// Tensor comparison helpers shared by the numerical tests.
#pragma once

#include <torch/torch.h>

namespace llama_mm::test {

// Max |a-b| / (max|b| + tiny): a scale-aware error measure for whole tensors.
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto bf = b.to(torch::kFloat64), af = a.to(torch::kFloat64);
  return (af - bf).abs().max().item<double>() / (bf.abs().max().item<double>() + 1e-12);
}

}  // namespace llama_mm::test
