// adapters/adapter_file.cpp: the adapter file format (header JSON in safetensors metadata) and the base check.
#include "adapters/adapter_file.h"

#include "llm/config_json.h"
#include "llm/error.h"
#include "llm/sha256.h"

namespace llama_mm {

using config_json::fail;
using config_json::get;
using json = nlohmann::json;

BaseModelInfo BaseModelInfo::of(const LlamaConfig& cfg, const Tokenizer& tok) {
  return {cfg.hidden_size, cfg.vocab_size, tokenizer_fingerprint(tok)};
}

json BaseModelInfo::to_json() const {
  return {{"hidden_size", hidden_size}, {"vocab_size", vocab_size}, {"tokenizer_sha256", tokenizer_sha256}};
}

BaseModelInfo BaseModelInfo::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(j, {"hidden_size", "vocab_size", "tokenizer_sha256"}, origin, "base.");
  BaseModelInfo b;
  b.hidden_size = get<int64_t>(j, "hidden_size", origin, std::nullopt, "base.hidden_size");
  b.vocab_size = get<int64_t>(j, "vocab_size", origin, std::nullopt, "base.vocab_size");
  b.tokenizer_sha256 = get<std::string>(j, "tokenizer_sha256", origin, std::nullopt, "base.tokenizer_sha256");
  return b;
}

std::string tokenizer_fingerprint(const Tokenizer& tok) {
  Sha256 sha;
  auto update = [&](const void* p, size_t n) { sha.update(p, n); };
  const int64_t n = tok.n_vocab();
  for (int32_t id = 0; id < n; ++id) {
    std::string bytes;
    uint8_t flag = 2;  // an id without a token (a gap in the vocabulary)
    try {
      bytes = tok.token_bytes(id);
      flag = tok.is_special(id) ? 1 : 0;
    } catch (const Error&) {
    }
    const uint32_t len = static_cast<uint32_t>(bytes.size());
    update(&flag, 1);
    update(&len, sizeof len);
    update(bytes.data(), bytes.size());
  }
  return sha.hex_digest();
}

void write_adapter_file(const std::string& path, const AdapterHeader& header,
                        const std::map<std::string, torch::Tensor>& tensors) {
  const json h = {{"format_version", header.format_version},
                  {"modality", header.modality},
                  {"base", header.base.to_json()},
                  {"config", header.config}};
  write_safetensors(path, tensors, {{"format", "pt"}, {kAdapterMetadataKey, h.dump()}});
}

AdapterFile read_adapter_file(const std::string& path, const std::string& modality) {
  AdapterFile f;
  f.tensors = std::make_unique<SafetensorsCheckpoint>(path);  // ModelLoad errors name the file
  if (f.tensors->files().size() != 1)
    throw Error(ErrorKind::ModelLoad, path + ": an adapter is one .safetensors file");
  const auto& meta = f.tensors->files()[0]->metadata();
  auto it = meta.find(kAdapterMetadataKey);
  if (it == meta.end())
    throw Error(ErrorKind::ModelLoad, path + ": not a llama-mm adapter (no \"" + std::string(kAdapterMetadataKey) +
                                          "\" metadata; a base model goes to -m)");
  json h;
  try {
    h = json::parse(it->second);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::ModelLoad, path + ": adapter header is not valid JSON: " + e.what());
  }
  const std::string origin = path + " (adapter header)";
  try {
    config_json::check_known_keys(h, {"format_version", "modality", "base", "config"}, origin);
    f.header.format_version = get<int>(h, "format_version", origin, std::nullopt);
    if (f.header.format_version != kAdapterFormatVersion)
      fail(origin, "format_version",
           "version " + std::to_string(f.header.format_version) + " is not supported (this build reads " +
               std::to_string(kAdapterFormatVersion) + ")");
    f.header.modality = get<std::string>(h, "modality", origin, std::nullopt);
    if (!modality.empty() && f.header.modality != modality)
      fail(origin, "modality", "this is a " + f.header.modality + " adapter, expected " + modality);
    if (!h.contains("base")) fail(origin, "base", "missing required key");
    f.header.base = BaseModelInfo::from_json(h["base"], origin);
    if (!h.contains("config") || !h["config"].is_object()) fail(origin, "config", "missing or not an object");
    f.header.config = h["config"];
  } catch (const Error& e) {
    throw Error(ErrorKind::ModelLoad, e.what());
  }
  return f;
}

void check_base_compatible(const AdapterHeader& header, const BaseModelInfo& base, const std::string& adapter_path) {
  auto mismatch = [&](const std::string& field, const std::string& want, const std::string& got) {
    throw Error(ErrorKind::ModelLoad, adapter_path + ": adapter was made for another base model: base." + field +
                                          " is " + want + " in the adapter but " + got + " in the base model");
  };
  if (header.base.hidden_size != base.hidden_size)
    mismatch("hidden_size", std::to_string(header.base.hidden_size), std::to_string(base.hidden_size));
  if (header.base.vocab_size != base.vocab_size)
    mismatch("vocab_size", std::to_string(header.base.vocab_size), std::to_string(base.vocab_size));
  if (header.base.tokenizer_sha256 != base.tokenizer_sha256)
    mismatch("tokenizer_sha256", header.base.tokenizer_sha256, base.tokenizer_sha256);
}

void write_adapter_module(torch::nn::Module& module, const std::string& modality, const BaseModelInfo& base,
                          const nlohmann::json& config, const std::string& path) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : module.named_parameters()) tensors[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) tensors[b.key()] = b.value();
  AdapterHeader h;
  h.modality = modality;
  h.base = base;
  h.config = config;
  write_adapter_file(path, h, tensors);
}

torch::Dtype adapter_weight_dtype(const AdapterFile& file, const std::string& probe, const std::string& path) {
  if (!file.tensors->contains(probe)) throw Error(ErrorKind::ModelLoad, path + ": missing tensor " + probe);
  return safetensors_dtype_to_torch(file.tensors->entry(probe).dtype, path);
}

}  // namespace llama_mm
