// llm/kernel_pool.cpp: see kernel_pool.h.
#include "llm/kernel_pool.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace llama_mm {

namespace {

class KernelPool {
 public:
  ~KernelPool() { resize(0); }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    grain = std::max<int64_t>(1, grain);
    const int want = std::max(1, at::get_num_threads());
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    const int64_t chunks = (n + grain - 1) / grain;
    if (!busy.owns_lock() || want == 1 || chunks <= 1 || at::in_parallel_region()) {
      if (n > 0) fn(0, n);
      return;
    }
    if (static_cast<int>(workers_.size()) != want - 1) resize(want - 1);
    // Contiguous shares of whole grains: share i is [bounds[i], bounds[i + 1]).
    const int parts = static_cast<int>(std::min<int64_t>(want, chunks));
    bounds_.assign(parts + 1, n);
    for (int i = 0; i < parts; ++i) bounds_[i] = std::min(n, chunks * i / parts * grain);
    fn_ = &fn;
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);  // every worker acknowledges
    generation_.fetch_add(1);  // seq_cst: pairs with a worker's sleepers_ increment (see worker())
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    run_share(0);
    while (pending_.load(std::memory_order_acquire) > 0) _mm_pause();
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_share(int i) {
    if (i + 1 >= static_cast<int>(bounds_.size())) return;  // more workers than shares this time
    try {
      if (bounds_[i] < bounds_[i + 1]) (*fn_)(bounds_[i], bounds_[i + 1]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  // `seen`: the generation when the worker was created (read before it starts, so a job published right after
  // resize() is not mistaken for an old one).
  void worker(int index, uint64_t seen) {
    for (;;) {
      auto spin_start = std::chrono::steady_clock::now();
      int polls = 0;
      while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
        _mm_pause();
        if (++polls % 1024 == 0 && std::chrono::steady_clock::now() - spin_start >
                                       std::chrono::microseconds(kSpinMicroseconds)) {
          std::unique_lock<std::mutex> lock(sleep_mutex_);
          sleepers_.fetch_add(1);  // seq_cst, then re-check generation_ under the lock (no lost wake-up)
          wake_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
          sleepers_.fetch_sub(1);
          spin_start = std::chrono::steady_clock::now();
        }
      }
      if (stop_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      run_share(index + 1);  // nothing when this job has fewer shares than threads
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  void resize(int n_workers) {
    stop_.store(true);
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_.store(false);
    const uint64_t now = generation_.load();
    for (int i = 0; i < n_workers; ++i) workers_.emplace_back([this, i, now] { worker(i, now); });
  }

  std::mutex run_mutex_;  // one job at a time
  std::vector<std::thread> workers_;
  std::vector<int64_t> bounds_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_, error_mutex_;
  std::condition_variable wake_;
  std::exception_ptr error_;
};

KernelPool& pool() {
  static KernelPool p;
  return p;
}

}  // namespace

void kernel_parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}

int kernel_pool_threads(int64_t n) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  kernel_parallel_for(n, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // every worker gets a share
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int>(ids.size());
}

}  // namespace llama_mm
