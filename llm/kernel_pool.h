// llm/kernel_pool.h: the thread pool the small-M decode kernels (llm/cpu_linear, llm/q8_linear) run on.
//
// Decode calls ~100 small kernels per token with a little single-threaded LibTorch work between them. On
// OpenMP's pool that costs either a futex wake-up per kernel (OMP_WAIT_POLICY=PASSIVE, which the CLI sets so that
// OpenMP's idle workers do not steal cores from OpenBLAS's GEMM threads during prefill: 1B bf16 decode 226 ms per
// token) or spinning OpenMP workers that halve prefill (ACTIVE: 114 ms per token). This pool's workers spin for a
// short while after each job (kSpinMicroseconds) and then sleep, so back-to-back decode kernels find them awake
// while prefill and the encoders, which do not use the pool, find them asleep.
// The pool has at::get_num_threads() - 1 workers (the caller takes the first share) and follows configure_threads.
// Thread-safety: one job at a time; a caller that finds the pool busy (another thread's job) runs its job alone.
#pragma once

#include <cstdint>
#include <functional>

namespace llama_mm {

constexpr int64_t kSpinMicroseconds = 2000;

// Splits [0, n) into at most at::get_num_threads() contiguous ranges of at least `grain` items (boundaries multiples
// of `grain`) and runs fn(begin, end) on each, one per thread; returns when all are done. An exception thrown by
// fn is rethrown in the caller (the first one, when several throw).
void kernel_parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Distinct threads one kernel_parallel_for over `n` items ran on (tests).
int kernel_pool_threads(int64_t n = 1 << 16);

}  // namespace llama_mm
