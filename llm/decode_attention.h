// llm/decode_attention.h: one new token's attention over the KV cache on CPU, fused (decode).
//
// A decode step attends each query head to every cached key of its kv head. In LibTorch that is ~8 ops per
// layer (widening the bf16 cache to fp32, two batched GEMMs of a few rows, a softmax), whose cost grows with
// the context: measured on 2 Zen 3 cores, 197 µs per layer at 128 cached positions and 575 µs at 512, against
// ~35 µs to read the 1 MB of bf16 keys and values at 512. This kernel reads each key and value row once,
// widening it in registers, for all R = H / G query heads that share it (grouped-query attention, no copies), and
// splits the kv heads across the decode kernels' thread pool.
// Arithmetic as the reference (LlamaAttention's LibTorch path): fp32 scores divided by √Dh, an fp32 softmax,
// an fp32 weighted sum; only the summation order differs.
#pragma once

#include <torch/torch.h>

namespace llama_mm {

// q [B, H, Dh] (fp32 or bf16), keys/values [B, G, L, Dh] (bf16 or fp32, the cache's first L positions: any
// strides with a contiguous last dim), H a multiple of G; lengths [B] int64 in [1, L]: sequence b attends to its
// first lengths[b] keys only (the server's batched decode, where sequences have different lengths); undefined:
// all L. Returns fp32 [B, H, Dh].
torch::Tensor decode_attention_cpu(const torch::Tensor& q, const torch::Tensor& keys, const torch::Tensor& values,
                                   const torch::Tensor& lengths = {});

// The same through LibTorch ops (the reference the tests compare with), hidden keys masked as LlamaAttention does.
torch::Tensor decode_attention_reference(const torch::Tensor& q, const torch::Tensor& keys, const torch::Tensor& values,
                                         const torch::Tensor& lengths = {});

}  // namespace llama_mm
