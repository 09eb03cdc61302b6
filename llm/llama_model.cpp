// llm/llama_model.cpp: Llama 3.x decoder forward (mllama-spec.md §1.4).
// ref: transformers v4.45.2 src/transformers/models/llama/modeling_llama.py (eager attention path),
//      meta-llama/llama-models@a9c89c47 models/llama3/model.py.
#include "llm/llama_model.h"

#include "llm/cpu_linear.h"
#include "llm/decode_attention.h"
#include "llm/decode_ops.h"
#include "llm/error.h"
#include "llm/q8_linear.h"
#include "llm/rope.h"
#include "llm/safetensors.h"
#include "llm/weight_loader.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>

namespace llama_mm {

// ---- building blocks -------------------------------------------------------------------------

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias, torch::Dtype dtype) {
  weight = register_parameter("weight", torch::empty({out, in}, torch::dtype(dtype)));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}, torch::dtype(dtype)));
}

namespace {
bool is_cpu_bf16(const torch::Tensor& w) { return w.scalar_type() == torch::kBFloat16 && w.device().is_cpu(); }

// RoPE: fused for a decode step's few rows (llm/decode_ops.h), else the reference expression.
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  if (decode_ops_apply(x) && cos.scalar_type() == x.scalar_type() && cos.stride(-1) == 1 && sin.stride(-1) == 1)
    return rope_rows(x, cos, sin);
  return apply_rope(x, cos, sin);
}
}  // namespace

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  return is_q8() ? linear_q8_cpu(x, weight, weight_scale, bias) : project(x, weight, bias);
}

void LinearImpl::quantize_q8() {
  if (is_q8()) return;
  torch::NoGradGuard no_grad;
  auto q8 = llama_mm::quantize_q8(weight);
  // set_data keeps the registered parameter (and so parameters()) pointing at the int8 tensor.
  weight.set_requires_grad(false);
  weight.set_data(q8.q);
  weight_scale = register_buffer("weight_scale", q8.scales);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, torch::Dtype dtype) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}, torch::dtype(dtype)));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  if (decode_ops_apply(x) && weight.scalar_type() == x.scalar_type()) return rms_norm_rows(x, weight, eps);
  auto xf = x.to(torch::kFloat32);
  auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
}

KVCache::KVCache(const LlamaConfig& cfg, int64_t batch, int64_t n_ctx_, torch::Dtype dtype, torch::Device device)
    : n_ctx(n_ctx_) {
  auto opts = torch::dtype(dtype).device(device);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    k.push_back(torch::zeros({batch, cfg.num_key_value_heads, n_ctx, cfg.head_dim}, opts));
    v.push_back(torch::zeros({batch, cfg.num_key_value_heads, n_ctx, cfg.head_dim}, opts));
  }
}

// ---- attention --------------------------------------------------------------------------------

namespace {
// Whether llm/decode_attention can take this step: CPU with the fast kernels on, a bf16 or fp32 cache whose rows
// are contiguous (the cache itself or a view of it).
bool fused_decode_attention_applies(const torch::Tensor& q, const torch::Tensor& keys, const torch::Tensor& values) {
  const auto t = keys.scalar_type();
  return q.device().is_cpu() && cpu_fast_kernels() && (t == torch::kBFloat16 || t == torch::kFloat32) &&
         values.scalar_type() == t && keys.stride(3) == 1 && values.stride(3) == 1 &&
         keys.stride(2) == values.stride(2);
}
}  // namespace

LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& cfg, torch::Dtype dtype)
    : n_head(cfg.num_attention_heads), n_kv_head(cfg.num_key_value_heads), head_dim(cfg.head_dim) {
  const int64_t d = cfg.hidden_size;
  q_proj = register_module("q_proj", Linear(d, n_head * head_dim, cfg.attention_bias, dtype));
  k_proj = register_module("k_proj", Linear(d, n_kv_head * head_dim, cfg.attention_bias, dtype));
  v_proj = register_module("v_proj", Linear(d, n_kv_head * head_dim, cfg.attention_bias, dtype));
  o_proj = register_module("o_proj", Linear(n_head * head_dim, d, cfg.attention_bias, dtype));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                          torch::Tensor k_cache, torch::Tensor v_cache, int64_t pos,
                                          const torch::Tensor& key_mask) {
  const int64_t B = x.size(0), T = x.size(1), G = n_kv_head, R = n_head / n_kv_head, Dh = head_dim;
  auto q = rotate(q_proj(x).view({B, T, n_head, Dh}), cos, sin);  // [B, T, H, Dh]
  auto k = rotate(k_proj(x).view({B, T, G, Dh}), cos, sin);       // [B, T, G, Dh]
  auto v = v_proj(x).view({B, T, G, Dh});                         // [B, T, G, Dh]

  torch::Tensor keys, values;  // [B, G, L, Dh]
  if (k_cache.defined()) {
    k_cache.narrow(2, pos, T).copy_(k.transpose(1, 2));
    v_cache.narrow(2, pos, T).copy_(v.transpose(1, 2));
    keys = k_cache.narrow(2, 0, pos + T);
    values = v_cache.narrow(2, 0, pos + T);
  } else {
    keys = k.transpose(1, 2);
    values = v.transpose(1, 2);
  }
  return attend(q, keys, values, pos, key_mask, x.scalar_type());
}

torch::Tensor LlamaAttentionImpl::forward_rows(const torch::Tensor& x, const torch::Tensor& cos,
                                               const torch::Tensor& sin, torch::Tensor k_cache,
                                               torch::Tensor v_cache, const RowBatch& batch) {
  using torch::indexing::Slice;
  const int64_t B = x.size(0), G = n_kv_head, Dh = head_dim;
  TORCH_CHECK(x.size(1) == 1, "forward_rows takes one token per sequence");
  auto q = rotate(q_proj(x).view({B, 1, n_head, Dh}), cos, sin);  // [B, 1, H, Dh]
  auto k = rotate(k_proj(x).view({B, 1, G, Dh}), cos, sin);       // [B, 1, G, Dh]
  auto v = v_proj(x).view({B, 1, G, Dh});
  // Cache element [rows[b], g, positions[b], :] <- k[b, 0, g, :].
  k_cache.index_put_({batch.rows, Slice(), batch.positions}, k.select(1, 0));
  v_cache.index_put_({batch.rows, Slice(), batch.positions}, v.select(1, 0));
  auto keys = k_cache.narrow(2, 0, batch.n_keys), values = v_cache.narrow(2, 0, batch.n_keys);
  if (batch.first_row >= 0) {
    keys = keys.narrow(0, batch.first_row, B), values = values.narrow(0, batch.first_row, B);
  } else {
    keys = keys.index_select(0, batch.rows), values = values.index_select(0, batch.rows);
  }
  // Sequence b sees keys 0..positions[b]: the fused decode kernel takes that as its length.
  if (fused_decode_attention_applies(q, keys, values))
    return o_proj(decode_attention_cpu(q.view({B, n_head, Dh}), keys, values, batch.positions + 1)
                      .to(x.scalar_type())
                      .view({B, 1, n_head * Dh}));
  return attend(q, keys, values, 0, batch.key_mask, x.scalar_type());
}

