// train/checkpoint.h: training checkpoints, one folder each under RUN_DIR/checkpoints/:
//
//   stage01-step00000050/  params.safetensors     what the run trains (RunModel::run_state names), fp32
//                          optimizer.safetensors  AdamW moments and step (AdamW::state)
//                          state.json             stage, step, data positions, bad samples, seed, counters
//
// A checkpoint is written into a ".tmp-…" folder, every file fsynced, then renamed into place and the parent
// fsynced: a crash (even kill -9) at any point leaves the earlier checkpoints as they were, and only folders with
// a state.json count. After a write, all but the newest `keep` are removed. The LLM is never in a checkpoint.
#pragma once

#include "train/data_loader.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <map>
#include <optional>
#include <set>
#include <string>

namespace llama_mm::train {

struct CheckpointState {
  int64_t stage = 0;        // index into TrainConfig::stages
  std::string stage_name;
  int64_t step = 0;         // optimizer steps done in the stage
  int64_t total_steps = 0;  // the stage's length
  DataPosition data;                   // where rank 0's (a single process's) data stream continues
  std::vector<DataPosition> rank_data;  // data parallel: every rank's, in rank order (empty for one process)
  std::set<int64_t> bad_samples;
  uint64_t seed = 0;
  int64_t samples = 0, tokens = 0;  // trained on so far in the stage
  double elapsed_s = 0;
  nlohmann::json to_json() const;
  static CheckpointState from_json(const nlohmann::json& j, const std::string& origin);
};

struct CheckpointTensors {
  std::map<std::string, torch::Tensor> params, optimizer;
};

// Writes a checkpoint folder and prunes to `keep`. Returns its path. Set LLAMA_MM_TEST_KILL_IN_CHECKPOINT=N to
// have the process SIGKILL itself halfway through its N-th checkpoint (the crash-safety test).
std::string write_checkpoint(const std::string& run_dir, const CheckpointState& state, const CheckpointTensors& tensors,
                             int64_t keep);

// The newest complete checkpoint folder of a run, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Reads a checkpoint folder; a damaged one is ErrorKind::ModelLoad naming the file.
CheckpointState read_checkpoint_state(const std::string& dir);
CheckpointTensors read_checkpoint_tensors(const std::string& dir);

}  // namespace llama_mm::train
