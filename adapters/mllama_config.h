// adapters/mllama_config.h: a Llama 3.2 Vision (Mllama) model configuration, as Hugging Face's
// MllamaForConditionalGeneration config.json writes it (mllama-spec.md §2.1, §3, §7): a frozen Llama 3 text
// decoder, the cross-attention layers interleaved with it, the vision encoder and the image token.
//
// Keys HF omits take the Mllama class defaults (MllamaTextConfig: 40 layers, vocab 128256, ...). Two
// llama-mm keys select behaviours where Meta's reference and transformers differ:
//   "mask_cross_attn_output_rows" (top level, default true = Meta/vLLM; false = transformers, §3.5);
//   "vision_config.intermediate_semantics" ("input_of_layer" default = Meta, "output_of_layer" = HF >= 4.56).
#pragma once

#include "encoders/mllama_vision_config.h"
#include "llm/llama_config.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace llama_mm {

struct MllamaConfig {
  // The self-attention (frozen Llama) layers: text.num_hidden_layers counts only those.
  LlamaConfig text;
  // Positions of the cross-attention layers in HF's interleaved stack of n_layers_total() layers.
  std::vector<int64_t> cross_attention_layers;
  MllamaVisionConfig vision;
  int64_t image_token_index = 128256;
  bool mask_cross_attn_output_rows = true;

  // Parses config.json; errors (ErrorKind::Config) name `origin` and the key.
  static MllamaConfig from_json(const nlohmann::json& j, const std::string& origin);
  static MllamaConfig from_file(const std::string& path);  // config.json, or a directory holding one
  // "tiny" (tests; byte-level tokenizer), "11b" (Llama 3.2 11B Vision), "90b".
  static MllamaConfig preset(const std::string& name);
  nlohmann::json to_json() const;

  int64_t n_cross_layers() const { return static_cast<int64_t>(cross_attention_layers.size()); }
  int64_t n_layers_total() const { return text.num_hidden_layers + n_cross_layers(); }
  // Embedding rows: the vocabulary plus 8 learnable rows, the first being <|image|> (= vocab_size).
  int64_t n_embed_rows() const { return text.vocab_size + 8; }
  // For each cross layer c, the index of the frozen layer it runs before (n_self: after the last one).
  std::vector<int64_t> cross_layer_slots() const;
};

// True when the config.json at `path` (file or directory) describes an Mllama model.
bool is_mllama_config(const std::string& path);

}  // namespace llama_mm
