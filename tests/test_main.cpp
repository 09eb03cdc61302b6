// GoogleTest entry point for every llama-mm test binary.
// Tests whose name ends in _CUDA need a GPU: they are filtered out when none is present,
// so the suite passes on CPU-only machines.
#include <gtest/gtest.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!torch::cuda::is_available()) {
    std::string filter = ::testing::GTEST_FLAG(filter);
    filter += (filter.find('-') == std::string::npos) ? "-*_CUDA:*.*_CUDA" : ":*_CUDA:*.*_CUDA";
    ::testing::GTEST_FLAG(filter) = filter;
  }
  return RUN_ALL_TESTS();
}
