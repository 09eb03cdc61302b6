// Tests train/trainer end to end on random tiny models: a 4-image caption set and a 4-clip speech set are learned
// (greedy captions and transcripts reproduce them), BEST-RQ pre-trains a speech encoder, contrastive pre-training
// teaches a vision encoder to tell images apart, two Gloo ranks equal one
// process, resuming is exact, the LLM stays frozen, a kill -9 inside a checkpoint write leaves the
// previous one loadable, bad samples are skipped and counted (and shared between ranks), and config problems exit 5.
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace llama_mm::train {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

const std::vector<std::pair<std::string, std::string>> kCaptions = {
    {"exif6_120x160.jpg", "a red cat"}, {"cmyk_48x64.jpg", "blue sky"},
    {"progressive_60x80.jpg", "two dogs"}, {"small_40x30.bmp", "green hill"}};

class Trainer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("trainer_test");
    auto r = run_cli("init-model --arch mllama --preset tiny --seed 3 -o '" + base() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream m(*dir_ / "captions.jsonl");
    for (const auto& [file, text] : kCaptions) {
      fs::copy_file(test::fixture("images/" + file), *dir_ / file);
      m << nlohmann::json{{"image", file}, {"text", text}}.dump() << "\n";
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string base() { return (*dir_ / "base").string(); }

  // A one-stage caption config in its own folder; returns its path.
  static std::string write_config(const std::string& name, const std::string& stage_extra,
                                  const std::string& manifest = "") {
    const fs::path d = *dir_ / name;
    fs::create_directories(d);
    std::ofstream(d / "run.yaml") << "base: " << base() << "\noutput_dir: " << (d / "out").string()
                                  << "\nseed: 1\nstages:\n  - name: captions\n    data: {format: jsonl, path: "
                                  << (manifest.empty() ? (*dir_ / "captions.jsonl").string() : manifest)
                                  << "}\n    train: [vision_encoder, image_cross_attention]\n" << stage_extra;
    return (d / "run.yaml").string();
  }
  static test::TempDir* dir_;
};
test::TempDir* Trainer::dir_ = nullptr;

std::map<std::string, torch::Tensor> tensors_of(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  SafetensorsFile f(path);
  for (const auto& n : f.names()) out[n] = f.get(n).clone();
  return out;
}

// Runs `train CONFIG ARGS` as ranks 0 and 1 of a Gloo group on loopback (stdout and stderr in RANK.out / .err
// beside the config); returns both exit codes (a hang is cut at 5 minutes: exit 124).
std::pair<int, int> train_two_ranks(const std::string& config, const std::string& args) {
  static int next_port = 20000 + ::getpid() % 20000;
  const std::string port = std::to_string(next_port++);
  const fs::path d = fs::path(config).parent_path();
  auto rank = [&](int r) {
    const auto out = (d / ("rank" + std::to_string(r))).string();
    return "RANK=" + std::to_string(r) + " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " timeout 300 '" +
           std::string(LLAMA_MM_CLI_PATH) + "' train '" + config + "' " + args + " >'" + out + ".out' 2>'" + out +
           ".err'";
  };
  const auto script = (d / "two_ranks.sh").string();  // a file, so no outer shell expands $pid, $r0, $r1
  std::ofstream(script) << "(" << rank(0) << ") & pid=$!\n" << rank(1) << "; r1=$?\nwait $pid; r0=$?\necho $r0 $r1 >'"
                        << (d / "codes").string() << "'\n";
  std::system(("bash '" + script + "'").c_str());
  std::pair<int, int> codes{-1, -1};
  std::ifstream(d / "codes") >> codes.first >> codes.second;
  return codes;
}

std::string rank_logs(const std::string& config) {
  const fs::path d = fs::path(config).parent_path();
  std::stringstream s;
  s << std::ifstream(d / "rank0.err").rdbuf() << std::ifstream(d / "rank1.err").rdbuf();
  return s.str();
}

TEST_F(Trainer, OverfitsFourImageCaptionsAndCaptionReproducesThem) {
  const auto cfg = write_config("overfit",
                                "    optimizer: {lr: 1.0e-2, weight_decay: 0.0}\n    schedule: {warmup_steps: 5}\n"
                                "    steps: 120\n    batch_size: 4\n    eval_every: 60\n");
  auto r = run_cli("train '" + cfg + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path out = fs::path(cfg).parent_path() / "out";
  auto rows = read_metrics(out.string());
  ASSERT_EQ(rows.size(), 120u);
  // Evaluation (greedy answers on the training captions) at steps 60 and 120 only; all exact at the end.
  for (const auto& row : rows) EXPECT_EQ(row.contains("eval_wer"), row["step"] == 60 || row["step"] == 120) << row;
  EXPECT_EQ(rows.back()["eval_exact_match"], 1.0);
  EXPECT_EQ(rows.back()["eval_wer"], 0.0);
  EXPECT_EQ(rows.back()["eval_samples"], 4);
  // Each evaluation leaves its answers in eval/STAGE-stepNNNNNNNN.jsonl: at the end they are the references.
  std::vector<std::string> eval_files;
  for (const auto& f : fs::directory_iterator(out / "eval")) eval_files.push_back(f.path().filename().string());
  std::sort(eval_files.begin(), eval_files.end());
  ASSERT_EQ(eval_files.size(), 2u);
  EXPECT_NE(eval_files[0].find("-step00000060.jsonl"), std::string::npos) << eval_files[0];
  std::ifstream last(out / "eval" / eval_files[1]);
  std::stringstream last_text;
  last_text << last.rdbuf();
  const auto answers = test::json_lines(last_text.str());
  ASSERT_EQ(answers.size(), 4u);
  for (const auto& a : answers) {
    EXPECT_EQ(a["answer"], a["reference"]) << a;
    EXPECT_EQ(a["word_errors"], 0);
    EXPECT_FALSE(a["origin"].get<std::string>().empty());
  }
  EXPECT_GT(rows.front()["loss"].get<double>(), 2.0);  // random adapters: about ln(vocab) at first
  EXPECT_LT(rows.back()["loss"].get<double>(), 0.4);   // a random frozen LLM keeps some mass elsewhere
  EXPECT_EQ(rows.back()["bad_samples"], 0);
  const auto summary = test::json_lines(r.out);
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["adapters"][0], (out / "adapters/image.safetensors").string());
  // The trained image parts, loaded over the untouched base, caption each image with its target.
  for (const auto& [file, text] : kCaptions) {
    auto c = run_cli("caption -m '" + base() + "' --adapter '" + (out / "adapters/image.safetensors").string() + "' '" +
                     (*dir_ / file).string() + "' --temp 0 -n 16");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out, text + "\n") << file;
  }
  // The base alone does not.
  auto c = run_cli("caption -m '" + base() + "' '" + (*dir_ / kCaptions[0].first).string() + "' --temp 0 -n 16");
  EXPECT_NE(c.out, kCaptions[0].second + "\n");
}

TEST_F(Trainer, ATextModelStageTrainsTheLlmAndTheNextStageLearnsOnItFrozen) {
  // Stage 1 trains the base's LLM from its random start on text conversations plus the caption samples read as
  // text (no pixels); stage 2 trains the image parts with that LLM frozen. The run leaves a whole model after each.
  const fs::path d = *dir_ / "text_model";
  fs::create_directories(d);
  const std::vector<std::pair<std::string, std::string>> chats = {
      {"sky?", "blue"}, {"grass?", "green"}, {"snow?", "white"}, {"coal?", "black"}};
  {
    std::ofstream text(d / "text.jsonl"), both(d / "both.jsonl");
    for (const auto& [q, a] : chats) {
      text << nlohmann::json{{"prompt", q}, {"text", a}}.dump() << "\n";
      both << nlohmann::json{{"prompt", q}, {"text", a}}.dump() << "\n";
    }
    for (const auto& [file, caption] : kCaptions)
      both << nlohmann::json{{"image", (*dir_ / file).string()}, {"text", caption}}.dump() << "\n";
  }
  std::ofstream(d / "run.yaml") << "base: " << base() << "\noutput_dir: out\nseed: 1\nstages:\n"
                                << "  - name: text\n    data: {format: jsonl, path: both.jsonl}\n    train: [text_model]\n"
                                   "    optimizer: {lr: 1.0e-2, weight_decay: 0.0}\n    schedule: {warmup_steps: 5}\n"
                                   "    steps: 80\n    batch_size: 8\n    eval_every: 80\n"
                                   "    eval_data: {format: jsonl, path: text.jsonl}\n"
                                   "  - name: captions\n    data: {format: jsonl, path: "
                                << (*dir_ / "captions.jsonl").string()
                                << "}\n    train: [vision_encoder, image_cross_attention]\n    steps: 3\n    batch_size: 4\n";
  auto r = run_cli("train '" + (d / "run.yaml").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = read_metrics((d / "out").string());
  ASSERT_EQ(rows.size(), 83u);
  EXPECT_GT(rows.front()["loss"].get<double>(), 2.0);
  EXPECT_LT(rows[79]["loss"].get<double>(), 0.5 * rows.front()["loss"].get<double>());
  EXPECT_EQ(rows[79]["eval_exact_match"], 1.0);  // greedy answers to the text prompts
  const auto summary = test::json_lines(r.out);
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0]["model"], (d / "out/model").string());
  // The saved model answers like the run did: the LLM it trained, loaded back from disk. The bare text model
  // (a Llama checkpoint of the LLM alone) answers text-only prompts exactly as the whole model does.
  for (const auto& [q, a] : chats) {
    auto g = run_cli("generate -m '" + (d / "out/model").string() + "' --chat -p '" + q + "' --temp 0 -n 8");
    ASSERT_EQ(g.exit_code, 0) << g.err;
    EXPECT_EQ(g.out, a + "\n") << q;
    auto bare = run_cli("generate -m '" + (d / "out/text_model").string() + "' --chat -p '" + q + "' --temp 0 -n 8 --json");
    auto whole = run_cli("generate -m '" + (d / "out/model").string() + "' --chat -p '" + q + "' --temp 0 -n 8 --json");
    ASSERT_EQ(bare.exit_code, 0) << bare.err;
    EXPECT_EQ(test::json_lines(bare.out)[0]["tokens"], test::json_lines(whole.out)[0]["tokens"]) << q;
  }
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(d / "out/text_model/config.json"))["architectures"][0], "LlamaForCausalLM");
  // Stage 2 left the LLM exactly as stage 1 did (its final checkpoint holds the trained LLM), and changed the image
  // parts.
  std::string stage1;
  for (const auto& e : fs::directory_iterator(d / "out/checkpoints"))
    if (e.path().filename().string().rfind("stage01-", 0) == 0) stage1 = std::max(stage1, e.path().string());
  ASSERT_FALSE(stage1.empty());
  const auto ckpt = tensors_of(stage1 + "/params.safetensors");
  const auto model = tensors_of((d / "out/model/model.safetensors").string());
  const auto initial = tensors_of(base() + "/model.safetensors");
  int64_t llm = 0;
  for (const auto& [name, t] : ckpt) {
    if (name.rfind("text_model.", 0) != 0) continue;
    const std::string saved = "language_model." + name.substr(11);
    if (saved.find(".layers.") != std::string::npos) continue;  // layer indices are renumbered in the HF layout
    ASSERT_TRUE(model.count(saved)) << saved;
    EXPECT_TRUE(torch::equal(model.at(saved), t.to(model.at(saved).dtype()))) << saved;
    EXPECT_FALSE(torch::equal(model.at(saved), initial.at(saved))) << saved;
    ++llm;
  }
  EXPECT_GE(llm, 2);  // the embedding and the final norm (tiny: untied, so lm_head too)
  const std::string patch = "vision_model.patch_embedding.weight";
  EXPECT_FALSE(torch::equal(model.at(patch), initial.at(patch)));
}

