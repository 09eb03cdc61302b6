// train/train_config.cpp: the strict YAML training config (see train_config.h).
#include "train/train_config.h"

#include "adapters/mllama_config.h"
#include "llm/error.h"

#include <algorithm>
#include <filesystem>
#include <set>

namespace llama_mm::train {

namespace fs = std::filesystem;

const char* const kExampleConfig = R"(# llama-mm train config. Relative paths are from this file's folder.
base: models/Llama-3.2-11B-Vision-Instruct  # the frozen model (Llama 3 text, or Llama 3.2 Vision for image/video)
output_dir: runs/example                    # checkpoints, metrics.jsonl/.csv, eval/ answers
seed: 0
adapters:                                   # adapters this run creates (preset) or continues (from)
  - modality: video                         # video or speech
    preset: tiny                            # init-model's presets: tiny, paper-8b, paper-70b, or a .json file
                                            # of keys replacing the tiny preset's (configs/demo/video.json)
    # from: runs/previous/video.safetensors
stages:                                     # run in order; a stage's adapters feed the next
  - name: video-captions
    objective: next_token                   # next_token; best_rq (speech encoder pretraining); contrastive
                                            # (vision encoder pretraining on image-caption pairs)
    data:
      format: jsonl                         # jsonl, sharegpt, coco, librispeech, nemo
      path: data/videos.jsonl               # {"video": "clip.mp4", "text": "..."} per line
      root: data                            # media paths are relative to this (default: the manifest's folder)
      max_bad_fraction: 0.01                # more unreadable samples than this stops the stage
      bucket_window: 64                     # audio: batch clips of similar length, sorted in windows of N batches (0: off)
    train: [video_aggregator, video_cross_attention]  # everything else stays frozen, the LLM too (text_model:
                                            # a stand-in LLM pretrained alone, before the adapter stages)
    optimizer: {lr: 1.0e-4, weight_decay: 0.01, beta1: 0.9, beta2: 0.95, eps: 1.0e-8}  # AdamW
    schedule: {warmup_steps: 10, min_lr_ratio: 0.1}  # linear warm-up, then cosine to lr * min_lr_ratio
    steps: 100                              # or epochs: N
    batch_size: 4                           # per process (data parallel: RANK, WORLD_SIZE, MASTER_ADDR/PORT)
    grad_accum: 1
    clip_grad_norm: 1.0                     # 0: off
    precision: fp32                         # fp32, or bf16 (CUDA: autocast, fp32 master weights)
    eval_every: 0                           # N: every N steps and at the end, greedy answers for eval_samples
    # eval_data: {format: jsonl, path: data/val.jsonl}   # default: the first eval_samples of the training data
    eval_samples: 16                        # metrics: eval_exact_match, eval_wer (word error rate); contrastive:
                                            # eval_retrieval (the image's nearest caption among them is its own)
    checkpoint_every: 50                    # 0: at the end only
    keep_checkpoints: 3
    # best_rq: {codebooks: 16, codebook_size: 8192, codebook_dim: 16, mask_span: 32, mask_prob: 0.025,
    #           noise_std: 0.1, max_frames: 6000, stats_samples: 256}   # objective best_rq only (the paper's values)
)";

bool is_json_preset(const std::string& preset) {
  return preset.size() > 5 && preset.compare(preset.size() - 5, 5, ".json") == 0;
}

const std::vector<std::pair<std::string, Part>>& part_names() {
  static const std::vector<std::pair<std::string, Part>> names = {
      {"vision_encoder", Part::VisionEncoder},         {"image_cross_attention", Part::ImageCrossAttention},
      {"video_aggregator", Part::VideoAggregator},     {"video_cross_attention", Part::VideoCrossAttention},
      {"speech_encoder", Part::SpeechEncoder},         {"speech_adapter", Part::SpeechAdapter},
      {"text_model", Part::TextModel}};
  return names;
}

