// train/best_rq.h: BEST-RQ self-supervised pre-training of the speech encoder (paper-spec.md §2.3; Chiu et al.
// 2022, with the Llama 3 settings):
//   - features normalised per mel bin with global statistics (the encoder's feature_mean / feature_std, computed
//     from the data at the stage's start and kept in the adapter file);
//   - targets: 4 stacked normalised mel frames (one per 40 ms encoder frame) projected by C frozen random matrices
//     (Xavier normal, n_mels·stack -> d) and matched to the nearest of K frozen random unit vectors by cosine;
//   - masking: spans of mask_span mel frames start at each frame with probability mask_prob; masked frames become
//     N(0, noise_std) in the normalised domain. An encoder frame is masked when any of its mel frames is;
//   - loss: a Linear(E -> K) head per codebook on the encoder output, cross-entropy on masked frames only, averaged
//     over the C codebooks (multi-softmax). Heads are trained with the encoder and dropped afterwards.
// Projections and codebooks come from the run's seed alone, so a resumed run rebuilds them exactly. Masks and noise
// are drawn per utterance from its own seed, so they do not depend on what else is in the batch (or on which rank).
#pragma once

#include "train/train_config.h"

#include <torch/torch.h>

namespace llama_mm::train {

class BestRqImpl : public torch::nn::Module {
 public:
  BestRqImpl(const BestRqConfig& cfg, int64_t n_mels, int64_t stack, int64_t encoder_dim, uint64_t seed);

  // Normalised features [B, T, M] with valid lengths [B] -> codebook ids [B, ceil(T / stack), C].
  torch::Tensor targets(const torch::Tensor& normalised) const;
  // Mel-frame mask [length] (true = masked) of one utterance, drawn from `gen`.
  torch::Tensor draw_mask(int64_t length, at::Generator gen) const;
  // Head logits [N, C, K] for encoder frames [N, E].
  torch::Tensor logits(const torch::Tensor& hidden) const;

  const BestRqConfig& config() const { return cfg_; }
  torch::Tensor projections;   // [C, M·stack, d] buffer, frozen
  torch::Tensor codebooks;     // [C, K, d] buffer, unit rows, frozen
  torch::Tensor head_weight;   // [C·K, E] parameter
  torch::Tensor head_bias;     // [C·K] parameter

 private:
  BestRqConfig cfg_;
  int64_t stack_;
};
TORCH_MODULE(BestRq);

}  // namespace llama_mm::train