TEST_F(Trainer, OverfitsFourSpeechClipsAndTranscribeReproducesThem) {
  // Tones of four pitches on a Llama 3 text base; the speech encoder and adapter are created by the run.
  const fs::path d = *dir_ / "speech";
  fs::create_directories(d);
  ASSERT_EQ(run_cli("init-model --arch llama --preset tiny --seed 5 -o '" + (d / "base").string() + "'").exit_code, 0);
  const std::vector<std::pair<int, std::string>> clips = {{300, "low hum"}, {700, "middle"}, {1500, "high tone"}, {3000, "whistle"}};
  {
    std::ofstream m(d / "asr.jsonl");
    for (const auto& [hz, text] : clips) {
      const auto wav = (d / ("t" + std::to_string(hz) + ".wav")).string();
      test::run_ffmpeg("-f lavfi -i sine=frequency=" + std::to_string(hz) + ":duration=1 -ar 16000 -ac 1 '" + wav + "'");
      m << nlohmann::json{{"audio", wav}, {"text", text}}.dump() << "\n";
    }
  }
  std::ofstream(d / "run.yaml") << "base: base\noutput_dir: out\nseed: 1\nadapters:\n  - {modality: speech, preset: tiny}\n"
                                   "stages:\n  - name: asr\n    data: {format: jsonl, path: asr.jsonl}\n"
                                   "    train: [speech_encoder, speech_adapter]\n"
                                   "    optimizer: {lr: 1.0e-2, weight_decay: 0.0}\n    schedule: {warmup_steps: 20}\n"
                                   "    steps: 300\n    batch_size: 4\n";
  auto r = run_cli("train '" + (d / "run.yaml").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = read_metrics((d / "out").string());
  EXPECT_GT(rows.front()["loss"].get<double>(), 5.0);
  EXPECT_LT(rows.back()["loss"].get<double>(), 0.4);
  for (const auto& [hz, text] : clips) {
    auto t = run_cli("transcribe -m '" + (d / "base").string() + "' --adapter '" +
                     (d / "out/adapters/speech.safetensors").string() + "' '" +
                     (d / ("t" + std::to_string(hz) + ".wav")).string() + "' --json -n 16");
    ASSERT_EQ(t.exit_code, 0) << t.err;
    EXPECT_EQ(test::json_lines(t.out)[0]["text"], text) << hz << " Hz";
  }
}

TEST_F(Trainer, BestRqPretrainsTheSpeechEncoderAndResumesExactly) {
  const fs::path d = *dir_ / "best_rq";
  fs::create_directories(d);
  ASSERT_EQ(run_cli("init-model --arch llama --preset tiny --seed 5 -o '" + (d / "base").string() + "'").exit_code, 0);
  {
    std::ofstream m(d / "audio.jsonl");
    for (int hz : {300, 700, 1500, 3000}) {
      const auto wav = (d / ("t" + std::to_string(hz) + ".wav")).string();
      test::run_ffmpeg("-f lavfi -i sine=frequency=" + std::to_string(hz) + ":duration=1 -ar 16000 -ac 1 '" + wav + "'");
      m << nlohmann::json{{"audio", wav}, {"text", "-"}}.dump() << "\n";
    }
  }
  auto config = [&](const std::string& name, int steps) {
    std::ofstream(d / (name + ".yaml")) << "base: base\noutput_dir: " << name << "\nseed: 2\n"
        "adapters:\n  - {modality: speech, preset: tiny}\nstages:\n  - name: pretrain\n    objective: best_rq\n"
        "    data: {format: jsonl, path: audio.jsonl}\n    train: [speech_encoder]\n"
        "    optimizer: {lr: 2.0e-3}\n    schedule: {warmup_steps: 5}\n    steps: " << steps << "\n"
        "    batch_size: 2\n    grad_accum: 2\n    best_rq: {codebooks: 4, codebook_size: 1024}\n";
    return (d / (name + ".yaml")).string();
  };
  const auto whole = config("whole", 40), parts = config("parts", 40);
  ASSERT_EQ(run_cli("train '" + whole + "'").exit_code, 0);
  auto rows = read_metrics((d / "whole").string());
  ASSERT_EQ(rows.size(), 40u);
  EXPECT_NEAR(rows.front()["loss"].get<double>(), std::log(1024.0), 1.0);  // untrained heads: about uniform
  EXPECT_LT(rows.back()["loss"].get<double>(), 0.8 * rows.front()["loss"].get<double>());
  EXPECT_EQ(run_cli("train '" + parts + "' --max-steps 17").exit_code, 130);
  ASSERT_EQ(run_cli("train '" + parts + "' --resume").exit_code, 0);
  auto a = tensors_of((d / "whole/adapters/speech.safetensors").string());
  auto b = tensors_of((d / "parts/adapters/speech.safetensors").string());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  // The encoder moved and took the data's feature statistics; the speech adapter did not train.
  SpeechModel init(SpeechModelConfig::preset("tiny", 64), torch::kFloat32);
  init_random_speech_weights(*init, 2 + 202);
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : init->named_parameters()) before[p.key()] = p.value();
  EXPECT_FALSE(torch::equal(a.at("encoder.layers.0.attn.q_proj.weight"), before.at("encoder.layers.0.attn.q_proj.weight")));
  EXPECT_TRUE(torch::equal(a.at("adapter.out_proj.weight"), before.at("adapter.out_proj.weight")));
  EXPECT_GT(a.at("encoder.feature_std").min().item<double>(), 0.0);
  EXPECT_FALSE(torch::equal(a.at("encoder.feature_mean"), before.at("encoder.feature_mean")));

  // Two ranks with half the batch each draw the same per-utterance masks as one process: the same training.
  const auto one = config("dp_one", 6), two = config("dp_two", 6);
  ASSERT_EQ(run_cli("train '" + one + "'").exit_code, 0);
  ASSERT_EQ(train_two_ranks(two, "--set stages.0.batch_size=1"), std::make_pair(0, 0)) << rank_logs(two);
  auto ra = read_metrics((d / "dp_one").string()), rb = read_metrics((d / "dp_two").string());
  ASSERT_EQ(rb.size(), 6u);
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_NEAR(ra[i]["loss"].get<double>(), rb[i]["loss"].get<double>(), 1e-3) << i;
  auto p1 = tensors_of((d / "dp_one/adapters/speech.safetensors").string());
  auto p2 = tensors_of((d / "dp_two/adapters/speech.safetensors").string());
  for (const auto& [name, t] : p1) EXPECT_TRUE(torch::allclose(t, p2.at(name), 1e-3, 2e-4)) << name;
}

