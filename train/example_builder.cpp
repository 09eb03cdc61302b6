// train/example_builder.cpp: tokenization with response-only targets, and media preprocessing (see
// example_builder.h).
#include "train/example_builder.h"

#include "llm/chat_format.h"
#include "llm/error.h"

#include <algorithm>
#include <functional>

namespace llama_mm::train {

int64_t Example::n_targets() const {
  return std::count_if(targets.begin(), targets.end(), [](int64_t t) { return t != kIgnoreTarget; });
}

ExampleBuilder::ExampleBuilder(const Tokenizer& tok, ExampleBuilderOptions opts) : tok_(tok), opts_(std::move(opts)) {}

namespace {

std::vector<int64_t> widen(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

}  // namespace

void ExampleBuilder::tokenize(const Sample& sample, int64_t n_speech, Example& out) const {
  const bool audio = sample.kind == MediaKind::Audio, text = sample.kind == MediaKind::Text;
  std::vector<ChatMessage> msgs;
  if (audio)
    msgs.push_back({"system", speech_system_prompt(SpeechTask::Transcribe,
                                                   speech_language_name(sample.language.empty() ? "en" : sample.language))});
  const auto answer = std::find_if(sample.turns.begin(), sample.turns.end(), [](const Turn& t) { return t.role == "assistant"; });
  bool media_placed = text;
  for (const auto& t : sample.turns) {
    ChatMessage m;
    m.role = t.role;
    if (t.role == "user" && !media_placed) {
      media_placed = true;
      const std::string prompt = !t.text.empty() || audio ? t.text
                                 : sample.kind == MediaKind::Image ? kDefaultImagePrompt
                                                                   : kDefaultVideoPrompt;
      if (audio && opts_.text_only) {  // the speech's words in its place
        m.content = answer->text + (prompt.empty() ? "" : "\n" + prompt);
      } else if (audio) {
        m.parts.push_back(speech_part(tok_, opts_.speech->tokens, n_speech));
        if (!prompt.empty()) m.parts.push_back({prompt, {}});
      } else {
        m.n_images = 1;
        m.content = prompt;
      }
    } else {
      m.content = t.text;
    }
    msgs.push_back(std::move(m));
  }
  const ChatFormatOptions base = audio || text ? ChatFormatOptions{} : vision_chat_options();
  auto encode = [&](size_t n_msgs, bool generation_prompt) {
    ChatFormatOptions o = base;
    o.add_generation_prompt = generation_prompt;
    return widen(encode_chat(tok_, std::vector<ChatMessage>(msgs.begin(), msgs.begin() + n_msgs), o));
  };
  out.tokens = encode(msgs.size(), false);
  out.targets.assign(out.tokens.size(), kIgnoreTarget);
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    const auto prefix = encode(i, true);      // ... up to this turn's assistant header
    const auto upto = encode(i + 1, false);   // ... through this turn's <|eot_id|>
    if (prefix.size() > upto.size() || !std::equal(prefix.begin(), prefix.end(), out.tokens.begin()) ||
        !std::equal(upto.begin(), upto.end(), out.tokens.begin()))
      throw Error(ErrorKind::InputDecode, sample.origin + ": the chat template does not extend turn by turn");
    for (size_t p = prefix.size(); p < upto.size(); ++p) out.targets[p - 1] = out.tokens[p];
  }
  if (!audio && !text) {  // the image token marks the media; a video takes its place with the video token
    const int64_t want = sample.kind == MediaKind::Image ? opts_.image_token : opts_.video_token;
    if (want < 0)
      throw Error(ErrorKind::Config, sample.origin + ": a " + media_kind_name(sample.kind) +
                                         " sample needs " + (sample.kind == MediaKind::Image ? "a Llama 3.2 Vision base" : "a video adapter"));
    if (want != opts_.image_token) std::replace(out.tokens.begin(), out.tokens.end(), opts_.image_token, want);
  }
  if (static_cast<int64_t>(out.tokens.size()) > opts_.max_tokens)
    throw Error(ErrorKind::InputDecode, sample.origin + ": " + std::to_string(out.tokens.size()) +
                                            " tokens, more than the limit of " + std::to_string(opts_.max_tokens));
  if (out.n_targets() == 0) throw Error(ErrorKind::InputDecode, sample.origin + ": no response tokens to learn");
}

Example ExampleBuilder::build(const Sample& sample) const {
  Example ex;
  ex.kind = sample.kind;
  ex.origin = sample.origin;
  if (opts_.text_only) {
    tokenize(sample, 0, ex);
    ex.kind = MediaKind::Text;
    return ex;
  }
  if (sample.kind == MediaKind::Text)
    throw Error(ErrorKind::Config, sample.origin + ": a text-only sample teaches only the LLM (a text_model stage)");
  int64_t n_speech = 0;
  switch (sample.kind) {
    case MediaKind::Image:
      if (!opts_.images) throw Error(ErrorKind::Config, sample.origin + ": an image sample needs a Llama 3.2 Vision base");
      ex.image = opts_.images->preprocess(media::load_image_file(sample.media));
      break;
    case MediaKind::Video: {
      if (!opts_.images || opts_.video_token < 0)
        throw Error(ErrorKind::Config, sample.origin + ": a video sample needs a video adapter on a Llama 3.2 Vision base");
      ex.video = sample_video_frames(*opts_.images, sample.media, opts_.video_sampling, opts_.video_limits);
      if (ex.video.pixel_values.size(1) == 0) throw Error(ErrorKind::InputDecode, sample.media + ": no frame was decoded");
      break;
    }
    case MediaKind::Audio: {
      if (!opts_.speech) throw Error(ErrorKind::Config, sample.origin + ": an audio sample needs a speech adapter");
      const auto audio = media::load_audio_file(sample.media, opts_.audio_limits);
      ex.mel = media::log_mel_spectrogram(audio, opts_.speech->frontend);
      if (ex.mel.size(0) == 0) throw Error(ErrorKind::InputDecode, sample.media + ": too short for one mel frame");
      const int64_t T = ex.mel.size(0), keep = opts_.max_mel_frames;
      if (keep > 0 && T > keep)  // a crop whose offset is fixed per sample, so runs and resumes agree
        ex.mel = ex.mel.narrow(0, static_cast<int64_t>(std::hash<std::string>{}(sample.origin) % (T - keep + 1)), keep).clone();
      n_speech = opts_.speech->adapter.output_frames(opts_.speech->encoder.output_frames(ex.mel.size(0)));
      break;
    }
    case MediaKind::Text: break;
  }
  ex.n_speech = n_speech;
  if (opts_.features_only) {
    if (sample.kind != MediaKind::Audio)
      throw Error(ErrorKind::Config, sample.origin + ": BEST-RQ pre-training takes audio samples only");
    return ex;
  }
  tokenize(sample, n_speech, ex);
  return ex;
}

}  // namespace llama_mm::train
