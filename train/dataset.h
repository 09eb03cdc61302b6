// train/dataset.h: training manifests read into one list of samples: a media file (image, video or audio clip)
// and a conversation whose assistant turns are what the loss is on.
//
//   jsonl        one object per line: {"image"|"video"|"audio": PATH, "text": TARGET, "prompt": optional question,
//                "language": optional (speech)} or, instead of "text", ShareGPT "conversations"; an object with
//                no media is a text-only conversation (what a text_model stage learns besides the media
//                samples' conversations)
//   sharegpt     a JSON array (LLaVA style) or JSONL of {"image"|"video"|"audio": PATH, "conversations":
//                [{"from": "human"|"gpt"|"system", "value": ...}, ...]}; "<image>", "<video>", "<audio>" and
//                "<speech>" markers are dropped (the media goes at the start of the first user turn)
//   coco         COCO captions JSON ({"images": [{id, file_name}], "annotations": [{image_id, caption}]}): one
//                sample per caption
//   librispeech  a LibriSpeech directory: every SPEAKER-CHAPTER.trans.txt ("UTT-ID TRANSCRIPT" lines) with
//                UTT-ID.flac beside it
//   nemo         NeMo audio manifest: JSONL of {"audio_filepath", "text", "duration"?, "lang"?}
//
// jsonl and sharegpt objects may also state "duration" (seconds; used for audio length bucketing).
//
// Media paths are resolved against DataConfig::root (default: the manifest's folder). A manifest that cannot be
// read or parsed is ErrorKind::InputDecode naming the file and line; missing media files are not checked here
// (the loader skips and counts them).
#pragma once

#include "train/train_config.h"

#include <string>
#include <vector>

namespace llama_mm::train {

enum class MediaKind { Image, Video, Audio, Text };
const char* media_kind_name(MediaKind kind);  // "image", "video", "audio", "text"

struct Turn {
  std::string role;  // system, user, assistant
  std::string text;
};

struct Sample {
  MediaKind kind = MediaKind::Image;
  std::string media;         // resolved path ("" for Text)
  std::vector<Turn> turns;   // at least one assistant turn; the media belongs to the first user turn
  std::string language;      // speech: the target language name ("" = English)
  double duration_s = -1;    // audio: as the manifest states it ("duration"), -1 unknown
  std::string origin;        // "manifest:line" (or the transcript file) for logs
};

std::vector<Sample> read_dataset(const DataConfig& data);

}  // namespace llama_mm::train
