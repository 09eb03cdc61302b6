// train/adamw.cpp: AdamW, the LR schedule and gradient clipping (see adamw.h).
#include "train/adamw.h"

#include "llm/error.h"

#include <cmath>

namespace llama_mm::train {

AdamW::AdamW(NamedParams params, const OptimizerConfig& cfg) : params_(std::move(params)), cfg_(cfg) {
  for (const auto& [name, p] : params_) {
    m_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32)));
    v_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32)));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const auto g = p.grad().to(torch::kFloat32);
    auto master = p.to(torch::kFloat32);  // p itself when fp32
    if (cfg_.weight_decay > 0 && p.dim() >= 2) master.mul_(1.0 - lr * cfg_.weight_decay);
    m_[i].mul_(cfg_.beta1).add_(g, 1.0 - cfg_.beta1);
    v_[i].mul_(cfg_.beta2).addcmul_(g, g, 1.0 - cfg_.beta2);
    const auto denom = (v_[i] / bc2).sqrt_().add_(cfg_.eps);
    master.addcdiv_(m_[i], denom, -lr / bc1);
    if (!master.is_same(p)) p.copy_(master);
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    s["exp_avg." + params_[i].first] = m_[i];
    s["exp_avg_sq." + params_[i].first] = v_[i];
  }
  s["step"] = torch::tensor(t_, torch::kInt64);
  return s;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, const std::string& origin) {
  auto get = [&](const std::string& key, const torch::Tensor& like) {
    const auto it = state.find(key);
    if (it == state.end()) throw Error(ErrorKind::ModelLoad, origin + ": optimizer state has no " + key);
    if (like.defined() && it->second.sizes() != like.sizes())
      throw Error(ErrorKind::ModelLoad, origin + ": optimizer state " + key + " has the wrong shape");
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(get("exp_avg." + params_[i].first, m_[i]));
    v_[i].copy_(get("exp_avg_sq." + params_[i].first, v_[i]));
  }
  t_ = get("step", {}).item<int64_t>();
}

double scheduled_lr(const OptimizerConfig& opt, const ScheduleConfig& sched, int64_t step, int64_t total) {
  if (step < sched.warmup_steps) return opt.lr * static_cast<double>(step + 1) / static_cast<double>(sched.warmup_steps);
  const int64_t span = total - sched.warmup_steps - 1;
  const double progress = span <= 0 ? 0.0 : std::min(1.0, static_cast<double>(step - sched.warmup_steps) / span);
  const double lo = opt.lr * sched.min_lr_ratio;
  return lo + (opt.lr - lo) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

double clip_grad_norm(const NamedParams& params, double max_norm) {
  torch::NoGradGuard no_grad;
  double sq = 0;
  for (const auto& [name, p] : params)
    if (p.grad().defined()) sq += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& [name, p] : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return norm;
}

}  // namespace llama_mm::train
