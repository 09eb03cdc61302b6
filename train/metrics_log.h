// train/metrics_log.h: a run's metrics, one row per optimizer step, in RUN_DIR/metrics.jsonl (every field) and
// RUN_DIR/metrics.csv (the fixed columns below), appended and flushed as training goes. A resumed run first drops
// the rows past its checkpoint, so the files read as one uninterrupted run.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace llama_mm::train {

class MetricsLog {
 public:
  // Columns of metrics.csv, in order (missing fields are left empty).
  static const std::vector<std::string>& columns();
  // A fresh run starts empty files; a resumed one keeps the rows up to (keep_stage, keep_step) inclusive.
  MetricsLog(const std::string& run_dir, bool resume, int64_t keep_stage = 0, int64_t keep_step = 0);
  void write(const nlohmann::json& row);

 private:
  std::ofstream jsonl_, csv_;
};

// Every row of a run's metrics.jsonl (`llama-mm plot`, tests).
std::vector<nlohmann::json> read_metrics(const std::string& run_dir);

}  // namespace llama_mm::train
