// cli/data_command.cpp: `llama-mm data ...`: the demo model's synthetic datasets (data/data.h).
//
//   llama-mm data shapes -o data/shapes-train -n 5000 --seed 1     images/*.jpg + captions.jsonl (train's jsonl)
//   llama-mm data shapes -o data/shapes-test -n 500 --seed 2       a held-out split: another seed
#include "cli/commands.h"
#include "data/data.h"

#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

int run_data_shapes(const data::ShapesDatasetOptions& o) {
  int64_t shown = 0;
  const auto manifest = data::write_shapes_dataset(o, [&](int64_t done, int64_t n) {
    if (done == n || done - shown >= std::max<int64_t>(1, n / 10)) {
      std::cerr << "data shapes: " << done << "/" << n << " images\n";
      shown = done;
    }
  });
  std::cout << manifest << "\n";
  return 0;
}

}  // namespace

void add_data_command(CLI::App& app, Action& action) {
  auto* data_cmd = app.add_subcommand("data", "Generate the demo model's synthetic datasets");
  data_cmd->require_subcommand(1);
  auto o = std::make_shared<data::ShapesDatasetOptions>();
  auto* shapes = data_cmd->add_subcommand(
      "shapes", "Images of 1-3 coloured shapes with captions (\"two red circles and a blue square on a white background\")");
  shapes->add_option("-o,--out", o->out_dir, "Output folder (images/ and captions.jsonl)")->required();
  shapes->add_option("-n", o->n, "Number of images")->required()->check(CLI::Range(int64_t(1), int64_t(10000000)));
  shapes->add_option("--seed", o->seed, "Random seed (another seed gives a held-out split)")->capture_default_str();
  shapes->add_option("--size", o->size, "Image side in pixels")->capture_default_str()->check(CLI::Range(32, 4096));
  shapes->add_option("--format", o->format, "jpg or png")->capture_default_str()->check(CLI::IsMember({"jpg", "png"}));
  shapes->callback([o, &action] { action = [o] { return run_data_shapes(*o); }; });
}

}  // namespace llama_mm::cli