namespace {

// Where a node is, for messages: "file:line: path".
struct At {
  const std::string& origin;
  std::string path;
  YAML::Node node;  // a handle (yaml-cpp nodes are shared references), held by value
  [[noreturn]] void fail(const std::string& what) const {
    const auto m = node.Mark();
    const std::string line = m.line >= 0 ? ":" + std::to_string(m.line + 1) : "";
    throw Error(ErrorKind::Config, origin + line + ": " + (path.empty() ? "<root>" : path) + ": " + what);
  }
  At child(const std::string& key, const YAML::Node& n) const {
    return {origin, path.empty() ? key : path + "." + key, n};
  }
};

std::string shown(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  return n.IsSequence() ? "a list" : n.IsMap() ? "a map" : "nothing";
}

void check_keys(const At& at, const std::vector<std::string>& known) {
  if (!at.node.IsMap()) at.fail("expected a map, got " + shown(at.node));
  for (const auto& kv : at.node) {
    const auto key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end())
      at.child(key, kv.second).fail("unknown key (known: " + [&] {
        std::string s;
        for (const auto& k : known) s += (s.empty() ? "" : ", ") + k;
        return s;
      }() + ")");
  }
}

template <typename T>
T scalar(const At& at, const char* want) {
  if (!at.node.IsScalar()) at.fail(std::string("expected ") + want + ", got " + shown(at.node));
  try {
    return at.node.as<T>();
  } catch (const YAML::Exception&) {
    at.fail(std::string("expected ") + want + ", got " + shown(at.node));
  }
}

// Reads map[key] into `out` when present.
template <typename T>
void read(const At& map, const std::string& key, T& out) {
  const YAML::Node n = map.node[key];
  if (!n) return;
  const At at = map.child(key, n);
  if constexpr (std::is_same_v<T, std::string>) out = scalar<std::string>(at, "a string");
  else if constexpr (std::is_same_v<T, double>) out = scalar<double>(at, "a number");
  else if constexpr (std::is_same_v<T, uint64_t>) out = scalar<uint64_t>(at, "a non-negative integer");
  else out = scalar<int64_t>(at, "an integer");
}

void require(const At& map, const std::string& key) {
  if (!map.node[key]) map.fail("missing required key '" + key + "'");
}

void at_least(const At& map, const std::string& key, double v, double lo, bool strict) {
  if (strict ? v > lo : v >= lo) return;
  const YAML::Node n = map.node[key];
  (n ? map.child(key, n) : map).fail(key + " must be " + (strict ? "> " : ">= ") + std::to_string(lo));
}

Part parse_part(const At& at) {
  const auto s = scalar<std::string>(at, "a part name");
  for (const auto& [name, part] : part_names())
    if (name == s) return part;
  if (s == "llm" || s == "language_model" || s == "text" || s == "decoder")
    at.fail("the LLM is frozen while adapters train (the paper's rule); to pretrain a stand-in LLM, train "
            "[text_model] in a stage of its own before the adapter stages");
  std::string known;
  for (const auto& [name, part] : part_names()) known += (known.empty() ? "" : ", ") + name;
  at.fail("unknown part '" + s + "' (known: " + known + ")");
}

DataConfig parse_data(const At& data) {
  DataConfig d;
  check_keys(data, {"format", "path", "root", "max_bad_fraction", "bucket_window"});
  require(data, "format");
  require(data, "path");
  read(data, "format", d.format);
  read(data, "path", d.path);
  read(data, "root", d.root);
  read(data, "max_bad_fraction", d.max_bad_fraction);
  read(data, "bucket_window", d.bucket_window);
  static const std::set<std::string> formats = {"jsonl", "sharegpt", "coco", "librispeech", "nemo"};
  if (!formats.count(d.format))
    data.child("format", data.node["format"]).fail("expected jsonl, sharegpt, coco, librispeech or nemo, got '" +
                                                   d.format + "'");
  if (d.max_bad_fraction < 0 || d.max_bad_fraction > 1)
    data.child("max_bad_fraction", data.node["max_bad_fraction"]).fail("must be in [0, 1]");
  if (d.bucket_window < 0) data.child("bucket_window", data.node["bucket_window"]).fail("must be >= 0");
  return d;
}

