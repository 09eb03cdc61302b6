// train/run_model.h: what a training run holds in memory: the frozen base (Llama 3 text, or Llama 3.2 Vision
// whose language model is the frozen LLM), the run's adapters (video, speech; the image parts of a Vision base
// when a stage trains them), and the next-token loss over a batch of examples.
//
// Parameter names (checkpoints, optimizer state) carry the adapter they belong to: "image.vision_model.…",
// "image.multi_modal_projector.…", "image.cross_layers.{c}.…", "video.aggregator.…", "video.cross_layers.{v}.…",
// "speech.encoder.…", "speech.adapter.…", "text_model.…" (the LLM); run_state() adds the speech encoder's feature
// statistics, which BEST-RQ sets but nothing trains. Every parameter has requires_grad false except those of the
// stage's parts (set_trainable); the LLM's only in a text_model stage.
#pragma once

#include "adapters/adapters.h"
#include "llm/llm.h"
#include "train/adamw.h"
#include "train/best_rq.h"
#include "train/contrastive.h"
#include "train/example_builder.h"
#include "train/train_config.h"

#include <optional>
#include <string>
#include <vector>

namespace llama_mm::train {

class RunModel {
 public:
  // Loads the base in `dtype` (training: fp32; nullopt: the checkpoint's, as inference runs it) and creates or
  // loads the config's adapters in the same dtype (presets seeded from cfg.seed).
  explicit RunModel(const TrainConfig& cfg, std::optional<torch::Dtype> dtype = torch::kFloat32);

  LlamaForCausalLMImpl& llm();
  const Tokenizer& tokenizer() const { return tok_; }
  const BaseModelInfo& base_info() const { return base_info_; }
  bool has(Part part) const;
  ExampleBuilderOptions builder_options() const;

  NamedParams parameters(Part part);
  // Everything the run may change: the parameters of every part some stage trains.
  NamedParams run_state();
  // Only `parts` require gradients afterwards; Conformer feature statistics never do.
  void set_trainable(const std::vector<Part>& parts);
  // The LLM's parameters (for the frozen-weights checks).
  NamedParams llm_parameters();

  // Sum over the batch's target tokens of -log p(target), and their count in `n_targets`.
  torch::Tensor loss_sum(const std::vector<Example>& batch, int64_t& n_targets);

  // BEST-RQ (best_rq.h): the masked-prediction loss summed over the batch's masked encoder frames (their count in
  // `n_targets`); example b's mask and noise are drawn from mask_seeds[b].
  torch::Tensor best_rq_loss_sum(const std::vector<Example>& batch, BestRqImpl& quantizer,
                                 const std::vector<uint64_t>& mask_seeds, int64_t& n_targets);
  // Contrastive image-text pre-training (contrastive.h): the symmetric loss summed over a batch of image examples
  // (their count in `n_targets`), gradients into the vision encoder and the heads.
  torch::Tensor contrastive_loss_sum(const std::vector<Example>& batch, ContrastiveHeadsImpl& heads,
                                     int64_t& n_targets);
  // The same examples' normalised image and caption embeddings [B, E], and their captions (learned token ids).
  struct ImageTextEmbeddings {
    torch::Tensor images, texts;
    std::vector<std::vector<int64_t>> captions;
  };
  ImageTextEmbeddings image_text_embeddings(const std::vector<Example>& batch, ContrastiveHeadsImpl& heads);
  // Sets the speech encoder's per-bin feature statistics (mean, std) from the examples' mel frames.
  void set_feature_statistics(const std::vector<Example>& examples);

  // The model's greedy answer to an example's prompt (its conversation up to the first assistant turn), as
  // caption / transcribe would give it.
  std::string answer(const Example& ex, int64_t max_new_tokens);

  // Writes the adapter files `parts` belong to into `dir` (image.safetensors, video.safetensors,
  // speech.safetensors), atomically. Returns their paths.
  std::vector<std::string> save_adapters(const std::string& dir, const std::vector<Part>& parts);
  // Writes the model as the run leaves it (the LLM a text_model stage trained, and a Vision base's image parts) into
  // `dir` in the base's layout and torch_dtype: model.safetensors, and the base's config, tokenizer and
  // preprocessor files copied. Returns the directory.
  std::string save_model(const std::string& dir);
  // Writes the LLM alone as a Llama 3 text checkpoint (LlamaForCausalLM layout, its config and torch_dtype, the
  // embedding's first vocab_size rows; the tokenizer copied): the bare text model a text_model stage made, which
  // text-only prompts to the whole model must answer alike. Returns the directory.
  std::string save_text_model(const std::string& dir);

  MllamaForConditionalGeneration mllama{nullptr};
  LlamaForCausalLM text{nullptr};  // a Llama 3 text base
  SpeechModel speech{nullptr};

 private:
  torch::Tensor image_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets);
  torch::Tensor video_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets);
  torch::Tensor speech_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets);
  torch::Tensor text_batch_loss(const std::vector<const Example*>& batch, int64_t& n_targets);

  std::vector<Part> run_parts_;
  std::string base_dir_;
  Tokenizer tok_;
  BaseModelInfo base_info_;
  std::optional<media::MllamaImageProcessor> processor_;
};

// The next-token loss of a Llama 3.2 Vision model on captions of one image each, summed over the target tokens
// (their count added to `n_targets`): images as the processor packs them, tokens [B, S] holding each sample's
// <|image|>, targets [B, S] (kIgnoreTarget where nothing is learned). Shared with `bench train`.
torch::Tensor image_caption_loss_sum(MllamaForConditionalGenerationImpl& model, const media::MllamaImageInputs& images,
                                     const torch::Tensor& tokens, const torch::Tensor& targets, int64_t& n_targets);

// Token ids [B, S_max] (right-padded with `pad`) and targets [B, S_max] (padding ignored) of a batch.
std::pair<torch::Tensor, torch::Tensor> pad_batch(const std::vector<const Example*>& batch, int64_t pad);

}  // namespace llama_mm::train
