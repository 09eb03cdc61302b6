// bench/matmul_rate.cpp: the machine's measured matmul rate through the engine's projection path.
#include "bench/bench.h"
#include "llm/cpu_linear.h"

#include <chrono>

namespace llama_mm::bench {

double measure_matmul_gflops(int64_t m, int64_t k, int64_t n, torch::Dtype dtype) {
  torch::NoGradGuard no_grad;
  auto x = torch::randn({m, k}).to(dtype), w = (torch::randn({n, k}) * 0.02).to(dtype);
  project(x, w, {});  // warm-up (allocates scratch)
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    project(x, w, {});
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * m * k * n / best / 1e9;
}

}  // namespace llama_mm::bench
