// adapters/speech_transcriber.cpp: segmentation and one speech prompt per segment (see speech_transcriber.h).
#include "adapters/speech_transcriber.h"

#include "media/audio_segment.h"

#include <chrono>

namespace llama_mm {

media::Transcript transcribe_audio(const media::Audio& audio, LlamaForCausalLMImpl& llm, SpeechModelImpl& speech,
                                   const Tokenizer& tok, SpeechTask task, const std::string& language_name,
                                   const GenerateParams& params, const TextCallback& on_text,
                                   const std::function<void(const SegmentReport&)>& on_segment,
                                   const SpeechGeneration& run) {
  const int sr = audio.sample_rate;
  media::SegmentOptions so;
  so.max_seconds = speech.config().max_segment_seconds;
  const auto segments = media::split_audio(audio.samples, sr, so);
  media::Transcript t;
  t.task = task == SpeechTask::Translate ? "translate" : "transcribe";
  t.language = language_name;
  t.duration = audio.duration_s();
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& seg = segments[i];
    const auto t0 = std::chrono::steady_clock::now();
    auto clip = speech.embed_audio(audio.samples.data() + seg.begin, seg.end - seg.begin);
    const double encode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    auto prompt = encode_speech_prompt(tok, task, language_name, {speech_part(tok, speech.config().tokens, clip.size(0))});
    const auto r = run ? run(prompt, speech_prompt_embeds(llm, speech, prompt, {clip}), params, on_text)
                       : generate_with_speech(llm, speech, tok, prompt, {clip}, params, on_text);
    t.segments.push_back({seg.start_s(sr), seg.end_s(sr), r.text, r.tokens});
    if (on_segment) on_segment({i, segments.size(), seg.start_s(sr), seg.end_s(sr), clip.size(0), encode_ms, &r});
    if (r.stop_reason == "cancelled") break;
  }
  return t;
}

}  // namespace llama_mm
