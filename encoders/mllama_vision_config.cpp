// encoders/mllama_vision_config.cpp: vision_config parsing (mllama-spec.md §2.1, §7).
#include "encoders/mllama_vision_config.h"

#include "llm/config_json.h"

namespace llama_mm {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

MllamaVisionConfig MllamaVisionConfig::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin, "vision_config", "expected an object");
  MllamaVisionConfig c;
  auto key = [](const std::string& k) { return "vision_config." + k; };
  auto i64 = [&](const std::string& k, int64_t d) { return get<int64_t>(j, k, origin, d, key(k)); };
  c.hidden_size = i64("hidden_size", c.hidden_size);
  // The JSON key is attention_heads; the constructor kwarg (and v5 attribute) is num_attention_heads.
  c.attention_heads = j.contains("attention_heads") ? i64("attention_heads", c.attention_heads)
                                                    : i64("num_attention_heads", c.attention_heads);
  c.intermediate_size = i64("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = i64("num_hidden_layers", c.num_hidden_layers);
  c.num_global_layers = i64("num_global_layers", c.num_global_layers);
  c.intermediate_layers_indices =
      config_json::get_ints(j, "intermediate_layers_indices", origin, c.intermediate_layers_indices,
                            key("intermediate_layers_indices"));
  c.vision_output_dim = i64("vision_output_dim", c.vision_output_dim);
  c.image_size = i64("image_size", c.image_size);
  c.patch_size = i64("patch_size", c.patch_size);
  c.num_channels = i64("num_channels", c.num_channels);
  c.norm_eps = get<double>(j, "norm_eps", origin, c.norm_eps, key("norm_eps"));
  c.max_num_tiles = i64("max_num_tiles", c.max_num_tiles);
  if (auto it = j.find("supported_aspect_ratios"); it != j.end() && !it->is_null()) {
    c.supported_aspect_ratios.clear();
    if (!it->is_array()) fail(origin, key("supported_aspect_ratios"), "expected a list of [rows, cols] pairs");
    for (const auto& p : *it) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() || !p[1].is_number_integer())
        fail(origin, key("supported_aspect_ratios"), "expected [rows, cols] integer pairs, got " + p.dump());
      c.supported_aspect_ratios.push_back({p[0].get<int64_t>(), p[1].get<int64_t>()});
    }
  }
  const auto act = get<std::string>(j, "hidden_act", origin, std::string("gelu"), key("hidden_act"));
  if (act != "gelu") fail(origin, key("hidden_act"), "unsupported activation '" + act + "' (expected gelu)");
  const auto sem = get<std::string>(j, "intermediate_semantics", origin, std::string("input_of_layer"),
                                    key("intermediate_semantics"));
  if (sem == "input_of_layer") c.intermediate_semantics = IntermediateSemantics::InputOfLayer;
  else if (sem == "output_of_layer") c.intermediate_semantics = IntermediateSemantics::OutputOfLayer;
  else fail(origin, key("intermediate_semantics"), "expected input_of_layer or output_of_layer, got '" + sem + "'");

  for (auto [k, v] : {std::pair{"hidden_size", c.hidden_size}, {"attention_heads", c.attention_heads},
                      {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
                      {"image_size", c.image_size}, {"patch_size", c.patch_size}, {"num_channels", c.num_channels},
                      {"max_num_tiles", c.max_num_tiles}})
    if (v <= 0) fail(origin, key(k), "must be positive, got " + std::to_string(v));
  if (c.num_global_layers < 0) fail(origin, key("num_global_layers"), "must not be negative");
  if (c.hidden_size % c.attention_heads != 0)
    fail(origin, key("attention_heads"), "does not divide hidden_size " + std::to_string(c.hidden_size));
  if (c.image_size % c.patch_size != 0)
    fail(origin, key("patch_size"), "does not divide image_size " + std::to_string(c.image_size));
  for (int64_t i : c.intermediate_layers_indices)
    if (i < 0 || i >= c.num_hidden_layers)
      fail(origin, key("intermediate_layers_indices"),
           "index " + std::to_string(i) + " outside [0, " + std::to_string(c.num_hidden_layers) + ")");
  const int64_t want = c.hidden_size * (1 + static_cast<int64_t>(c.intermediate_layers_indices.size()));
  if (c.vision_output_dim != want)
    fail(origin, key("vision_output_dim"),
         std::to_string(c.vision_output_dim) + " != hidden_size * (1 + len(intermediate_layers_indices)) = " +
             std::to_string(want));
  for (const auto& r : c.supported_aspect_ratios)
    if (r[0] <= 0 || r[1] <= 0 || r[0] * r[1] > c.max_num_tiles)
      fail(origin, key("supported_aspect_ratios"), "pair [" + std::to_string(r[0]) + ", " + std::to_string(r[1]) +
                                                       "] does not fit max_num_tiles " + std::to_string(c.max_num_tiles));
  return c;
}

json MllamaVisionConfig::to_json() const {
  json j;
  j["model_type"] = "mllama_vision_model";
  j["hidden_size"] = hidden_size;
  j["attention_heads"] = attention_heads;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_global_layers"] = num_global_layers;
  j["intermediate_layers_indices"] = intermediate_layers_indices;
  j["vision_output_dim"] = vision_output_dim;
  j["image_size"] = image_size;
  j["patch_size"] = patch_size;
  j["num_channels"] = num_channels;
  j["norm_eps"] = norm_eps;
  j["max_num_tiles"] = max_num_tiles;
  j["supported_aspect_ratios"] = json::array();
  for (const auto& r : supported_aspect_ratios) j["supported_aspect_ratios"].push_back({r[0], r[1]});
  j["hidden_act"] = "gelu";
  if (intermediate_semantics == IntermediateSemantics::OutputOfLayer) j["intermediate_semantics"] = "output_of_layer";
  return j;
}

}  // namespace llama_mm
