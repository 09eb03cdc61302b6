// adapters/speech_transcriber.h: long audio to a transcript, as `transcribe` and the server's
// /v1/audio/transcriptions share it: the audio is split at quiet points into segments of at most the adapter's
// max_segment_seconds, each segment is one speech prompt (the task's system prompt, paper-spec.md §2.5) and one
// greedy-by-default generation, and each becomes one transcript segment with its times.
#pragma once

#include "adapters/speech_model.h"
#include "adapters/speech_prompt.h"
#include "llm/generator.h"
#include "media/audio_decode.h"
#include "media/transcript_format.h"

#include <functional>

namespace llama_mm {

struct SegmentReport {
  size_t index = 0, count = 0;  // segment index of count
  double start_s = 0, end_s = 0;
  int64_t n_vectors = 0;  // speech vectors in the prompt
  double encode_ms = 0;
  const GenerateResult* result = nullptr;
};

// Runs one segment's generation from its prompt and the prompt's embeddings ([1, T, D], the speech vectors spliced
// in; speech_prompt_embeds). The server passes one that queues it on its batched decode loop.
using SpeechGeneration = std::function<GenerateResult(const std::vector<int32_t>& prompt, const torch::Tensor& embeds,
                                                      const GenerateParams& params, const TextCallback& on_text)>;

// on_text streams each segment's text (returning false cancels: the transcript then ends there); on_segment
// (optional) hears about each finished segment; run (optional) generates each segment (default: on this thread).
media::Transcript transcribe_audio(const media::Audio& audio, LlamaForCausalLMImpl& llm, SpeechModelImpl& speech,
                                   const Tokenizer& tok, SpeechTask task, const std::string& language_name,
                                   const GenerateParams& params, const TextCallback& on_text = {},
                                   const std::function<void(const SegmentReport&)>& on_segment = {},
                                   const SpeechGeneration& run = {});

}  // namespace llama_mm
