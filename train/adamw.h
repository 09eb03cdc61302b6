// train/adamw.h: AdamW with decoupled weight decay (Loshchilov & Hutter; torch.optim.AdamW's update), its state
// as named tensors for checkpoints, the warm-up + cosine learning-rate schedule and global-norm gradient clipping.
//
// Update per parameter p with gradient g at step t (1-based):
//   p -= lr·wd·p;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)
// Weight decay applies to matrices only (dim >= 2): gates, norms, biases and latents of rank < 2 are not decayed.
// Moments are fp32 whatever the parameter dtype.
#pragma once

#include "train/train_config.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace llama_mm::train {

using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;

class AdamW {
 public:
  AdamW(NamedParams params, const OptimizerConfig& cfg);
  void step(double lr);  // parameters without a gradient are left as they are
  void zero_grad();
  int64_t steps() const { return t_; }
  // "exp_avg.NAME", "exp_avg_sq.NAME" and "step" (a 0-d int64 tensor).
  std::map<std::string, torch::Tensor> state() const;
  // Restores state() output; ErrorKind::ModelLoad naming `origin` when a tensor is missing or mis-shaped.
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& origin);

 private:
  NamedParams params_;
  OptimizerConfig cfg_;
  std::vector<torch::Tensor> m_, v_;
  int64_t t_ = 0;
};

// Learning rate for optimizer step `step` (0-based) of `total`: linear warm-up from lr/warmup to lr over
// warmup_steps, then half a cosine from lr down to lr·min_lr_ratio at the last step.
double scheduled_lr(const OptimizerConfig& opt, const ScheduleConfig& sched, int64_t step, int64_t total);

// Scales every gradient so that their global L2 norm is at most max_norm (0: no clipping). Returns the norm before
// clipping.
double clip_grad_norm(const NamedParams& params, double max_norm);

}  // namespace llama_mm::train