StageConfig parse_stage(const At& at) {
  check_keys(at, {"name", "objective", "data", "train", "optimizer", "schedule", "steps", "epochs", "batch_size",
                  "grad_accum", "clip_grad_norm", "precision", "eval_every", "eval_data", "eval_samples",
                  "checkpoint_every", "keep_checkpoints", "best_rq"});
  StageConfig s;
  require(at, "name");
  read(at, "name", s.name);
  read(at, "objective", s.objective);
  if (s.objective != "next_token" && s.objective != "best_rq" && s.objective != "contrastive")
    at.child("objective", at.node["objective"])
        .fail("expected next_token, best_rq or contrastive, got '" + s.objective + "'");
  require(at, "data");
  s.data = parse_data(at.child("data", at.node["data"]));
  if (const YAML::Node n = at.node["eval_data"]) s.eval_data = parse_data(at.child("eval_data", n));
  require(at, "train");
  const At train = at.child("train", at.node["train"]);
  if (!train.node.IsSequence() || train.node.size() == 0) train.fail("expected a non-empty list of parts");
  for (size_t i = 0; i < train.node.size(); ++i)
    s.train.push_back(parse_part({at.origin, train.path + "[" + std::to_string(i) + "]", train.node[i]}));
  if (trains_text_model(s) && s.train.size() > 1)
    train.fail("text_model trains alone: the adapters learn on the LLM it leaves, in later stages");
  if (trains_text_model(s) && s.objective != "next_token")
    train.fail("text_model trains with objective next_token");
  if (const YAML::Node n = at.node["optimizer"]) {
    const At opt = at.child("optimizer", n);
    check_keys(opt, {"lr", "weight_decay", "beta1", "beta2", "eps"});
    read(opt, "lr", s.optimizer.lr);
    read(opt, "weight_decay", s.optimizer.weight_decay);
    read(opt, "beta1", s.optimizer.beta1);
    read(opt, "beta2", s.optimizer.beta2);
    read(opt, "eps", s.optimizer.eps);
    at_least(opt, "lr", s.optimizer.lr, 0, true);
    at_least(opt, "weight_decay", s.optimizer.weight_decay, 0, false);
    at_least(opt, "eps", s.optimizer.eps, 0, true);
    for (const char* b : {"beta1", "beta2"}) {
      const double v = std::string(b) == "beta1" ? s.optimizer.beta1 : s.optimizer.beta2;
      if (v < 0 || v >= 1) (n[b] ? opt.child(b, n[b]) : opt).fail(std::string(b) + " must be in [0, 1)");
    }
  }
  if (const YAML::Node n = at.node["schedule"]) {
    const At sch = at.child("schedule", n);
    check_keys(sch, {"warmup_steps", "min_lr_ratio"});
    read(sch, "warmup_steps", s.schedule.warmup_steps);
    read(sch, "min_lr_ratio", s.schedule.min_lr_ratio);
    at_least(sch, "warmup_steps", static_cast<double>(s.schedule.warmup_steps), 0, false);
    if (s.schedule.min_lr_ratio < 0 || s.schedule.min_lr_ratio > 1)
      (n["min_lr_ratio"] ? sch.child("min_lr_ratio", n["min_lr_ratio"]) : sch).fail("must be in [0, 1]");
  }
  read(at, "steps", s.steps);
  read(at, "epochs", s.epochs);
  if ((s.steps > 0) == (s.epochs > 0)) at.fail("give exactly one of steps and epochs, a positive integer");
  read(at, "batch_size", s.batch_size);
  read(at, "grad_accum", s.grad_accum);
  read(at, "clip_grad_norm", s.clip_grad_norm);
  read(at, "precision", s.precision);
  read(at, "eval_every", s.eval_every);
  read(at, "eval_samples", s.eval_samples);
  at_least(at, "eval_samples", static_cast<double>(s.eval_samples), 1, false);
  if (s.eval_every > 0 && s.objective == "best_rq") at.child("eval_every", at.node["eval_every"]).fail("best_rq has no generation to evaluate");
  read(at, "checkpoint_every", s.checkpoint_every);
  read(at, "keep_checkpoints", s.keep_checkpoints);
  at_least(at, "batch_size", static_cast<double>(s.batch_size), 1, false);
  at_least(at, "grad_accum", static_cast<double>(s.grad_accum), 1, false);
  at_least(at, "clip_grad_norm", s.clip_grad_norm, 0, false);
  at_least(at, "eval_every", static_cast<double>(s.eval_every), 0, false);
  at_least(at, "checkpoint_every", static_cast<double>(s.checkpoint_every), 0, false);
  at_least(at, "keep_checkpoints", static_cast<double>(s.keep_checkpoints), 1, false);
  if (const YAML::Node n = at.node["best_rq"]) {
    const At b = at.child("best_rq", n);
    if (s.objective != "best_rq") b.fail("only for objective best_rq");
    check_keys(b, {"codebooks", "codebook_size", "codebook_dim", "mask_span", "mask_prob", "noise_std", "max_frames",
                   "stats_samples"});
    auto& q = s.best_rq;
    read(b, "codebooks", q.codebooks);
    read(b, "codebook_size", q.codebook_size);
    read(b, "codebook_dim", q.codebook_dim);
    read(b, "mask_span", q.mask_span);
    read(b, "mask_prob", q.mask_prob);
    read(b, "noise_std", q.noise_std);
    read(b, "max_frames", q.max_frames);
    read(b, "stats_samples", q.stats_samples);
    for (auto [key, v] : {std::pair{"codebooks", q.codebooks}, {"codebook_size", q.codebook_size},
                          {"codebook_dim", q.codebook_dim}, {"mask_span", q.mask_span}, {"max_frames", q.max_frames},
                          {"stats_samples", q.stats_samples}})
      at_least(b, key, static_cast<double>(v), 1, false);
    if (q.mask_prob <= 0 || q.mask_prob > 1) (n["mask_prob"] ? b.child("mask_prob", n["mask_prob"]) : b).fail("must be in (0, 1]");
    at_least(b, "noise_std", q.noise_std, 0, false);
  }
  if (s.precision != "fp32" && s.precision != "bf16")
    at.child("precision", at.node["precision"]).fail("expected fp32 or bf16, got '" + s.precision + "'");
  return s;
}

