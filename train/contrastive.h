// train/contrastive.h: contrastive image-text pre-training of the vision encoder, before the cross-attention
// adapters learn on it (the paper pre-trains its image encoder on image-text pairs, CLIP-style; Radford et al. 2021).
// Here the text tower is the run's frozen LLM, so the encoder learns what tells one caption from another:
//   - image embedding: the vision encoder's output (final and intermediate features) averaged over the valid tiles'
//     tokens, then a linear head;
//   - text embedding: the frozen LLM's final-norm hidden states averaged over the caption's tokens (the answer turn,
//     read without the image), then a linear head;
//   - both L2-normalised; logits = exp(logit_scale) · image · textᵀ over the batch, logit_scale learned (CLIP's
//     initial 1/0.07, at most 100);
//   - loss: the symmetric cross-entropy (image to text and text to image, averaged), where every pair with the same
//     caption counts as a match (a batch of generated captions often repeats one), the target spread evenly over them.
// The heads train with the encoder and are dropped afterwards, as BEST-RQ's are.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace llama_mm::train {

class ContrastiveHeadsImpl : public torch::nn::Module {
 public:
  ContrastiveHeadsImpl(int64_t image_dim, int64_t text_dim, int64_t embed_dim, uint64_t seed);

  // L2-normalised embeddings [B, E] of pooled image features [B, image_dim] and text features [B, text_dim].
  torch::Tensor embed_images(const torch::Tensor& pooled) const;
  torch::Tensor embed_texts(const torch::Tensor& pooled) const;

  torch::Tensor image_weight;  // [E, image_dim]
  torch::Tensor text_weight;   // [E, text_dim]
  torch::Tensor logit_scale;   // [1], log of the logits' scale
};
TORCH_MODULE(ContrastiveHeads);

// The summed symmetric loss of a batch of normalised embeddings [B, E]: Σ_b (CE_image→text(b) + CE_text→image(b)) / 2,
// where same[i][j] (bool [B, B], true on the diagonal) marks the pairs whose captions are equal.
torch::Tensor clip_loss_sum(const torch::Tensor& images, const torch::Tensor& texts, const torch::Tensor& scale_log,
                            const torch::Tensor& same);

// same[i][j] (bool [N, N]): whether captions i and j (their token ids) are equal.
torch::Tensor same_captions(const std::vector<std::vector<int64_t>>& captions);

// Share of images whose nearest text (cosine) is one with the same caption.
double retrieval_top1(const torch::Tensor& images, const torch::Tensor& texts, const torch::Tensor& same);

}  // namespace llama_mm::train