TEST_F(Trainer, ContrastivePretrainingTeachesTheVisionEncoderToTellTheImagesApartAndResumesExactly) {
  const fs::path d = *dir_ / "contrastive";
  fs::create_directories(d);
  auto config = [&](const std::string& name) {
    std::ofstream(d / (name + ".yaml")) << "base: " << base() << "\noutput_dir: " << name << "\nseed: 4\nstages:\n"
        "  - name: pretrain\n    objective: contrastive\n    data: {format: jsonl, path: "
        << (*dir_ / "captions.jsonl").string() << "}\n    train: [vision_encoder]\n"
        "    optimizer: {lr: 3.0e-3, weight_decay: 0.0}\n    schedule: {warmup_steps: 3}\n    steps: 40\n"
        "    batch_size: 4\n    eval_every: 20\n    checkpoint_every: 10\n";
    return (d / (name + ".yaml")).string();
  };
  const auto whole = config("whole"), parts = config("parts");
  auto r = run_cli("train '" + whole + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = read_metrics((d / "whole").string());
  ASSERT_EQ(rows.size(), 40u);
  // Four different captions per batch: about ln 4 at first, far less once the images are told apart.
  EXPECT_GT(rows.front()["loss"].get<double>(), 1.0);
  EXPECT_LT(rows.back()["loss"].get<double>(), 0.2) << rows.back();
  EXPECT_EQ(rows.back()["eval_retrieval"], 1.0) << rows.back();
  EXPECT_EQ(rows.back()["eval_samples"], 4);
  EXPECT_FALSE(rows.back().contains("eval_wer"));
  // The vision encoder learned; the projector and the cross-attention layers, which it does not train, did not.
  const auto trained = tensors_of((d / "whole/adapters/image.safetensors").string());
  auto base_model = load_mllama(base(), torch::kFloat32);
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : image_parts(*base_model)->named_parameters()) before[p.key()] = p.value();
  ASSERT_EQ(before.size(), trained.size());
  int moved = 0, kept = 0;
  for (const auto& [name, t] : trained) {
    const bool same = torch::equal(t.to(torch::kFloat32), before.at(name));
    if (name.rfind("vision_model.", 0) == 0) {
      moved += !same;
    } else {
      EXPECT_TRUE(same) << name;
      ++kept;
    }
  }
  EXPECT_GT(moved, 10);
  EXPECT_GT(kept, 0);
  // Stopped and resumed (the heads restored from the checkpoint): exactly the uninterrupted run.
  EXPECT_EQ(run_cli("train '" + parts + "' --max-steps 13").exit_code, 130);
  ASSERT_EQ(run_cli("train '" + parts + "' --resume").exit_code, 0);
  const auto resumed = tensors_of((d / "parts/adapters/image.safetensors").string());
  for (const auto& [name, t] : trained) EXPECT_TRUE(torch::equal(t, resumed.at(name))) << name;
}