torch::Tensor LlamaAttentionImpl::attend(const torch::Tensor& q, torch::Tensor keys, torch::Tensor values, int64_t pos,
                                         const torch::Tensor& key_mask, torch::ScalarType dtype) {
  const int64_t B = q.size(0), T = q.size(1), G = n_kv_head, R = n_head / n_kv_head, Dh = head_dim;
  const int64_t L = keys.size(2);
  // One new token per sequence, no padding, on CPU: the fused decode kernel (llm/decode_attention.h).
  if (T == 1 && !key_mask.defined() && fused_decode_attention_applies(q, keys, values))
    return o_proj(decode_attention_cpu(q.view({B, n_head, Dh}), keys, values).to(dtype).view({B, 1, n_head * Dh}));
  // GQA without copying K/V: query head h = g·R + r uses kv head g, so group the R query heads of each
  // kv head along the row axis: [B, T, H, Dh] -> [B, G, R·T, Dh].
  auto qg = q.view({B, T, G, R, Dh}).permute({0, 2, 3, 1, 4}).reshape({B, G, R * T, Dh});
  // LibTorch's CPU bf16/f16 GEMM is a scalar loop: attention math runs in fp32 there (more exact, too).
  const bool widen = q.device().is_cpu() && dtype != torch::kFloat32;
  if (widen) {
    qg = qg.to(torch::kFloat32);
    keys = keys.to(torch::kFloat32);
    values = values.to(torch::kFloat32);
  }
  // HF eager: matmul in the model dtype, divided (not multiplied) by √Dh.
  auto scores = torch::matmul(qg, keys.transpose(2, 3)) / std::sqrt(static_cast<double>(Dh));  // [B, G, R·T, L]
  scores = scores.to(torch::kFloat32).view({B, G, R, T, L});
  if (T > 1) {
    // Query t sits at position pos + t and sees keys [0, pos + t].
    auto qpos = torch::arange(pos, pos + T, torch::kInt64).unsqueeze(1);  // [T, 1]
    auto kpos = torch::arange(L, torch::kInt64).unsqueeze(0);             // [1, L]
    scores.masked_fill_((kpos > qpos).to(q.device()), -std::numeric_limits<float>::infinity());  // fresh tensor
  }
  if (key_mask.defined())  // finfo.min, not -inf: a padding query that sees only padding stays finite
    scores.masked_fill_(key_mask.logical_not().view({B, 1, 1, 1, L}), std::numeric_limits<float>::lowest());
  auto probs = torch::softmax(scores, -1).to(widen ? torch::kFloat32 : dtype).view({B, G, R * T, L});
  auto out = torch::matmul(probs, values).to(dtype);                                        // [B, G, R·T, Dh]
  out = out.view({B, G, R, T, Dh}).permute({0, 3, 1, 2, 4}).reshape({B, T, n_head * Dh});  // [B, T, H·Dh]
  return o_proj(out);                                                                       // [B, T, D]
}

// ---- MLP, decoder layer, model ----------------------------------------------------------------

LlamaMLPImpl::LlamaMLPImpl(const LlamaConfig& cfg, torch::Dtype dtype) {
  const int64_t d = cfg.hidden_size, i = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", Linear(d, i, cfg.mlp_bias, dtype));
  up_proj = register_module("up_proj", Linear(d, i, cfg.mlp_bias, dtype));
  down_proj = register_module("down_proj", Linear(i, d, cfg.mlp_bias, dtype));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x) {
  auto gate = gate_proj(x), up = up_proj(x);  // [B, T, I]
  return down_proj(decode_ops_apply(gate) ? silu_mul_rows(gate, up) : torch::silu(gate) * up);  // [B, T, D]
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaConfig& cfg, torch::Dtype dtype) {
  self_attn = register_module("self_attn", LlamaAttention(cfg, dtype));
  mlp = register_module("mlp", LlamaMLP(cfg, dtype));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& h, const torch::Tensor& cos,
                                             const torch::Tensor& sin, torch::Tensor k_cache,
                                             torch::Tensor v_cache, int64_t pos, const torch::Tensor& key_mask) {
  auto x = h + self_attn(input_layernorm(h), cos, sin, k_cache, v_cache, pos, key_mask);
  return x + mlp(post_attention_layernorm(x));
}

