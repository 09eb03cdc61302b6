// llm/threads.h: CPU thread configuration. LibTorch's intra-op pool defaults to 1 thread in some builds;
// llama-mm uses every core the process may run on, and keeps OpenBLAS's pool at the same size.
#pragma once

namespace llama_mm {

// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();
// n <= 0: available_cores(). Sets LibTorch intra-op threads and OpenBLAS threads (when OpenBLAS is the
// loaded BLAS); returns the count in effect.
int configure_threads(int n);

}  // namespace llama_mm