TEST_F(Trainer, ResumingGivesExactlyTheUninterruptedRun) {
  // 2 per micro-batch, 2 micro-batches, 4 samples: every step crosses into a new epoch's shuffle.
  const std::string stage = "    optimizer: {lr: 5.0e-3}\n    schedule: {warmup_steps: 3}\n    steps: 8\n"
                            "    batch_size: 2\n    grad_accum: 2\n    checkpoint_every: 4\n";
  const auto whole = write_config("whole", stage), parts = write_config("parts", stage);
  ASSERT_EQ(run_cli("train '" + whole + "'").exit_code, 0);
  auto first = run_cli("train '" + parts + "' --max-steps 5");
  EXPECT_EQ(first.exit_code, 130) << first.err;
  EXPECT_NE(first.err.find("--resume"), std::string::npos);
  // Without --resume a run with checkpoints is refused (nothing is overwritten).
  EXPECT_EQ(run_cli("train '" + parts + "'").exit_code, 2);
  auto second = run_cli("train '" + parts + "' --resume");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("step 5/8"), std::string::npos) << second.err;

  const fs::path a = fs::path(whole).parent_path() / "out", b = fs::path(parts).parent_path() / "out";
  auto ta = tensors_of((a / "adapters/image.safetensors").string()), tb = tensors_of((b / "adapters/image.safetensors").string());
  ASSERT_EQ(ta.size(), tb.size());
  for (const auto& [name, t] : ta) EXPECT_TRUE(torch::equal(t, tb.at(name))) << name;
  auto ra = read_metrics(a.string()), rb = read_metrics(b.string());
  ASSERT_EQ(ra.size(), 8u);
  ASSERT_EQ(rb.size(), 8u);  // the rows of the first run's steps are kept once
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i]["step"], rb[i]["step"]);
    EXPECT_EQ(ra[i]["loss"].get<double>(), rb[i]["loss"].get<double>()) << i;
  }
  // checkpoint_every 4 and keep_checkpoints 3: steps 4, 5 (the stop) and 8 remain.
  EXPECT_TRUE(fs::exists(b / "checkpoints/stage01-step00000005/state.json"));
  EXPECT_EQ(read_checkpoint_state((b / "checkpoints/stage01-step00000008").string()).step, 8);
}

