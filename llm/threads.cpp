// llm/threads.cpp: see threads.h.
#include "llm/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <thread>

namespace llama_mm {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int configure_threads(int n) {
  if (n <= 0) n = available_cores();
  at::set_num_threads(n);
  // OpenBLAS is reached through LibTorch, not linked by us: look its setter up at run time.
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
  return n;
}

int parallel_for_threads(int64_t n) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // every worker gets a share
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int>(ids.size());
}

}  // namespace llama_mm
