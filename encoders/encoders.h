// encoders/encoders.h: the public surface of encoders/ (separately trained media encoders).
//
// Basic usage (normally through adapters/, which owns the projector and the text side):
//   llama_mm::MllamaVisionModel vision(cfg.vision, torch::kBFloat16);   // weights from load_mllama()
//   auto feats = vision->forward(pixel_values, aspect_ratio_ids, aspect_ratio_mask);  // [B, M, T, P, F]
#pragma once

#include "encoders/mllama_vision.h"
#include "encoders/mllama_vision_config.h"