TEST_F(Trainer, AResumedRunMayGainStagesButNotChangeBegunOnes) {
  const auto cfg = write_config("grow", "    steps: 4\n    batch_size: 2\n    checkpoint_every: 2\n");
  ASSERT_EQ(run_cli("train '" + cfg + "' --max-steps 2").exit_code, 130);
  // A later stage with a new adapter (a new part, in no checkpoint yet): the resume takes it fresh.
  const fs::path d = fs::path(cfg).parent_path();
  test::make_counter_clip(d / "clip.mp4", 16, "-c:v libx264 -pix_fmt yuv420p");
  std::ofstream(d / "videos.jsonl") << R"({"video": "clip.mp4", "text": "a counter"})" << "\n";
  std::ofstream(cfg, std::ios::app) << "  - name: video\n    data: {format: jsonl, path: videos.jsonl}\n"
                                       "    train: [video_aggregator, video_cross_attention]\n    steps: 1\n"
                                       "    batch_size: 1\nadapters: [{modality: video, preset: tiny}]\n";
  auto grown = run_cli("train '" + cfg + "' --resume");
  ASSERT_EQ(grown.exit_code, 0) << grown.err;
  EXPECT_EQ(test::json_lines(grown.out).size(), 2u);
  EXPECT_TRUE(fs::exists(d / "out/adapters/video.safetensors"));
  // A begun stage that no longer trains what its checkpoint holds is refused.
  const auto changed = write_config("shrink", "    steps: 4\n    batch_size: 2\n    checkpoint_every: 2\n");
  ASSERT_EQ(run_cli("train '" + changed + "' --max-steps 2").exit_code, 130);
  auto r = run_cli("train '" + changed + "' --resume --set 'stages.0.train=[image_cross_attention]'");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("(was the config changed?)"), std::string::npos) << r.err;
}

