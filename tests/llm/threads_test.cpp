// Tests for llm/threads.cpp.
#include "llm/threads.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace llama_mm {
namespace {

TEST(Threads, DefaultUsesEveryAvailableCoreAndOverrideWins) {
  EXPECT_GE(available_cores(), 1);
  EXPECT_EQ(configure_threads(0), available_cores());
  EXPECT_EQ(at::get_num_threads(), available_cores());
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  configure_threads(0);
}

// The OpenMP kernels (bf16 weight widening for prefill, log-mel) run on every configured thread (the decode kernels
// have their own pool, tests/llm/kernel_pool_test.cpp): at::parallel_for is serial in a
// file compiled without OpenMP, which once left decode on one core.
TEST(Threads, ParallelKernelsUseTheConfiguredThreads) {
  configure_threads(2);
  EXPECT_EQ(parallel_for_threads(), 2);
  configure_threads(1);
  EXPECT_EQ(parallel_for_threads(), 1);
  configure_threads(0);
}

}  // namespace
}  // namespace llama_mm
