// train/trainer.h: `llama-mm train`: runs a TrainConfig's stages in order on one RunModel, so each stage starts from
// the adapters the previous ones trained.
//
// A stage: read the dataset, make the stage's parts trainable (everything else frozen), then for each optimizer
// step draw batch_size × grad_accum examples, average the next-token loss over all their target tokens (accumulated
// micro-batches give exactly the big batch's gradient), clip, AdamW at the scheduled LR. Checkpoints every
// checkpoint_every steps and at the stage's end; the stage's adapters go to RUN_DIR/adapters/. Metrics per step go
// to metrics.jsonl / metrics.csv, progress to stderr, a summary line per stage (JSON) to stdout.
//
// Resume continues from the newest checkpoint exactly: trained parameters, optimizer moments, schedule position and
// data position are restored, so 10 + 10 steps give the parameters of 20. SIGINT/SIGTERM finish the current step,
// write a checkpoint and return (resume later). With WORLD_SIZE > 1 the run is data parallel (data_parallel.h).
#pragma once

#include "train/train_config.h"

#include <cstdint>
#include <string>

namespace llama_mm::train {

struct TrainOptions {
  bool resume = false;       // continue from RUN_DIR's newest checkpoint (required when it has one)
  int64_t max_steps = 0;     // > 0: stop after this many optimizer steps in this invocation (checkpoint written)
  int workers = 2;           // preprocessing threads
};

struct TrainResult {
  bool finished = false;     // every stage is done (false: stopped early; resume to continue)
  std::string last_checkpoint;
};

TrainResult run_training(const TrainConfig& cfg, const TrainOptions& opts);

}  // namespace llama_mm::train
