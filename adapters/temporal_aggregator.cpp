// adapters/temporal_aggregator.cpp: perceiver-resampler temporal aggregator (see temporal_aggregator.h).
// ref (building block): Flamingo (Alayrac et al. 2022) §2.1 and open_flamingo's PerceiverResampler, as
// summarised in paper-spec.md §1.2; no code is taken from them.
#include "adapters/temporal_aggregator.h"

#include "llm/config_json.h"

#include <cmath>

namespace llama_mm {

using nlohmann::json;

json TemporalAggregatorConfig::to_json() const {
  return {{"dim", dim},     {"aggregation", aggregation}, {"num_latents", num_latents}, {"depth", depth},
          {"heads", heads}, {"head_dim", head_dim},       {"ffn_mult", ffn_mult},       {"norm_eps", norm_eps}};
}

TemporalAggregatorConfig TemporalAggregatorConfig::from_json(const json& j, const std::string& origin) {
  config_json::check_known_keys(
      j, {"dim", "aggregation", "num_latents", "depth", "heads", "head_dim", "ffn_mult", "norm_eps"}, origin);
  auto positive = [&](const char* key) { return config_json::get_positive(j, key, origin, std::nullopt); };
  TemporalAggregatorConfig c;
  c.dim = positive("dim");
  c.aggregation = positive("aggregation");
  c.num_latents = positive("num_latents");
  c.depth = positive("depth");
  c.heads = positive("heads");
  c.head_dim = positive("head_dim");
  c.ffn_mult = positive("ffn_mult");
  c.norm_eps = config_json::get<double>(j, "norm_eps", origin, std::nullopt);
  if (!(c.norm_eps > 0)) config_json::fail(origin, "norm_eps", "must be positive");
  return c;
}

int64_t TemporalAggregatorConfig::n_params() const {
  const int64_t D = dim, I = heads * head_dim;
  const int64_t attn = 2 * 2 * D + 3 * D * I + I * D;
  const int64_t ffn = 2 * D + 2 * D * ffn_mult * D;
  return num_latents * D + aggregation * D + depth * (attn + ffn) + 2 * D;
}

PerceiverAttentionImpl::PerceiverAttentionImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype)
    : heads(cfg.heads), head_dim(cfg.head_dim) {
  const int64_t D = cfg.dim, I = cfg.heads * cfg.head_dim;
  norm_media = register_module("norm_media", LayerNorm(D, cfg.norm_eps, dtype));
  norm_latents = register_module("norm_latents", LayerNorm(D, cfg.norm_eps, dtype));
  q_proj = register_module("q_proj", Linear(D, I, false, dtype));
  k_proj = register_module("k_proj", Linear(D, I, false, dtype));
  v_proj = register_module("v_proj", Linear(D, I, false, dtype));
  o_proj = register_module("o_proj", Linear(I, D, false, dtype));
}

torch::Tensor PerceiverAttentionImpl::forward(const torch::Tensor& media, const torch::Tensor& latents) {
  const int64_t B = media.size(0), L = latents.size(1), H = heads, Dh = head_dim;
  auto h = norm_latents(latents);
  auto kv_in = torch::cat({norm_media(media), h}, 1);  // [B, N + L, D]
  const int64_t N = kv_in.size(1);
  auto q = q_proj(h).view({B, L, H, Dh}).transpose(1, 2);  // [B, H, L, Dh]
  auto k = k_proj(kv_in).view({B, N, H, Dh}).transpose(1, 2);
  auto v = v_proj(kv_in).view({B, N, H, Dh}).transpose(1, 2);
  // LibTorch's CPU bf16 GEMM is a scalar loop: the attention math runs in fp32 there, softmax always does.
  const bool widen = media.device().is_cpu() && media.scalar_type() != torch::kFloat32;
  if (widen) q = q.to(torch::kFloat32), k = k.to(torch::kFloat32), v = v.to(torch::kFloat32);
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  // One head at a time in query blocks whose scores stay under max_score_bytes (N reaches 32 frames x 6404
  // tokens): small temporaries are recycled by malloc instead of being mapped and page-faulted on every block.
  const int64_t rows = std::max<int64_t>(16, max_score_bytes / std::max<int64_t>(1, N * 4));
  std::vector<torch::Tensor> per_item;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<torch::Tensor> per_head;
    for (int64_t hd = 0; hd < H; ++hd) {
      auto qh = q[b][hd], kth = k[b][hd].t(), vh = v[b][hd];  // [L, Dh], [Dh, N], [N, Dh]
      std::vector<torch::Tensor> blocks;
      for (int64_t r0 = 0; r0 < L; r0 += rows) {
        auto scores = torch::matmul(qh.narrow(0, r0, std::min(rows, L - r0)), kth).mul(scale).to(torch::kFloat32);
        blocks.push_back(torch::matmul(torch::softmax(scores, -1).to(vh.scalar_type()), vh));
      }
      per_head.push_back(blocks.size() == 1 ? blocks[0] : torch::cat(blocks, 0));
    }
    per_item.push_back(torch::stack(per_head, 0));
  }
  auto out = torch::stack(per_item, 0).to(media.scalar_type());  // [B, H, L, Dh]
  return o_proj(out.transpose(1, 2).reshape({B, L, H * Dh}));
}

