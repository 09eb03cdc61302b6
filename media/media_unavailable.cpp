// media/media_unavailable.cpp: the decoding and encoding entry points of a build without FFmpeg and OpenCV
// (LLAMA_MM_MEDIA=OFF). Each fails with an InputDecode error that names the input and says why.
#include "llm/error.h"
#include "media/audio_decode.h"
#include "media/image_decode.h"
#include "media/video_decode.h"
#include "media/video_encode.h"

namespace llama_mm::media {

namespace {

[[noreturn]] void unavailable(const std::string& name) {
  throw Error(ErrorKind::InputDecode, name +
                                          ": this llama-mm was built without FFmpeg and OpenCV (LLAMA_MM_MEDIA=OFF), "
                                          "so it cannot decode or encode media");
}

}  // namespace

Image decode_image(const std::string&, const std::string& name, const ImageLimits&) { unavailable(name); }
Image load_image_file(const std::string& path, const ImageLimits&) { unavailable(path); }
Audio load_audio_file(const std::string& path, const AudioLimits&) { unavailable(path); }
double probe_audio_seconds(const std::string& path) { unavailable(path); }
Audio decode_audio(const std::string&, const std::string& name, const AudioLimits&) { unavailable(name); }
Audio decode_raw_pcm(const void*, size_t, PcmFormat, int, int, const std::string& name, const AudioLimits&) {
  unavailable(name);
}
VideoInfo probe_video_file(const std::string& path, const VideoLimits&) { unavailable(path); }
SampledVideo sample_video_file(const std::string& path, const VideoSampling&, const VideoLimits&,
                               const FrameCallback&) {
  unavailable(path);
}
SampledVideo sample_video(const std::string&, const std::string& name, const VideoSampling&, const VideoLimits&,
                          const FrameCallback&) {
  unavailable(name);
}
int64_t decode_all_frames(const std::string& path, const VideoLimits&) { unavailable(path); }
bool is_video_file(const std::string&) { return false; }  // the image decoder then names the file and the reason

struct VideoWriter::State {};
VideoWriter::VideoWriter(const std::string& path, int, int, int) { unavailable(path); }
VideoWriter::~VideoWriter() = default;
void VideoWriter::write(const std::vector<uint8_t>&) {}
void VideoWriter::finish() {}
int64_t VideoWriter::frames() const { return 0; }

}  // namespace llama_mm::media