// "stages.0.optimizer.lr" -> {"stages", "0", "optimizer", "lr"}.
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1)
    out.push_back(path.substr(start, dot - start));
  out.push_back(path.substr(start));
  return out;
}

bool is_index(const std::string& s) { return !s.empty() && std::all_of(s.begin(), s.end(), ::isdigit); }

}  // namespace

void apply_override(YAML::Node& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(ErrorKind::Usage, "--set " + assignment + ": expected key.path=value");
  const auto keys = split_path(assignment.substr(0, eq));
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::Usage, "--set " + assignment + ": the value is not YAML: " + e.what());
  }
  // yaml-cpp's operator[] hands out handles into the document: walking with reset() edits it in place.
  YAML::Node cur;
  cur.reset(doc);
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& k = keys[i];
    if (k.empty()) throw Error(ErrorKind::Usage, "--set " + assignment + ": empty key");
    const bool last = i + 1 == keys.size();
    YAML::Node next;
    if (cur.IsSequence()) {
      if (!is_index(k) || std::stoul(k) >= cur.size())
        throw Error(ErrorKind::Usage, "--set " + assignment + ": '" + k + "' is not an index of a list of " +
                                          std::to_string(cur.size()));
      next.reset(cur[std::stoul(k)]);
    } else {
      if (cur.IsScalar()) throw Error(ErrorKind::Usage, "--set " + assignment + ": '" + k + "' is below a value");
      next.reset(cur[k]);
    }
    if (last) next = value;  // assigns through the handle
    cur.reset(next);
  }
}

