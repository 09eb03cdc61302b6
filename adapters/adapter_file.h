// adapters/adapter_file.h: the llama-mm adapter file, shared by the speech, image and video adapters and the
// trainer. One .safetensors file holds the encoder and adapter weights; its metadata key "llama_mm.adapter"
// holds a JSON header:
//
//   {"format_version": 1, "modality": "speech",
//    "base": {"hidden_size": 4096, "vocab_size": 128256, "tokenizer_sha256": "…"},
//    "config": {…modality-specific: front end, encoder, adapter, special tokens…}}
//
// `-m BASE_DIR --adapter FILE` loads it on top of a base model; a base that differs in hidden size,
// vocabulary size or tokenizer is refused (ErrorKind::ModelLoad, exit 3) with the mismatching field named.
// Files are written atomically (llm/safetensors.h).
#pragma once

#include "llm/error.h"
#include "llm/llama_config.h"
#include "llm/safetensors.h"
#include "llm/tokenizer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

namespace llama_mm {

constexpr int kAdapterFormatVersion = 1;
constexpr const char* kAdapterMetadataKey = "llama_mm.adapter";

// What an adapter needs to match in its base model.
struct BaseModelInfo {
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  std::string tokenizer_sha256;  // tokenizer_fingerprint() of the base's tokenizer

  static BaseModelInfo of(const LlamaConfig& cfg, const Tokenizer& tok);
  nlohmann::json to_json() const;
  static BaseModelInfo from_json(const nlohmann::json& j, const std::string& origin);
};

// SHA-256 (hex) over every id's bytes and special flag: equal for tokenizers that map ids to the same tokens,
// whatever the tokenizer.json formatting.
std::string tokenizer_fingerprint(const Tokenizer& tok);

struct AdapterHeader {
  int format_version = kAdapterFormatVersion;
  std::string modality;  // "speech", "image", "video"
  BaseModelInfo base;
  nlohmann::json config;  // modality-specific
};

void write_adapter_file(const std::string& path, const AdapterHeader& header,
                        const std::map<std::string, torch::Tensor>& tensors);

// Writes every parameter and buffer of `module` (named as in the module tree) with the header
// {modality, base, config}.
void write_adapter_module(torch::nn::Module& module, const std::string& modality, const BaseModelInfo& base,
                          const nlohmann::json& config, const std::string& path);

// An opened adapter file: the validated header and the (mmapped) tensors.
struct AdapterFile {
  AdapterHeader header;
  std::unique_ptr<SafetensorsCheckpoint> tensors;  // load with load_weights_strict (llm/weight_loader.h)
};

// Opens and validates `path`: a safetensors file with the metadata key, a known format version and, when
// `modality` is non-empty, that modality. Errors are ModelLoad naming the file.
AdapterFile read_adapter_file(const std::string& path, const std::string& modality = "");

// The header's config parsed by Config::from_json; a bad config is a ModelLoad error naming the file.
template <typename Config>
Config parse_adapter_config(const AdapterFile& file, const std::string& path) {
  try {
    return Config::from_json(file.header.config, path + " (adapter config)");
  } catch (const Error& e) {
    throw Error(ErrorKind::ModelLoad, e.what());
  }
}

// The dtype of tensor `probe` (the adapter's weight dtype); ModelLoad naming the file when it is missing.
torch::Dtype adapter_weight_dtype(const AdapterFile& file, const std::string& probe, const std::string& path);

// Throws ModelLoad naming `adapter_path`, the field and both values when `header.base` does not match `base`.
void check_base_compatible(const AdapterHeader& header, const BaseModelInfo& base, const std::string& adapter_path);

}  // namespace llama_mm
