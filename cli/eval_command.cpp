// cli/eval_command.cpp: `llama-mm eval`: a model (and its adapters) answers every sample of a training-format
// manifest greedily, with the prompts `caption` and `transcribe` use, and the answers are scored against the
// manifest's text: exact match and word error rate (train/evaluator.h). How the demo model's quality bars are
// measured (docs/demo.md).
//
//   llama-mm eval --data test/captions.jsonl                       the bundled demo model
//   llama-mm eval -m MODEL --adapter speech.safetensors --data librispeech/test-clean --format librispeech --json
//
// stdout: with --json one line per sample ({"origin","reference","answer","word_errors","reference_words"}), then
// always one summary line ({"data","samples","bad","exact_match","wer"}); progress on stderr.
#include "adapters/adapters.h"
#include "cli/bundled_model.h"
#include "cli/commands.h"
#include "llm/error.h"
#include "llm/llm.h"
#include "train/train.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct EvalOptions {
  std::string model_dir, data, format = "jsonl", root, dtype;
  std::vector<std::string> adapters;
  int64_t limit = 0;
  bool json = false;
  int threads = 0;
};

int run_eval(EvalOptions o) {
  o.model_dir = model_or_bundled(o.model_dir, "eval");
  if (o.adapters.empty()) o.adapters = model_adapters(o.model_dir);
  if (o.data.empty()) throw Error(ErrorKind::Usage, "eval: give the samples with --data MANIFEST");
  configure_threads(o.threads);
  train::TrainConfig cfg;  // a run with no stages: the model and its adapters as inference loads them
  cfg.base = o.model_dir;
  std::vector<std::string> image_adapters;
  for (const auto& path : o.adapters) {
    const std::string modality = read_adapter_file(path).header.modality;
    if (modality == "image") image_adapters.push_back(path);
    else cfg.adapters.push_back({modality, "", path});
  }
  const auto t0 = std::chrono::steady_clock::now();
  train::RunModel model(cfg, o.dtype.empty() ? std::nullopt : std::optional<torch::Dtype>(parse_dtype(o.dtype)));
  for (const auto& path : image_adapters) {
    if (!model.mllama) throw Error(ErrorKind::Usage, "eval: " + path + " is an image adapter; the model is not Llama 3.2 Vision");
    load_image_adapter(*model.mllama, path, model.base_info());
  }
  std::cerr << "eval: loaded " << o.model_dir << " (" << dtype_name(model.llm().dtype()) << ", " << o.adapters.size()
            << " adapter(s)) in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
  auto samples = train::read_dataset({o.format, o.data, o.root});
  if (o.limit > 0 && static_cast<int64_t>(samples.size()) > o.limit) samples.resize(o.limit);
  train::ExampleBuilder builder(model.tokenizer(), model.builder_options());
  const auto every = std::max<size_t>(1, samples.size() / 20);
  size_t done = 0, exact = 0;
  const auto result = train::evaluate(model, builder, samples, [&](const train::EvalAnswer& a) {
    ++done;
    exact += a.answer == a.reference;
    if (o.json)
      std::cout << nlohmann::json{{"origin", a.origin}, {"reference", a.reference}, {"answer", a.answer},
                                  {"word_errors", a.word_errors}, {"reference_words", a.reference_words}}.dump()
                << "\n" << std::flush;
    if (done % every == 0 || done == samples.size())
      std::cerr << "eval: " << done << "/" << samples.size() << " answered, " << exact << " exact\n";
  });
  std::cout << nlohmann::json{{"data", o.data},           {"samples", result.samples},
                              {"bad", result.bad},         {"exact_match", result.exact_match},
                              {"wer", result.wer}}.dump()
            << "\n";
  return result.bad > 0 ? static_cast<int>(ErrorKind::InputDecode) : 0;
}

}  // namespace

void add_eval_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = app.add_subcommand("eval", "Answer a manifest's samples greedily and score them (exact match, WER)");
  sub->add_option("-m,--model", o->model_dir, "Model directory (default: the bundled demo model)");
  sub->add_option("--adapter", o->adapters, "Image, video or speech adapter file (repeatable; default: those in "
                                            "MODEL/adapters/)")
      ->allow_extra_args(false);
  sub->add_option("--data", o->data, "Manifest, annotation file or folder, as `train` reads them")->required();
  sub->add_option("--format", o->format, "jsonl, sharegpt, coco, librispeech or nemo")->capture_default_str();
  sub->add_option("--root", o->root, "Media paths are relative to this (default: the manifest's folder)");
  sub->add_option("--limit", o->limit, "Score only the first N samples")->check(CLI::NonNegativeNumber);
  sub->add_flag("--json", o->json, "Print each answer as a JSON line before the summary");
  sub->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Weights: f32 or bf16 (default: the checkpoint's)");
  sub->callback([o, &action] { action = [o] { return run_eval(*o); }; });
}

}  // namespace llama_mm::cli
