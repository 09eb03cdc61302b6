// adapters/mllama_inputs.cpp: image processor loading and video frame sampling (see mllama_inputs.h).
#include "adapters/mllama_inputs.h"

#include "llm/error.h"

#include <filesystem>
#include <iostream>

namespace llama_mm {

media::MllamaImageProcessor load_image_processor(const std::string& dir, const MllamaConfig& cfg) {
  namespace fs = std::filesystem;
  const auto path = fs::path(dir) / "preprocessor_config.json";
  media::MllamaImageProcessorConfig pc;
  if (fs::exists(path)) {
    pc = media::MllamaImageProcessorConfig::from_file(path.string());
  } else {
    pc = media::MllamaImageProcessorConfig::llama_3_2_vision();
    pc.size = {cfg.vision.image_size, cfg.vision.image_size};
    pc.max_image_tiles = cfg.vision.max_num_tiles;
    std::cerr << path.string() << " not found; using the Llama 3.2 Vision preprocessing\n";
  }
  if (pc.tile_size() != cfg.vision.image_size || pc.max_image_tiles != cfg.vision.max_num_tiles)
    throw Error(ErrorKind::Config, path.string() + ": tile size " + std::to_string(pc.tile_size()) + " x " +
                                       std::to_string(pc.max_image_tiles) + " tiles does not match the vision encoder (" +
                                       std::to_string(cfg.vision.image_size) + " x " +
                                       std::to_string(cfg.vision.max_num_tiles) + ")");
  return media::MllamaImageProcessor(pc);
}

media::MllamaImageInputs sample_video_frames(const media::MllamaImageProcessor& processor, const std::string& path,
                                             const media::VideoSampling& sampling, const media::VideoLimits& limits,
                                             nlohmann::json* info) {
  std::vector<media::ProcessedImage> processed;
  std::vector<double> times;
  int width = 0, height = 0;
  auto v = media::sample_video_file(path, sampling, limits, [&](media::VideoFrame&& f) {
    if (processed.empty()) width = f.image.width, height = f.image.height;
    if (f.image.width != width || f.image.height != height) f.image = media::resize_bilinear_pil(f.image, height, width);
    processed.push_back(processor.preprocess(f.image));
    times.push_back(f.time_s);
  });
  if (info)
    *info = {{"duration_s", v.info.duration_s}, {"width", v.info.width},       {"height", v.info.height},
             {"rotation", v.info.rotation},     {"codec", v.info.codec},        {"frame_rate", v.info.frame_rate},
             {"seek", v.seek == media::SeekMode::KeyFrame ? "keyframe" : "exact"}, {"frame_times_s", times},
             {"frames_decoded", v.frames_decoded}, {"seeks", v.seeks}};
  return processor.pack({processed});
}

}  // namespace llama_mm
