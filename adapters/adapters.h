// adapters/adapters.h: the public surface of adapters/ (media adapters fused with the frozen Llama 3).
//
// Basic usage (Llama 3.2 Vision):
//   auto model = llama_mm::load_mllama("Llama-3.2-11B-Vision-Instruct");      // HF layout, bf16
//   llama_mm::MllamaImageBatch images = ...;            // media::MllamaImageProcessor output, batch 1
//   auto r = llama_mm::generate_mllama(*model, tok, prompt_ids, images, params);
// Text-only prompts (no <|image|>) skip the cross layers and are exactly the frozen Llama.
#pragma once

#include "adapters/cross_attention.h"
#include "adapters/cross_attention_mask.h"
#include "adapters/mllama_config.h"
#include "adapters/mllama_model.h"
