// cli/data_command.cpp: `llama-mm data ...`: the demo model's synthetic datasets (data/data.h).
//
//   llama-mm data shapes -o data/shapes-train -n 5000 --seed 1     images/*.jpg + captions.jsonl (train's jsonl)
//   llama-mm data shapes -o data/shapes-test -n 500 --seed 2       a held-out split: another seed
//   llama-mm data motion -o data/motion-train -n 2000 --seed 1     videos/*.mp4 + captions.jsonl
//   llama-mm data speech -o data/speech-test -n 300 --seed 2 --split test   audio/*.wav + transcripts.jsonl
//   llama-mm data speech -o data/speech-varied -n 20000 --seed 3 --vary-voices   voices beyond the presets
#include "cli/commands.h"
#include "data/data.h"

#include <functional>
#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {

// Progress on stderr about every tenth of the way.
std::function<void(int64_t, int64_t)> progress(const std::string& what, const std::string& unit) {
  auto shown = std::make_shared<int64_t>(0);
  return [=](int64_t done, int64_t n) {
    if (done == n || done - *shown >= std::max<int64_t>(1, n / 10)) {
      std::cerr << "data " << what << ": " << done << "/" << n << " " << unit << "\n";
      *shown = done;
    }
  };
}

struct SpeechCommandOptions : data::SpeechDatasetOptions {
  std::string split_name = "train";
};

// A generator subcommand with the options every one takes (-o, -n, --seed); its run writes the dataset and prints
// the manifest's path. `opts` holds out_dir, n and seed.
template <typename Options>
CLI::App* add_generator(CLI::App* data_cmd, Action& action, const std::string& name, const std::string& help,
                        const std::string& contents, const std::string& unit, std::shared_ptr<Options> opts,
                        std::function<std::string(const Options&, const std::function<void(int64_t, int64_t)>&)> write) {
  auto* sub = data_cmd->add_subcommand(name, help);
  sub->add_option("-o,--out", opts->out_dir, "Output folder (" + contents + ")")->required();
  sub->add_option("-n", opts->n, "Number of " + unit)->required()->check(CLI::Range(int64_t(1), int64_t(10000000)));
  sub->add_option("--seed", opts->seed, "Random seed (another seed gives a held-out split)")->capture_default_str();
  sub->callback([=, &action] {
    action = [=] {
      std::cout << write(*opts, progress(name, unit)) << "\n";
      return 0;
    };
  });
  return sub;
}

void add_max_turn(CLI::App* sub, double& max_turn) {
  sub->add_option("--max-turn", max_turn,
                  "Turn shapes from upright by at most this many degrees (squares 20; 180: any)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 180.0));
}

}  // namespace

void add_data_command(CLI::App& app, Action& action) {
  auto* data_cmd = app.add_subcommand("data", "Generate the demo model's synthetic datasets");
  data_cmd->require_subcommand(1);

  auto o = std::make_shared<data::ShapesDatasetOptions>();
  auto* shapes = add_generator<data::ShapesDatasetOptions>(
      data_cmd, action, "shapes",
      "Images of 1-3 coloured shapes with captions (\"two red circles and a blue square on a white background\")",
      "images/ and captions.jsonl", "images", o, data::write_shapes_dataset);
  shapes->add_option("--size", o->size, "Image side in pixels")->capture_default_str()->check(CLI::Range(32, 4096));
  shapes->add_option("--format", o->format, "jpg or png")->capture_default_str()->check(CLI::IsMember({"jpg", "png"}));
  shapes
      ->add_option_function<std::vector<double>>(
          "--radius",
          [o](const std::vector<double>& r) {
            if (!(r[0] > 0 && r[0] <= r[1] && r[1] <= 0.45))
              throw CLI::ValidationError("--radius", "expected MIN,MAX with 0 < MIN <= MAX <= 0.45");
            o->radius = {r[0], r[1]};
          },
          "Shape radius range as fractions of the image side, MIN,MAX (default 0.09,0.19)")
      ->delimiter(',')
      ->expected(2);
  add_max_turn(shapes, o->max_turn);

  auto m = std::make_shared<data::MotionDatasetOptions>();
  auto* motion = add_generator<data::MotionDatasetOptions>(
      data_cmd, action, "motion",
      "Short H.264 clips of a shape that moves left/right/up/down, grows or shrinks (\"a red circle grows\")",
      "videos/ and captions.jsonl", "clips", m, data::write_motion_dataset);
  motion->add_option("--size", m->size, "Frame side in pixels (even)")
      ->capture_default_str()
      ->check(CLI::Range(32, 4096));
  motion->add_option("--frames", m->frames, "Frames per clip")->capture_default_str()->check(CLI::Range(2, 1024));
  motion->add_option("--fps", m->fps, "Frames per second")->capture_default_str()->check(CLI::Range(1, 240));
  add_max_turn(motion, m->max_turn);

  auto sp = std::make_shared<SpeechCommandOptions>();
  auto* speech = add_generator<SpeechCommandOptions>(
      data_cmd, action, "speech",
      "Utterances spoken by espeak-ng (many voices, speeds, pitches, light noise) with their transcripts",
      "audio/ and transcripts.jsonl", "utterances", sp, [](const SpeechCommandOptions& o, const auto& progress) {
        data::SpeechDatasetOptions p = o;
        p.split = o.split_name == "test" ? data::SpeechSplit::Test : data::SpeechSplit::Train;
        return data::write_speech_dataset(p, progress);
      });
  speech->add_option("--split", sp->split_name, "train (two accents held out) or test (every accent)")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "test"}));
  speech->add_flag("--vary-voices", sp->vary_voices,
                   "Training split: redraw each voice's rhythm, intonation and formants (domain randomisation)");
}

}  // namespace llama_mm::cli
