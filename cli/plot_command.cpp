// cli/plot_command.cpp: `llama-mm plot RUN_DIR`: a training run's curves as a PNG (train/metrics_plot.h).
//
//   llama-mm plot runs/example                       writes runs/example/metrics.png
//   llama-mm plot runs/example -m loss -m tokens_per_s --log -o curves.png
#include "cli/commands.h"
#include "train/train.h"

#include <filesystem>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

struct PlotCommandOptions {
  std::string run_dir, out;
  std::vector<std::string> metrics;
  bool log_y = false;
};

int run_plot(const PlotCommandOptions& o) {
  train::PlotOptions p;
  if (!o.metrics.empty()) p.metrics = o.metrics;
  p.log_y = o.log_y;
  const std::string out = o.out.empty() ? (std::filesystem::path(o.run_dir) / "metrics.png").string() : o.out;
  const auto drawn = train::plot_metrics(o.run_dir, out, p);
  std::string list;
  for (const auto& m : drawn) list += (list.empty() ? "" : ", ") + m;
  std::cerr << "plot: " << list << "\n";
  std::cout << out << "\n";
  return 0;
}

}  // namespace

void add_plot_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<PlotCommandOptions>();
  auto* sub = app.add_subcommand("plot", "Draw a training run's metrics (metrics.jsonl) as a PNG chart");
  sub->add_option("run_dir", o->run_dir, "The run's output folder")->required();
  sub->add_option("-o,--output", o->out, "PNG file (default RUN_DIR/metrics.png)");
  sub->add_option("-m,--metric", o->metrics, "A metrics.jsonl field to draw (repeatable; default loss, lr, grad_norm)")
      ->allow_extra_args(false);
  sub->add_flag("--log", o->log_y, "Logarithmic y axis");
  sub->callback([o, &action] { action = [o] { return run_plot(*o); }; });
}

}  // namespace llama_mm::cli