TEST_F(Trainer, TwoGlooProcessesEqualOneProcessWithTheSameGlobalBatch) {
  // Global batch 4 × 2 accumulation steps: one process with batch_size 4, or two ranks with batch_size 2 each.
  const std::string stage = "    optimizer: {lr: 5.0e-3}\n    schedule: {warmup_steps: 2}\n    steps: 5\n"
                            "    batch_size: 4\n    grad_accum: 2\n";
  const auto one = write_config("dp_one", stage), two = write_config("dp_two", stage);
  ASSERT_EQ(run_cli("train '" + one + "'").exit_code, 0);
  const fs::path d = fs::path(two).parent_path();
  ASSERT_EQ(train_two_ranks(two, "--set stages.0.batch_size=2"), std::make_pair(0, 0)) << rank_logs(two);
  const auto a = tensors_of((fs::path(one).parent_path() / "out/adapters/image.safetensors").string());
  const auto b = tensors_of((d / "out/adapters/image.safetensors").string());
  ASSERT_EQ(a.size(), b.size());
  // The same sums in another order: float rounding, which Adam's normalised steps can grow to a small fraction of
  // the learning rate on near-zero gradients (a missing all-reduce moves weights by ~lr per step instead).
  for (const auto& [name, t] : a)
    EXPECT_TRUE(torch::allclose(t, b.at(name), 1e-3, 2e-4)) << name << " " << (t - b.at(name)).abs().max();
  auto ra = read_metrics((fs::path(one).parent_path() / "out").string()), rb = read_metrics((d / "out").string());
  ASSERT_EQ(rb.size(), 5u);  // rank 0 alone writes metrics
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_NEAR(ra[i]["loss"].get<double>(), rb[i]["loss"].get<double>(), 1e-4);
  // Only rank 0 prints the stage summary.
  std::stringstream out1;
  out1 << std::ifstream(d / "rank1.out").rdbuf();
  EXPECT_EQ(out1.str(), "");
  EXPECT_EQ(run_cli("train '" + two + "'", "", "WORLD_SIZE=two").exit_code, 5);
}