TrainConfig parse_train_config(const YAML::Node& doc, const std::string& origin) {
  const At root{origin, "", doc};
  check_keys(root, {"base", "output_dir", "seed", "adapters", "stages"});
  TrainConfig c;
  require(root, "base");
  require(root, "output_dir");
  require(root, "stages");
  read(root, "base", c.base);
  read(root, "output_dir", c.output_dir);
  read(root, "seed", c.seed);
  if (const YAML::Node n = doc["adapters"]) {
    const At list = root.child("adapters", n);
    if (!n.IsSequence()) list.fail("expected a list");
    for (size_t i = 0; i < n.size(); ++i) {
      const At a{origin, list.path + "[" + std::to_string(i) + "]", n[i]};
      check_keys(a, {"modality", "preset", "from"});
      AdapterSpec spec;
      require(a, "modality");
      read(a, "modality", spec.modality);
      read(a, "preset", spec.preset);
      read(a, "from", spec.from);
      if (spec.modality != "video" && spec.modality != "speech")
        a.child("modality", n[i]["modality"]).fail("expected video or speech, got '" + spec.modality + "'");
      if (spec.preset.empty() == spec.from.empty()) a.fail("give exactly one of preset and from");
      for (const auto& other : c.adapters)
        if (other.modality == spec.modality) a.fail("a second " + spec.modality + " adapter");
      c.adapters.push_back(spec);
    }
  }
  const At stages = root.child("stages", doc["stages"]);
  if (!stages.node.IsSequence() || stages.node.size() == 0) stages.fail("expected a non-empty list of stages");
  for (size_t i = 0; i < stages.node.size(); ++i) {
    c.stages.push_back(parse_stage({origin, stages.path + "[" + std::to_string(i) + "]", stages.node[i]}));
    if (trains_text_model(c.stages.back()) &&
        !std::all_of(c.stages.begin(), c.stages.end() - 1, [](const StageConfig& p) { return trains_text_model(p); }))
      At{origin, stages.path + "[" + std::to_string(i) + "].train", stages.node[i]["train"]}.fail(
          "text_model comes after an adapter stage: the adapters must learn on the final LLM, so train it first");
    for (size_t j = 0; j + 1 < c.stages.size(); ++j)
      if (c.stages[j].name == c.stages.back().name)
        At{origin, stages.path + "[" + std::to_string(i) + "].name", stages.node[i]["name"]}.fail(
            "stage name '" + c.stages.back().name + "' is used twice");
  }
  return c;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(ErrorKind::Config, path + ": cannot read the config file");
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::Config, path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  for (const auto& o : overrides) apply_override(doc, o);
  auto c = parse_train_config(doc, path);
  const fs::path dir = fs::path(path).parent_path();
  auto resolve = [&](std::string& p) {
    if (!p.empty() && fs::path(p).is_relative()) p = (dir / p).lexically_normal().string();
  };
  resolve(c.base);
  resolve(c.output_dir);
  for (auto& a : c.adapters) {
    resolve(a.from);
    if (is_json_preset(a.preset)) resolve(a.preset);
  }
  for (auto& s : c.stages) resolve(s.data.path), resolve(s.data.root), resolve(s.eval_data.path), resolve(s.eval_data.root);
  return c;
}

void validate_train_config(const TrainConfig& cfg, const std::string& origin) {
  auto fail = [&](const std::string& what) { throw Error(ErrorKind::Config, origin + ": " + what); };
  if (!fs::is_directory(cfg.base)) fail("base: model directory " + cfg.base + " not found");
  const bool mllama = is_mllama_config(cfg.base);
  auto has = [&](const char* modality) {
    return std::any_of(cfg.adapters.begin(), cfg.adapters.end(), [&](const AdapterSpec& a) { return a.modality == modality; });
  };
  for (const auto& a : cfg.adapters) {
    if (!a.from.empty() && !fs::is_regular_file(a.from))
      fail("adapters: " + a.modality + " adapter file " + a.from + " not found");
    if (is_json_preset(a.preset) && !fs::is_regular_file(a.preset))
      fail("adapters: " + a.modality + " preset file " + a.preset + " not found");
    if (a.modality == "video" && !mllama) fail("adapters: a video adapter needs a Llama 3.2 Vision base, not " + cfg.base);
  }
  for (const auto& s : cfg.stages) {
    const std::string where = "stage '" + s.name + "': ";
    if (!fs::exists(s.data.path)) fail(where + "data.path " + s.data.path + " not found");
    if (!s.eval_data.path.empty() && !fs::exists(s.eval_data.path))
      fail(where + "eval_data.path " + s.eval_data.path + " not found");
    if (!s.data.root.empty() && !fs::is_directory(s.data.root)) fail(where + "data.root " + s.data.root + " not found");
    for (Part p : s.train) {
      const bool vision = p == Part::VisionEncoder || p == Part::ImageCrossAttention;
      const bool video = p == Part::VideoAggregator || p == Part::VideoCrossAttention;
      const bool speech = p == Part::SpeechEncoder || p == Part::SpeechAdapter;
      if (vision && !mllama) fail(where + "trains the image path, but " + cfg.base + " is not a Llama 3.2 Vision model");
      if (video && !has("video")) fail(where + "trains the video path, but the run has no video adapter (adapters:)");
      if (speech && !has("speech")) fail(where + "trains the speech path, but the run has no speech adapter (adapters:)");
    }
    if (s.objective == "best_rq" && (s.train.size() != 1 || s.train[0] != Part::SpeechEncoder))
      fail(where + "best_rq pretrains the speech encoder alone: train: [speech_encoder]");
    if (s.objective == "contrastive" && (s.train.size() != 1 || s.train[0] != Part::VisionEncoder))
      fail(where + "contrastive pretrains the vision encoder alone: train: [vision_encoder]");
  }
}

}  // namespace llama_mm::train
