// train/example_builder.h: one training sample made ready for a step: the conversation tokenized in the chat
// template with the loss on the assistant turns only, and the media decoded and preprocessed (an image's tiles, a
// video's sampled frames, an audio clip's log-mel features).
//
// Prompts are those of inference, so a trained adapter answers `caption` / `transcribe` as it learned:
//   image/video: the Llama 3.2 Vision template, the media token first in the user turn, then the sample's prompt
//                (default: caption's "Describe this image/video in one sentence.");
//   audio:       the Llama 3.1 template, system "Repeat after me in {language}:" (paper-spec.md §2.5), the user turn
//                <speech start> <placeholder>×N <end> then the prompt (if any);
//   text:        the Llama 3.1 template.
// A text_model stage (text_only) reads no media and learns every sample as text: an image or video sample keeps its
// media token, with no pixels (the cross-attention layers are skipped, as for any text-only prompt); an audio
// sample's user turn holds its first answer as text in place of the speech, so the LLM learns to repeat what it is
// given, which the speech adapter then drives with speech.
// A sample whose media cannot be read is ErrorKind::InputDecode naming the file (the loader counts and skips it).
// Thread-safety: build() is const and may run on several threads at once.
#pragma once

#include "adapters/adapters.h"
#include "llm/tokenizer.h"
#include "train/dataset.h"

#include <optional>
#include <string>
#include <vector>

namespace llama_mm::train {

constexpr int64_t kIgnoreTarget = -100;

struct Example {
  MediaKind kind = MediaKind::Image;
  std::vector<int64_t> tokens;
  std::vector<int64_t> targets;              // per position: the next token when it is learned, else kIgnoreTarget
  media::ProcessedImage image;               // image
  media::MllamaImageInputs video;             // video: its sampled frames packed [1, F, T, 3, S, S]
  torch::Tensor mel;                          // audio: [T, n_mels] log-mel
  int64_t n_speech = 0;                       // audio: speech vectors (placeholders in tokens)
  std::string origin;                         // the manifest line
  int64_t n_targets() const;
};

struct ExampleBuilderOptions {
  int64_t max_tokens = 4096;                     // a longer sample is bad (skipped and counted)
  int64_t image_token = -1;                      // Mllama base: <|image|>
  std::optional<media::MllamaImageProcessor> images;  // Mllama base
  int64_t video_token = -1;                      // with a video adapter
  media::VideoSampling video_sampling;
  media::VideoLimits video_limits;
  std::optional<SpeechModelConfig> speech;       // with a speech adapter
  media::AudioLimits audio_limits;
  bool features_only = false;      // BEST-RQ: audio features alone, no conversation
  int64_t max_mel_frames = 0;      // > 0: longer audio is cropped to this many mel frames (offset from the origin)
  bool text_only = false;          // text_model stages: conversations alone, every example of kind Text
};

class ExampleBuilder {
 public:
  ExampleBuilder(const Tokenizer& tok, ExampleBuilderOptions opts);
  Example build(const Sample& sample) const;
  // Token ids and targets of a conversation alone (the media as its tokens only; n_speech vectors for audio; with
  // text_only, the text view described above).
  void tokenize(const Sample& sample, int64_t n_speech, Example& out) const;

 private:
  const Tokenizer& tok_;
  ExampleBuilderOptions opts_;
};

}  // namespace llama_mm::train