TEST_F(Trainer, TwoGlooProcessesShareBadSamplesAndStopTogether) {
  const fs::path m = *dir_ / "dp_with_bad.jsonl";
  {
    std::ofstream f(m);
    for (const auto& [file, text] : kCaptions) f << nlohmann::json{{"image", file}, {"text", text}}.dump() << "\n";
    f << R"({"image": "missing.jpg", "text": "gone"})" << "\n";
    f << R"({"image": "missing2.jpg", "text": "gone too"})" << "\n";
  }
  // Each rank reads only its share, so each finds at most what is in it; all learn of both, and rank 0's summary
  // counts them.
  const auto ok = write_config("dp_bad_ok", "    steps: 3\n    batch_size: 2\n", m.string());
  ASSERT_EQ(train_two_ranks(ok, "--set stages.0.data.max_bad_fraction=0.5"), std::make_pair(0, 0)) << rank_logs(ok);
  std::stringstream out0;
  out0 << std::ifstream(fs::path(ok).parent_path() / "rank0.out").rdbuf();
  EXPECT_EQ(test::json_lines(out0.str()).at(0)["bad_samples"], 2) << out0.str();
  const auto state = read_checkpoint_state(*latest_checkpoint((fs::path(ok).parent_path() / "out").string()));
  EXPECT_EQ(state.rank_data.size(), 2u);
  EXPECT_EQ(state.bad_samples, (std::set<int64_t>{4, 5}));
  // Over the limit: both ranks stop with exit 4 (neither waits forever for the other).
  const auto stop = write_config("dp_bad_stop", "    steps: 3\n    batch_size: 2\n", m.string());
  EXPECT_EQ(train_two_ranks(stop, "--set stages.0.data.max_bad_fraction=0.1"), std::make_pair(4, 4)) << rank_logs(stop);
}

TEST_F(Trainer, TheLlmIsFrozenAndOnlyTheDeclaredPartsLearn) {
  auto cfg = load_train_config(write_config("frozen", "    steps: 1\n"));
  RunModel model(cfg);
  std::map<std::string, torch::Tensor> before;
  for (const auto& [name, p] : model.llm_parameters()) before[name] = p.detach().clone();
  auto vision_before = model.parameters(Part::VisionEncoder)[0].second.detach().clone();
  model.set_trainable({Part::ImageCrossAttention});
  NamedParams params = model.parameters(Part::ImageCrossAttention);
  ExampleBuilder builder(model.tokenizer(), model.builder_options());
  std::vector<Example> batch;
  for (const auto& s : read_dataset(cfg.stages[0].data)) batch.push_back(builder.build(s));
  int64_t n = 0;
  model.loss_sum(batch, n).backward();
  EXPECT_GT(n, 30);
  for (const auto& [name, p] : model.llm_parameters()) {
    EXPECT_FALSE(p.requires_grad()) << name;
    EXPECT_FALSE(p.grad().defined()) << name;
  }
  for (const auto& [name, p] : model.parameters(Part::VisionEncoder)) EXPECT_FALSE(p.grad().defined()) << name;
  int64_t with_grad = 0;
  for (const auto& [name, p] : params) with_grad += p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
  EXPECT_EQ(with_grad, static_cast<int64_t>(params.size()));
  AdamW opt(params, {});
  opt.step(1e-2);
  for (const auto& [name, p] : model.llm_parameters()) EXPECT_TRUE(torch::equal(p, before.at(name))) << name;
  EXPECT_TRUE(torch::equal(model.parameters(Part::VisionEncoder)[0].second, vision_before));
}

