// llm/threads.h: CPU thread configuration. LibTorch's intra-op pool defaults to 1 thread in some builds;
// llama-mm uses every core the process may run on, and keeps OpenBLAS's pool at the same size.
#pragma once

#include <cstdint>

namespace llama_mm {

// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();
// n <= 0: available_cores(). Sets LibTorch intra-op threads and OpenBLAS threads (when OpenBLAS is the
// loaded BLAS); returns the count in effect.
int configure_threads(int n);
// Distinct threads one at::parallel_for over `n` items runs on, from a file built as the kernels are (OpenMP): the
// check that the parallel kernels really use the configured threads.
int parallel_for_threads(int64_t n = 1 << 16);

}  // namespace llama_mm
