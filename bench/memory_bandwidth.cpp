// bench/memory_bandwidth.cpp: a STREAM-like read test to express decode speed as a share of what
// this machine's memory can deliver.
#include "bench/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

namespace llama_mm::bench {

double measure_read_bandwidth(int threads, size_t bytes, int reps) {
  threads = std::max(1, threads);
  const size_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  std::iota(buf.begin(), buf.end(), uint64_t(1));  // touch every page before timing
  std::vector<uint64_t> sums(threads * 8);         // one cache line per thread: no false sharing
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        uint64_t s = 0;
        for (size_t i = lo; i < hi; ++i) s += buf[i];  // vectorises to 256-bit adds at -O2/-O3
        sums[t * 8] = s;
      });
    for (auto& th : pool) th.join();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / sec / 1e9);
  }
  // Keep the sums observable so the loop is not optimised away.
  volatile uint64_t sink = std::accumulate(sums.begin(), sums.end(), uint64_t(0));
  (void)sink;
  return best;
}

}  // namespace llama_mm::bench
