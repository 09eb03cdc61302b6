// adapters/adapters.h: the public surface of adapters/ (media adapters fused with the frozen Llama 3).
//
// Basic usage (Llama 3.2 Vision):
//   auto model = llama_mm::load_mllama("Llama-3.2-11B-Vision-Instruct");      // HF layout, bf16
//   llama_mm::MllamaImageBatch images = ...;            // media::MllamaImageProcessor output, batch 1
//   auto r = llama_mm::generate_mllama(*model, tok, prompt_ids, images, params);
// Text-only prompts (no <|image|>) skip the cross layers and are exactly the frozen Llama.
//
// Video (Llama 3.2 Vision + a video adapter file; frames from media::sample_video_file):
//   model->attach_video_adapter(llama_mm::load_video_adapter("video.safetensors", base_info, model->config()), path);
//   llama_mm::MllamaImageBatch frames = processor.pack({preprocessed_frames});   // one video: [1, F, T, 3, S, S]
//   auto r = llama_mm::generate_mllama(*model, tok, prompt_with_video_token, {}, params, {}, {frames});
//
// Speech (a Llama 3 text base + an adapter file):
//   auto llm = llama_mm::load_llama(dir);  auto tok = llama_mm::Tokenizer::from_file(dir);
//   auto speech = llama_mm::load_speech_adapter("speech.safetensors", llama_mm::BaseModelInfo::of(llm->config(), tok));
//   auto clip = speech->embed_audio(samples, n);                          // [N, hidden]
//   auto prompt = llama_mm::encode_speech_prompt(tok, llama_mm::SpeechTask::Transcribe, "English",
//                                                {llama_mm::speech_part(tok, speech->config().tokens, clip.size(0))});
//   auto r = llama_mm::generate_with_speech(*llm, *speech, tok, prompt, {clip}, params);
#pragma once

#include "adapters/adapter_file.h"
#include "adapters/cross_attention.h"
#include "adapters/cross_attention_mask.h"
#include "adapters/image_adapter.h"
#include "adapters/mllama_config.h"
#include "adapters/mllama_inputs.h"
#include "adapters/mllama_model.h"
#include "adapters/speech_adapter.h"
#include "adapters/speech_model.h"
#include "adapters/speech_prompt.h"
#include "adapters/speech_transcriber.h"
#include "adapters/temporal_aggregator.h"
#include "adapters/video_adapter.h"