TEST_F(Trainer, JsonAdapterPresetsReplaceTheTinyPresetsKeys) {
  const fs::path d = *dir_ / "json_presets";
  fs::create_directories(d);
  std::ofstream(d / "video.json") << R"({"frames": 6, "aggregator": {"aggregation": 3, "depth": 2}})";
  std::ofstream(d / "speech.json") << R"({"encoder": {"n_layers": 3}, "adapter": {"d_model": 48}})";
  std::ofstream(d / "run.yaml") << "base: " << base() << "\noutput_dir: out\nadapters:\n"
                                << "  - {modality: video, preset: video.json}\n  - {modality: speech, preset: speech.json}\n"
                                << "stages:\n  - name: s\n    data: {format: jsonl, path: "
                                << (*dir_ / "captions.jsonl").string() << "}\n    train: [video_aggregator]\n    steps: 1\n";
  RunModel model(load_train_config((d / "run.yaml").string()));
  const auto& v = model.mllama->video_adapter->config();
  EXPECT_EQ(v.frames, 6);
  EXPECT_EQ(v.aggregator.aggregation, 3);
  EXPECT_EQ(v.aggregator.depth, 2);
  EXPECT_EQ(v.aggregator.num_latents, 8);  // the tiny preset's, not replaced
  EXPECT_EQ(model.speech->config().encoder.n_layers, 3);
  EXPECT_EQ(model.speech->config().encoder.d_model, 32);
  EXPECT_EQ(model.speech->config().adapter.d_model, 48);
  std::ofstream(d / "speech.json") << "[1, 2]";
  try {
    RunModel bad(load_train_config((d / "run.yaml").string()));
    ADD_FAILURE() << "a preset file that is not an object accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("speech.json: expected a JSON object"), std::string::npos) << e.what();
  }
}

TEST_F(Trainer, KillDuringACheckpointLeavesThePreviousOneLoadable) {
  const auto cfg = write_config("kill", "    steps: 6\n    batch_size: 2\n    checkpoint_every: 2\n");
  auto r = run_cli("train '" + cfg + "'", "", "LLAMA_MM_TEST_KILL_IN_CHECKPOINT=2");
  EXPECT_EQ(r.exit_code, 128 + 9) << r.err;
  const auto out = (fs::path(cfg).parent_path() / "out").string();
  auto latest = latest_checkpoint(out);
  ASSERT_TRUE(latest);
  EXPECT_EQ(fs::path(*latest).filename(), "stage01-step00000002");
  EXPECT_EQ(read_checkpoint_state(*latest).step, 2);
  EXPECT_FALSE(read_checkpoint_tensors(*latest).params.empty());
  auto resumed = run_cli("train '" + cfg + "' --resume");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(read_metrics(out).size(), 6u);
}

TEST_F(Trainer, BadSamplesAreSkippedAndCountedUpToTheLimit) {
  const fs::path m = *dir_ / "with_bad.jsonl";
  {
    std::ofstream f(m);
    for (const auto& [file, text] : kCaptions) f << nlohmann::json{{"image", file}, {"text", text}}.dump() << "\n";
    f << R"({"image": "missing.jpg", "text": "gone"})" << "\n";
    std::ofstream(*dir_ / "corrupt.jpg") << "not a jpeg";
    f << R"({"image": "corrupt.jpg", "text": "broken"})" << "\n";
  }
  auto ok = run_cli("train '" + write_config("bad_ok", "    steps: 3\n    batch_size: 4\n", m.string()) +
                    "' --set stages.0.data.max_bad_fraction=0.5");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("missing.jpg"), std::string::npos);
  EXPECT_NE(ok.err.find("corrupt.jpg"), std::string::npos);
  EXPECT_EQ(test::json_lines(ok.out)[0]["bad_samples"], 2);
  auto stop = run_cli("train '" + write_config("bad_stop", "    steps: 3\n    batch_size: 4\n", m.string()) +
                      "' --set stages.0.data.max_bad_fraction=0.2");
  EXPECT_EQ(stop.exit_code, 4) << stop.err;
  EXPECT_NE(stop.err.find("more than data.max_bad_fraction"), std::string::npos) << stop.err;
}

TEST_F(Trainer, ConfigProblemsExitFive) {
  const auto cfg = write_config("config", "    steps: 2\n");
  for (const char* set : {"stages.0.lr=1", "stages.0.steps=many", "stages.0.data.path=/nonexistent.jsonl",
                          "stages.0.train=[vision_encoder, llm]", "stages.0.train=[speech_adapter]",
                          "stages.0.objective=contrastive"}) {
    auto r = run_cli("train '" + cfg + "' --set '" + std::string(set) + "'");
    EXPECT_EQ(r.exit_code, 5) << set << ": " << r.err;
  }
}

}  // namespace
}  // namespace llama_mm::train