torch::Tensor LlamaDecoderLayerImpl::forward_rows(const torch::Tensor& h, const torch::Tensor& cos,
                                                  const torch::Tensor& sin, torch::Tensor k_cache,
                                                  torch::Tensor v_cache, const RowBatch& batch) {
  auto x = h + self_attn->forward_rows(input_layernorm(h), cos, sin, k_cache, v_cache, batch);
  return x + mlp(post_attention_layernorm(x));
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& cfg, torch::Dtype dtype, int64_t n_embed_rows) {
  if (n_embed_rows < cfg.vocab_size) n_embed_rows = cfg.vocab_size;
  // A bare parameter under a child named "embed_tokens" keeps the key "embed_tokens.weight".
  auto embed = std::make_shared<torch::nn::Module>("Embedding");
  embed_tokens_weight =
      embed->register_parameter("weight", torch::empty({n_embed_rows, cfg.hidden_size}, torch::dtype(dtype)));
  register_module("embed_tokens", embed);
  auto list = torch::nn::ModuleList();
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    layers.push_back(LlamaDecoderLayer(cfg, dtype));
    list->push_back(layers.back());
  }
  register_module("layers", list);
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype));
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(const LlamaConfig& cfg, torch::Dtype dtype, int64_t n_embed_rows)
    : cfg_(cfg), dtype_(dtype) {
  model = register_module("model", LlamaModel(cfg, dtype, n_embed_rows));
  if (!cfg.tie_word_embeddings)
    lm_head = register_module("lm_head", Linear(cfg.hidden_size, cfg.vocab_size, false, dtype));
  inv_freq_ = rope_inv_freq(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling);
}

torch::Tensor LlamaForCausalLMImpl::lm_head_weight() const {
  // Tied: the first vocab_size rows (the table may carry extra adapter rows).
  return lm_head ? lm_head->weight : model->embed_tokens_weight.narrow(0, 0, cfg_.vocab_size);
}

std::pair<torch::Tensor, torch::Tensor> LlamaForCausalLMImpl::rope(int64_t n_pos, torch::Device device) {
  std::lock_guard<std::mutex> lock(rope_mutex_);
  if (cos_.defined() && cos_.size(0) >= n_pos && cos_.device() == device) return {cos_, sin_};
  // Grow geometrically so long generations rebuild the table O(log n) times.
  int64_t n = std::max<int64_t>(n_pos, cos_.defined() ? 2 * cos_.size(0) : 256);
  auto t = rope_table(inv_freq_, n);
  cos_ = t.cos.to(device, dtype_);  // HF casts cos/sin to the activation dtype before use
  sin_ = t.sin.to(device, dtype_);
  return {cos_, sin_};
}

torch::Tensor LlamaForCausalLMImpl::embed(const torch::Tensor& tokens) const {
  TORCH_CHECK(tokens.dim() == 2, "tokens must be [B, T], got ", tokens.sizes());
  return torch::embedding(model->embed_tokens_weight, tokens);  // [B, T, D]
}

torch::Tensor LlamaForCausalLMImpl::hidden(const torch::Tensor& tokens, KVCache* cache, const ActivationHook& hook) {
  ForwardOptions opts;
  opts.hook = hook;
  return hidden_from_embeds(embed(tokens), cache, opts);
}

torch::Tensor LlamaForCausalLMImpl::hidden_from_embeds(torch::Tensor h, KVCache* cache, const ForwardOptions& opts) {
  TORCH_CHECK(h.dim() == 3, "embeddings must be [B, T, D], got ", h.sizes());
  const int64_t T = h.size(1);
  const int64_t pos = cache ? cache->n_past : 0;
  if (cache && pos + T > cache->n_ctx)
    throw Error(ErrorKind::Runtime, "context overflow: " + std::to_string(pos + T) + " positions needed, the KV cache holds " +
                                        std::to_string(cache->n_ctx));
  torch::Tensor cos, sin;  // [T, Dh], or [B, T, Dh] with per-row positions
  if (opts.position_ids.defined()) {
    auto ids = opts.position_ids.to(h.device(), torch::kInt64);
    TORCH_CHECK(ids.dim() == 2 && ids.size(0) == h.size(0) && ids.size(1) == T, "position_ids must be [B, T]");
    const auto [cos_all, sin_all] = rope(ids.max().item<int64_t>() + 1, h.device());
    cos = cos_all.index_select(0, ids.flatten()).view({h.size(0), T, -1});
    sin = sin_all.index_select(0, ids.flatten()).view({h.size(0), T, -1});
  } else {
    const auto [cos_all, sin_all] = rope(pos + T, h.device());
    cos = cos_all.narrow(0, pos, T), sin = sin_all.narrow(0, pos, T);
  }
  torch::Tensor key_mask;
  if (opts.attention_mask.defined()) {
    key_mask = opts.attention_mask.to(h.device()) != 0;
    TORCH_CHECK(key_mask.dim() == 2 && key_mask.size(0) == h.size(0) && key_mask.size(1) == pos + T,
                "attention_mask must be [B, n_past + T]");
  }

  const auto& hook = opts.hook;
  if (hook) hook("embed", h);
  const int64_t n_layers = static_cast<int64_t>(model->layers.size());
  for (int64_t i = 0; i < n_layers; ++i) {
    if (opts.interleave) h = opts.interleave(i, h);
    torch::Tensor kc, vc;
    if (cache) kc = cache->k[i], vc = cache->v[i];
    h = model->layers[i]->forward(h, cos, sin, kc, vc, pos, key_mask);
    if (hook) hook("layer." + std::to_string(i) + ".out", h);
  }
  if (opts.interleave) h = opts.interleave(n_layers, h);
  h = model->norm(h);
  if (hook) hook("norm", h);
  if (cache) cache->n_past += T;
  return h;
}

