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
  const auto device = multi_modal_projector->weight.device();  // the batch comes from the CPU preprocessor
  auto out = vision_model->forward(images.pixel_values.to(device), images.aspect_ratio_ids.to(device),
                                   images.aspect_ratio_mask.to(device), hook);
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

torch::Tensor MllamaForConditionalGenerationImpl::encode_video(const MllamaImageBatch& frames, int64_t chunk) {
  if (!video_adapter) throw Error(ErrorKind::Usage, "encode_video: no video adapter is attached");
  const auto& pv = frames.pixel_values;
  TORCH_CHECK(pv.dim() == 6 && pv.size(0) == 1 && !frames.num_tiles.empty(), "encode_video: one video's frames");
  const int64_t F = pv.size(1);
  const auto& tiles = frames.num_tiles[0];
  const int64_t n_tiles = tiles.empty() ? 0 : tiles[0];
  for (int64_t t : tiles)
    if (t != n_tiles) throw Error(ErrorKind::InputDecode, "the video's frames do not all have the same tile grid");
  std::vector<torch::Tensor> states;  // per chunk [n, n_tiles·P, D]
  for (int64_t f0 = 0; f0 < F; f0 += chunk) {
    const int64_t n = std::min(chunk, F - f0);
    MllamaImageBatch part;
    part.pixel_values = pv.narrow(1, f0, n);
    part.aspect_ratio_ids = frames.aspect_ratio_ids.narrow(1, f0, n);
    part.aspect_ratio_mask = frames.aspect_ratio_mask.narrow(1, f0, n);
    const auto device = multi_modal_projector->weight.device();
    auto out = vision_model->forward(part.pixel_values.to(device), part.aspect_ratio_ids.to(device),
                                     part.aspect_ratio_mask.to(device));
    auto projected = multi_modal_projector(out.narrow(2, 0, n_tiles));  // [1, n, n_tiles, P, D]
    states.push_back(projected.reshape({n, -1, projected.size(-1)}));
  }
  return video_adapter->aggregator->forward(states.size() == 1 ? states[0] : torch::cat(states, 0));
}

void MllamaForConditionalGenerationImpl::add_video_context(CrossAttentionContext& ctx, const torch::Tensor& video_states,
                                                           const torch::Tensor& dense) {
  TORCH_CHECK(video_adapter, "add_video_context: no video adapter is attached");
  ctx.video_kv.clear();
  for (auto& layer : video_adapter->cross_layers) ctx.video_kv.push_back(layer->cross_attn->project_kv(video_states));
  ctx.video_dense = dense;
  ctx.tokens_per_frame = video_adapter->config().aggregator.num_latents;
}

void MllamaForConditionalGenerationImpl::attach_video_adapter(VideoAdapter adapter, const std::string& origin) {
  if (adapter) adapter->config().check_fits(cfg_, origin);
  video_adapter = std::move(adapter);
}

namespace {

// Rows [pos, pos + S) of a dense token mask; rows past the prompt repeat its last row (HF appends a copy of the
// last row per generated token).
torch::Tensor mask_rows(const torch::Tensor& dense, int64_t pos, int64_t S) {
  auto rows = torch::arange(pos, pos + S, torch::dtype(torch::kInt64).device(dense.device())).clamp_max(dense.size(1) - 1);
  return dense.index_select(1, rows);
}

}  // namespace

