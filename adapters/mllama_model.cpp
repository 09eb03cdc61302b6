// adapters/mllama_model.cpp: Mllama = vision encoder + projector + frozen Llama with cross layers
// (mllama-spec.md §2.3 items 14-15, §3, §7).
// ref: transformers v4.45.2 models/mllama/modeling_mllama.py (MllamaForConditionalGeneration,
//      MllamaTextModel.forward), §7 key renames (v4.57 _checkpoint_conversion_mapping, v5 conversion_mapping).
#include "adapters/mllama_model.h"

#include "llm/error.h"
#include "llm/safetensors.h"
#include "llm/weight_loader.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

namespace llama_mm {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// Splits "<prefix><int>.<rest>" into (int, rest); false when `key` is not of that form.
bool split_index(const std::string& key, const std::string& prefix, int64_t& index, std::string& rest) {
  if (!starts_with(key, prefix)) return false;
  const size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return false;
  const std::string num = key.substr(prefix.size(), dot - prefix.size());
  if (!std::all_of(num.begin(), num.end(), ::isdigit)) return false;
  index = std::stoll(num);
  rest = key.substr(dot + 1);
  return true;
}

// HF index of every self-attention (frozen) layer, in order.
std::vector<int64_t> self_layer_hf_indices(const MllamaConfig& cfg) {
  std::vector<int64_t> out;
  const auto& cross = cfg.cross_attention_layers;
  for (int64_t i = 0; i < cfg.n_layers_total(); ++i)
    if (std::find(cross.begin(), cross.end(), i) == cross.end()) out.push_back(i);
  return out;
}

const char* kTextLayers = "language_model.model.layers.";

}  // namespace

MllamaForConditionalGenerationImpl::MllamaForConditionalGenerationImpl(const MllamaConfig& cfg, torch::Dtype dtype)
    : cfg_(cfg), dtype_(dtype), slots_(cfg.cross_layer_slots()), self_hf_(self_layer_hf_indices(cfg)) {
  vision_model = register_module("vision_model", MllamaVisionModel(cfg.vision, dtype));
  multi_modal_projector = register_module(
      "multi_modal_projector", Linear(cfg.vision.vision_output_dim, cfg.text.hidden_size, true, dtype));
  language_model = register_module("language_model", LlamaForCausalLM(cfg.text, dtype, cfg.n_embed_rows()));
  auto list = torch::nn::ModuleList();
  for (int64_t c = 0; c < cfg.n_cross_layers(); ++c) {
    cross_layers.push_back(CrossAttentionDecoderLayer(cfg.text, dtype));
    list->push_back(cross_layers.back());
  }
  register_module("cross_layers", list);
}

torch::Tensor MllamaForConditionalGenerationImpl::encode_images(const MllamaImageBatch& images,
                                                                const ActivationHook& hook) {
  auto out = vision_model->forward(images.pixel_values, images.aspect_ratio_ids, images.aspect_ratio_mask, hook);
  if (hook) hook("vision.output", out);
  auto states = multi_modal_projector(out);  // [B, M, T, P, D]
  if (hook) hook("cross_attention_states", states);
  return states.reshape({states.size(0), -1, states.size(-1)});  // image-major, then tile, then token
}

CrossAttentionContext MllamaForConditionalGenerationImpl::cross_context(const torch::Tensor& vision_states,
                                                                        const torch::Tensor& dense) {
  CrossAttentionContext ctx;
  for (auto& layer : cross_layers) ctx.kv.push_back(layer->cross_attn->project_kv(vision_states));
  ctx.dense = dense;
  ctx.tokens_per_tile = cfg_.vision.num_patches();
  return ctx;
}

torch::Tensor MllamaForConditionalGenerationImpl::forward(const torch::Tensor& tokens, KVCache* cache,
                                                          const CrossAttentionContext* ctx,
                                                          const ForwardOptions& opts) {
  const int64_t S = tokens.size(1), pos = cache ? cache->n_past : 0;
  CrossAttentionMask mask;
  if (ctx) {
    TORCH_CHECK(ctx->dense.size(0) == tokens.size(0), "cross-attention context batch ", ctx->dense.size(0),
                " != token batch ", tokens.size(0));
    // Rows past the prompt repeat its last row (HF appends a copy of the last row per generated token).
    auto rows = torch::arange(pos, pos + S, torch::dtype(torch::kInt64).device(ctx->dense.device()))
                    .clamp_max(ctx->dense.size(1) - 1);
    mask = prepare_cross_attention_mask(ctx->dense.index_select(1, rows), ctx->tokens_per_tile);
  }
  ForwardOptions o = opts;  // the caller's options, with hook names mapped and the cross layers interleaved
  if (opts.hook) {
    o.hook = [&](const std::string& name, const torch::Tensor& t) {
      int64_t j;
      std::string rest;
      if (split_index(name, "layer.", j, rest)) return opts.hook("layer." + std::to_string(self_hf_[j]) + "." + rest, t);
      opts.hook(name, t);
    };
  }
  o.interleave = [&](int64_t layer, const torch::Tensor& h) {
    if (!ctx) return h;  // text only: cross layers are skipped entirely (§3.2)
    torch::Tensor x = h;
    for (size_t c = 0; c < slots_.size(); ++c) {
      if (slots_[c] != layer) continue;
      x = cross_layers[c]->forward(x, ctx->kv[c], mask, cfg_.mask_cross_attn_output_rows);
      if (opts.hook) opts.hook("layer." + std::to_string(cfg_.cross_attention_layers[c]) + ".out", x);
    }
    return x;
  };
  auto h = language_model->hidden_from_embeds(language_model->embed(tokens), cache, o);
  return language_model->logits(h, opts.all_logits);
}