torch::Tensor LlamaForCausalLMImpl::hidden_rows(torch::Tensor h, KVCache& cache, const std::vector<int64_t>& rows,
                                                const std::vector<int64_t>& positions, const LayerInterleave& interleave) {
  const int64_t B = static_cast<int64_t>(rows.size());
  TORCH_CHECK(h.dim() == 3 && h.size(0) == B && h.size(1) == 1 && positions.size() == rows.size(),
              "hidden_rows takes h [B, 1, D] with B rows and positions");
  const int64_t batch_rows = cache.k.empty() ? 0 : cache.k[0].size(0);
  RowBatch batch;
  batch.first_row = rows.empty() ? -1 : rows[0];
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(rows[b] >= 0 && rows[b] < batch_rows, "cache row ", rows[b], " outside [0, ", batch_rows, ")");
    if (positions[b] < 0 || positions[b] >= cache.n_ctx)
      throw Error(ErrorKind::Runtime, "context overflow: position " + std::to_string(positions[b]) +
                                          " is outside the KV cache of " + std::to_string(cache.n_ctx));
    if (rows[b] != rows[0] + b) batch.first_row = -1;
    batch.n_keys = std::max(batch.n_keys, positions[b] + 1);
  }
  const auto device = h.device();
  batch.rows = torch::tensor(rows, torch::kInt64).to(device);
  batch.positions = torch::tensor(positions, torch::kInt64).to(device);
  batch.key_mask = torch::arange(batch.n_keys, batch.positions.options()).unsqueeze(0) <= batch.positions.unsqueeze(1);
  const auto [cos_all, sin_all] = rope(batch.n_keys, device);
  auto cos = cos_all.index_select(0, batch.positions).unsqueeze(1);  // [B, 1, Dh]
  auto sin = sin_all.index_select(0, batch.positions).unsqueeze(1);
  const int64_t n_layers = static_cast<int64_t>(model->layers.size());
  for (int64_t i = 0; i < n_layers; ++i) {
    if (interleave) h = interleave(i, h);
    h = model->layers[i]->forward_rows(h, cos, sin, cache.k[i], cache.v[i], batch);
  }
  if (interleave) h = interleave(n_layers, h);
  return model->norm(h);
}

torch::Tensor LlamaForCausalLMImpl::logits(const torch::Tensor& hidden_states, bool all_logits) const {
  auto h = all_logits ? hidden_states : hidden_states.narrow(1, hidden_states.size(1) - 1, 1);
  const LinearImpl* q8 = q8_output_ ? q8_output_.get() : (lm_head && lm_head->is_q8()) ? lm_head.get() : nullptr;
  if (q8) return linear_q8_cpu(h.to(torch::kFloat32), q8->weight, q8->weight_scale, {});
  auto w = lm_head_weight();
  // On CPU the bf16 kernel takes fp32 input and returns unrounded fp32 logits.
  return project(is_cpu_bf16(w) ? h.to(torch::kFloat32) : h, w, {}).to(torch::kFloat32);  // [B, T|1, V]
}

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& tokens, KVCache* cache, const ForwardOptions& opts) {
  return logits(hidden_from_embeds(embed(tokens), cache, opts), opts.all_logits);
}

