// encoders/encoders.h: the public surface of encoders/ (separately trained media encoders).
//
// Basic usage (normally through adapters/, which owns the projector and the text side):
//   llama_mm::MllamaVisionModel vision(cfg.vision, torch::kBFloat16);   // weights from load_mllama()
//   auto feats = vision->forward(pixel_values, aspect_ratio_ids, aspect_ratio_mask);  // [B, M, T, P, F]
//
// Speech (paper-spec.md §2.2; weights by name, keys in encoders/conformer.h):
//   llama_mm::ConformerEncoder enc(llama_mm::ConformerConfig::paper_1b(), torch::kBFloat16);
//   auto out = enc->forward(mel, lengths);  // mel [B, T, 80] log-mel, lengths [B] int64 (or {} = all T)
//   // out.hidden [B, ceil(T/4), 1536] (padded rows zero), out.lengths [B] = ceil(lengths / 4)
//
// Modules are LibTorch holders (shared ownership); forward writes no module state, so one encoder can serve
// concurrent forwards under torch::NoGradGuard.
#pragma once

#include "encoders/conformer.h"
#include "encoders/conformer_config.h"
#include "encoders/mllama_vision.h"
#include "encoders/mllama_vision_config.h"
#include "encoders/rotary_self_attention.h"