// ---- checkpoints -----------------------------------------------------------------------------------

std::string mllama_module_key(const MllamaConfig& cfg, const std::string& checkpoint_key) {
  std::string k = checkpoint_key;
  // transformers >= 4.52 in-memory / v5 layout -> the on-disk (4.x) layout.
  static const std::pair<const char*, const char*> v5[] = {{"model.language_model.", "language_model.model."},
                                                            {"lm_head.", "language_model.lm_head."},
                                                            {"model.vision_model.", "vision_model."},
                                                            {"model.multi_modal_projector.", "multi_modal_projector."}};
  for (const auto& [from, to] : v5)
    if (starts_with(k, from)) {
      k = to + k.substr(std::strlen(from));
      break;
    }
  int64_t i;
  std::string rest;
  if (split_index(k, kTextLayers, i, rest)) {
    const auto& cross = cfg.cross_attention_layers;
    auto it = std::lower_bound(cross.begin(), cross.end(), i);
    const int64_t n_before = it - cross.begin();
    if (it != cross.end() && *it == i) return "cross_layers." + std::to_string(n_before) + "." + rest;
    return kTextLayers + std::to_string(i - n_before) + "." + rest;
  }
  return k;
}

MllamaForConditionalGeneration load_mllama(const std::string& dir, std::optional<torch::Dtype> dtype,
                                           const MllamaBehaviour& behaviour) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw Error(ErrorKind::ModelLoad, dir + ": model directory not found");
  auto cfg = MllamaConfig::from_file(dir);
  if (behaviour.mask_cross_attn_output_rows) cfg.mask_cross_attn_output_rows = *behaviour.mask_cross_attn_output_rows;
  if (behaviour.intermediate_semantics) cfg.vision.intermediate_semantics = *behaviour.intermediate_semantics;
  torch::Dtype dt = dtype ? *dtype : parse_dtype(cfg.text.torch_dtype);
  SafetensorsCheckpoint ckpt(dir);
  MllamaForConditionalGeneration m(cfg, dt);
  WeightLoadOptions opts;
  opts.rename = [&](const std::string& key) { return mllama_module_key(cfg, key); };
  load_weights_strict(*m, ckpt, dir, opts);
  m->eval();
  return m;
}

void load_text_weights(MllamaForConditionalGenerationImpl& model, const std::string& llama_dir) {
  auto text = load_llama(llama_dir, model.dtype());
  const auto& want = model.config().text;
  const auto& got = text->config();
  if (got.hidden_size != want.hidden_size || got.num_hidden_layers != want.num_hidden_layers ||
      got.vocab_size != want.vocab_size || got.intermediate_size != want.intermediate_size ||
      got.num_attention_heads != want.num_attention_heads || got.num_key_value_heads != want.num_key_value_heads ||
      got.tie_word_embeddings != want.tie_word_embeddings)
    throw Error(ErrorKind::ModelLoad, llama_dir + ": text model shape does not match the Mllama text config");
  torch::NoGradGuard no_grad;
  auto dst = model.language_model->named_parameters();
  for (const auto& p : text->named_parameters()) {
    auto* t = dst.find(p.key());
    if (!t) throw Error(ErrorKind::ModelLoad, llama_dir + ": unexpected tensor " + p.key());
    t->narrow(0, 0, p.value().size(0)).copy_(p.value());  // embed_tokens: the first vocab_size rows
  }
}

