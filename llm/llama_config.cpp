// llm/llama_config.cpp: config.json parsing for LlamaForCausalLM (mllama-spec.md §1.1, §7).
#include "llm/llama_config.h"

#include "llm/config_json.h"
#include "llm/error.h"

namespace llama_mm {
namespace {

using json = nlohmann::json;
using config_json::fail;
using config_json::get;

int64_t get_int(const json& j, const std::string& key, const std::string& origin, std::optional<int64_t> dflt) {
  return get<int64_t>(j, key, origin, dflt);
}
double get_num(const json& j, const std::string& key, const std::string& origin, std::optional<double> dflt) {
  return get<double>(j, key, origin, dflt);
}
bool get_bool(const json& j, const std::string& key, const std::string& origin, bool dflt) {
  return get<bool>(j, key, origin, dflt);
}
std::string get_str(const json& j, const std::string& key, const std::string& origin, const std::string& dflt) {
  return get<std::string>(j, key, origin, dflt);
}

// rope_scaling (v4) or rope_parameters (v5); `theta` is updated when the v5 dict carries rope_theta.
RopeScaling parse_rope(const json& r, const std::string& key, const std::string& origin,
                       int64_t max_position_embeddings, double& theta) {
  RopeScaling s;
  if (r.is_null()) return s;
  if (!r.is_object()) fail(origin, key, "expected an object, got " + r.dump());
  auto sub = [&](const std::string& name) { return key + "." + name; };
  if (r.contains("rope_type") && !r["rope_type"].is_null())
    s.rope_type = get_str(r, "rope_type", origin, "default");
  else if (r.contains("type") && !r["type"].is_null())
    s.rope_type = get_str(r, "type", origin, "default");
  if (r.contains("rope_theta")) theta = get_num(r, "rope_theta", origin, std::nullopt);
  if (s.rope_type == "default") return s;
  if (s.rope_type != "llama3")
    fail(origin, sub("rope_type"), "unsupported rope type '" + s.rope_type + "' (supported: default, llama3)");
  auto num = [&](const std::string& name, std::optional<double> d) { return get<double>(r, name, origin, d, sub(name)); };
  s.factor = num("factor", std::nullopt);
  s.low_freq_factor = num("low_freq_factor", std::nullopt);
  s.high_freq_factor = num("high_freq_factor", std::nullopt);
  // transformers 5.x falls back to max_position_embeddings when the original length is absent.
  s.original_max_position_embeddings =
      static_cast<int64_t>(num("original_max_position_embeddings", double(max_position_embeddings)));
  if (s.factor <= 0) fail(origin, sub("factor"), "must be positive");
  if (s.high_freq_factor <= s.low_freq_factor)
    fail(origin, sub("high_freq_factor"), "must exceed low_freq_factor");
  return s;
}

}  // namespace

LlamaConfig LlamaConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) throw Error(ErrorKind::Config, origin + ": expected a JSON object");
  if (auto it = j.find("model_type"); it != j.end() && it->is_string()) {
    const auto mt = it->get<std::string>();
    if (mt != "llama" && mt != "mllama_text_model")
      fail(origin, "model_type", "unsupported model type '" + mt + "' (expected 'llama')");
  }
  LlamaConfig c;
  c.vocab_size = get_int(j, "vocab_size", origin, std::nullopt);
  c.hidden_size = get_int(j, "hidden_size", origin, std::nullopt);
  c.intermediate_size = get_int(j, "intermediate_size", origin, std::nullopt);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", origin, std::nullopt);
  c.num_attention_heads = get_int(j, "num_attention_heads", origin, std::nullopt);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", origin, c.num_attention_heads);
  for (auto [key, v] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                        {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
                        {"num_attention_heads", c.num_attention_heads},
                        {"num_key_value_heads", c.num_key_value_heads}})
    if (v <= 0) fail(origin, key, "must be positive, got " + std::to_string(v));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(origin, "num_key_value_heads",
         std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
             std::to_string(c.num_attention_heads));
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = get_int(j, "head_dim", origin, std::nullopt);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(origin, "hidden_size", "not divisible by num_attention_heads and no head_dim given");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) fail(origin, "head_dim", "must be positive and even for RoPE");
  c.rms_norm_eps = get_num(j, "rms_norm_eps", origin, 1e-6);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", origin, 2048);
  c.rope_theta = get_num(j, "rope_theta", origin, 10000.0);
  if (j.contains("rope_parameters"))
    c.rope_scaling = parse_rope(j["rope_parameters"], "rope_parameters", origin, c.max_position_embeddings,
                                c.rope_theta);
  else if (j.contains("rope_scaling"))
    c.rope_scaling =
        parse_rope(j["rope_scaling"], "rope_scaling", origin, c.max_position_embeddings, c.rope_theta);
  if (c.rope_theta <= 0) fail(origin, "rope_theta", "must be positive");
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", origin, false);
  c.attention_bias = get_bool(j, "attention_bias", origin, false);
  c.mlp_bias = get_bool(j, "mlp_bias", origin, false);
  c.hidden_act = get_str(j, "hidden_act", origin, "silu");
  if (c.hidden_act != "silu") fail(origin, "hidden_act", "unsupported activation '" + c.hidden_act + "'");
  c.torch_dtype = get_str(j, "torch_dtype", origin, get_str(j, "dtype", origin, "float32"));
  c.bos_token_id = get_int(j, "bos_token_id", origin, 1);
  if (auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
    c.eos_token_ids.clear();
    if (it->is_number_integer()) {
      c.eos_token_ids.push_back(it->get<int64_t>());
    } else if (it->is_array()) {
      for (const auto& e : *it) {
        if (!e.is_number_integer()) fail(origin, "eos_token_id", "expected integers, got " + e.dump());
        c.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else {
      fail(origin, "eos_token_id", "expected an integer or a list of integers, got " + it->dump());
    }
  }
  if (auto it = j.find("pad_token_id"); it != j.end() && it->is_number_integer()) c.pad_token_id = it->get<int64_t>();
  return c;
}

LlamaConfig LlamaConfig::from_file(const std::string& path) {
  std::string resolved;
  auto j = config_json::read_file(path, &resolved);
  return from_json(j, resolved);
}

LlamaConfig LlamaConfig::preset(const std::string& name) {
  LlamaConfig c;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = RopeScaling{"llama3", 32.0, 1.0, 4.0, 8192};
  c.max_position_embeddings = 131072;
  c.torch_dtype = "bfloat16";
  if (name == "tiny") {
    // Byte-level test tokenizer: 256 bytes, then the 256 Llama 3 specials (make_byte_level_tokenizer_json).
    c.vocab_size = 512;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.tie_word_embeddings = true;
    c.torch_dtype = "float32";
    c.bos_token_id = 256;                 // <|begin_of_text|>
    c.eos_token_ids = {257, 264, 265};    // <|end_of_text|>, <|eom_id|>, <|eot_id|>
  } else if (name == "1b") {  // Llama 3.2 1B
    c.vocab_size = 128256;
    c.hidden_size = 2048;
    c.intermediate_size = 8192;
    c.num_hidden_layers = 16;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 8;
    c.head_dim = 64;
    c.tie_word_embeddings = true;
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001, 128008, 128009};
  } else if (name == "8b") {  // Llama 3.1 8B
    c.vocab_size = 128256;
    c.hidden_size = 4096;
    c.intermediate_size = 14336;
    c.num_hidden_layers = 32;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 8;
    c.head_dim = 128;
    c.rope_scaling.factor = 8.0;
    c.tie_word_embeddings = false;
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001, 128008, 128009};
  } else {
    throw Error(ErrorKind::Usage, "unknown preset '" + name + "' (expected tiny, 1b or 8b)");
  }
  return c;
}

json LlamaConfig::to_json() const {
  json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (rope_scaling.rope_type == "default") {
    j["rope_scaling"] = nullptr;
  } else {
    j["rope_scaling"] = {{"rope_type", rope_scaling.rope_type},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  }
  j["max_position_embeddings"] = max_position_embeddings;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = attention_bias;
  j["mlp_bias"] = mlp_bias;
  j["hidden_act"] = hidden_act;
  j["torch_dtype"] = torch_dtype;
  j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids[0];
  else
    j["eos_token_id"] = eos_token_ids;
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  return j;
}

int64_t LlamaConfig::n_params() const {
  const int64_t d = hidden_size, hd = head_dim;
  const int64_t attn = d * num_attention_heads * hd * 2 + d * num_key_value_heads * hd * 2;
  const int64_t mlp = 3 * d * intermediate_size;
  const int64_t per_layer = attn + mlp + 2 * d;
  return vocab_size * d * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * per_layer + d;
}

}  // namespace llama_mm
