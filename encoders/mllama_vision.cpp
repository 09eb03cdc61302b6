// encoders/mllama_vision.cpp: Mllama vision encoder forward (mllama-spec.md §2.3, §2.4).
// ref: transformers v4.45.2 src/transformers/models/mllama/modeling_mllama.py (MllamaVisionModel, eager),
//      meta-llama/llama-models models/llama3/multimodal/encoder_utils.py, model.py (VisionEncoder).
#include "encoders/mllama_vision.h"

#include "llm/cpu_linear.h"

#include <cmath>
#include <limits>

namespace llama_mm {

namespace {
namespace F = torch::nn::functional;

// Temporaries stay under glibc's largest mmap threshold (32 MB) so they are recycled from the heap instead of
// being mapped, page-faulted and unmapped on every call (which made the encoder spend half its time in the
// kernel). Attention runs in blocks of query rows sized so that [N, H, rows, L] fp32 scores take ~16 MB; the
// row-wise MLP runs in row chunks whose [rows, intermediate] fp32 activations take ~16 MB.
constexpr int64_t kTempElements = int64_t(4) << 20;
int64_t rows_per_block(int64_t elements_per_row) { return std::max<int64_t>(16, kTempElements / elements_per_row); }

torch::Tensor new_param(torch::nn::Module& m, const std::string& name, at::IntArrayRef shape, torch::Dtype dtype) {
  return m.register_parameter(name, torch::empty(shape, torch::dtype(dtype)));
}
}  // namespace

LayerNormImpl::LayerNormImpl(int64_t dim, double eps_, torch::Dtype dtype) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}, torch::dtype(dtype)));
  bias = register_parameter("bias", torch::zeros({dim}, torch::dtype(dtype)));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  auto y = torch::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, weight.to(torch::kFloat32),
                             bias.to(torch::kFloat32), eps);
  return y.to(x.scalar_type());
}

VisionAttentionImpl::VisionAttentionImpl(const MllamaVisionConfig& cfg, torch::Dtype dtype)
    : n_head(cfg.attention_heads), head_dim(cfg.head_dim()) {
  const int64_t d = cfg.hidden_size;
  q_proj = register_module("q_proj", Linear(d, d, false, dtype));
  k_proj = register_module("k_proj", Linear(d, d, false, dtype));
  v_proj = register_module("v_proj", Linear(d, d, false, dtype));
  o_proj = register_module("o_proj", Linear(d, d, false, dtype));
}

torch::Tensor VisionAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& invalid) {
  const int64_t N = x.size(0), L = x.size(1), H = n_head, Dh = head_dim;
  auto q = q_proj(x).view({N, L, H, Dh}).transpose(1, 2);  // [N, H, L, Dh]
  auto k = k_proj(x).view({N, L, H, Dh}).transpose(1, 2);
  auto v = v_proj(x).view({N, L, H, Dh}).transpose(1, 2);
  // LibTorch's CPU bf16/f16 GEMM is a scalar loop: attention math runs in fp32 there.
  const bool widen = x.device().is_cpu() && x.scalar_type() != torch::kFloat32;
  const auto mm_dtype = widen ? torch::kFloat32 : x.scalar_type();
  q = q.to(mm_dtype), k = k.to(mm_dtype), v = v.to(mm_dtype);
  const double scale = std::sqrt(static_cast<double>(Dh));
  const float masked = std::numeric_limits<float>::lowest();  // finfo.min, as the reference adds
  auto out = torch::empty({N, H, L, Dh}, q.options());
  // One head at a time with tall query blocks: each GEMM packs K (Dh = 80 wide) once for many rows.
  const int64_t block = rows_per_block(N * L);
  for (int64_t h = 0; h < H; ++h) {
    auto qh = q.select(1, h), kth = k.select(1, h).transpose(1, 2), vh = v.select(1, h);  // [N, L, Dh], ...
    for (int64_t r0 = 0; r0 < L; r0 += block) {
      const int64_t n = std::min(block, L - r0);
      auto scores = (torch::matmul(qh.narrow(1, r0, n), kth) / scale).to(torch::kFloat32);  // [N, n, L]
      // score + m_q·m_k·min equals min (to fp32 rounding) wherever both tokens are invalid.
      scores.masked_fill_(invalid.narrow(1, r0, n).view({N, n, 1}).logical_and(invalid.view({N, 1, L})), masked);
      // HF rounds the probabilities to the model dtype; the fp32 CPU path keeps them (as the text attention does).
      out.select(1, h).narrow(1, r0, n).copy_(torch::matmul(torch::softmax(scores, -1).to(mm_dtype), vh));
    }
  }
  return o_proj(out.to(x.scalar_type()).transpose(1, 2).reshape({N, L, H * Dh}));
}