int64_t LlamaForCausalLMImpl::decode_weight_bytes() const {
  auto size = [](const torch::Tensor& t) { return t.numel() * t.element_size(); };
  int64_t bytes = 0;
  for (const auto& l : model->layers) {
    for (const auto& p : l->parameters()) bytes += size(p);
    for (const auto& b : l->buffers()) bytes += size(b);  // q8 scales
  }
  bytes += size(model->norm->weight);
  if (q8_output_) return bytes + size(q8_output_->weight) + size(q8_output_->weight_scale);
  if (lm_head && lm_head->is_q8()) return bytes + size(lm_head->weight) + size(lm_head->weight_scale);
  return bytes + size(lm_head_weight());
}

int64_t LlamaForCausalLMImpl::quantize_q8() {
  TORCH_CHECK(lm_head_weight().device().is_cpu(), "quantize_q8: q8 kernels are CPU-only");
  int64_t n = 0;
  auto quantize = [&n](LinearImpl& l) {
    if (!l.is_q8() && l.weight.size(1) % kQ8Group == 0) {
      l.quantize_q8();
      ++n;
    }
  };
  for (auto& layer : model->layers)
    for (auto& m : layer->modules(/*include_self=*/false))
      if (auto* l = dynamic_cast<LinearImpl*>(m.get())) quantize(*l);
  if (lm_head) {
    quantize(*lm_head);
  } else if (!q8_output_ && cfg_.hidden_size % kQ8Group == 0) {
    q8_output_ = Linear(cfg_.hidden_size, 1, false, torch::kBFloat16);  // placeholder weight, replaced below
    auto q8 = llama_mm::quantize_q8(lm_head_weight());
    q8_output_->weight.set_requires_grad(false);
    q8_output_->weight.set_data(q8.q);
    q8_output_->weight_scale = q8.scales;
    ++n;
  }
  return n;
}

// ---- dtype names, loading, random init ----------------------------------------------------------

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "f16" || name == "float16" || name == "fp16") return torch::kFloat16;
  throw Error(ErrorKind::Usage, "unknown dtype '" + name + "' (expected f32, bf16, f16 or q8)");
}

WeightFormat parse_weight_format(const std::string& name) {
  if (name.empty()) return {};
  if (name == "q8" || name == "q8_0" || name == "int8") return {torch::kBFloat16, true};
  return {parse_dtype(name), false};
}

std::string dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return std::string(c10::toString(dtype));
  }
}

LlamaForCausalLM load_llama(const std::string& dir, std::optional<torch::Dtype> dtype) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw Error(ErrorKind::ModelLoad, dir + ": model directory not found");
  auto cfg = LlamaConfig::from_file(dir);
  torch::Dtype dt = dtype ? *dtype : parse_dtype(cfg.torch_dtype);
  SafetensorsCheckpoint ckpt(dir);
  LlamaForCausalLM m(cfg, dt);
  load_weights_strict(*m, ckpt, dir);
  m->eval();
  return m;
}

at::Generator seeded_generator(torch::Device device, uint64_t seed) {
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

void init_random_weights(LlamaForCausalLMImpl& m, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = seeded_generator(m.lm_head_weight().device(), seed);
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    auto& t = p.value();
    auto f32 = torch::empty(t.sizes(), torch::dtype(torch::kFloat32).device(t.device()));
    if (name.find("norm") != std::string::npos) {
      f32.normal_(0.0, 0.1, gen).add_(1.0);
    } else if (name.find("embed_tokens") != std::string::npos) {
      f32.normal_(0.0, 0.25, gen);
    } else if (t.dim() == 2) {
      // Output projections get a larger scale so a token's own embedding does not dominate its logits
      // (with tied embeddings that makes greedy decoding repeat one token forever).
      const bool out_proj = name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
      f32.normal_(0.0, (out_proj ? 2.0 : 1.0) / std::sqrt(static_cast<double>(t.size(1))), gen);
    } else {
      f32.normal_(0.0, 0.02, gen);  // biases
    }
    t.copy_(f32);
  }
}

}  // namespace llama_mm
