// train/run_model.cpp: the frozen base, the run's adapters and the next-token loss (see run_model.h).
#include "train/run_model.h"

#include "llm/atomic_file.h"
#include "llm/error.h"
#include "llm/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <map>
#include <sstream>

namespace llama_mm::train {

namespace {

bool is_image_part(Part p) { return p == Part::VisionEncoder || p == Part::ImageCrossAttention; }
bool is_video_part(Part p) { return p == Part::VideoAggregator || p == Part::VideoCrossAttention; }
bool is_speech_part(Part p) { return p == Part::SpeechEncoder || p == Part::SpeechAdapter; }

void add(NamedParams& out, const std::string& prefix, torch::nn::Module& m) {
  for (auto& p : m.named_parameters()) out.emplace_back(prefix + p.key(), p.value());
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_statistic(const std::string& name) { return ends_with(name, "feature_mean") || ends_with(name, "feature_std"); }

// A preset's config with a JSON file's keys replaced (RFC 7386 merge patch).
nlohmann::json patched(nlohmann::json config, const std::string& path) {
  std::ifstream in(path);
  nlohmann::json patch;
  try {
    in >> patch;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Config, path + ": not a JSON object of preset keys: " + e.what());
  }
  if (!patch.is_object()) throw Error(ErrorKind::Config, path + ": expected a JSON object of preset keys");
  config.merge_patch(patch);
  return config;
}

}  // namespace

RunModel::RunModel(const TrainConfig& cfg, std::optional<torch::Dtype> dtype)
    : base_dir_(cfg.base), tok_(Tokenizer::from_file(cfg.base)) {
  for (const auto& s : cfg.stages)
    for (Part p : s.train)
      if (std::find(run_parts_.begin(), run_parts_.end(), p) == run_parts_.end()) run_parts_.push_back(p);
  if (is_mllama_config(cfg.base)) {
    mllama = load_mllama(cfg.base, dtype);
    const auto& mc = mllama->config();
    if (tok_.token_id("<|image|>") != std::optional<int32_t>(static_cast<int32_t>(mc.image_token_index)))
      throw Error(ErrorKind::ModelLoad, cfg.base + ": the tokenizer's <|image|> is not the model's image_token_index");
    processor_ = load_image_processor(cfg.base, mc);
    base_info_ = BaseModelInfo::of(mc.text, tok_);
  } else {
    text = load_llama(cfg.base, dtype);
    base_info_ = BaseModelInfo::of(text->config(), tok_);
  }
  for (const auto& a : cfg.adapters) {
    if (a.modality == "video") {
      if (!mllama) throw Error(ErrorKind::Config, "adapters: a video adapter needs a Llama 3.2 Vision base");
      VideoAdapter v{nullptr};
      if (!a.from.empty()) {
        v = load_video_adapter(a.from, base_info_, mllama->config(), llm().dtype());
      } else {
        auto vc = VideoAdapterConfig::preset(is_json_preset(a.preset) ? "tiny" : a.preset, mllama->config());
        if (is_json_preset(a.preset)) vc = VideoAdapterConfig::from_json(patched(vc.to_json(), a.preset), a.preset);
        v = VideoAdapter(vc, mllama->config().text, llm().dtype());
        init_random_video_adapter(*v, cfg.seed + 101, /*zero_gates=*/true);
      }
      mllama->attach_video_adapter(v, a.from.empty() ? "video preset " + a.preset : a.from);
    } else {
      if (!a.from.empty()) {
        speech = load_speech_adapter(a.from, base_info_, llm().dtype());
      } else {
        std::string preset = a.preset == "paper-8b" || a.preset == "paper-70b" ? "paper"
                             : is_json_preset(a.preset)                 ? "tiny"
                                                                        : a.preset;
        auto sc = SpeechModelConfig::preset(preset, base_info_.hidden_size);
        sc.tokens = SpeechTokens::choose(tok_);
        if (is_json_preset(a.preset)) sc = SpeechModelConfig::from_json(patched(sc.to_json(), a.preset), a.preset);
        speech = SpeechModel(sc, llm().dtype());
        init_random_speech_weights(*speech, cfg.seed + 202);
      }
      speech->config().tokens.check(tok_, a.from.empty() ? "speech preset " + a.preset : a.from);
    }
  }
  for (auto* m : std::initializer_list<torch::nn::Module*>{mllama ? mllama.get() : nullptr, text ? text.get() : nullptr,
                                                           speech ? speech.get() : nullptr})
    if (m) m->eval();  // no dropout; BatchNorm keeps its statistics (SFT of a pretrained encoder)
  if (mllama && mllama->video_adapter) mllama->video_adapter->eval();
  set_trainable({});
}

LlamaForCausalLMImpl& RunModel::llm() { return mllama ? *mllama->language_model : *text; }

bool RunModel::has(Part part) const {
  if (part == Part::TextModel) return true;
  if (is_image_part(part)) return static_cast<bool>(mllama);
  if (is_video_part(part)) return mllama && mllama->video_adapter;
  return static_cast<bool>(speech);
}

ExampleBuilderOptions RunModel::builder_options() const {
  ExampleBuilderOptions o;
  o.max_tokens = mllama ? mllama->config().text.max_position_embeddings : text->config().max_position_embeddings;
  o.max_tokens = std::min<int64_t>(o.max_tokens, 8192);
  if (mllama) {
    o.image_token = mllama->config().image_token_index;
    o.images = processor_;
    if (mllama->video_adapter) {
      o.video_token = mllama->video_adapter->config().video_token_index;
      o.video_sampling.n_frames = static_cast<int>(mllama->video_adapter->config().frames);
    }
  }
  if (speech) o.speech = speech->config();
  return o;
}

NamedParams RunModel::parameters(Part part) {
  NamedParams out;
  if (!has(part)) return out;
  switch (part) {
    case Part::VisionEncoder: add(out, "image.vision_model.", *mllama->vision_model); break;
    case Part::ImageCrossAttention:
      add(out, "image.multi_modal_projector.", *mllama->multi_modal_projector);
      for (size_t c = 0; c < mllama->cross_layers.size(); ++c)
        add(out, "image.cross_layers." + std::to_string(c) + ".", *mllama->cross_layers[c]);
      break;
    case Part::VideoAggregator: add(out, "video.aggregator.", *mllama->video_adapter->aggregator); break;
    case Part::VideoCrossAttention:
      for (size_t v = 0; v < mllama->video_adapter->cross_layers.size(); ++v)
        add(out, "video.cross_layers." + std::to_string(v) + ".", *mllama->video_adapter->cross_layers[v]);
      break;
    case Part::SpeechEncoder:
      for (auto& p : speech->encoder->named_parameters())
        if (!is_statistic(p.key())) out.emplace_back("speech.encoder." + p.key(), p.value());
      break;
    case Part::SpeechAdapter: add(out, "speech.adapter.", *speech->adapter); break;
    case Part::TextModel: add(out, "text_model.", llm()); break;
  }
  return out;
}

NamedParams RunModel::run_state() {
  NamedParams out;
  for (Part p : run_parts_)
    for (auto& np : parameters(p)) out.push_back(np);
  if (std::find(run_parts_.begin(), run_parts_.end(), Part::SpeechEncoder) != run_parts_.end() && speech) {
    out.emplace_back("speech.encoder.feature_mean", speech->encoder->feature_mean);  // set by BEST-RQ
    out.emplace_back("speech.encoder.feature_std", speech->encoder->feature_std);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

NamedParams RunModel::llm_parameters() {
  NamedParams out;
  add(out, "llm.", llm());
  return out;
}

void RunModel::set_trainable(const std::vector<Part>& parts) {
  for (auto* m : std::initializer_list<torch::nn::Module*>{mllama ? mllama.get() : nullptr, text ? text.get() : nullptr,
                                                           speech ? speech.get() : nullptr})
    if (m)
      for (auto& p : m->parameters()) p.set_requires_grad(false);
  if (mllama && mllama->video_adapter)
    for (auto& p : mllama->video_adapter->parameters()) p.set_requires_grad(false);
  for (Part part : parts) {
    if (!has(part))
      throw Error(ErrorKind::Config, "stage trains " + [&] {
        for (const auto& [name, q] : part_names())
          if (q == part) return name;
        return std::string("?");
      }() + " but the run has no such part (base " + (mllama ? "Llama 3.2 Vision" : "Llama 3 text") + ")");
    for (auto& [name, p] : parameters(part)) p.set_requires_grad(true);
  }
}

std::pair<torch::Tensor, torch::Tensor> pad_batch(const std::vector<const Example*>& batch, int64_t pad) {
  int64_t S = 0;
  for (const auto* e : batch) S = std::max<int64_t>(S, static_cast<int64_t>(e->tokens.size()));
  const int64_t B = static_cast<int64_t>(batch.size());
  auto tokens = torch::full({B, S}, pad, torch::kInt64);
  auto targets = torch::full({B, S}, kIgnoreTarget, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    const auto& e = *batch[b];
    const int64_t n = static_cast<int64_t>(e.tokens.size());
    tokens[b].narrow(0, 0, n).copy_(torch::tensor(e.tokens, torch::kInt64));
    targets[b].narrow(0, 0, n).copy_(torch::tensor(e.targets, torch::kInt64));
  }
  return {tokens, targets};
}

namespace {

// The summed cross-entropy of the learned positions, with logits computed for those rows only (the output
// projection over the vocabulary is most of a small model's cost).
torch::Tensor token_loss_sum(const LlamaForCausalLMImpl& lm, const torch::Tensor& hidden, const torch::Tensor& targets,
                             int64_t& n_targets) {
  const auto flat = targets.reshape({-1}).to(hidden.device());
  const auto rows = flat.ne(kIgnoreTarget).nonzero().squeeze(1);
  n_targets += rows.numel();
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, rows);
  auto logits = lm.logits(h.unsqueeze(0), /*all_logits=*/true).squeeze(0);  // [N, V]
  return torch::nn::functional::cross_entropy(
      logits, flat.index_select(0, rows), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

std::vector<std::pair<int64_t, int64_t>> spans_of(const Example& e, int64_t token) {
  return image_token_spans(e.tokens, token);
}

}  // namespace

torch::Tensor image_caption_loss_sum(MllamaForConditionalGenerationImpl& model, const media::MllamaImageInputs& images,
                                     const torch::Tensor& tokens, const torch::Tensor& targets, int64_t& n_targets) {
  const auto& cfg = model.config();
  std::vector<std::vector<std::pair<int64_t, int64_t>>> spans;
  const auto cpu_tokens = tokens.to(torch::kCPU).contiguous();
  for (int64_t b = 0; b < tokens.size(0); ++b) {
    const int64_t* p = cpu_tokens[b].data_ptr<int64_t>();
    spans.push_back(image_token_spans(std::vector<int64_t>(p, p + tokens.size(1)), cfg.image_token_index));
  }
  auto states = model.encode_images(images);
  auto dense = dense_cross_attention_mask(spans, images.num_tiles, cfg.vision.max_num_tiles, tokens.size(1));
  auto ctx = model.cross_context(states, dense.to(states.device()));
  return token_loss_sum(*model.language_model, model.hidden(tokens, nullptr, &ctx), targets, n_targets);
}

torch::Tensor RunModel::image_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets) {
  const auto& cfg = mllama->config();
  std::vector<std::vector<media::ProcessedImage>> images;
  for (const auto* e : batch) images.push_back({e->image});
  auto [tokens, targets] = pad_batch(batch, cfg.text.eos_token_ids.empty() ? 0 : cfg.text.eos_token_ids[0]);
  return image_caption_loss_sum(*mllama, processor_->pack(images), tokens, targets, n_targets);
}

torch::Tensor RunModel::video_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets) {
  const auto& cfg = mllama->config();
  const int64_t video_token = mllama->video_adapter->config().video_token_index;
  std::vector<torch::Tensor> effective;  // [G_b, L, D]
  std::vector<std::vector<int64_t>> groups;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> spans;
  int64_t max_groups = 0;
  for (const auto* e : batch) {
    effective.push_back(mllama->encode_video(e->video));
    groups.push_back({effective.back().size(0)});
    max_groups = std::max(max_groups, effective.back().size(0));
    spans.push_back(spans_of(*e, video_token));
  }
  for (auto& e : effective)  // pad to the longest video's group count; the mask hides the padding
    if (e.size(0) < max_groups)
      e = torch::cat({e, torch::zeros({max_groups - e.size(0), e.size(1), e.size(2)}, e.options())});
  std::vector<torch::Tensor> rows;
  for (auto& e : effective) rows.push_back(e.reshape({1, -1, e.size(-1)}));
  auto states = torch::cat(rows, 0);  // [B, G·L, D]
  auto [tokens, targets] = pad_batch(batch, cfg.text.eos_token_ids.empty() ? 0 : cfg.text.eos_token_ids[0]);
  auto dense = dense_cross_attention_mask(spans, groups, max_groups, tokens.size(1));
  CrossAttentionContext ctx;
  mllama->add_video_context(ctx, states, dense);
  return token_loss_sum(*mllama->language_model, mllama->hidden(tokens, nullptr, &ctx), targets, n_targets);
}

torch::Tensor RunModel::speech_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets) {
  auto& lm = llm();
  const auto& st = speech->config().tokens;
  const int64_t B = static_cast<int64_t>(batch.size());
  int64_t T = 0;
  for (const auto* e : batch) T = std::max(T, e->mel.size(0));
  auto mel = torch::zeros({B, T, batch[0]->mel.size(1)});
  auto lengths = torch::empty({B}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    mel[b].narrow(0, 0, batch[b]->mel.size(0)).copy_(batch[b]->mel);
    lengths[b] = batch[b]->mel.size(0);
  }
  auto out = speech->forward(mel, lengths);  // embeds [B, T', L]
  auto [tokens, targets] = pad_batch(batch, lm.config().eos_token_ids.empty() ? 0 : lm.config().eos_token_ids[0]);
  auto h = lm.embed(tokens).detach().clone();  // [B, S, D]: the frozen table's rows, then the speech rows spliced in
  std::vector<int64_t> rows_b, rows_s, src_b, src_k, start_b, start_s, end_b, end_s;
  for (int64_t b = 0; b < B; ++b) {
    const auto& ids = batch[b]->tokens;
    int64_t k = 0;
    for (size_t s = 0; s < ids.size(); ++s) {
      if (ids[s] == st.placeholder) rows_b.push_back(b), rows_s.push_back(static_cast<int64_t>(s)), src_b.push_back(b), src_k.push_back(k++);
      else if (ids[s] == st.start) start_b.push_back(b), start_s.push_back(static_cast<int64_t>(s));
      else if (ids[s] == st.end) end_b.push_back(b), end_s.push_back(static_cast<int64_t>(s));
    }
    if (k != out.lengths[b].item<int64_t>())
      throw Error(ErrorKind::InputDecode, batch[b]->origin + ": " + std::to_string(k) + " speech placeholders but " +
                                              std::to_string(out.lengths[b].item<int64_t>()) + " speech vectors");
  }
  auto idx = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64); };
  const auto& boundary = speech->adapter->boundary;  // [2, L]
  h = h.index_put({idx(rows_b), idx(rows_s)}, out.embeds.index({idx(src_b), idx(src_k)}).to(h.dtype()));
  h = h.index_put({idx(start_b), idx(start_s)}, boundary[0].to(h.dtype()).expand({static_cast<int64_t>(start_b.size()), -1}));
  h = h.index_put({idx(end_b), idx(end_s)}, boundary[1].to(h.dtype()).expand({static_cast<int64_t>(end_b.size()), -1}));
  return token_loss_sum(lm, lm.hidden_from_embeds(h, nullptr), targets, n_targets);
}

