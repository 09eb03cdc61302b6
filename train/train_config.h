// train/train_config.h: the `llama-mm train` YAML config (issue 6): the frozen base model, the adapters to create
// or continue, and an ordered list of stages, each naming its data, the parts that train (everything else is
// frozen), the optimizer (AdamW), the schedule (linear warm-up, then cosine), batch, accumulation, clipping,
// precision and intervals. The documented default is kExampleConfig (`llama-mm train --print-config`).
//
// Strict, like every llama-mm format: an unknown key, a wrong type or a bad value is ErrorKind::Config naming
// the file, the line and the key path ("run.yaml:14: stages[0].optimizer.lr: expected a number, got 'fast'").
// The LLM is frozen while adapters train. The one exception is `text_model`: a stage of its own, before every
// adapter stage, that trains a stand-in LLM from scratch on the conversations alone (the bundled demo model).
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace llama_mm::train {

// What a stage may train. TextModel is the LLM itself (embeddings, self-attention layers, norm, output): allowed only
// alone, in stages before any adapter stage, so that every adapter learns on the LLM it will run with
// (paper-spec.md §0: the LLM is frozen while adapters train).
enum class Part {
  VisionEncoder,
  ImageCrossAttention,
  VideoAggregator,
  VideoCrossAttention,
  SpeechEncoder,
  SpeechAdapter,
  TextModel
};
const std::vector<std::pair<std::string, Part>>& part_names();

struct DataConfig {
  std::string format;  // jsonl, sharegpt, coco, librispeech, nemo
  std::string path;    // manifest, annotation file or directory; relative paths are from the config's folder
  std::string root;    // media paths in the manifest are relative to this ("" = the manifest's folder)
  double max_bad_fraction = 0.01;  // more unreadable samples than this stops the stage
  int64_t bucket_window = 64;      // audio: batches of similar clip length, sorted within windows of this many
                                   // batches (0: off)
};

struct OptimizerConfig {
  double lr = 1e-4, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
};

struct ScheduleConfig {
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;  // the cosine ends at lr · min_lr_ratio
};

// BEST-RQ speech encoder pre-training (paper-spec.md §2.3); the defaults are the paper's.
struct BestRqConfig {
  int64_t codebooks = 16, codebook_size = 8192, codebook_dim = 16;
  int64_t mask_span = 32;       // mel frames per masked span
  double mask_prob = 0.025;     // probability that a span starts at a mel frame
  double noise_std = 0.1;       // masked frames become N(0, noise_std) in the normalised features
  int64_t max_frames = 6000;    // longer utterances are cropped to this many mel frames (60 s)
  int64_t stats_samples = 256;  // utterances read for the per-bin feature statistics at the stage's start
};

struct StageConfig {
  std::string name;
  std::string objective = "next_token";  // next_token (captions, instructions, ASR/AST), best_rq (speech encoder),
                                         // contrastive (vision encoder, contrastive.h)
  DataConfig data;
  std::vector<Part> train;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  int64_t steps = 0, epochs = 0;  // exactly one is set
  int64_t batch_size = 8, grad_accum = 1;
  double clip_grad_norm = 1.0;  // 0: no clipping
  std::string precision = "fp32";  // fp32, bf16 (autocast with fp32 master weights)
  int64_t eval_every = 0, checkpoint_every = 0, keep_checkpoints = 3;
  DataConfig eval_data;       // path "" : evaluate on the training data
  int64_t eval_samples = 16;  // samples answered greedily per evaluation
  BestRqConfig best_rq;  // objective best_rq only
};

// Whether the stage trains the LLM (text_model, which trains alone).
inline bool trains_text_model(const StageConfig& s) {
  return std::find(s.train.begin(), s.train.end(), Part::TextModel) != s.train.end();
}

bool is_json_preset(const std::string& preset);  // ends with ".json"

struct AdapterSpec {
  std::string modality;  // video, speech
  std::string preset;    // create with this preset (init-model's), or a .json file: the tiny preset's config with
                         // the file's keys replaced (a JSON merge patch; relative to the config's folder), or
  std::string from;      // continue from this adapter file
};

struct TrainConfig {
  std::string base;        // the frozen model directory (Llama 3 text or Llama 3.2 Vision)
  std::string output_dir;  // the run folder: checkpoints, metrics.jsonl, metrics.csv
  uint64_t seed = 0;
  std::vector<AdapterSpec> adapters;
  std::vector<StageConfig> stages;
};

// The documented default config, with a comment on every key.
extern const char* const kExampleConfig;

// Applies "a.b.c=value" overrides (`--set`; a number segment indexes a list: "stages.0.optimizer.lr=3e-4") to
// the document, the value parsed as YAML. A path through a missing map creates it; an index past a list's end is
// an error.
void apply_override(YAML::Node& doc, const std::string& assignment);

// Parses a config document; `origin` names it in errors. Relative paths stay as written.
TrainConfig parse_train_config(const YAML::Node& doc, const std::string& origin);

// Reads `path`, applies `overrides`, parses, and resolves relative paths against the file's folder.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Checks what parsing cannot: data paths exist, stages train parts of adapters the run has (or the base has),
// output_dir is writable. Errors are ErrorKind::Config naming the stage.
void validate_train_config(const TrainConfig& cfg, const std::string& origin);

}  // namespace llama_mm::train
