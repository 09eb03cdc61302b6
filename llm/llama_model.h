// llm/llama_model.h: the Llama 3.x decoder (LlamaForCausalLM, mllama-spec.md §1.4) in LibTorch.
//
// Shape legend: B batch, T new tokens, L attended positions (cache length), D hidden_size,
// H query heads, G kv heads, R = H/G, Dh head_dim, V vocab, I intermediate_size.
//
// Module names equal Hugging Face's state-dict keys ("model.layers.3.self_attn.q_proj.weight"), so
// weights load name for name. RMSNorm and softmax run in fp32; weights and activations are in the model
// dtype (fp32 or bf16). Parameters are allocated uninitialised: load a checkpoint or call
// init_random_weights().
// Thread-safety: forward() is not re-entrant on one KVCache; distinct caches may run concurrently.
#pragma once

#include "llm/llama_config.h"

#include <torch/torch.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace llama_mm {

// nn.Linear without nn::Linear's initialisation pass (which costs seconds at 8B): y = x·Wᵀ (+ b).
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // [..., in] -> [..., out]
  // Replaces the weight by its q8 form (llm/q8_linear.h): weight becomes int8 [out, in] in place, and the fp16
  // group scales are registered as the buffer "weight_scale". Inference only; in_features % 32 == 0.
  void quantize_q8();
  bool is_q8() const { return weight.scalar_type() == torch::kInt8; }
  torch::Tensor weight, bias;  // [out, in], [out] or undefined
  torch::Tensor weight_scale;  // q8 only: fp16 [out, in / 32]
};
TORCH_MODULE(Linear);

// RMSNorm: x / sqrt(mean(x²) + eps) in fp32, cast back, times weight (HF and Meta order).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [D]
  double eps;
};
TORCH_MODULE(RMSNorm);

// Preallocated per-layer key/value cache, keys stored after RoPE: [B, G, n_ctx, Dh] each.
struct KVCache {
  KVCache() = default;
  KVCache(const LlamaConfig& cfg, int64_t batch, int64_t n_ctx, torch::Dtype dtype, torch::Device device);
  std::vector<torch::Tensor> k, v;
  int64_t n_ctx = 0;
  int64_t n_past = 0;  // positions filled so far (advanced by LlamaForCausalLM::forward)
};

// One decode step of several sequences that share a KVCache, one row each (continuous batching): sequence b is
// cache row rows[b] and its new token sits at positions[b]; it sees the keys [0, positions[b]] of its row.
struct RowBatch {
  torch::Tensor rows, positions;  // [B] int64, on the model's device
  torch::Tensor key_mask;         // [B, n_keys] bool: key l <= positions[b]
  int64_t first_row = -1;         // >= 0 when rows are first_row, first_row + 1, ... (read without a copy)
  int64_t n_keys = 0;             // max(positions) + 1
};

// Named intermediate activations ("embed", "layer.N.out", "norm") for dumping and diffing; off by default.
using ActivationHook = std::function<void(const std::string& name, const torch::Tensor& value)>;

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const LlamaConfig& cfg, torch::Dtype dtype);
  // x [B, T, D]; cos/sin [T, Dh] in x's dtype; k_cache/v_cache [B, G, n_ctx, Dh] or undefined (no cache);
  // pos = cache slot of x[:, 0]; causal over the cache and the new tokens. key_mask [B, pos + T] bool (true =
  // a real token) masks padding keys with finfo.min as transformers does; undefined: no padding.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        torch::Tensor k_cache, torch::Tensor v_cache, int64_t pos, const torch::Tensor& key_mask = {});
  // x [B, 1, D], cos/sin [B, 1, Dh]: writes each sequence's key/value at its row and position, then attends.
  torch::Tensor forward_rows(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                             torch::Tensor k_cache, torch::Tensor v_cache, const RowBatch& batch);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t n_head, n_kv_head, head_dim;

 private:
  // Queries q [B, T, H, Dh] (the first at position pos) over keys/values [B, G, L, Dh]: causal when T > 1,
  // key_mask [B, L] hides keys. Returns o_proj of the result, [B, T, D].
  torch::Tensor attend(const torch::Tensor& q, torch::Tensor keys, torch::Tensor values, int64_t pos,
                       const torch::Tensor& key_mask, torch::ScalarType dtype);
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const LlamaConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) ⊙ up(x)): [B, T, D]
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const LlamaConfig& cfg, torch::Dtype dtype);
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& cos, const torch::Tensor& sin,
                        torch::Tensor k_cache, torch::Tensor v_cache, int64_t pos, const torch::Tensor& key_mask = {});
  torch::Tensor forward_rows(const torch::Tensor& h, const torch::Tensor& cos, const torch::Tensor& sin,
                             torch::Tensor k_cache, torch::Tensor v_cache, const RowBatch& batch);
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// "model.*": embeddings, decoder layers and the final norm. The embedding table may have more rows than
// the vocabulary (n_embed_rows; Mllama appends 8 learnable rows, the first being <|image|>).
class LlamaModelImpl : public torch::nn::Module {
 public:
  LlamaModelImpl(const LlamaConfig& cfg, torch::Dtype dtype, int64_t n_embed_rows = 0);
  torch::Tensor embed_tokens_weight;  // [V, D], registered as "embed_tokens.weight"
  std::vector<LlamaDecoderLayer> layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// Runs before decoder layer i (i = n_layers: after the last one, before the final norm) and returns the
// new hidden state: how adapters (Mllama cross-attention layers) interleave with the frozen layers.
using LayerInterleave = std::function<torch::Tensor(int64_t layer, const torch::Tensor& h)>;

struct ForwardOptions {
  bool all_logits = false;     // logits for every position; otherwise only the last (prefill needs no more)
  ActivationHook hook;         // named activations, for parity tests and tools/dump
  LayerInterleave interleave;  // adapter layers between the frozen ones; none by default
  // Batches with (left) padding, as transformers takes them: attention_mask [B, n_past + T] (1 = real token)
  // and position_ids [B, T]. Undefined: no padding, positions n_past.. for every row.
  torch::Tensor attention_mask, position_ids;
};

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  LlamaForCausalLMImpl(const LlamaConfig& cfg, torch::Dtype dtype, int64_t n_embed_rows = 0);