torch::Tensor RunModel::text_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets) {
  auto& lm = llm();  // a Vision base's text-only forward is its language model alone (the cross layers are skipped)
  auto [tokens, targets] = pad_batch(batch, lm.config().eos_token_ids.empty() ? 0 : lm.config().eos_token_ids[0]);
  return token_loss_sum(lm, lm.hidden(tokens, nullptr), targets, n_targets);
}

RunModel::ImageTextEmbeddings RunModel::image_text_embeddings(const std::vector<Example>& batch,
                                                              ContrastiveHeadsImpl& heads) {
  if (!mllama) throw Error(ErrorKind::Config, "contrastive pre-training needs a Llama 3.2 Vision base");
  const int64_t B = static_cast<int64_t>(batch.size());
  std::vector<std::vector<media::ProcessedImage>> images;
  std::vector<const Example*> rows;
  for (const auto& e : batch) {
    if (e.kind != MediaKind::Image)
      throw Error(ErrorKind::InputDecode, e.origin + ": contrastive pre-training needs one image per sample");
    images.push_back({e.image});
    rows.push_back(&e);
  }
  // Images: the encoder's features averaged over the valid tiles' tokens.
  const auto packed = processor_->pack(images);
  const auto device = mllama->vision_model->patch_embedding_weight.device();
  auto feats = mllama->vision_model->forward(packed.pixel_values.to(device), packed.aspect_ratio_ids.to(device),
                                             packed.aspect_ratio_mask.to(device));  // [B, 1, T, P, Dv]
  auto tile_w = packed.aspect_ratio_mask.select(1, 0).to(device, torch::kFloat32);  // [B, T]
  auto per_tile = feats.select(1, 0).to(torch::kFloat32).mean(2);                   // [B, T, Dv]
  auto pooled_images = (per_tile * tile_w.unsqueeze(-1)).sum(1) / tile_w.sum(1, true);
  // Captions: the frozen LLM's hidden states averaged over the tokens of the answer (input positions s whose
  // predecessor's target is learned), read without the image.
  torch::Tensor pooled_texts;
  {
    torch::NoGradGuard no_grad;
    auto& lm = llm();
    auto [tokens, targets] = pad_batch(rows, lm.config().eos_token_ids.empty() ? 0 : lm.config().eos_token_ids[0]);
    auto learned = targets.ne(kIgnoreTarget).to(torch::kFloat32);  // [B, S]
    auto weight = torch::zeros_like(learned);
    weight.narrow(1, 1, weight.size(1) - 1).copy_(learned.narrow(1, 0, learned.size(1) - 1));
    weight = weight.to(device);
    auto h = lm.hidden(tokens.to(device), nullptr).to(torch::kFloat32);  // [B, S, D]
    pooled_texts = (h * weight.unsqueeze(-1)).sum(1) / weight.sum(1, true).clamp_min(1);
  }
  std::vector<std::vector<int64_t>> captions(B);
  for (int64_t i = 0; i < B; ++i)
    std::copy_if(batch[i].targets.begin(), batch[i].targets.end(), std::back_inserter(captions[i]),
                 [](int64_t t) { return t != kIgnoreTarget; });
  return {heads.embed_images(pooled_images), heads.embed_texts(pooled_texts), std::move(captions)};
}

