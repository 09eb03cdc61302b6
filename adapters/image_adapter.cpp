// adapters/image_adapter.cpp: image parts as an adapter file (see image_adapter.h).
#include "adapters/image_adapter.h"

#include "llm/weight_loader.h"

namespace llama_mm {

std::shared_ptr<torch::nn::Module> image_parts(MllamaForConditionalGenerationImpl& model) {
  auto parts = std::make_shared<torch::nn::Module>("ImageParts");
  parts->register_module("vision_model", model.vision_model);
  parts->register_module("multi_modal_projector", model.multi_modal_projector);
  auto list = torch::nn::ModuleList();
  for (auto& layer : model.cross_layers) list->push_back(layer);
  parts->register_module("cross_layers", list);
  return parts;
}

namespace {

nlohmann::json image_config(const MllamaConfig& cfg) {
  return {{"vision", cfg.vision.to_json()}, {"cross_attention_layers", cfg.cross_attention_layers}};
}

}  // namespace

void save_image_adapter(MllamaForConditionalGenerationImpl& model, const BaseModelInfo& base, const std::string& path) {
  write_adapter_module(*image_parts(model), "image", base, image_config(model.config()), path);
}

void load_image_adapter(MllamaForConditionalGenerationImpl& model, const std::string& path, const BaseModelInfo& base) {
  auto file = read_adapter_file(path, "image");
  check_base_compatible(file.header, base, path);
  const auto want = image_config(model.config());
  for (const char* key : {"vision", "cross_attention_layers"})
    if (!file.header.config.contains(key) || file.header.config[key] != want[key])
      throw Error(ErrorKind::ModelLoad, path + ": adapter config \"" + key + "\" differs from the base model's");
  load_weights_strict(*image_parts(model), *file.tensors, path);
}

}  // namespace llama_mm