  // tokens [B, T] int64. With a cache, positions continue at cache->n_past and the cache advances by T;
  // without one the call is a full causal forward from position 0. Returns fp32 logits
  // [B, T, V] (all_logits) or [B, 1, V].
  torch::Tensor forward(const torch::Tensor& tokens, KVCache* cache = nullptr, const ForwardOptions& opts = {});
  // Final-norm hidden states [B, T, D] (shared by forward and embedding users).
  torch::Tensor hidden(const torch::Tensor& tokens, KVCache* cache, const ActivationHook& hook = {});
  // The same from input embeddings [B, T, D] (token embeddings, possibly with adapter embeddings spliced in).
  torch::Tensor hidden_from_embeds(torch::Tensor h, KVCache* cache, const ForwardOptions& opts = {});
  // One new token for each of several sequences in a shared cache (RowBatch): h [B, 1, D] embeddings, sequence b
  // at cache row rows[b] and position positions[b]. Returns final-norm hidden states [B, 1, D]; the cache's
  // n_past is left alone (the caller keeps one per row).
  torch::Tensor hidden_rows(torch::Tensor h, KVCache& cache, const std::vector<int64_t>& rows,
                            const std::vector<int64_t>& positions, const LayerInterleave& interleave = {});
  torch::Tensor embed(const torch::Tensor& tokens) const;  // [B, T] int64 -> [B, T, D]
  // fp32 logits [B, T, V] of final-norm hidden states (only the last position unless all_logits).
  torch::Tensor logits(const torch::Tensor& h, bool all_logits) const;
  torch::Tensor lm_head_weight() const;  // [V, D]: lm_head.weight, or embed_tokens.weight when tied

  const LlamaConfig& config() const { return cfg_; }
  torch::Dtype dtype() const { return dtype_; }
  // Sum of the bytes of every weight a single decode step reads (all layers + lm_head).
  int64_t decode_weight_bytes() const;
  // Weight-only int8 for CPU decode (`--dtype q8`): every decoder-layer projection and the output projection
  // become q8 (a tied output gets its own q8 copy; the embedding table stays as it is for lookups). Layers whose
  // in_features is not a multiple of 32 stay unquantized. Returns the number of matrices quantized.
  int64_t quantize_q8();
  bool is_q8() const { return static_cast<bool>(q8_output_) || (lm_head && lm_head->is_q8()); }

  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  // RoPE tables (cos, sin) covering at least n_pos positions, grown on demand (fp32 master copy + dtype copy).
  // Thread-safe: concurrent generations (the server's slots) share the model.
  std::pair<torch::Tensor, torch::Tensor> rope(int64_t n_pos, torch::Device device);
  std::mutex rope_mutex_;
  LlamaConfig cfg_;
  torch::Dtype dtype_;
  torch::Tensor inv_freq_, cos_, sin_;
  Linear q8_output_{nullptr};  // q8 copy of a tied output projection (not part of the state dict)
};
TORCH_MODULE(LlamaForCausalLM);

torch::Dtype parse_dtype(const std::string& name);  // "f32"/"float32", "bf16"/"bfloat16", "f16"/"float16"
// A --dtype value: a compute dtype, or "q8" (bf16 model whose frozen LLM projections are then quantized, see
// LlamaForCausalLMImpl::quantize_q8). Empty: the checkpoint's dtype.
struct WeightFormat {
  std::optional<torch::Dtype> dtype;
  bool q8 = false;
};
WeightFormat parse_weight_format(const std::string& name);
std::string dtype_name(torch::Dtype dtype);          // "float32", "bfloat16", "float16"

// Loads config.json + safetensors weights from a Hugging Face LlamaForCausalLM directory, strictly:
// every missing, unexpected and mis-shaped tensor is reported at once (ErrorKind::ModelLoad).
// dtype nullopt: the checkpoint's torch_dtype.
LlamaForCausalLM load_llama(const std::string& dir, std::optional<torch::Dtype> dtype = std::nullopt);

// Deterministic random weights for tests and benchmarks: linear N(0, 1/√fan_in) (o_proj, down_proj:
// 2/√fan_in), embeddings N(0, 0.25), norm weights 1 + N(0, 0.1). Drawn where the model is: a model on a GPU
// gets other (equally deterministic) numbers than on the CPU, without a trip through host memory.
void init_random_weights(LlamaForCausalLMImpl& model, uint64_t seed);

// The generator such initialisers draw from for tensors on `device`: a fresh CPU generator, or the device's
// default generator, each seeded with `seed`.
at::Generator seeded_generator(torch::Device device, uint64_t seed);

}  // namespace llama_mm