VisionMLPImpl::VisionMLPImpl(const MllamaVisionConfig& cfg, torch::Dtype dtype) {
  fc1 = register_module("fc1", Linear(cfg.hidden_size, cfg.intermediate_size, true, dtype));
  fc2 = register_module("fc2", Linear(cfg.intermediate_size, cfg.hidden_size, true, dtype));
}

torch::Tensor VisionMLPImpl::forward(const torch::Tensor& x) {
  // fc2(gelu_erf(fc1(x))), in row chunks: the MLP is row-wise, and chunks keep its activations small.
  auto flat = x.reshape({-1, x.size(-1)});
  const int64_t rows = flat.size(0), chunk = rows_per_block(fc1->weight.size(0));
  if (rows <= chunk) return fc2(torch::gelu(fc1(x)));
  auto out = torch::empty({rows, fc2->weight.size(0)}, x.options());
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    out.narrow(0, r0, n).copy_(fc2(torch::gelu(fc1(flat.narrow(0, r0, n)))));
  }
  return out.view(x.sizes());
}

VisionEncoderLayerImpl::VisionEncoderLayerImpl(const MllamaVisionConfig& cfg, bool gated, torch::Dtype dtype) {
  self_attn = register_module("self_attn", VisionAttention(cfg, dtype));
  mlp = register_module("mlp", VisionMLP(cfg, dtype));
  input_layernorm = register_module("input_layernorm", LayerNorm(cfg.hidden_size, cfg.norm_eps, dtype));
  post_attention_layernorm =
      register_module("post_attention_layernorm", LayerNorm(cfg.hidden_size, cfg.norm_eps, dtype));
  if (gated) {
    gate_attn = new_param(*this, "gate_attn", {1}, dtype);
    gate_ffn = new_param(*this, "gate_ffn", {1}, dtype);
  }
}

torch::Tensor VisionEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& invalid) {
  auto a = self_attn(input_layernorm(x), invalid);
  if (gate_attn.defined()) a = gate_attn.tanh() * a;
  auto h = x + a;
  auto m = mlp(post_attention_layernorm(h));
  if (gate_ffn.defined()) m = gate_ffn.tanh() * m;
  return h + m;
}

TileEmbeddingImpl::TileEmbeddingImpl(int64_t n_ids, int64_t n_tiles, int64_t per_tile, torch::Dtype dtype) {
  auto emb = std::make_shared<torch::nn::Module>("Embedding");
  weight = emb->register_parameter("weight", torch::empty({n_ids, n_tiles * per_tile}, torch::dtype(dtype)));
  register_module("embedding", emb);
  gate = new_param(*this, "gate", {1}, dtype);
}

torch::Tensor TileEmbeddingImpl::lookup(const torch::Tensor& ids) const { return torch::embedding(weight, ids); }

