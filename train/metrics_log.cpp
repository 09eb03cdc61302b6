// train/metrics_log.cpp: metrics.jsonl and metrics.csv (see metrics_log.h).
#include "train/metrics_log.h"

#include "llm/atomic_file.h"
#include "llm/error.h"

#include <filesystem>
#include <sstream>

namespace llama_mm::train {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string>& MetricsLog::columns() {
  static const std::vector<std::string> c = {"stage", "stage_name", "step",          "epoch",       "loss",
                                             "lr",    "grad_norm",  "samples_per_s", "tokens_per_s", "peak_rss_mb",
                                             "bad_samples", "elapsed_s", "eval_exact_match", "eval_wer",
                                             "eval_retrieval"};
  return c;
}

namespace {

std::string csv_line(const json& row) {
  std::string line;
  for (size_t i = 0; i < MetricsLog::columns().size(); ++i) {
    if (i) line += ",";
    const auto it = row.find(MetricsLog::columns()[i]);
    if (it == row.end()) continue;
    if (it->is_string()) {
      std::string s = it->get<std::string>(), q = "\"";
      for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      line += q + "\"";
    } else {
      line += it->dump();
    }
  }
  return line + "\n";
}

std::string header_line() {
  std::string h;
  for (const auto& c : MetricsLog::columns()) h += (h.empty() ? "" : ",") + c;
  return h + "\n";
}

}  // namespace

std::vector<json> read_metrics(const std::string& run_dir) {
  std::vector<json> rows;
  std::ifstream in(fs::path(run_dir) / "metrics.jsonl");
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    try {
      rows.push_back(json::parse(line));
    } catch (const json::exception&) {
      // a line cut by a crash mid-write: everything after it is from a later run's append, keep reading
    }
  }
  return rows;
}

MetricsLog::MetricsLog(const std::string& run_dir, bool resume, int64_t keep_stage, int64_t keep_step) {
  const auto jsonl = (fs::path(run_dir) / "metrics.jsonl").string(), csv = (fs::path(run_dir) / "metrics.csv").string();
  std::string kept_jsonl, kept_csv = header_line();
  if (resume)
    for (const auto& row : read_metrics(run_dir)) {
      const int64_t stage = row.value("stage", int64_t{0}), step = row.value("step", int64_t{0});
      if (stage < keep_stage || (stage == keep_stage && step <= keep_step)) {
        kept_jsonl += row.dump() + "\n";
        kept_csv += csv_line(row);
      }
    }
  write_file_atomic(jsonl, kept_jsonl);
  write_file_atomic(csv, kept_csv);
  jsonl_.open(jsonl, std::ios::app);
  csv_.open(csv, std::ios::app);
  if (!jsonl_ || !csv_) throw Error(ErrorKind::Runtime, run_dir + ": cannot open the metrics files");
}

void MetricsLog::write(const json& row) {
  jsonl_ << row.dump() << "\n" << std::flush;
  csv_ << csv_line(row) << std::flush;
}

}  // namespace llama_mm::train