void save_mllama_weights(MllamaForConditionalGenerationImpl& model, const std::string& path) {
  const auto& cfg = model.config();
  const auto self_hf = self_layer_hf_indices(cfg);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : model.named_parameters()) {
    std::string key = p.key(), rest;
    int64_t i;
    if (split_index(key, "cross_layers.", i, rest))
      key = kTextLayers + std::to_string(cfg.cross_attention_layers[i]) + "." + rest;
    else if (split_index(key, kTextLayers, i, rest))
      key = kTextLayers + std::to_string(self_hf[i]) + "." + rest;
    tensors[key] = p.value().detach().cpu().contiguous();
  }
  write_safetensors(path, tensors, {{"format", "pt"}});
}

void init_random_mllama_weights(torch::nn::Module& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto has = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
  for (auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    auto& t = p.value();
    auto f32 = torch::empty(t.sizes(), torch::kFloat32);
    if (t.dim() == 1 && t.size(0) == 1) {
      f32.uniform_(0.3, 1.0, gen);  // gates: non-zero so the tile, position and cross paths all count
    } else if (has(name, "norm")) {
      if (has(name, ".bias")) f32.normal_(0.0, 0.02, gen);
      else f32.normal_(0.0, 0.1, gen).add_(1.0);
    } else if (has(name, "embed_tokens")) {
      f32.normal_(0.0, 0.25, gen);
    } else if (has(name, "embedding") && !has(name, "patch_embedding")) {
      f32.normal_(0.0, 0.5, gen);  // class, position and tile embeddings
    } else if (t.dim() >= 2) {
      const bool out_proj = has(name, "o_proj") || has(name, "down_proj");
      f32.normal_(0.0, (out_proj ? 2.0 : 1.0) / std::sqrt(static_cast<double>(t.numel() / t.size(0))), gen);
    } else {
      f32.normal_(0.0, 0.02, gen);  // biases
    }
    t.copy_(f32);
  }
}

// ---- generation ------------------------------------------------------------------------------------

namespace {

class MllamaTokenDecoder : public TokenDecoder {
 public:
  MllamaTokenDecoder(MllamaForConditionalGenerationImpl& model, int64_t n_ctx,
                     std::optional<CrossAttentionContext> ctx)
      : model_(model),
        cache_(model.language_model->config(), 1, n_ctx, model.dtype(), device()),
        ctx_(std::move(ctx)) {}
  torch::Tensor feed(const torch::Tensor& tokens) override {
    return model_.forward(tokens, &cache_, ctx_ ? &*ctx_ : nullptr);
  }
  int64_t n_past() const override { return cache_.n_past; }
  int64_t n_ctx() const override { return cache_.n_ctx; }
  torch::Device device() const override { return model_.language_model->lm_head_weight().device(); }

 private:
  MllamaForConditionalGenerationImpl& model_;
  KVCache cache_;
  std::optional<CrossAttentionContext> ctx_;
};

}  // namespace

GenerateResult generate_mllama(MllamaForConditionalGenerationImpl& model, const Tokenizer& tok,
                               const std::vector<int32_t>& prompt, const MllamaImageBatch& images,
                               const GenerateParams& params, const TextCallback& on_text) {
  torch::NoGradGuard no_grad;
  const auto& cfg = model.config();
  const int64_t max_pos = cfg.text.max_position_embeddings;
  const int64_t n_ctx = std::min<int64_t>(params.n_ctx, max_pos);
  check_prompt(prompt, n_ctx, max_pos, cfg.n_embed_rows());
  const std::vector<int64_t> ids(prompt.begin(), prompt.end());
  const auto spans = image_token_spans(ids, cfg.image_token_index);
  const int64_t n_images =
      images.pixel_values.defined() && images.pixel_values.numel() > 0 ? images.pixel_values.size(1) : 0;
  if (static_cast<int64_t>(spans.size()) != n_images)
    throw Error(ErrorKind::InputDecode, "the prompt has " + std::to_string(spans.size()) +
                                            " <|image|> tokens but " + std::to_string(n_images) +
                                            " images were given (one image per <|image|> token)");
  std::optional<CrossAttentionContext> ctx;
  double encode_ms = 0;
  if (n_images > 0) {
    TORCH_CHECK(images.pixel_values.size(0) == 1, "generate_mllama takes one sample");
    auto t0 = std::chrono::steady_clock::now();
    auto states = model.encode_images(images);
    auto dense = dense_cross_attention_mask({spans}, images.num_tiles, cfg.vision.max_num_tiles,
                                            static_cast<int64_t>(prompt.size()));
    ctx = model.cross_context(states, dense.to(states.device()));
    encode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  MllamaTokenDecoder dec(model, n_ctx, std::move(ctx));
  auto r = generate(dec, tok, prompt, params, params.eos_ids.empty() ? cfg.text.eos_token_ids : params.eos_ids,
                    on_text);
  r.timings.n_images = n_images;
  r.timings.image_encode_ms = encode_ms;
  return r;
}

}  // namespace llama_mm
