// Tests train/train_config: the documented default parses, errors name file, line and key, overrides, the
// frozen-LLM rule, and the semantic checks.
#include "train/train.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm::train {
namespace {

// The error (a Config error) of parsing `yaml`, or "" when it parses.
std::string parse_error(const std::string& yaml) {
  try {
    parse_train_config(YAML::Load(yaml), "run.yaml");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
    return e.what();
  }
  return "";
}

const char* kMinimal = R"(base: m
output_dir: out
stages:
  - name: s
    data: {format: jsonl, path: d.jsonl}
    train: [image_cross_attention]
    steps: 5
)";

TEST(TrainConfig, TheDocumentedDefaultParses) {
  auto c = parse_train_config(YAML::Load(kExampleConfig), "example");
  ASSERT_EQ(c.stages.size(), 1u);
  const auto& s = c.stages[0];
  EXPECT_EQ(s.name, "video-captions");
  EXPECT_EQ(s.train, (std::vector<Part>{Part::VideoAggregator, Part::VideoCrossAttention}));
  EXPECT_DOUBLE_EQ(s.optimizer.lr, 1e-4);
  EXPECT_EQ(s.schedule.warmup_steps, 10);
  EXPECT_EQ(s.steps, 100);
  ASSERT_EQ(c.adapters.size(), 1u);
  EXPECT_EQ(c.adapters[0].modality, "video");
  // Defaults for what a minimal stage leaves out.
  auto m = parse_train_config(YAML::Load(kMinimal), "m");
  EXPECT_EQ(m.stages[0].batch_size, 8);
  EXPECT_EQ(m.stages[0].objective, "next_token");
  EXPECT_EQ(m.stages[0].precision, "fp32");
}

TEST(TrainConfig, ErrorsNameTheLineAndTheKey) {
  auto e = parse_error(std::string(kMinimal) + "    optimzer: {lr: 1}\n");
  EXPECT_NE(e.find("run.yaml:8: stages[0].optimzer: unknown key"), std::string::npos) << e;
  e = parse_error(std::string(kMinimal) + "    batch_size: many\n");
  EXPECT_NE(e.find("run.yaml:8: stages[0].batch_size: expected an integer, got 'many'"), std::string::npos) << e;
  e = parse_error(std::string(kMinimal) + "    optimizer: {lr: fast}\n");
  EXPECT_NE(e.find("stages[0].optimizer.lr: expected a number, got 'fast'"), std::string::npos) << e;
  e = parse_error(std::string(kMinimal) + "    optimizer: {lr: -1}\n");
  EXPECT_NE(e.find("lr must be > 0"), std::string::npos) << e;
  e = parse_error(std::string(kMinimal) + "    epochs: 2\n");
  EXPECT_NE(e.find("exactly one of steps and epochs"), std::string::npos) << e;
  e = parse_error("base: m\noutput_dir: o\nstages: []\n");
  EXPECT_NE(e.find("stages: expected a non-empty list"), std::string::npos) << e;
  e = parse_error("output_dir: o\nstages: []\n");
  EXPECT_NE(e.find("missing required key 'base'"), std::string::npos) << e;
  e = parse_error(std::string(kMinimal).replace(std::string(kMinimal).find("jsonl"), 5, "csv"));
  EXPECT_NE(e.find("stages[0].data.format: expected jsonl"), std::string::npos) << e;
  e = parse_error(std::string(kMinimal) + "adapters: [{modality: video}]\n");
  EXPECT_NE(e.find("adapters[0]: give exactly one of preset and from"), std::string::npos) << e;
}

TEST(TrainConfig, TheLlmIsFrozenWhileAdaptersTrain) {
  std::string y = kMinimal;
  y.replace(y.find("image_cross_attention"), 21, "image_cross_attention, llm");
  auto e = parse_error(y);
  EXPECT_NE(e.find("stages[0].train[1]: the LLM is frozen while adapters train"), std::string::npos) << e;
  y = kMinimal;
  y.replace(y.find("image_cross_attention"), 21, "lora");
  EXPECT_NE(parse_error(y).find("unknown part 'lora'"), std::string::npos);
  // text_model: alone, with next_token, and before every adapter stage.
  y = kMinimal;
  y.replace(y.find("image_cross_attention"), 21, "image_cross_attention, text_model");
  EXPECT_NE(parse_error(y).find("stages[0].train: text_model trains alone"), std::string::npos);
  const std::string text_stage = "  - name: t\n    data: {format: jsonl, path: d.jsonl}\n    train: [text_model]\n    steps: 5\n";
  y = std::string(kMinimal) + text_stage;
  e = parse_error(y);
  EXPECT_NE(e.find("stages[1].train: text_model comes after an adapter stage"), std::string::npos) << e;
  y = std::string(kMinimal);
  y.insert(y.find("  - name: s"), text_stage);
  EXPECT_EQ(parse_error(y), "");
  const auto c = parse_train_config(YAML::Load(y), "run.yaml");
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[0].train, std::vector<Part>{Part::TextModel});
  y.insert(y.find("    train: [text_model]"), "    objective: best_rq\n");
  EXPECT_NE(parse_error(y).find("text_model trains with objective next_token"), std::string::npos);
}