LayerInterleave MllamaForConditionalGenerationImpl::cross_interleave(const CrossAttentionContext* ctx, int64_t batch,
                                                                    int64_t pos, int64_t S, const ActivationHook& hook) {
  const bool images = ctx && !ctx->kv.empty(), videos = ctx && !ctx->video_kv.empty();
  if (!images && !videos) return {};  // text only: cross layers are skipped entirely (§3.2)
  TORCH_CHECK(!videos || video_adapter, "a video context needs an attached video adapter");
  CrossAttentionMask mask, video_mask;
  if (images) {
    TORCH_CHECK(ctx->dense.size(0) == batch, "cross-attention context batch ", ctx->dense.size(0), " != token batch ",
                batch);
    mask = prepare_cross_attention_mask(mask_rows(ctx->dense, pos, S), ctx->tokens_per_tile);
  }
  if (videos) {
    TORCH_CHECK(ctx->video_dense.size(0) == batch, "video context batch ", ctx->video_dense.size(0),
                " != token batch ", batch);
    video_mask = prepare_cross_attention_mask(mask_rows(ctx->video_dense, pos, S), ctx->tokens_per_frame);
  }
  return [this, ctx, images, videos, mask, video_mask, hook](int64_t layer, const torch::Tensor& h) {
    torch::Tensor x = h;
    for (size_t c = 0; c < slots_.size(); ++c) {
      if (slots_[c] != layer) continue;
      if (videos) {
        const auto& before = video_adapter->config().before_cross_layers;
        for (size_t v = 0; v < before.size(); ++v) {
          if (before[v] != static_cast<int64_t>(c)) continue;
          x = video_adapter->cross_layers[v]->forward(x, ctx->video_kv[v], video_mask, cfg_.mask_cross_attn_output_rows);
          if (hook) hook("video_layer." + std::to_string(v) + ".out", x);
        }
      }
      if (!images) continue;
      x = cross_layers[c]->forward(x, ctx->kv[c], mask, cfg_.mask_cross_attn_output_rows);
      if (hook) hook("layer." + std::to_string(cfg_.cross_attention_layers[c]) + ".out", x);
    }
    return x;
  };
}

torch::Tensor MllamaForConditionalGenerationImpl::forward(const torch::Tensor& tokens, KVCache* cache,
                                                          const CrossAttentionContext* ctx,
                                                          const ForwardOptions& opts) {
  return language_model->logits(hidden(tokens, cache, ctx, opts), opts.all_logits);
}

torch::Tensor MllamaForConditionalGenerationImpl::hidden(const torch::Tensor& tokens, KVCache* cache,
                                                         const CrossAttentionContext* ctx, const ForwardOptions& opts) {
  const int64_t S = tokens.size(1), pos = cache ? cache->n_past : 0;
  ForwardOptions o = opts;  // the caller's options, with hook names mapped and the cross layers interleaved
  if (opts.hook) {
    o.hook = [&](const std::string& name, const torch::Tensor& t) {
      int64_t j;
      std::string rest;
      if (split_index(name, "layer.", j, rest)) return opts.hook("layer." + std::to_string(self_hf_[j]) + "." + rest, t);
      opts.hook(name, t);
    };
  }
  o.interleave = cross_interleave(ctx, tokens.size(0), pos, S, opts.hook);
  return language_model->hidden_from_embeds(language_model->embed(tokens), cache, o);
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

void save_mllama_weights(MllamaForConditionalGenerationImpl& model, const std::string& path,
                         std::optional<torch::Dtype> dtype) {
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
    auto t = p.value().detach().cpu();
    tensors[key] = (dtype ? t.to(*dtype) : t).contiguous();
  }
  write_safetensors(path, tensors, {{"format", "pt"}});
}

