// adapters/mllama_inputs.h: what `caption`, the trainer and the server share to turn media into Llama 3.2 Vision
// inputs: the checkpoint's image processor, the default prompts, and a video's frames sampled and preprocessed.
#pragma once

#include "adapters/mllama_config.h"
#include "media/media.h"

#include <nlohmann/json.hpp>

#include <string>

namespace llama_mm {

// The prompts used when none is given (caption, and training samples without a "prompt").
constexpr const char* kDefaultImagePrompt = "Describe this image in one sentence.";
constexpr const char* kDefaultVideoPrompt = "Describe this video in one sentence.";

// The image processor of the checkpoint in `dir` (preprocessor_config.json; the Llama 3.2 Vision values sized to
// the encoder when the file is missing, with a note on stderr), checked against the vision encoder (Config error).
media::MllamaImageProcessor load_image_processor(const std::string& dir, const MllamaConfig& cfg);

// Samples a video's frames (media::sample_video_file) and preprocesses them one at a time; frames of another size
// than the first (a mid-stream resolution change) are resized to it first. `info` (optional) receives the
// video's description: duration, size, rotation, codec, frame rate, seek mode, frame times.
media::MllamaImageInputs sample_video_frames(const media::MllamaImageProcessor& processor, const std::string& path,
                                             const media::VideoSampling& sampling, const media::VideoLimits& limits,
                                             nlohmann::json* info = nullptr);

}  // namespace llama_mm