MllamaVisionModelImpl::MllamaVisionModelImpl(const MllamaVisionConfig& cfg, torch::Dtype dtype)
    : cfg_(cfg), dtype_(dtype) {
  const int64_t d = cfg.hidden_size, P = cfg.num_patches(), T = cfg.max_num_tiles,
                n_ids = cfg.max_aspect_ratio_id() + 1;
  patch_embedding_weight = register_module("patch_embedding", std::make_shared<torch::nn::Module>("Conv2d"))
                               ->register_parameter("weight", torch::empty({d, cfg.num_channels, cfg.patch_size,
                                                                            cfg.patch_size}, torch::dtype(dtype)));
  class_embedding = new_param(*this, "class_embedding", {d}, dtype);
  auto gpe = register_module("gated_positional_embedding", std::make_shared<torch::nn::Module>("PositionEmbedding"));
  position_embedding = new_param(*gpe, "embedding", {P, d}, dtype);
  position_gate = new_param(*gpe, "gate", {1}, dtype);
  tile_embedding_weight = gpe->register_module("tile_embedding", std::make_shared<torch::nn::Module>("Embedding"))
                              ->register_parameter("weight", torch::empty({n_ids, T * P * d}, torch::dtype(dtype)));
  pre_tile = register_module("pre_tile_positional_embedding", TileEmbedding(n_ids, T, d, dtype));
  post_tile = register_module("post_tile_positional_embedding", TileEmbedding(n_ids, T, d, dtype));
  layernorm_pre = register_module("layernorm_pre", LayerNorm(d, 1e-5, dtype));    // nn.LayerNorm default eps
  layernorm_post = register_module("layernorm_post", LayerNorm(d, 1e-5, dtype));
  auto add_encoder = [&](const std::string& name, int64_t n, bool gated, std::vector<VisionEncoderLayer>& out) {
    auto enc = register_module(name, std::make_shared<torch::nn::Module>("VisionEncoder"));
    auto list = torch::nn::ModuleList();
    for (int64_t i = 0; i < n; ++i) {
      out.push_back(VisionEncoderLayer(cfg, gated, dtype));
      list->push_back(out.back());
    }
    enc->register_module("layers", list);
  };
  add_encoder("transformer", cfg.num_hidden_layers, false, local_layers);
  add_encoder("global_transformer", cfg.num_global_layers, true, global_layers);
}

