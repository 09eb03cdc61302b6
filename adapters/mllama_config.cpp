// adapters/mllama_config.cpp: Mllama config.json parsing (mllama-spec.md §2.1, §3.1, §7).
#include "adapters/mllama_config.h"

#include "llm/config_json.h"
#include "llm/error.h"

#include <algorithm>
#include <filesystem>

namespace llama_mm {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

namespace {

// MllamaTextConfig's class defaults (transformers 4.45), for keys a diff-saved config.json leaves out.
json text_defaults() {
  return json{{"vocab_size", 128256},
              {"hidden_size", 4096},
              {"intermediate_size", 14336},
              {"num_hidden_layers", 40},
              {"num_attention_heads", 32},
              {"num_key_value_heads", 8},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 500000.0},
              {"max_position_embeddings", 131072},
              {"tie_word_embeddings", false},
              {"bos_token_id", 128000},
              {"eos_token_id", 128001},
              {"pad_token_id", 128004},
              {"cross_attention_layers", {3, 8, 13, 18, 23, 28, 33, 38}}};
}

}  // namespace

MllamaConfig MllamaConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) throw Error(ErrorKind::Config, origin + ": expected a JSON object");
  const auto mt = get<std::string>(j, "model_type", origin, std::string("mllama"));
  if (mt != "mllama") fail(origin, "model_type", "expected 'mllama', got '" + mt + "'");
  MllamaConfig c;
  json t = text_defaults();
  if (auto it = j.find("text_config"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail(origin, "text_config", "expected an object");
    for (const auto& [k, v] : it->items()) t[k] = v;
  }
  t.erase("model_type");  // "mllama_text_model", or "mllama" in some third-party copies
  if (!t.contains("torch_dtype") && !t.contains("dtype"))
    t["torch_dtype"] = get<std::string>(j, "torch_dtype", origin, get<std::string>(j, "dtype", origin, "bfloat16"));
  const std::string text_origin = origin + " (text_config)";
  c.text = LlamaConfig::from_json(t, text_origin);
  c.cross_attention_layers = config_json::get_ints(t, "cross_attention_layers", text_origin, std::nullopt);
  const int64_t total = c.text.num_hidden_layers;
  std::vector<int64_t> sorted = c.cross_attention_layers;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    fail(text_origin, "cross_attention_layers", "has duplicates");
  for (int64_t i : sorted)
    if (i < 0 || i >= total)
      fail(text_origin, "cross_attention_layers",
           "index " + std::to_string(i) + " outside [0, num_hidden_layers=" + std::to_string(total) + ")");
  if (static_cast<int64_t>(sorted.size()) >= total)
    fail(text_origin, "cross_attention_layers", "leaves no self-attention layer");
  c.cross_attention_layers = sorted;
  c.text.num_hidden_layers = total - c.n_cross_layers();

  json v = json::object();
  if (auto it = j.find("vision_config"); it != j.end() && !it->is_null()) v = *it;
  c.vision = MllamaVisionConfig::from_json(v, origin);
  c.image_token_index = j.contains("image_token_index")
                            ? get<int64_t>(j, "image_token_index", origin, std::nullopt)
                            : get<int64_t>(j, "image_token_id", origin, c.image_token_index);
  if (c.image_token_index < 0 || c.image_token_index >= c.n_embed_rows())
    fail(origin, "image_token_index",
         std::to_string(c.image_token_index) + " outside the embedding table [0, " + std::to_string(c.n_embed_rows()) + ")");
  c.mask_cross_attn_output_rows = get<bool>(j, "mask_cross_attn_output_rows", origin, true);
  return c;
}

MllamaConfig MllamaConfig::from_file(const std::string& path) {
  std::string resolved;
  auto j = config_json::read_file(path, &resolved);
  return from_json(j, resolved);
}

bool is_mllama_config(const std::string& path) {
  auto j = config_json::read_file(path);
  auto it = j.find("model_type");
  return j.is_object() && it != j.end() && it->is_string() && it->get<std::string>() == "mllama";
}

std::vector<int64_t> MllamaConfig::cross_layer_slots() const {
  std::vector<int64_t> slots;
  for (size_t c = 0; c < cross_attention_layers.size(); ++c)
    slots.push_back(cross_attention_layers[c] - static_cast<int64_t>(c));  // self layers before HF index i
  return slots;
}

MllamaConfig MllamaConfig::preset(const std::string& name) {
  MllamaConfig c;
  if (name == "tiny") {
    // Byte-level test tokenizer (256 bytes + 256 Llama 3 specials) plus <|image|> = 512.
    c.text = LlamaConfig::preset("tiny");
    c.text.rope_scaling.factor = 8.0;
    c.text.num_hidden_layers = 4;
    c.text.tie_word_embeddings = false;
    c.cross_attention_layers = {1, 4};  // 6 layers in all: S X S S X S
    c.image_token_index = 512;
    c.vision.hidden_size = 32;
    c.vision.attention_heads = 4;
    c.vision.intermediate_size = 64;
    c.vision.num_hidden_layers = 4;
    c.vision.num_global_layers = 2;
    c.vision.intermediate_layers_indices = {1, 3};
    c.vision.vision_output_dim = 32 * 3;
    c.vision.image_size = 28;
    c.vision.patch_size = 7;  // P = 17 tokens per tile, padded to 24
  } else if (name == "11b" || name == "90b") {
    c.text = LlamaConfig::preset("8b");
    c.cross_attention_layers = {3, 8, 13, 18, 23, 28, 33, 38};
    if (name == "90b") {
      c.text.hidden_size = 8192;
      c.text.intermediate_size = 28672;
      c.text.num_hidden_layers = 80;
      c.text.num_attention_heads = 64;
      c.cross_attention_layers.clear();
      for (int64_t i = 3; i < 100; i += 5) c.cross_attention_layers.push_back(i);
    }
    c.text.eos_token_ids = {128001, 128008, 128009};
    c.text.pad_token_id = 128004;
    c.vision.image_size = 560;
  } else {
    throw Error(ErrorKind::Usage, "unknown mllama preset '" + name + "' (expected tiny, 11b or 90b)");
  }
  return c;
}

json MllamaConfig::to_json() const {
  json t = text.to_json();
  t.erase("architectures");
  t["model_type"] = "mllama_text_model";
  t["num_hidden_layers"] = n_layers_total();
  t["cross_attention_layers"] = cross_attention_layers;
  t.erase("head_dim");  // MllamaTextConfig has none: hidden_size / num_attention_heads
  t.erase("attention_bias");
  t.erase("mlp_bias");
  json j;
  j["architectures"] = {"MllamaForConditionalGeneration"};
  j["model_type"] = "mllama";
  j["image_token_index"] = image_token_index;
  j["text_config"] = t;
  j["vision_config"] = vision.to_json();
  j["torch_dtype"] = text.torch_dtype;
  if (!mask_cross_attn_output_rows) j["mask_cross_attn_output_rows"] = false;
  return j;
}

}  // namespace llama_mm
