// cli/train_command.cpp: `llama-mm train`: adapter training from a YAML config (train/train.h).
//
//   llama-mm train --print-config > run.yaml          the documented default
//   llama-mm train run.yaml --validate --set stages.0.optimizer.lr=3e-4
//   llama-mm train run.yaml                            trains every stage; Ctrl-C checkpoints and stops
//   llama-mm train run.yaml --resume                   continues from the newest checkpoint, exactly
#include "cli/commands.h"
#include "llm/error.h"
#include "train/train.h"

#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct TrainOptions {
  std::string config;
  std::vector<std::string> overrides;
  bool validate = false, print_config = false, resume = false;
  int64_t max_steps = 0;
  int workers = 2;
};

int run_train(const TrainOptions& o) {
  if (o.print_config) {
    std::cout << train::kExampleConfig;
    return 0;
  }
  if (o.config.empty()) throw Error(ErrorKind::Usage, "train: give a config file (see --print-config)");
  const auto cfg = train::load_train_config(o.config, o.overrides);
  train::validate_train_config(cfg, o.config);
  std::cerr << "train: " << o.config << ": valid, " << cfg.stages.size() << " stage(s), output " << cfg.output_dir
            << "\n";
  if (o.validate) return 0;
  train::TrainOptions t;
  t.resume = o.resume;
  t.max_steps = o.max_steps;
  t.workers = o.workers;
  const auto r = train::run_training(cfg, t);
  if (!r.finished) {
    std::cerr << "train: stopped; continue with: llama-mm train " << o.config << " --resume\n";
    return 130;
  }
  std::cerr << "train: done; adapters in " << cfg.output_dir << "/adapters\n";
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<TrainOptions>();
  auto* sub = app.add_subcommand("train", "Train adapters on a frozen Llama 3 from a YAML config");
  sub->add_option("config", o->config, "The run's YAML config");
  sub->add_option("--set", o->overrides, "Override a config value: key.path=value (repeatable; stages.0.steps=10)");
  sub->add_flag("--validate", o->validate, "Check the config (keys, types, values, paths) without training");
  sub->add_flag("--print-config", o->print_config, "Print the documented default config");
  sub->add_flag("--resume", o->resume, "Continue from the output folder's newest checkpoint");
  sub->add_option("--max-steps", o->max_steps, "Stop after this many optimizer steps (a checkpoint is written)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--workers", o->workers, "Preprocessing threads (default 2)")->check(CLI::PositiveNumber);
  sub->callback([o, &action] { action = [o] { return run_train(*o); }; });
}

}  // namespace llama_mm::cli