torch::Tensor MllamaVisionModelImpl::forward(const torch::Tensor& pixel_values, const torch::Tensor& aspect_ratio_ids,
                                             const torch::Tensor& aspect_ratio_mask, const ActivationHook& hook) {
  TORCH_CHECK(pixel_values.dim() == 6, "pixel_values must be [B, M, T, C, S, S], got ", pixel_values.sizes());
  const int64_t B = pixel_values.size(0), M = pixel_values.size(1), T = pixel_values.size(2);
  const int64_t C = cfg_.num_channels, S = cfg_.image_size, p = cfg_.patch_size, g = S / p;
  const int64_t D = cfg_.hidden_size, P = cfg_.num_patches(), Pp = P + cfg_.num_padding_patches(), N = B * M;
  TORCH_CHECK(T == cfg_.max_num_tiles && pixel_values.size(3) == C && pixel_values.size(4) == S &&
                  pixel_values.size(5) == S,
              "pixel_values ", pixel_values.sizes(), " do not match the vision config (T=", cfg_.max_num_tiles,
              ", C=", C, ", S=", S, ")");
  const auto device = patch_embedding_weight.device();
  auto ids = aspect_ratio_ids.reshape({N}).to(device, torch::kInt64);
  auto tile_valid = aspect_ratio_mask.reshape({N, T}).to(device, torch::kInt64) != 0;

  // 1. Patch embedding: Conv2d(stride p, no bias) as unfold + matmul; patch vector order (c, ky, kx).
  auto px = pixel_values.to(device, dtype_).reshape({N * T, C, g, p, g, p}).permute({0, 2, 4, 1, 3, 5});
  auto h = project(px.reshape({N * T, g * g, C * p * p}), patch_embedding_weight.view({D, C * p * p}), {});
  if (hook) hook("vision.patch_embeds", h.transpose(1, 2).reshape({N * T, D, g, g}));
  // 2. Pre-tile embedding on the patch tokens.
  h = h.view({N, T, g * g, D}) + pre_tile->gate.tanh() * pre_tile->lookup(ids).view({N, T, 1, D});
  if (hook) hook("vision.pre_tile", h);
  // 3. CLS token first in every tile (padding tiles included).
  h = torch::cat({class_embedding.view({1, 1, D}).expand({N * T, 1, D}), h.view({N * T, g * g, D})}, 1);
  // 4. Gated position embedding: (1 - tanh g)·pos + tanh g·tile_pos[ar_id].
  const auto gpos = position_gate.tanh();
  h = h.view({N, T, P, D}) + ((1 - gpos) * position_embedding).view({1, 1, P, D});
  h = h + gpos * torch::embedding(tile_embedding_weight, ids).view({N, T, P, D});
  if (hook) hook("vision.pos", h);
  h = layernorm_pre(h);
  if (hook) hook("vision.ln_pre", h);
  // 6. Zero-pad every tile to P' tokens; 7. invalid = padding tile or pad token.
  h = F::pad(h, F::PadFuncOptions({0, 0, 0, Pp - P})).view({N, T * Pp, D});
  auto pad_tok = torch::arange(Pp, torch::dtype(torch::kInt64).device(device)) >= P;  // [P']
  auto invalid = tile_valid.logical_not().view({N, T, 1}).logical_or(pad_tok.view({1, 1, Pp})).view({N, T * Pp});

  // 8. Local encoder, collecting the intermediate states (§2.4).
  const auto& idx = cfg_.intermediate_layers_indices;
  const bool input_sem = cfg_.intermediate_semantics == IntermediateSemantics::InputOfLayer;
  auto wanted = [&](int64_t i) { return std::find(idx.begin(), idx.end(), i) != idx.end(); };
  std::vector<torch::Tensor> states(idx.size());
  auto collect = [&](int64_t i, const torch::Tensor& x) {
    for (size_t k = 0; k < idx.size(); ++k)
      if (idx[k] == i) states[k] = x;
  };
  for (int64_t i = 0; i < static_cast<int64_t>(local_layers.size()); ++i) {
    if (input_sem && wanted(i)) collect(i, h);
    h = local_layers[i]->forward(h, invalid);
    if (!input_sem && wanted(i)) collect(i, h);
    if (hook) hook("vision.local." + std::to_string(i), h);
  }
  // 9-10. layernorm_post, post-tile embedding on every token (CLS and pads included).
  h = layernorm_post(h);
  if (hook) hook("vision.ln_post", h);
  h = h.view({N, T, Pp, D}) + post_tile->gate.tanh() * post_tile->lookup(ids).view({N, T, 1, D});
  if (hook) hook("vision.post_tile", h);
  h = h.view({N, T * Pp, D});
  // 11. Gated global encoder, same mask.
  for (size_t i = 0; i < global_layers.size(); ++i) {
    h = global_layers[i]->forward(h, invalid);
    if (hook) hook("vision.global." + std::to_string(i), h);
  }
  // 12-14. Unpad; intermediate features interleaved as f = d·K + k; concat after the global output.
  h = h.view({N, T, Pp, D}).narrow(2, 0, P);
  auto feats = torch::stack(states, -1).view({N, T, Pp, D * static_cast<int64_t>(idx.size())}).narrow(2, 0, P);
  return torch::cat({h, feats}, -1).reshape({B, M, T, P, cfg_.vision_output_dim});
}

int64_t MllamaVisionModelImpl::flops(int64_t n_images) const {
  const int64_t T = cfg_.max_num_tiles, D = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int64_t g = cfg_.patches_per_side(), L = T * (cfg_.num_patches() + cfg_.num_padding_patches());
  const int64_t patch = 2 * T * g * g * cfg_.num_channels * cfg_.patch_size * cfg_.patch_size * D;
  const int64_t per_layer = 2 * L * (4 * D * D + 2 * D * I) + 2 * 2 * L * L * D;  // projections, MLP, QKᵀ and PV
  return n_images * (patch + (cfg_.num_hidden_layers + cfg_.num_global_layers) * per_layer);
}

}  // namespace llama_mm
