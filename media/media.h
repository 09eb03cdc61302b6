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
// Errors are llama_mm::Error: InputDecode for unreadable media (the message names the file), Config for
// a bad preprocessor_config.json (names the file and key). Thread-safety: decoding functions are
// reentrant; a processor is immutable after construction and may be shared between threads.
#pragma once

#include "media/image_decode.h"
#include "media/mllama_image_processor.h"
#include "media/pil_resize.h"
