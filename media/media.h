// media/media.h: the public surface of the media/ library: decoding user media and turning it into model
// inputs. Image part: image files to RGB8 (image_decode.h), Pillow-exact bilinear resizing
// (pil_resize.h) and Llama 3.2 Vision preprocessing (mllama_image_processor.h, mllama-spec.md §4).
//
// Basic usage:
//   #include "media/media.h"
//   namespace mm = llama_mm::media;
//   mm::MllamaImageProcessor proc(mm::MllamaImageProcessorConfig::from_file("Llama-3.2-11B-Vision"));
//   mm::Image img = mm::load_image_file("cat.jpg");            // RGB8, EXIF-upright, alpha over white
//   mm::ProcessedImage p = proc.preprocess(img);               // tiles [N, 3, 560, 560] float32
//   mm::MllamaImageInputs in = proc.pack({{p}});               // pixel_values [1, 1, 4, 3, 560, 560], ...
//
// Audio part (paper-spec.md §2.1): any FFmpeg-readable file, in-memory upload or raw PCM to 16 kHz mono float
// with a duration limit (audio_decode.h), Whisper log-mel or Kaldi fbank features (log_mel.h), long audio cut
// into <= 60 s segments at quiet points (audio_segment.h), transcripts as txt/json/SRT/VTT (transcript_format.h):
//   mm::Audio a = mm::load_audio_file("talk.mp3");              // or decode_audio(bytes, name), decode_raw_pcm(...)
//   for (const auto& seg : mm::split_audio(a.samples, a.sample_rate)) {             // <= 60 s each, contiguous
//     torch::Tensor mel = mm::log_mel_spectrogram(a.samples.data() + seg.begin,   // [frames, 80], 10 ms hop
//                                                 seg.end - seg.begin, mm::LogMelConfig{});
//   }
//
// Video part (paper-spec.md §1.1): up to n frames sampled uniformly over the whole video by seeking, upright,
// as RGB8 images for the same image preprocessing (video_decode.h):
//   mm::SampledVideo v = mm::sample_video_file("clip.mp4", {64});   // v.frames[i].image, v.frames[i].time_s
//
// Errors are llama_mm::Error: InputDecode for unreadable media (the message names the file), Config for
// a bad preprocessor_config.json or front-end config (LogMelConfig::from_json; names the file and key). Thread-safety: decoding functions are
// reentrant; a processor is immutable after construction and may be shared between threads.
#pragma once

#include "media/audio_decode.h"
#include "media/audio_encode.h"
#include "media/audio_segment.h"
#include "media/image_decode.h"
#include "media/log_mel.h"
#include "media/mllama_image_processor.h"
#include "media/pil_resize.h"
#include "media/transcript_format.h"
#include "media/video_decode.h"
#include "media/video_encode.h"
