// Translation unit that owns the LibTorch precompiled header (see CMakeLists.txt).
#include <torch/torch.h>