torch::Tensor RunModel::contrastive_loss_sum(const std::vector<Example>& batch, ContrastiveHeadsImpl& heads,
                                             int64_t& n_targets) {
  const auto e = image_text_embeddings(batch, heads);
  n_targets += static_cast<int64_t>(batch.size());
  return clip_loss_sum(e.images, e.texts, heads.logit_scale, same_captions(e.captions).to(e.images.device()));
}

void RunModel::set_feature_statistics(const std::vector<Example>& examples) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> mels;
  for (const auto& e : examples) mels.push_back(e.mel);
  auto all = torch::cat(mels, 0).to(torch::kFloat64);  // [frames, M]
  auto& enc = *speech->encoder;
  enc.feature_mean.copy_(all.mean(0));
  enc.feature_std.copy_(all.std(0, /*unbiased=*/false).clamp_min(1e-5));
}

torch::Tensor RunModel::best_rq_loss_sum(const std::vector<Example>& batch, BestRqImpl& quantizer,
                                         const std::vector<uint64_t>& mask_seeds, int64_t& n_targets) {
  auto& enc = *speech->encoder;
  const int64_t B = static_cast<int64_t>(batch.size()), M = batch[0].mel.size(1);
  int64_t T = 0;
  for (const auto& e : batch) T = std::max(T, e.mel.size(0));
  auto mel = torch::zeros({B, T, M});
  auto lengths = torch::empty({B}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    mel[b].narrow(0, 0, batch[b].mel.size(0)).copy_(batch[b].mel);
    lengths[b] = batch[b].mel.size(0);
  }
  const auto mean = enc.feature_mean.detach().to(torch::kFloat32), std = enc.feature_std.detach().to(torch::kFloat32);
  auto normalised = (mel - mean) / std;
  auto targets = quantizer.targets(normalised);  // from the unmasked features
  auto mask = torch::zeros({B, T}, torch::kBool);  // padding is never masked
  auto noise = torch::zeros({B, T, M});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = batch[b].mel.size(0);
    auto gen = at::detail::createCPUGenerator(mask_seeds.at(b));
    mask[b].narrow(0, 0, len).copy_(quantizer.draw_mask(len, gen));
    noise[b].narrow(0, 0, len).normal_(0.0, quantizer.config().noise_std, gen);
  }
  auto masked_mel = torch::where(mask.unsqueeze(-1), noise * std + mean, mel);  // noise after normalisation
  auto out = enc.forward(masked_mel, lengths);                                   // hidden [B, T', E]
  const int64_t stack = enc.config().stack, Tp = out.hidden.size(1);
  auto padded = torch::zeros({B, Tp * stack}, torch::kBool);
  padded.narrow(1, 0, T).copy_(mask);
  auto frame_masked = padded.view({B, Tp, stack}).any(-1);                       // [B, T']
  frame_masked &= torch::arange(Tp).unsqueeze(0).lt(out.lengths.unsqueeze(1));
  const auto idx = frame_masked.nonzero();                                        // [N, 2]
  n_targets += idx.size(0);
  if (idx.size(0) == 0) return (out.hidden.sum() * 0.0).to(torch::kFloat32);     // nothing masked in this batch
  auto hidden = out.hidden.index({idx.select(1, 0), idx.select(1, 1)});           // [N, E]
  auto want = targets.index({idx.select(1, 0), idx.select(1, 1)});                // [N, C]
  auto logits = quantizer.logits(hidden);                                         // [N, C, K]
  const int64_t C = logits.size(1);
  auto ce = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(2)}), want.reshape({-1}),
                                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  return ce / static_cast<double>(C);
}

