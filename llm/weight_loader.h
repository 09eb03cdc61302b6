// llm/weight_loader.h: name-for-name, exhaustive loading of a safetensors checkpoint into a module
// (conventions.md §1 rule 11). Every missing, unexpected and mis-shaped tensor is reported in one error.
#pragma once

#include "llm/safetensors.h"

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace llama_mm {

struct WeightLoadOptions {
  // Maps a checkpoint key to the module's parameter name ("" drops the key); identity when unset.
  std::function<std::string(const std::string&)> rename;
  // Checkpoint keys ending in one of these are ignored (e.g. "rotary_emb.inv_freq" in very old saves).
  std::vector<std::string> ignore_suffixes = {"rotary_emb.inv_freq"};
};

// Copies every tensor into the module's parameters and buffers, converting dtype; throws
// Error(ModelLoad) naming the checkpoint and listing all problems.
void load_weights_strict(torch::nn::Module& module, const SafetensorsCheckpoint& ckpt, const std::string& origin,
                         const WeightLoadOptions& opts = {});

}  // namespace llama_mm
