// llm/torch_compat.h: every difference between the LibTorch versions llama-mm builds against
// (Debian's 1.13 on CPU, PyTorch 2.x with CUDA) lives here and nowhere else.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#define LLAMA_MM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace llama_mm::compat {

// "1.13.1" etc., for logs and fixture metadata.
inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace llama_mm::compat