torch::Tensor RunModel::loss_sum(const std::vector<Example>& batch, int64_t& n_targets) {
  torch::Tensor total;
  for (MediaKind kind : {MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Text}) {
    std::vector<const Example*> group;
    for (const auto& e : batch)
      if (e.kind == kind) group.push_back(&e);
    if (group.empty()) continue;
    torch::Tensor l = kind == MediaKind::Image   ? image_batch_loss(group, n_targets)
                      : kind == MediaKind::Video ? video_batch_loss(group, n_targets)
                      : kind == MediaKind::Audio ? speech_batch_loss(group, n_targets)
                                                 : text_batch_loss(group, n_targets);
    total = total.defined() ? total + l : l;
  }
  return total;
}

std::string RunModel::answer(const Example& ex, int64_t max_new_tokens) {
  // The prompt: everything up to the first learned token, i.e. through the first assistant header.
  const auto first = std::find_if(ex.targets.begin(), ex.targets.end(), [](int64_t t) { return t != kIgnoreTarget; });
  const std::vector<int32_t> prompt(ex.tokens.begin(), ex.tokens.begin() + (first - ex.targets.begin()) + 1);
  GenerateParams params;
  params.n_predict = static_cast<int>(max_new_tokens);
  params.sampling.temperature = 0.0f;  // greedy
  if (ex.kind == MediaKind::Audio) {
    torch::NoGradGuard no_grad;
    auto out = speech->forward(ex.mel.unsqueeze(0), {});
    auto clip = out.embeds[0].narrow(0, 0, out.lengths[0].item<int64_t>());
    return generate_with_speech(llm(), *speech, tok_, prompt, {clip}, params).text;
  }
  if (ex.kind == MediaKind::Video) return generate_mllama(*mllama, tok_, prompt, {}, params, {}, {ex.video}).text;
  if (ex.kind == MediaKind::Text) return generate(llm(), tok_, prompt, params).text;  // = a Vision base without media
  return generate_mllama(*mllama, tok_, prompt, processor_->pack({{ex.image}}), params).text;
}

