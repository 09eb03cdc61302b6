// adapters/cross_attention_mask.cpp: cross-attention masks (mllama-spec.md §3.3, §3.4).
// ref: transformers v4.45.2 models/mllama/processing_mllama.py (get_cross_attention_token_mask,
//      convert_sparse_cross_attention_mask_to_dense), modeling_mllama.py (_prepare_cross_attention_mask).
#include "adapters/cross_attention_mask.h"

#include <algorithm>
#include <limits>

namespace llama_mm {

std::vector<std::pair<int64_t, int64_t>> image_token_spans(const std::vector<int64_t>& ids, int64_t image_token) {
  std::vector<int64_t> pos;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == image_token) pos.push_back(static_cast<int64_t>(i));
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (size_t k = 0; k < pos.size(); ++k)
    spans.emplace_back(pos[k], k + 1 < pos.size() ? pos[k + 1] : (pos.size() == 1 ? -1 : int64_t(ids.size())));
  // A span ending right at the next image token (adjacent images) extends to where the following one ends.
  int64_t last_end = spans.empty() ? 0 : spans.back().second;
  for (size_t k = spans.size(); k-- > 0;) {
    if (spans[k].first == spans[k].second - 1) spans[k].second = last_end;
    last_end = spans[k].second;
  }
  return spans;
}

torch::Tensor dense_cross_attention_mask(const std::vector<std::vector<std::pair<int64_t, int64_t>>>& spans,
                                         const std::vector<std::vector<int64_t>>& num_tiles, int64_t max_num_tiles,
                                         int64_t length) {
  const int64_t B = static_cast<int64_t>(spans.size());
  int64_t M = 0;
  for (const auto& s : spans) M = std::max<int64_t>(M, static_cast<int64_t>(s.size()));
  auto mask = torch::zeros({B, length, M, max_num_tiles}, torch::kInt64);
  auto a = mask.accessor<int64_t, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (size_t m = 0; m < spans[b].size(); ++m) {
      auto [start, end] = spans[b][m];
      end = end == -1 ? length : std::min(end, length);
      const int64_t tiles = b < static_cast<int64_t>(num_tiles.size()) && m < num_tiles[b].size() ? num_tiles[b][m] : 0;
      for (int64_t s = std::max<int64_t>(start, 0); s < end; ++s)
        for (int64_t t = 0; t < std::min(tiles, max_num_tiles); ++t) a[b][s][m][t] = 1;
    }
  return mask;
}

CrossAttentionMask prepare_cross_attention_mask(const torch::Tensor& dense, int64_t tokens_per_tile) {
  const int64_t B = dense.size(0), S = dense.size(1);
  auto visible = dense.to(torch::kBool).repeat_interleave(tokens_per_tile, 3).reshape({B, 1, S, -1});
  CrossAttentionMask out;
  out.row = visible.any(-1, /*keepdim=*/true).to(torch::kFloat32);  // [B, 1, S, 1]
  out.additive = torch::zeros(visible.sizes(), torch::kFloat32)
                     .masked_fill_(visible.logical_not().logical_and(out.row.to(torch::kBool)),
                                   std::numeric_limits<float>::lowest());
  return out;
}

}  // namespace llama_mm