void init_random_mllama_weights(torch::nn::Module& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  const auto params = model.parameters();
  auto gen = seeded_generator(params.empty() ? torch::Device(torch::kCPU) : params.front().device(), seed);
  auto has = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
  for (auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    auto& t = p.value();
    auto f32 = torch::empty(t.sizes(), torch::dtype(torch::kFloat32).device(t.device()));
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

std::optional<CrossAttentionContext> mllama_context(MllamaForConditionalGenerationImpl& model,
                                                    const std::vector<int32_t>& prompt,
                                                    const MllamaImageBatch& images,
                                                    const std::vector<MllamaImageBatch>& videos,
                                                    GenerateTimings& timings) {
  torch::NoGradGuard no_grad;
  const auto& cfg = model.config();
  const std::vector<int64_t> ids(prompt.begin(), prompt.end());
  const int64_t length = static_cast<int64_t>(prompt.size());
  const auto spans = image_token_spans(ids, cfg.image_token_index);
  const int64_t n_images =
      images.pixel_values.defined() && images.pixel_values.numel() > 0 ? images.pixel_values.size(1) : 0;
  if (static_cast<int64_t>(spans.size()) != n_images)
    throw Error(ErrorKind::InputDecode, "the prompt has " + std::to_string(spans.size()) +
                                            " <|image|> tokens but " + std::to_string(n_images) +
                                            " images were given (one image per <|image|> token)");
  std::vector<std::pair<int64_t, int64_t>> video_spans;
  if (model.video_adapter) video_spans = image_token_spans(ids, model.video_adapter->config().video_token_index);
  if (!videos.empty() && !model.video_adapter)
    throw Error(ErrorKind::Usage, "videos need a video adapter (--adapter)");
  if (video_spans.size() != videos.size())
    throw Error(ErrorKind::InputDecode, "the prompt has " + std::to_string(video_spans.size()) + " video tokens but " +
                                            std::to_string(videos.size()) + " videos were given");
  std::optional<CrossAttentionContext> ctx;
  timings.n_images = n_images;
  if (n_images > 0) {
    TORCH_CHECK(images.pixel_values.size(0) == 1, "mllama_context takes one sample");
    auto t0 = std::chrono::steady_clock::now();
    auto states = model.encode_images(images);
    auto dense = dense_cross_attention_mask({spans}, images.num_tiles, cfg.vision.max_num_tiles, length);
    ctx = model.cross_context(states, dense.to(states.device()));
    timings.image_encode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  if (!videos.empty()) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> effective;  // [G_v, L, D] per video
    std::vector<int64_t> groups;
    int64_t max_groups = 0;
    for (const auto& v : videos) {
      effective.push_back(model.encode_video(v));
      groups.push_back(effective.back().size(0));
      max_groups = std::max(max_groups, groups.back());
      timings.n_video_frames += v.pixel_values.size(1);
    }
    for (auto& e : effective)  // pad to the longest video's group count; the mask hides the padding
      if (e.size(0) < max_groups) e = torch::cat({e, torch::zeros({max_groups - e.size(0), e.size(1), e.size(2)}, e.options())});
    auto states = torch::cat(effective, 0).reshape({1, -1, effective[0].size(-1)});  // [1, V·G·L, D]
    auto dense = dense_cross_attention_mask({video_spans}, {groups}, max_groups, length);
    if (!ctx) ctx.emplace();
    model.add_video_context(*ctx, states, dense.to(states.device()));
    timings.video_encode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  return ctx;
}

GenerateResult generate_mllama(MllamaForConditionalGenerationImpl& model, const Tokenizer& tok,
                               const std::vector<int32_t>& prompt, const MllamaImageBatch& images,
                               const GenerateParams& params, const TextCallback& on_text,
                               const std::vector<MllamaImageBatch>& videos) {
  torch::NoGradGuard no_grad;
  const auto& cfg = model.config();
  const int64_t max_pos = cfg.text.max_position_embeddings;
  const int64_t n_ctx = std::min<int64_t>(params.n_ctx, max_pos);
  check_prompt(prompt, n_ctx, max_pos, cfg.n_embed_rows());
  GenerateTimings timings;
  auto ctx = mllama_context(model, prompt, images, videos, timings);
  MllamaTokenDecoder dec(model, n_ctx, std::move(ctx));
  auto r = generate(dec, tok, prompt, params, params.eos_ids.empty() ? cfg.text.eos_token_ids : params.eos_ids,
                    on_text);
  r.timings.n_images = timings.n_images;
  r.timings.image_encode_ms = timings.image_encode_ms;
  r.timings.n_video_frames = timings.n_video_frames;
  r.timings.video_encode_ms = timings.video_encode_ms;
  return r;
}

}  // namespace llama_mm
