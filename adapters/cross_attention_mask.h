// adapters/cross_attention_mask.h: which text tokens see which images (mllama-spec.md §3.3, §3.4), built as
// transformers' processing_mllama and _prepare_cross_attention_mask build it.
//
// Each <|image|> is visible from its own token up to the next <|image|> (exclusive) or the end; a run of
// adjacent <|image|> tokens is visible to all the text after the run. Tokens before the first image see none.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace llama_mm {

// [start, end) token span per image token, in order; end = -1 means "to the end of the sequence".
std::vector<std::pair<int64_t, int64_t>> image_token_spans(const std::vector<int64_t>& ids, int64_t image_token);

// Dense 0/1 int64 mask [B, length, M, T]: mask[b, s, m, t] = 1 when token s of sample b sees tile t of its
// image m (t < num_tiles[b][m]). M = the largest image count, T = max_num_tiles.
torch::Tensor dense_cross_attention_mask(const std::vector<std::vector<std::pair<int64_t, int64_t>>>& spans,
                                         const std::vector<std::vector<int64_t>>& num_tiles, int64_t max_num_tiles,
                                         int64_t length);

// The additive form the attention uses, for the rows of the tokens at hand.
struct CrossAttentionMask {
  torch::Tensor additive;  // [B, 1, S, M·T·P] float32: 0 where visible, finfo(float32).min elsewhere;
                           // rows that see nothing are all 0 (uniform attention, as the reference does)
  torch::Tensor row;       // [B, 1, S, 1] float32: 1 when the token sees at least one image token, else 0
};

// From the dense mask [B, S, M, T] and P tokens per tile.
CrossAttentionMask prepare_cross_attention_mask(const torch::Tensor& dense, int64_t tokens_per_tile);

}  // namespace llama_mm
