// adapters/speech_model.h: the paper's speech path fused with a frozen Llama 3 (paper-spec.md §2): log-mel
// front end -> Conformer encoder -> speech adapter -> vectors spliced into the prompt's token embeddings
// between two special tokens. No cross-attention: the LLM and its KV cache are the unmodified text ones.
//
// Speech tokens (a llama-mm choice, paper-spec.md §7 item 6; recorded in the adapter file): three reserved
// Llama 3 special tokens, counted from <|begin_of_text|> (128000): +250 starts a clip, +251 ends it and +252 is
// the placeholder that each speech vector replaces (128250, 128251, 128252 in every Llama 3.x tokenizer;
// <|reserved_special_token_242..244|> in 3.1's names). A clip of N vectors is prompted as
// <start> <placeholder>×N <end>; the start/end embeddings come from the adapter (`adapter.boundary`), since the
// reserved rows of the base embedding table were never trained.
//
// Adapter file (adapters/adapter_file.h, modality "speech"): tensors "encoder.*" (encoders/conformer.h) and
// "adapter.*" (speech_adapter.h); config {"frontend", "encoder", "adapter", "tokens", "max_segment_seconds"}.
#pragma once

#include "adapters/adapter_file.h"
#include "adapters/speech_adapter.h"
#include "encoders/encoders.h"
#include "llm/generator.h"
#include "llm/llama_model.h"
#include "media/media.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace llama_mm {

struct SpeechTokens {
  int32_t start = -1, end = -1, placeholder = -1;
  // The reserved ids above for `tok`; ModelLoad error when they are not reserved special tokens there.
  static SpeechTokens choose(const Tokenizer& tok);
  // ModelLoad error naming `origin` when an id is not a special token of `tok`.
  void check(const Tokenizer& tok, const std::string& origin) const;
  nlohmann::json to_json() const;
  static SpeechTokens from_json(const nlohmann::json& j, const std::string& origin);
};

struct SpeechModelConfig {
  media::LogMelConfig frontend;
  ConformerConfig encoder;
  SpeechAdapterConfig adapter;
  SpeechTokens tokens;
  double max_segment_seconds = 60.0;  // longer audio is split (media/audio_segment.h); the paper trains on ≤ 60 s

  // "tiny" (test-sized encoder and adapter) or "paper" (1B Conformer + ~100M adapter, §2.2/§2.4), for an LLM
  // of width `llm_dim` (4096 for 8B, 8192 for 70B).
  static SpeechModelConfig preset(const std::string& name, int64_t llm_dim);
  nlohmann::json to_json() const;
  static SpeechModelConfig from_json(const nlohmann::json& j, const std::string& origin);
  double flops(int64_t n_mel_frames) const;  // encoder + adapter forward
  int64_t n_params() const;
};

class SpeechModelImpl : public torch::nn::Module {
 public:
  SpeechModelImpl(const SpeechModelConfig& cfg, torch::Dtype dtype);
  // mel [B, T, n_mels] (log-mel, unnormalised), lengths [B] (undefined: all T) -> LLM-width vectors.
  SpeechAdapterOutput forward(const torch::Tensor& mel, const torch::Tensor& lengths, const ActivationHook& hook = {});
  // One utterance of 16 kHz mono samples -> [N, L] vectors (N = ceil(ceil(frames / 4) / 2) for the paper sizes).
  torch::Tensor embed_audio(const float* samples, int64_t n);
  const SpeechModelConfig& config() const { return cfg_; }
  torch::Dtype dtype() const { return dtype_; }

  ConformerEncoder encoder{nullptr};
  SpeechAdapter adapter{nullptr};

 private:
  SpeechModelConfig cfg_;
  torch::Dtype dtype_;
};
TORCH_MODULE(SpeechModel);

// Seeded random weights (tests, benchmarks, `init-model --arch speech-adapter`).
void init_random_speech_weights(SpeechModelImpl& model, uint64_t seed);
void save_speech_adapter(SpeechModelImpl& model, const BaseModelInfo& base, const std::string& path);
// Loads an adapter file for `base` (check_base_compatible) in `dtype` (default: the file's weight dtype).
SpeechModel load_speech_adapter(const std::string& path, const BaseModelInfo& base,
                                std::optional<torch::Dtype> dtype = std::nullopt);

// The prompt's embeddings [1, T, D] (model dtype) with the clip vectors at the placeholders and the adapter's
// boundary embeddings at start/end; a malformed run of speech tokens is an InputDecode error.
torch::Tensor speech_prompt_embeds(LlamaForCausalLMImpl& llm, const SpeechModelImpl& speech,
                                   const std::vector<int32_t>& prompt, const std::vector<torch::Tensor>& clips);

// Generation with speech clips: `prompt` holds each clip as <start> <placeholder>×N_i <end> (speech_prompt.h),
// `clips[i]` is [N_i, L]. The prefill embeds the prompt, then puts clip vectors at the placeholders and the
// adapter's boundary embeddings at start/end; the rest is plain Llama generation.
GenerateResult generate_with_speech(LlamaForCausalLMImpl& llm, const SpeechModelImpl& speech, const Tokenizer& tok,
                                    const std::vector<int32_t>& prompt, const std::vector<torch::Tensor>& clips,
                                    const GenerateParams& params, const TextCallback& on_text = {});

}  // namespace llama_mm
