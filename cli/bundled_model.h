// cli/bundled_model.h: the model `generate`, `caption`, `transcribe` and `serve` use when no -m is given: the demo
// model the repository ships (models/demo, issue 8), and the adapters a model folder carries.
//
// The bundled model is looked for, in order, at $LLAMA_MM_MODEL, beside the binary (build/cli/llama-mm ->
// models/demo; an install's ../share/llama-mm/models/demo) and in the source tree the binary was built from.
// A model folder may carry adapter files in MODEL/adapters/ (video.safetensors, speech.safetensors): they are used
// when the command is given no --adapter.
#pragma once

#include <string>
#include <vector>

namespace llama_mm::cli {

// `model_dir` when given; else the bundled model's folder (logged on stderr as `command`'s choice). A Usage error
// naming the places looked at when there is none.
std::string model_or_bundled(const std::string& model_dir, const std::string& command);

// The adapter files in MODEL/adapters/ (sorted; none when the folder is absent).
std::vector<std::string> model_adapters(const std::string& model_dir);

}  // namespace llama_mm::cli
