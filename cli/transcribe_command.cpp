// cli/transcribe_command.cpp: `llama-mm transcribe`: speech recognition (ASR) and speech translation (AST)
// with a frozen Llama 3 base (a text model, or Llama 3.2 Vision whose language model is used) and a speech
// adapter file (paper-spec.md §2).
//
//   llama-mm transcribe -m BASE --adapter speech.safetensors talk.mp3            text on stdout
//   llama-mm transcribe -m BASE --adapter A --translate-to fr talk.mp3 -o srt    writes talk.mp3.srt
//   llama-mm transcribe -m BASE --adapter A a.wav -o srt -o vtt --output-file out   writes out.srt, out.vtt
// Audio longer than the adapter's segment limit (60 s) is split at quiet points; each segment is one prompt
// and one subtitle entry with its own times. A file that cannot be decoded is reported (stderr, and
// {"file","error"} with --json) without stopping the others; the exit code is then 4.
#include "adapters/adapters.h"
#include "cli/bundled_model.h"
#include "cli/commands.h"
#include "cli/generation_options.h"
#include "llm/llm.h"
#include "media/media.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct TranscribeOptions {
  std::string model_dir, adapter, dtype, language = "en", translate_to, output_file;
  std::vector<std::string> files, formats;
  bool json = false;
  int threads = 0;
  double max_seconds = media::AudioLimits{}.max_seconds;
  GenerateParams gen = [] {
    auto g = default_generate_params();
    g.n_predict = 224;
    g.sampling.temperature = 0;  // the paper decodes greedily (§8.4)
    return g;
  }();
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// One file: decode, then the shared segment-by-segment transcription.
media::Transcript transcribe_file(const std::string& file, const TranscribeOptions& o, LlamaForCausalLMImpl& llm,
                                  SpeechModelImpl& speech, const Tokenizer& tok, SpeechTask task,
                                  const std::string& language, bool stream) {
  media::AudioLimits limits;
  limits.max_seconds = o.max_seconds;
  const auto audio = media::load_audio_file(file, limits);
  return transcribe_audio(audio, llm, speech, tok, task, language, o.gen, stream ? stdout_stream() : TextCallback(),
                          [&](const SegmentReport& s) {
                            if (stream) std::cout << "\n" << std::flush;
                            std::cerr << "transcribe: " << file << " segment " << s.index + 1 << "/" << s.count << " ["
                                      << media::format_timestamp(s.start_s, '.') << " --> "
                                      << media::format_timestamp(s.end_s, '.') << "]: speech " << s.n_vectors
                                      << " vectors in " << s.encode_ms << " ms; "
                                      << timings_line(s.result->timings, s.result->stop_reason) << "\n";
                          });
}

int run_transcribe(TranscribeOptions o) {
  o.model_dir = model_or_bundled(o.model_dir, "transcribe");
  if (o.adapter.empty())  // the speech adapter the model folder carries
    for (const auto& path : model_adapters(o.model_dir))
      if (read_adapter_file(path).header.modality == "speech") o.adapter = path;
  if (o.adapter.empty())
    throw Error(ErrorKind::Usage, "transcribe: give a speech adapter with --adapter (" + o.model_dir +
                                      "/adapters/ holds none)");
  if (o.files.empty()) throw Error(ErrorKind::Usage, "transcribe: no audio file given");
  if (!o.output_file.empty() && o.files.size() > 1)
    throw Error(ErrorKind::Usage, "transcribe: --output-file names the output of one input; give one file or drop it");
  if (!o.output_file.empty() && o.formats.empty())
    throw Error(ErrorKind::Usage, "transcribe: --output-file needs at least one -o format");
  std::vector<media::TranscriptFormat> formats;
  for (const auto& f : o.formats) formats.push_back(media::parse_transcript_format(f));
  const SpeechTask task = o.translate_to.empty() ? SpeechTask::Transcribe : SpeechTask::Translate;
  const std::string language = speech_language_name(task == SpeechTask::Translate ? o.translate_to : o.language);

  const int threads = configure_threads(o.threads);
  auto t0 = std::chrono::steady_clock::now();
  const auto format = parse_weight_format(o.dtype);
  const auto dtype = format.dtype;
  // A Llama 3.2 Vision base works too: its language model is the frozen Llama the adapter feeds.
  LlamaForCausalLM llm{nullptr};
  if (is_mllama_config(o.model_dir)) llm = load_mllama(o.model_dir, dtype)->language_model;
  else llm = load_llama(o.model_dir, dtype);
  if (format.q8) llm->quantize_q8();
  auto tok = Tokenizer::from_file(o.model_dir);
  auto speech = load_speech_adapter(o.adapter, BaseModelInfo::of(llm->config(), tok), llm->dtype());
  speech->config().tokens.check(tok, o.adapter);
  std::cerr << "transcribe: loaded " << o.model_dir << " + " << o.adapter << " (" << (format.q8 ? "q8" : dtype_name(llm->dtype()))
            << ", speech " << speech->config().n_params() / 1e6 << " M parameters) in " << ms_since(t0) / 1000
            << " s, " << threads << " threads\n";

  bool any_failed = false;
  for (const auto& file : o.files) {
    nlohmann::json j = {{"file", file}};
    try {
      const bool stream = !o.json;
      if (stream && o.files.size() > 1) std::cout << "# " << file << "\n" << std::flush;
      auto t = transcribe_file(file, o, *llm, *speech, tok, task, language, stream);
      const std::string base = o.output_file.empty() ? file : o.output_file;
      for (auto f : formats) {
        const std::string path = base + "." + media::transcript_format_extension(f);
        write_file_atomic(path, media::format_transcript(t, f));
        std::cerr << "transcribe: wrote " << path << "\n";
      }
      if (o.json) j.update(media::transcript_json(t, true));
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::InputDecode) throw;  // a model or usage problem stops the batch
      any_failed = true;
      std::string msg = e.what();
      if (msg.find(file) == std::string::npos) msg = file + ": " + msg;
      std::cerr << "transcribe: " << msg << "\n";
      j["error"] = msg;
    }
    if (o.json) print_json_line(j);
  }
  return any_failed ? static_cast<int>(ErrorKind::InputDecode) : 0;
}

}  // namespace

void add_transcribe_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<TranscribeOptions>();
  auto* sub = app.add_subcommand("transcribe", "Transcribe or translate speech with a Llama 3 base and a speech adapter");
  sub->add_option("-m,--model", o->model_dir,
                  "Base Llama 3 directory (config.json, *.safetensors, tokenizer.json; default: the bundled demo model)");
  sub->add_option("--adapter", o->adapter,
                  "Speech adapter file (.safetensors; init-model --arch speech-adapter; default: MODEL/adapters/'s)");
  sub->add_option("files", o->files, "Audio or video files (anything FFmpeg reads)");
  sub->add_option("-l,--language", o->language, "Spoken language to transcribe into (code or name)")
      ->capture_default_str();
  sub->add_option("--translate-to", o->translate_to, "Translate the speech into this language instead (AST)");
  sub->add_option("-o,--output-format", o->formats, "Also write txt, json, verbose_json, srt or vtt (repeatable)");
  sub->add_option("--output-file", o->output_file, "Output path without extension (default: the input path)");
  sub->add_flag("--json", o->json, "Print one verbose_json object per input on stdout");
  add_generation_options(sub, o->gen);
  sub->add_option("--max-seconds", o->max_seconds, "Refuse audio longer than this")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Weights: f32, bf16, or q8 (int8 LLM projections, bf16 elsewhere) (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_transcribe(*o); }; });
}

}  // namespace llama_mm::cli