PerceiverFeedForwardImpl::PerceiverFeedForwardImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype) {
  norm = register_module("norm", LayerNorm(cfg.dim, cfg.norm_eps, dtype));
  up_proj = register_module("up_proj", Linear(cfg.dim, cfg.ffn_mult * cfg.dim, false, dtype));
  down_proj = register_module("down_proj", Linear(cfg.ffn_mult * cfg.dim, cfg.dim, false, dtype));
}

torch::Tensor PerceiverFeedForwardImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::gelu(up_proj(norm(x))));
}

PerceiverLayerImpl::PerceiverLayerImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype) {
  attn = register_module("attn", PerceiverAttention(cfg, dtype));
  ffn = register_module("ffn", PerceiverFeedForward(cfg, dtype));
}

torch::Tensor PerceiverLayerImpl::forward(const torch::Tensor& media, const torch::Tensor& latents) {
  auto h = latents + attn(media, latents);
  return h + ffn(h);
}

TemporalAggregatorImpl::TemporalAggregatorImpl(const TemporalAggregatorConfig& cfg, torch::Dtype dtype) : cfg_(cfg) {
  latents = register_parameter("latents", torch::empty({cfg.num_latents, cfg.dim}, torch::dtype(dtype)));
  frame_embedding = register_parameter("frame_embedding", torch::empty({cfg.aggregation, cfg.dim}, torch::dtype(dtype)));
  auto list = torch::nn::ModuleList();
  for (int64_t i = 0; i < cfg.depth; ++i) {
    layers.push_back(PerceiverLayer(cfg, dtype));
    list->push_back(layers.back());
  }
  register_module("layers", list);
  norm = register_module("norm", LayerNorm(cfg.dim, cfg.norm_eps, dtype));
}

torch::Tensor TemporalAggregatorImpl::resample(const torch::Tensor& groups) {
  const int64_t G = groups.size(0), n = groups.size(1), S = groups.size(2), D = groups.size(3);
  auto x = (groups + frame_embedding.narrow(0, 0, n).view({1, n, 1, D})).reshape({G, n * S, D});
  auto h = latents.unsqueeze(0).expand({G, cfg_.num_latents, D});
  for (auto& layer : layers) h = layer->forward(x, h);
  return norm(h);
}

torch::Tensor TemporalAggregatorImpl::forward(const torch::Tensor& frames) {
  TORCH_CHECK(frames.dim() == 3 && frames.size(2) == cfg_.dim, "temporal aggregator: frames must be [F, S, ",
              cfg_.dim, "], got ", frames.sizes());
  const int64_t F = frames.size(0), agg = cfg_.aggregation;
  TORCH_CHECK(F > 0, "temporal aggregator: no frames");
  const auto x = frames.to(latents.scalar_type());
  // One window at a time: a window's K/V already spans agg x S tokens (200k for 32 frames of 4 tiles), and
  // batching windows only multiplies the temporaries.
  std::vector<torch::Tensor> out;
  for (int64_t f0 = 0; f0 < F; f0 += agg) out.push_back(resample(x.narrow(0, f0, std::min(agg, F - f0)).unsqueeze(0)));
  return out.size() == 1 ? out[0] : torch::cat(out, 0);
}

}  // namespace llama_mm