TEST(TrainConfig, OverridesEditTheDocument) {
  auto doc = YAML::Load(kMinimal);
  apply_override(doc, "stages.0.steps=7");
  apply_override(doc, "stages.0.optimizer.lr=3e-4");
  apply_override(doc, "seed=11");
  auto c = parse_train_config(doc, "run.yaml");
  EXPECT_EQ(c.stages[0].steps, 7);
  EXPECT_DOUBLE_EQ(c.stages[0].optimizer.lr, 3e-4);
  EXPECT_EQ(c.seed, 11u);
  EXPECT_THROW(apply_override(doc, "stages.3.steps=1"), Error);  // no stage 3
  EXPECT_THROW(apply_override(doc, "seed"), Error);              // no value
  apply_override(doc, "stages.0.typo=1");                         // lands in the document...
  EXPECT_NE(parse_error(YAML::Dump(doc)).find("stages[0].typo: unknown key"), std::string::npos);  // ...and is refused
}

TEST(TrainConfig, LoadResolvesPathsAndValidateChecksThem) {
  test::TempDir dir;
  const auto model = dir / "model";
  ASSERT_EQ(test::run_cli("init-model --arch llama --preset tiny -o '" + model.string() + "'").exit_code, 0);
  std::ofstream(dir / "d.jsonl") << "{}\n";
  std::string y = kMinimal;
  y.replace(y.find("base: m"), 7, "base: model");
  std::ofstream(dir / "run.yaml") << y;
  auto c = load_train_config((dir / "run.yaml").string());
  EXPECT_EQ(c.base, model.string());
  EXPECT_EQ(c.stages[0].data.path, (dir / "d.jsonl").string());
  // The tiny Llama is a text model: the image path cannot train on it.
  try {
    validate_train_config(c, "run.yaml");
    ADD_FAILURE() << "image parts on a text base accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a Llama 3.2 Vision model"), std::string::npos) << e.what();
  }
  c = load_train_config((dir / "run.yaml").string(), {"stages.0.train=[speech_adapter]"});
  EXPECT_THROW(validate_train_config(c, "run.yaml"), Error);  // no speech adapter in the run
  c = load_train_config((dir / "run.yaml").string(),
                        {"stages.0.train=[speech_adapter]", "adapters=[{modality: speech, preset: tiny}]"});
  EXPECT_NO_THROW(validate_train_config(c, "run.yaml"));
  c = load_train_config((dir / "run.yaml").string(), {"stages.0.train=[speech_adapter]",
                                                      "adapters=[{modality: speech, preset: tiny}]",
                                                      "stages.0.data.path=missing.jsonl"});
  EXPECT_THROW(validate_train_config(c, "run.yaml"), Error);
  // A .json preset is a file beside the config; it must exist.
  const std::vector<std::string> json_preset = {"stages.0.train=[speech_adapter]",
                                                "adapters=[{modality: speech, preset: speech.json}]"};
  c = load_train_config((dir / "run.yaml").string(), json_preset);
  EXPECT_EQ(c.adapters[0].preset, (dir / "speech.json").string());
  try {
    validate_train_config(c, "run.yaml");
    ADD_FAILURE() << "a missing preset file accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("speech preset file " + (dir / "speech.json").string() + " not found"),
              std::string::npos) << e.what();
  }
  std::ofstream(dir / "speech.json") << "{}\n";
  EXPECT_NO_THROW(validate_train_config(load_train_config((dir / "run.yaml").string(), json_preset), "run.yaml"));
  EXPECT_THROW(load_train_config((dir / "nope.yaml").string()), Error);
  std::ofstream(dir / "bad.yaml") << "base: [unclosed\n";
  EXPECT_THROW(load_train_config((dir / "bad.yaml").string()), Error);
}

TEST(TrainCommand, ValidateAndPrintConfig) {
  auto r = test::run_cli("train --print-config");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kExampleConfig);
  test::TempDir dir;
  std::ofstream(dir / "run.yaml") << std::string(kMinimal) + "    optimzer: {}\n";
  r = test::run_cli("train '" + (dir / "run.yaml").string() + "' --validate");
  EXPECT_EQ(r.exit_code, 5) << r.err;  // Config
  EXPECT_NE(r.err.find("run.yaml:8: stages[0].optimzer: unknown key"), std::string::npos) << r.err;
  EXPECT_EQ(test::run_cli("train").exit_code, 2);
}

}  // namespace
}  // namespace llama_mm::train
