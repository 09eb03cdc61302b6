// train/metrics_plot.h: `llama-mm plot RUN_DIR`: a run's metrics.jsonl drawn as PNG line charts (OpenCV), one panel
// per metric, the x axis the optimizer step counted across stages, stage boundaries marked and named.
#pragma once

#include <string>
#include <vector>

namespace llama_mm::train {

struct PlotOptions {
  std::vector<std::string> metrics = {"loss", "lr", "grad_norm"};  // metrics.jsonl fields; absent ones are skipped
  int width = 900, panel_height = 260;
  bool log_y = false;  // log scale for positive series
};

// Writes the chart to `png`; ErrorKind::InputDecode naming the run when it has no metrics rows, Usage when none of
// the metrics is in them. Returns the metrics drawn.
std::vector<std::string> plot_metrics(const std::string& run_dir, const std::string& png, const PlotOptions& opts = {});

}  // namespace llama_mm::train
