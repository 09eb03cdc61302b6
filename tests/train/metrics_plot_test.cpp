// Tests train/metrics_plot and `llama-mm plot`: the PNG has one panel per metric, a falling loss is drawn falling
// across two stages, and runs without metrics or unknown metrics are errors.
#include "media/media.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm::train {
namespace {

// Rows of the curve colour (RGB 20, 90, 180) in column x of panel 0, or -1.
int curve_row(const media::Image& img, int x, int y_end) {
  for (int y = 0; y < y_end; ++y) {
    const uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
    if (std::abs(p[0] - 20) < 30 && std::abs(p[1] - 90) < 30 && std::abs(p[2] - 180) < 30) return y;
  }
  return -1;
}

TEST(MetricsPlot, DrawsOnePanelPerMetricAndTheLossFalls) {
  test::TempDir dir;
  {
    std::ofstream f(dir / "metrics.jsonl");
    for (int s = 0; s < 2; ++s)
      for (int step = 1; step <= 50; ++step)
        f << nlohmann::json{{"stage", s}, {"stage_name", s ? "second" : "first"}, {"step", step},
                            {"loss", 5.0 - 0.04 * (50 * s + step)}, {"lr", 1e-3}}
                 .dump()
          << "\n";
  }
  PlotOptions o;
  o.width = 600, o.panel_height = 200;
  const auto png = (dir / "m.png").string();
  EXPECT_EQ(plot_metrics(dir.path().string(), png, o), (std::vector<std::string>{"loss", "lr"}));  // no grad_norm
  const auto img = media::load_image_file(png);
  EXPECT_EQ(img.width, 600);
  EXPECT_EQ(img.height, 400);
  const int first = curve_row(img, 75, 200), last = curve_row(img, 575, 200);
  ASSERT_GE(first, 0);
  ASSERT_GE(last, 0);
  EXPECT_LT(first + 100, last);  // image rows grow downwards: the loss ends far lower than it starts

  auto r = test::run_cli("plot '" + dir.path().string() + "' -m lr");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (dir / "metrics.png").string() + "\n");
  EXPECT_EQ(test::run_cli("plot '" + dir.path().string() + "' -m accuracy").exit_code, 2);
  test::TempDir empty;
  EXPECT_EQ(test::run_cli("plot '" + empty.path().string() + "'").exit_code, 4);
}

}  // namespace
}  // namespace llama_mm::train
