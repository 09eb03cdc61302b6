// cli/data_command.cpp: `llama-mm data ...`: the demo model's synthetic datasets (data/data.h).
//
//   llama-mm data shapes -o data/shapes-train -n 5000 --seed 1     images/*.jpg + captions.jsonl (train's jsonl)
//   llama-mm data shapes -o data/shapes-test -n 500 --seed 2       a held-out split: another seed
//   llama-mm data motion -o data/motion-train -n 2000 --seed 1     videos/*.mp4 + captions.jsonl
//   llama-mm data speech -o data/speech-test -n 300 --seed 2 --split test   audio/*.wav + transcripts.jsonl
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

int run_data_shapes(const data::ShapesDatasetOptions& o) {
  std::cout << data::write_shapes_dataset(o, progress("shapes", "images")) << "\n";
  return 0;
}

struct SpeechCommandOptions {
  data::SpeechDatasetOptions p;
  std::string split = "train";
};

int run_data_speech(SpeechCommandOptions o) {
  o.p.split = o.split == "test" ? data::SpeechSplit::Test : data::SpeechSplit::Train;
  std::cout << data::write_speech_dataset(o.p, progress("speech", "utterances")) << "\n";
  return 0;
}

int run_data_motion(const data::MotionDatasetOptions& o) {
  std::cout << data::write_motion_dataset(o, progress("motion", "clips")) << "\n";
  return 0;
}

}  // namespace

void add_data_command(CLI::App& app, Action& action) {
  auto* data_cmd = app.add_subcommand("data", "Generate the demo model's synthetic datasets");
  data_cmd->require_subcommand(1);
  auto o = std::make_shared<data::ShapesDatasetOptions>();
  auto* shapes = data_cmd->add_subcommand(
      "shapes",
      "Images of 1-3 coloured shapes with captions (\"two red circles and a blue square on a white background\")");
  shapes->add_option("-o,--out", o->out_dir, "Output folder (images/ and captions.jsonl)")->required();
  shapes->add_option("-n", o->n, "Number of images")->required()->check(CLI::Range(int64_t(1), int64_t(10000000)));
  shapes->add_option("--seed", o->seed, "Random seed (another seed gives a held-out split)")->capture_default_str();
  shapes->add_option("--size", o->size, "Image side in pixels")->capture_default_str()->check(CLI::Range(32, 4096));
  shapes->add_option("--format", o->format, "jpg or png")->capture_default_str()->check(CLI::IsMember({"jpg", "png"}));
  shapes->callback([o, &action] { action = [o] { return run_data_shapes(*o); }; });

  auto m = std::make_shared<data::MotionDatasetOptions>();
  auto* motion = data_cmd->add_subcommand(
      "motion",
      "Short H.264 clips of a shape that moves left/right/up/down, grows or shrinks (\"a red circle grows\")");
  motion->add_option("-o,--out", m->out_dir, "Output folder (videos/ and captions.jsonl)")->required();
  motion->add_option("-n", m->n, "Number of clips")->required()->check(CLI::Range(int64_t(1), int64_t(10000000)));
  motion->add_option("--seed", m->seed, "Random seed (another seed gives a held-out split)")->capture_default_str();
  motion->add_option("--size", m->size, "Frame side in pixels (even)")
      ->capture_default_str()
      ->check(CLI::Range(32, 4096));
  motion->add_option("--frames", m->frames, "Frames per clip")->capture_default_str()->check(CLI::Range(2, 1024));
  motion->add_option("--fps", m->fps, "Frames per second")->capture_default_str()->check(CLI::Range(1, 240));
  motion->callback([m, &action] { action = [m] { return run_data_motion(*m); }; });

  auto sp = std::make_shared<SpeechCommandOptions>();
  auto* speech = data_cmd->add_subcommand(
      "speech", "Utterances spoken by espeak-ng (many voices, speeds, pitches, light noise) with their transcripts");
  speech->add_option("-o,--out", sp->p.out_dir, "Output folder (audio/ and transcripts.jsonl)")->required();
  speech->add_option("-n", sp->p.n, "Number of utterances")
      ->required()
      ->check(CLI::Range(int64_t(1), int64_t(10000000)));
  speech->add_option("--seed", sp->p.seed, "Random seed (another seed gives a held-out split)")->capture_default_str();
  speech->add_option("--split", sp->split, "train (two accents held out) or test (every accent)")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "test"}));
  speech->callback([sp, &action] { action = [sp] { return run_data_speech(*sp); }; });
}

}  // namespace llama_mm::cli
