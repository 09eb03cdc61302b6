// bench/memory_bandwidth.cpp: a STREAM-like read test to express decode speed as a share of what
// this machine's memory can deliver.
#include "bench/bench.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

namespace llama_mm::bench {

namespace {

// Sum of n 64-bit words: four independent 256-bit accumulators keep enough loads in flight to saturate a core's
// share of the memory bus (one accumulator leaves ~20% on the table on Zen 3).
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) s += p[i];
  return s;
}

uint64_t sum_plain(const uint64_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

}  // namespace

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
        static const bool avx2 = __builtin_cpu_supports("avx2");
        sums[t * 8] = avx2 ? sum_avx2(buf.data() + lo, hi - lo) : sum_plain(buf.data() + lo, hi - lo);
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

double measure_device_copy_bandwidth(torch::Device device, size_t bytes, int reps) {
  auto src = torch::ones({static_cast<int64_t>(bytes)}, torch::dtype(torch::kUInt8).device(device));
  auto dst = torch::empty_like(src);
  dst.copy_(src);  // warm-up
  torch::cuda::synchronize();
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    dst.copy_(src);
    torch::cuda::synchronize();
    best = std::max(best, 2.0 * static_cast<double>(bytes) / seconds_since(t0) / 1e9);
  }
  return best;
}

torch::Device resolve_device(const std::string& name) {
  if (name.empty()) return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  const Error bad(ErrorKind::Usage, "--device: expected cpu or cuda[:N], got '" + name + "'");
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(name);
  } catch (const std::exception&) {
    throw bad;
  }
  if (!d.is_cpu() && !d.is_cuda()) throw bad;
  if (d.is_cuda() && !torch::cuda::is_available())
    throw Error(ErrorKind::Usage,
                "--device " + name + ": no CUDA device is available (or LibTorch was built without CUDA)");
  return d;
}

}  // namespace llama_mm::bench
