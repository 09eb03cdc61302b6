// llm/llama_config.h: the Llama 3.x text model configuration, field for field as Hugging Face's
// config.json for LlamaForCausalLM writes it (mllama-spec.md §1.1, §7).
//
// Accepted variants: rope_scaling with "rope_type" or legacy "type"; transformers 5.x `rope_parameters`
// (with rope_theta inside); absent or null head_dim (= hidden_size / num_attention_heads); absent
// num_key_value_heads (= num_attention_heads); eos_token_id as an int or a list; tied embeddings.
// Keys HF may omit take LlamaConfig's class defaults (not Llama 3's values); the five shape keys
// (vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads) are required.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llama_mm {

struct RopeScaling {
  std::string rope_type = "default";  // "default" (plain RoPE) or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // 0 in JSON terms "absent": resolved to num_attention_heads
  int64_t head_dim = 0;             // resolved to hidden_size / num_attention_heads when absent
  double rms_norm_eps = 1e-6;       // LlamaConfig class default (Llama 3 checkpoints say 1e-5)
  double rope_theta = 10000.0;      // LlamaConfig class default (Llama 3 checkpoints say 500000)
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  std::string torch_dtype = "float32";  // "bfloat16" in released checkpoints
  int64_t bos_token_id = 1;
  std::vector<int64_t> eos_token_ids = {2};
  std::optional<int64_t> pad_token_id;

  // Parses a config.json object; `origin` (the file path) is named in every error (ErrorKind::Config).
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& origin);
  static LlamaConfig from_file(const std::string& path);  // a config.json, or a directory holding one
  // Named sizes for init-model and bench: "tiny", "1b" (Llama 3.2 1B), "8b" (Llama 3.1 8B).
  static LlamaConfig preset(const std::string& name);

  // HF-style config.json (rope_theta + rope_scaling with "rope_type", eos as int or list).
  nlohmann::json to_json() const;
  int64_t n_rep() const { return num_attention_heads / num_key_value_heads; }
  // Number of parameters (embedding and lm_head counted once each when untied).
  int64_t n_params() const;
};

}  // namespace llama_mm
