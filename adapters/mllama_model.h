// adapters/mllama_model.h: Llama 3.2 Vision (HF MllamaForConditionalGeneration, mllama-spec.md §2-§3): the
// vision encoder, the multi-modal projector and a frozen Llama 3 decoder with cross-attention layers
// interleaved. The frozen decoder is a plain LlamaForCausalLM, wrapped and not edited: the cross layers run
// between its layers through ForwardOptions::interleave, fixed at construction from cross_attention_layers.
//
// Module tree: "vision_model.*", "multi_modal_projector.*", "language_model.*" (the Llama: model.embed_tokens
// with vocab+8 rows, model.layers.{j} for the self-attention layers only, model.norm, lm_head) and
// "cross_layers.{c}.*". load_mllama() maps HF's key layouts onto it.
#pragma once

#include "adapters/cross_attention.h"
#include "adapters/cross_attention_mask.h"
#include "adapters/mllama_config.h"
#include "adapters/video_adapter.h"
#include "encoders/mllama_vision.h"
#include "llm/generator.h"
#include "llm/llama_model.h"
#include "media/mllama_image_processor.h"

#include <optional>
#include <string>
#include <vector>

namespace llama_mm {

// Images of one batch as media::MllamaImageProcessor::pack gives them: pixel_values [B, M, T, C, S, S],
// aspect_ratio_ids [B, M], aspect_ratio_mask [B, M, T], num_tiles per sample and image.
using MllamaImageBatch = media::MllamaImageInputs;

// Everything the cross layers need for a batch: per-layer K/V of the images and which tokens see them, and
// the same for videos (their effective frames play the part of tiles).
struct CrossAttentionContext {
  std::vector<CrossKV> kv;  // one per image cross layer; empty: no image (the image layers are skipped)
  torch::Tensor dense;      // [B, S, M, T] 0/1 rows for the token positions computed so far
  int64_t tokens_per_tile = 0;
  std::vector<CrossKV> video_kv;  // one per video cross layer; empty: no video
  torch::Tensor video_dense;      // [B, S, V, G]: token s sees effective frame g of video v
  int64_t tokens_per_frame = 0;   // latents per effective frame
};

class MllamaForConditionalGenerationImpl : public torch::nn::Module {
 public:
  MllamaForConditionalGenerationImpl(const MllamaConfig& cfg, torch::Dtype dtype);

  // Vision encoder + projector: [B, M·T·P, D] (HF's cross_attention_states, per batch row).
  torch::Tensor encode_images(const MllamaImageBatch& images, const ActivationHook& hook = {});
  // Runs every cross layer's K/V projection once; `dense` is the token→tile mask for the prompt.
  CrossAttentionContext cross_context(const torch::Tensor& vision_states, const torch::Tensor& dense);

  // Video (needs attach_video_adapter). The frames of one video as the image processor packs them
  // ([1, F, T, C, S, S], every frame the same tile grid) -> effective frames [ceil(F / aggregation), L, D]:
  // vision encoder + projector `chunk` frames at a time, then the temporal aggregator.
  torch::Tensor encode_video(const MllamaImageBatch& frames, int64_t chunk = 4);
  // Adds the video layers' K/V of effective frames [B, V·G·L, D] and the token→frame mask [B, S, V, G].
  void add_video_context(CrossAttentionContext& ctx, const torch::Tensor& video_states, const torch::Tensor& dense);
  // Fits a video adapter (VideoAdapterConfig::check_fits; `origin` names it in errors) into the forward pass.
  void attach_video_adapter(VideoAdapter adapter, const std::string& origin);

  // tokens [B, S]. With ctx, cross layers attend to its images using rows [pos, pos + S) of ctx->dense
  // (rows past its end repeat the last one, as generation does); without ctx they are skipped
  // (text-only: exactly the frozen Llama). Video layers run when ctx holds videos, each right before its
  // image cross layer. Returns fp32 logits [B, S|1, vocab]. Hook stages: "embed", "layer.{i}.out" with i
  // the HF index in the interleaved stack, "video_layer.{v}.out", "norm".
  torch::Tensor forward(const torch::Tensor& tokens, KVCache* cache, const CrossAttentionContext* ctx,
                        const ForwardOptions& opts = {});
  // The final-norm hidden states [B, S, D] forward() takes its logits from (training takes only the rows it learns).
  torch::Tensor hidden(const torch::Tensor& tokens, KVCache* cache, const CrossAttentionContext* ctx,
                       const ForwardOptions& opts = {});

