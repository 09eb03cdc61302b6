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

}  // namespace
}  // namespace llama_mm
