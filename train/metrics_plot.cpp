// train/metrics_plot.cpp: metrics.jsonl -> PNG (see metrics_plot.h).
#include "train/metrics_plot.h"

#include "llm/atomic_file.h"
#include "llm/error.h"
#include "train/metrics_log.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace llama_mm::train {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

const cv::Scalar kInk(40, 40, 40), kGrid(225, 225, 225), kLine(180, 90, 20), kStage(60, 60, 200);

}  // namespace

std::vector<std::string> plot_metrics(const std::string& run_dir, const std::string& png, const PlotOptions& opts) {
  const auto rows = read_metrics(run_dir);
  if (rows.empty()) throw Error(ErrorKind::InputDecode, run_dir + ": no metrics.jsonl rows to plot");
  // x: the step counted across stages.
  std::vector<double> xs;
  std::vector<std::pair<double, std::string>> stage_starts;
  double offset = 0, last_step = 0;
  int64_t stage = -1;
  for (const auto& r : rows) {
    const int64_t s = r.value("stage", int64_t{0});
    if (s != stage) {
      offset += last_step;
      stage = s;
      stage_starts.emplace_back(offset, r.value("stage_name", std::string("stage ") + std::to_string(s + 1)));
    }
    last_step = r.value("step", 0.0);
    xs.push_back(offset + last_step);
  }
  std::vector<std::string> drawn;
  for (const auto& m : opts.metrics)
    if (std::any_of(rows.begin(), rows.end(), [&](const auto& r) { return r.contains(m) && r[m].is_number(); }))
      drawn.push_back(m);
  if (drawn.empty()) throw Error(ErrorKind::Usage, run_dir + ": none of the requested metrics is in metrics.jsonl");

  const int W = opts.width, PH = opts.panel_height, left = 70, right = 20, top = 28, bottom = 30;
  cv::Mat img(PH * static_cast<int>(drawn.size()), W, CV_8UC3, cv::Scalar(255, 255, 255));
  const double x0 = 0, x1 = std::max(xs.back(), 1.0);
  for (size_t p = 0; p < drawn.size(); ++p) {
    const auto& m = drawn[p];
    const int oy = static_cast<int>(p) * PH;
    const cv::Rect area(left, oy + top, W - left - right, PH - top - bottom);
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i].contains(m) && rows[i][m].is_number()) {
        double v = rows[i][m].get<double>();
        if (opts.log_y) {
          if (v <= 0) continue;
          v = std::log10(v);
        }
        if (std::isfinite(v)) pts.emplace_back(xs[i], v);
      }
    double lo = std::numeric_limits<double>::max(), hi = std::numeric_limits<double>::lowest();
    for (const auto& [x, v] : pts) lo = std::min(lo, v), hi = std::max(hi, v);
    if (pts.empty()) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    auto px = [&](double x) { return area.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (area.width - 1))); };
    auto py = [&](double v) { return area.y + area.height - 1 - static_cast<int>(std::lround((v - lo) / (hi - lo) * (area.height - 1))); };
    for (int g = 0; g <= 4; ++g) {  // horizontal grid with values
      const double v = lo + (hi - lo) * g / 4.0;
      cv::line(img, {area.x, py(v)}, {area.x + area.width - 1, py(v)}, kGrid, 1);
      cv::putText(img, number(opts.log_y ? std::pow(10.0, v) : v), {4, py(v) + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.38, kInk, 1, cv::LINE_AA);
    }
    for (const auto& [x, name] : stage_starts) {
      cv::line(img, {px(x), area.y}, {px(x), area.y + area.height - 1}, kStage, 1);
      cv::putText(img, name, {px(x) + 3, area.y + 12}, cv::FONT_HERSHEY_SIMPLEX, 0.38, kStage, 1, cv::LINE_AA);
    }
    cv::rectangle(img, area, kInk, 1);
    for (size_t i = 1; i < pts.size(); ++i)
      cv::line(img, {px(pts[i - 1].first), py(pts[i - 1].second)}, {px(pts[i].first), py(pts[i].second)}, kLine, 2, cv::LINE_AA);
    if (pts.size() == 1) cv::circle(img, {px(pts[0].first), py(pts[0].second)}, 3, kLine, -1);
    cv::putText(img, m + (opts.log_y ? " (log)" : ""), {left, oy + 19}, cv::FONT_HERSHEY_SIMPLEX, 0.55, kInk, 1, cv::LINE_AA);
    cv::putText(img, "step " + number(x1), {area.x + area.width - 80, oy + PH - 10}, cv::FONT_HERSHEY_SIMPLEX, 0.4, kInk, 1, cv::LINE_AA);
  }
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", img, bytes)) throw Error(ErrorKind::Runtime, png + ": PNG encoding failed");
  write_file_atomic(png, std::string(bytes.begin(), bytes.end()));
  return drawn;
}

}  // namespace llama_mm::train