  // The cross layers (and video layers) as a LayerInterleave for `batch` sequences' tokens at positions
  // [pos, pos + S): what forward() runs between the frozen layers, and what a batched decode loop runs on one
  // sequence's row. Empty when ctx holds no media. ctx must outlive the returned function.
  LayerInterleave cross_interleave(const CrossAttentionContext* ctx, int64_t batch, int64_t pos, int64_t S,
                                   const ActivationHook& hook = {});

  const MllamaConfig& config() const { return cfg_; }
  torch::Dtype dtype() const { return dtype_; }

  MllamaVisionModel vision_model{nullptr};
  Linear multi_modal_projector{nullptr};
  LlamaForCausalLM language_model{nullptr};
  std::vector<CrossAttentionDecoderLayer> cross_layers;
  VideoAdapter video_adapter{nullptr};  // not a registered submodule: saved and loaded as its own file

 private:
  MllamaConfig cfg_;
  torch::Dtype dtype_;
  std::vector<int64_t> slots_;    // cross layer c runs before frozen layer slots_[c]
  std::vector<int64_t> self_hf_;  // HF index of frozen layer j
};
TORCH_MODULE(MllamaForConditionalGeneration);

// Maps a checkpoint key of either HF layout (4.x "language_model.model.*", 5.x "model.language_model.*")
// onto the module tree above; "" for keys that do not belong to the model.
std::string mllama_module_key(const MllamaConfig& cfg, const std::string& checkpoint_key);

// Behaviour switches applied over config.json at load time (nullopt: as the file says, else the default).
struct MllamaBehaviour {
  std::optional<bool> mask_cross_attn_output_rows;                   // false: transformers' rows (§3.5)
  std::optional<IntermediateSemantics> intermediate_semantics;       // OutputOfLayer: transformers >= 4.56
};

// Loads config.json + safetensors (single, sharded; either key layout) strictly; dtype nullopt: the
// checkpoint's torch_dtype.
MllamaForConditionalGeneration load_mllama(const std::string& dir, std::optional<torch::Dtype> dtype = std::nullopt,
                                           const MllamaBehaviour& behaviour = {});

// Fills the frozen decoder from a Llama 3 text checkpoint (LlamaForCausalLM directory) whose config
// equals cfg.text: every tensor name for name, the embedding into the first vocab_size rows. This is how
// adapters are built on a released text model (the paper's compositional recipe).
void load_text_weights(MllamaForConditionalGenerationImpl& model, const std::string& llama_dir);

// Random weights for tests and benchmarks, every gate non-zero (uniform in [0.3, 1]) so each path counts.
// Takes the whole model or a part of it (e.g. the vision encoder alone); rules go by parameter name.
void init_random_mllama_weights(torch::nn::Module& model, uint64_t seed);

// Writes the model in HF's on-disk layout (legacy 4.x keys) as model.safetensors, atomically; every tensor in `dtype`
// (nullopt: as it is in memory).
void save_mllama_weights(MllamaForConditionalGenerationImpl& model, const std::string& path,
                         std::optional<torch::Dtype> dtype = std::nullopt);

// The cross-attention context of one prompt (batch 1): its images (one per <|image|> token) and videos (one frame
// batch per video token) encoded; nullopt when it has neither. Wrong counts are InputDecode errors. Fills the
// image/video fields of `timings`.
std::optional<CrossAttentionContext> mllama_context(MllamaForConditionalGenerationImpl& model,
                                                    const std::vector<int32_t>& prompt,
                                                    const MllamaImageBatch& images,
                                                    const std::vector<MllamaImageBatch>& videos,
                                                    GenerateTimings& timings);

// Generation with images: `images` holds batch 1 with one image per <|image|> token of the prompt
// (an empty pixel_values tensor for text-only prompts); `videos` one frame batch per video token
// (VideoAdapterConfig::video_token_index; needs an attached video adapter).
GenerateResult generate_mllama(MllamaForConditionalGenerationImpl& model, const Tokenizer& tok,
                               const std::vector<int32_t>& prompt, const MllamaImageBatch& images,
                               const GenerateParams& params, const TextCallback& on_text = {},
                               const std::vector<MllamaImageBatch>& videos = {});

}  // namespace llama_mm