std::vector<std::string> RunModel::save_adapters(const std::string& dir, const std::vector<Part>& parts) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<std::string> written;
  auto any = [&](bool (*pred)(Part)) { return std::any_of(parts.begin(), parts.end(), pred); };
  if (any(is_image_part)) {
    written.push_back((fs::path(dir) / "image.safetensors").string());
    save_image_adapter(*mllama, base_info_, written.back());
  }
  if (any(is_video_part)) {
    written.push_back((fs::path(dir) / "video.safetensors").string());
    save_video_adapter(*mllama->video_adapter, base_info_, written.back());
  }
  if (any(is_speech_part)) {
    written.push_back((fs::path(dir) / "speech.safetensors").string());
    save_speech_adapter(*speech, base_info_, written.back());
  }
  return written;
}

namespace {

void copy_files(const std::string& from_dir, const std::string& to_dir, std::initializer_list<const char*> names) {
  namespace fs = std::filesystem;
  for (const char* f : names) {
    const fs::path from = fs::path(from_dir) / f;
    if (!fs::exists(from)) continue;
    std::ifstream in(from, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in) throw Error(ErrorKind::Runtime, from.string() + ": cannot read it to copy into " + to_dir);
    write_file_atomic((fs::path(to_dir) / f).string(), content.str());
  }
}

}  // namespace

std::string RunModel::save_text_model(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto& lm = llm();
  const auto& cfg = lm.config();
  const auto dtype = parse_dtype(cfg.torch_dtype);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : lm.named_parameters()) {
    auto t = p.value().detach();
    if (p.key() == "model.embed_tokens.weight") t = t.narrow(0, 0, cfg.vocab_size);  // a Vision base's extra rows
    tensors[p.key()] = t.to(torch::kCPU, dtype).contiguous();
  }
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), cfg.to_json().dump(2) + "\n");
  copy_files(base_dir_, dir, {"generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"});
  return dir;
}

std::string RunModel::save_model(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const auto weights = (fs::path(dir) / "model.safetensors").string();
  if (mllama) {
    save_mllama_weights(*mllama, weights, parse_dtype(mllama->config().text.torch_dtype));
  } else {
    const auto dtype = parse_dtype(text->config().torch_dtype);
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : text->named_parameters()) tensors[p.key()] = p.value().detach().to(torch::kCPU, dtype).contiguous();
    write_safetensors(weights, tensors, {{"format", "pt"}});
  }
  copy_files(base_dir_, dir, {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                              "special_tokens_map.json", "preprocessor_config.json"});
  return dir;
}

}  // namespace llama_mm::train
