// adapters/image_adapter.h: the image parts of a Llama 3.2 Vision model as an adapter file (modality "image"), so
// that training them leaves the released checkpoint untouched and `caption -m BASE --adapter image.safetensors`
// uses the trained ones. Tensors are named as in MllamaForConditionalGeneration's module tree:
// "vision_model.*", "multi_modal_projector.*", "cross_layers.{c}.*"; the config records the vision encoder config
// and the cross-attention layer indices, which must equal the base's.
#pragma once

#include "adapters/adapter_file.h"
#include "adapters/mllama_model.h"

#include <string>

namespace llama_mm {

// The vision encoder, projector and image cross-attention layers of `model`, registered under their own names
// (the modules are shared, not copied).
std::shared_ptr<torch::nn::Module> image_parts(MllamaForConditionalGenerationImpl& model);

void save_image_adapter(MllamaForConditionalGenerationImpl& model, const BaseModelInfo& base, const std::string& path);

// Replaces the image parts of `model` with the file's (converted to the model's dtype). ModelLoad errors name the
// file: another base (check_base_compatible), another vision config or layer layout, a missing or extra tensor.
void load_image_adapter(MllamaForConditionalGenerationImpl& model, const std::string& path, const BaseModelInfo& base);

}  // namespace llama_mm
