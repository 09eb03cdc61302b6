// Tests for llm/kernel_pool.cpp: coverage of the range, grain-aligned shares, thread count, sleeping and waking,
// exceptions, and concurrent callers.
#include "llm/kernel_pool.h"

#include "llm/threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace llama_mm {
namespace {

// Every item is visited exactly once, shares start on grain boundaries, and no more shares than threads.
void expect_exact_cover(int64_t n, int64_t grain, int threads) {
  std::vector<std::atomic<int>> hits(n);
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> shares;
  kernel_parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
    std::lock_guard<std::mutex> lock(mu);
    shares.push_back({b, e});
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "item " << i << " of " << n << ", grain " << grain;
  EXPECT_LE(static_cast<int>(shares.size()), threads);
  for (const auto& s : shares) EXPECT_EQ(s.first % grain, 0) << "share [" << s.first << ", " << s.second << ")";
}

TEST(KernelPool, CoversTheRangeInGrainAlignedSharesOnTheConfiguredThreads) {
  for (int threads : {1, 2, 3}) {
    configure_threads(threads);
    for (int64_t n : {0, 1, 5, 47, 48, 49, 131, 8192})
      for (int64_t grain : {1, 16, 48}) expect_exact_cover(n, grain, threads);
    EXPECT_EQ(kernel_pool_threads(), threads);
  }
  configure_threads(0);
}

TEST(KernelPool, WorkersWakeAfterSleepingAndErrorsReachTheCaller) {
  configure_threads(2);
  for (int round = 0; round < 3; ++round) {
    // Longer than the spin window, so the worker has gone to sleep and must be woken.
    std::this_thread::sleep_for(std::chrono::microseconds(3 * kSpinMicroseconds));
    EXPECT_EQ(kernel_pool_threads(), 2);
  }
  EXPECT_THROW(kernel_parallel_for(100, 1,
                                   [](int64_t b, int64_t) {
                                     if (b > 0) throw std::runtime_error("share failed");
                                   }),
               std::runtime_error);
  expect_exact_cover(1000, 8, 2);  // still usable afterwards
  configure_threads(0);
}

TEST(KernelPool, ConcurrentCallersEachGetTheirWholeRange) {
  configure_threads(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<int> hits(777, 0);
        kernel_parallel_for(777, 16, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int h : hits) failures += h != 1;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
  configure_threads(0);
}

}  // namespace
}  // namespace llama_mm
