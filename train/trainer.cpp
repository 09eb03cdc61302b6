// train/trainer.cpp: the stage loop, checkpoints and resume (see trainer.h).
#include "train/trainer.h"

#include "llm/atomic_file.h"
#include "llm/error.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/data_loader.h"
#include "train/data_parallel.h"
#include "train/dataset.h"
#include "train/evaluator.h"
#include "train/metrics_log.h"
#include "train/run_model.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

namespace llama_mm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

// Installs SIGINT/SIGTERM handlers for the run's duration.
struct StopSignals {
  struct sigaction old_int {}, old_term {};
  StopSignals() {
    g_stop = false;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

int64_t stage_steps(const StageConfig& s, int64_t n_samples) {
  if (s.steps > 0) return s.steps;
  const int64_t per_step = s.batch_size * s.grad_accum;
  return std::max<int64_t>(1, (s.epochs * n_samples + per_step - 1) / per_step);
}

std::map<std::string, torch::Tensor> as_map(const NamedParams& params) {
  std::map<std::string, torch::Tensor> m;
  for (const auto& [name, p] : params) m[name] = p.detach().to(torch::kFloat32).contiguous();
  return m;
}

bool is_objective_tensor(const std::string& name) {
  return name.rfind("best_rq.", 0) == 0 || name.rfind("contrastive.", 0) == 0;
}

// Copies the checkpoint's tensors into `params`. Every tensor the checkpoint holds must be one of them (its
// "best_rq." and "contrastive." tensors are the objective's, restored separately with objective = true), and every
// one of them it lacks must be in `fresh`: the parts of stages the run has not begun, which a config may add after
// the checkpoint was written.
void restore(const NamedParams& params, const std::map<std::string, torch::Tensor>& saved, const std::string& origin,
             bool objective = false, const std::set<std::string>& fresh = {}) {
  torch::NoGradGuard no_grad;
  int64_t restored = 0;
  for (const auto& [name, p] : params) {
    const auto it = saved.find(name);
    if (it == saved.end()) {
      if (fresh.count(name)) continue;
      throw Error(ErrorKind::ModelLoad, origin + ": the checkpoint has no " + name);
    }
    if (it->second.sizes() != p.sizes()) throw Error(ErrorKind::ModelLoad, origin + ": " + name + " has the wrong shape");
    p.copy_(it->second);
    ++restored;
  }
  const auto n_saved = std::count_if(saved.begin(), saved.end(), [&](const auto& kv) {
    return is_objective_tensor(kv.first) == objective;
  });
  if (n_saved != restored)
    throw Error(ErrorKind::ModelLoad, origin + ": the checkpoint holds " + std::to_string(n_saved) +
                                          " tensors, the run trains " + std::to_string(restored) +
                                          " of them (was the config changed?)");
}

// The BEST-RQ mask seed of (stage, step, micro-batch, place in the global micro-batch): the same in a resumed run
// and for any number of ranks.
uint64_t mask_seed(uint64_t seed, size_t stage, int64_t step, size_t micro, int64_t slot) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ULL;
  for (uint64_t v : {static_cast<uint64_t>(stage), static_cast<uint64_t>(step), static_cast<uint64_t>(micro),
                     static_cast<uint64_t>(slot)})
    h = (h ^ v) * 0xBF58476D1CE4E5B9ULL + 0x94D049BB133111EBULL;
  return h;
}

// Where rank `rank` continues a resumed stage: its own saved position, or (another number of ranks, or none
// saved) rank 0's stream position plus `rank`.
DataPosition resume_position(const CheckpointState& s, int rank, int world, int64_t n_samples) {
  if (static_cast<int>(s.rank_data.size()) == world) return s.rank_data[rank];
  if (world == 1 && s.rank_data.empty()) return s.data;
  if (rank == 0)
    std::cerr << "train: the checkpoint was written by " << std::max<size_t>(1, s.rank_data.size())
              << " process(es), this run has " << world << "; the data order continues from rank 0's position\n";
  const int64_t g = s.data.epoch * n_samples + s.data.cursor + rank;
  return {g / n_samples, g % n_samples};
}

std::string part_list(const std::vector<Part>& parts) {
  std::string s;
  for (Part p : parts)
    for (const auto& [name, q] : part_names())
      if (q == p) s += (s.empty() ? "" : ", ") + name;
  return s;
}

class Progress {
 public:
  Progress(std::string stage, int64_t total)
      : stage_(std::move(stage)), total_(total), tty_(::isatty(2)), every_(std::max<int64_t>(1, total / 20)) {}
  void update(int64_t step, const json& row) {
    char line[256];
    std::snprintf(line, sizeof line, "train: %s step %lld/%lld loss %.4f lr %.3g grad %.3g %.1f samples/s",
                  stage_.c_str(), static_cast<long long>(step), static_cast<long long>(total_),
                  row["loss"].get<double>(), row["lr"].get<double>(), row["grad_norm"].get<double>(),
                  row["samples_per_s"].get<double>());
    if (tty_) {
      const int width = 24, filled = static_cast<int>(width * step / std::max<int64_t>(total_, 1));
      std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << line << "\033[K"
                << (step == total_ ? "\n" : "") << std::flush;
    } else if (step % every_ == 0 || step == total_ || step == 1) {
      std::cerr << line << "\n";
    }
  }
  void break_line() {
    if (tty_) std::cerr << "\n";
  }

 private:
  std::string stage_;
  int64_t total_;
  bool tty_;
  int64_t every_;
};

}  // namespace

TrainResult run_training(const TrainConfig& cfg, const TrainOptions& opts) {
  const auto env = DistributedEnv::from_environment();
  fs::create_directories(cfg.output_dir);
  const auto resume_from = latest_checkpoint(cfg.output_dir);
  if (resume_from && !opts.resume)
    throw Error(ErrorKind::Usage, "train: " + cfg.output_dir + " already has checkpoints (" + *resume_from +
                                      "): continue with --resume, or choose another output_dir");
  std::optional<CheckpointState> resumed;
  CheckpointTensors saved;
  if (opts.resume && resume_from) {
    resumed = read_checkpoint_state(*resume_from);
    if (resumed->stage >= static_cast<int64_t>(cfg.stages.size()) ||
        cfg.stages[resumed->stage].name != resumed->stage_name)
      throw Error(ErrorKind::Config, *resume_from + ": stage '" + resumed->stage_name +
                                         "' is not at that place in the config any more");
    saved = read_checkpoint_tensors(*resume_from);
    std::cerr << "train: resuming from " << *resume_from << " (stage " << resumed->stage_name << ", step "
              << resumed->step << "/" << resumed->total_steps << ")\n";
  } else if (opts.resume) {
    std::cerr << "train: --resume: " << cfg.output_dir << " has no checkpoint yet; starting from the beginning\n";
  }

  const auto t_load = std::chrono::steady_clock::now();
  RunModel model(cfg);
  const bool trains_llm = std::any_of(cfg.stages.begin(), cfg.stages.end(), trains_text_model);
  std::cerr << "train: loaded " << cfg.base << " in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count() << " s; the LLM ("
            << model.llm_parameters().size() << " tensors) is "
            << (trains_llm ? "trained by the text_model stages, then frozen" : "frozen") << "\n";
  auto run_state = model.run_state();
  if (resumed) {
    std::set<std::string> fresh;  // parts only later stages train may be new to the config
    std::set<Part> begun;
    for (int64_t i = 0; i <= resumed->stage; ++i) begun.insert(cfg.stages[i].train.begin(), cfg.stages[i].train.end());
    for (const auto& [name, q] : part_names())
      if (!begun.count(q))
        for (const auto& [pname, p] : model.parameters(q)) fresh.insert(pname);
    if (!begun.count(Part::SpeechEncoder)) fresh.insert({"speech.encoder.feature_mean", "speech.encoder.feature_std"});
    restore(run_state, saved.params, *resume_from, /*objective=*/false, fresh);
  }

  std::unique_ptr<DataParallel> dp;
  if (env.world_size > 1) dp = std::make_unique<DataParallel>(env);
  const bool lead = env.rank == 0;  // writes checkpoints, adapters, metrics and summaries
  const int world = env.world_size;
  std::optional<MetricsLog> metrics;
  if (lead) metrics.emplace(cfg.output_dir, resumed.has_value(), resumed ? resumed->stage : 0, resumed ? resumed->step : 0);
  StopSignals signals;
  TrainResult result;
  if (resume_from) result.last_checkpoint = *resume_from;
  int64_t steps_this_run = 0;
  const size_t first_stage = resumed ? static_cast<size_t>(resumed->stage) : 0;

  for (size_t si = first_stage; si < cfg.stages.size(); ++si) {
    const auto& stage = cfg.stages[si];
    const bool continuing = resumed && si == first_stage;
    if (stage.precision == "bf16" && !torch::cuda::is_available())
      throw Error(ErrorKind::Config, "stage '" + stage.name + "': precision bf16 needs a CUDA device; use fp32 on CPU");

    auto samples = read_dataset(stage.data);
    const int64_t n_samples = static_cast<int64_t>(samples.size());
    const int64_t total = stage_steps(stage, n_samples);
    model.set_trainable(stage.train);
    NamedParams params;
    for (Part p : stage.train)
      for (auto& np : model.parameters(p)) params.push_back(np);
    int64_t n_trainable = 0;
    for (const auto& [name, p] : params) n_trainable += p.numel();
    std::cerr << "train: stage " << si + 1 << "/" << cfg.stages.size() << " '" << stage.name << "': " << n_samples
              << " samples, " << total << " steps of " << stage.batch_size << " x " << stage.grad_accum
              << ", training " << part_list(stage.train) << " (" << n_trainable / 1e6 << " M parameters)\n";

    const bool best_rq = stage.objective == "best_rq", contrastive = stage.objective == "contrastive";
    auto builder_options = model.builder_options();
    builder_options.features_only = best_rq;
    builder_options.text_only = trains_text_model(stage);
    if (best_rq) builder_options.max_mel_frames = stage.best_rq.max_frames;
    ExampleBuilder builder(model.tokenizer(), builder_options);
    BestRq quantizer{nullptr};
    ContrastiveHeads heads{nullptr};
    NamedParams objective_params;  // trained with the stage, kept in its checkpoints, not in any adapter
    if (contrastive) {
      const auto& mc = model.mllama->config();
      heads = ContrastiveHeads(mc.vision.vision_output_dim, mc.text.hidden_size, mc.text.hidden_size,
                               cfg.seed * 1000003 + si);
      for (auto& p : heads->named_parameters()) objective_params.emplace_back("contrastive." + p.key(), p.value());
      params.insert(params.end(), objective_params.begin(), objective_params.end());
    }
    if (best_rq) {
      const auto& ec = model.speech->config().encoder;
      quantizer = BestRq(stage.best_rq, ec.n_mels, ec.stack, ec.d_model, cfg.seed * 1000003 + si);
      for (auto& p : quantizer->named_parameters()) objective_params.emplace_back("best_rq." + p.key(), p.value());
      params.insert(params.end(), objective_params.begin(), objective_params.end());
      if (!continuing) {  // per-bin statistics of the data, kept in the encoder (and its adapter file)
        std::vector<Example> first;
        for (size_t i = 0; i < samples.size() && static_cast<int64_t>(first.size()) < stage.best_rq.stats_samples; ++i) {
          try {
            first.push_back(builder.build(samples[i]));
          } catch (const Error& e) {
            if (e.kind() != ErrorKind::InputDecode) throw;
          }
        }
        if (first.empty()) throw Error(ErrorKind::InputDecode, stage.data.path + ": no readable audio for the statistics");
        model.set_feature_statistics(first);
        std::cerr << "train: feature statistics from " << first.size() << " utterances\n";
      }
    }
    std::vector<Sample> eval_set;  // answered greedily every eval_every steps (rank 0)
    if (stage.eval_every > 0 && lead) {
      eval_set = stage.eval_data.path.empty() ? samples : read_dataset(stage.eval_data);
      if (static_cast<int64_t>(eval_set.size()) > stage.eval_samples) eval_set.resize(stage.eval_samples);
    }
    LoaderOptions lo;
    lo.seed = cfg.seed + si;
    lo.max_bad_fraction = stage.data.max_bad_fraction;
    lo.workers = opts.workers;
    lo.origin = stage.data.path;
    lo.rank = env.rank;
    lo.world = world;
    const bool audio = std::all_of(samples.begin(), samples.end(), [](const Sample& s) { return s.kind == MediaKind::Audio; });
    if (audio && stage.data.bucket_window > 0) {
      lo.bucket_batch = stage.batch_size * world;
      lo.bucket_window = stage.data.bucket_window;
      std::cerr << "train: batching clips of similar length (windows of " << lo.bucket_window << " batches)\n";
    }
    DataLoader loader(std::move(samples), builder, lo);
    AdamW optimizer(params, stage.optimizer);
    CheckpointState state;
    state.stage = static_cast<int64_t>(si);
    state.stage_name = stage.name;
    state.total_steps = total;
    state.seed = cfg.seed;
    if (continuing) {
      restore(objective_params, saved.params, *resume_from, /*objective=*/true);
      optimizer.load_state(saved.optimizer, *resume_from);
      state = *resumed;
      loader.seek(resume_position(state, env.rank, world, n_samples), state.bad_samples);
    }

    // Bad samples one rank found are shared with all (so none reads them again and all stop together when too
    // many are bad): a count every step, the set only when there is news.
    size_t synced_bad = loader.bad().size();
    auto sync_bad = [&] {
      if (!dp) return;
      if (dp->all_reduce_sum(static_cast<double>(loader.bad().size() - synced_bad)) > 0) {
        auto mask = torch::zeros({loader.size()}, torch::kFloat32);
        for (int64_t i : loader.bad()) mask[i] = 1.0f;
        dp->all_reduce_sum({mask});
        std::set<int64_t> all;
        const auto m = mask.accessor<float, 1>();
        for (int64_t i = 0; i < loader.size(); ++i)
          if (m[i] > 0) all.insert(i);
        loader.add_bad(all);
      }
      synced_bad = loader.bad().size();
    };

    auto checkpoint = [&] {
      sync_bad();
      state.data = loader.position();
      state.bad_samples = loader.bad();
      if (dp) {  // every rank's position
        auto pos = torch::zeros({world, 2}, torch::kFloat64);
        pos[env.rank][0] = static_cast<double>(loader.position().epoch);
        pos[env.rank][1] = static_cast<double>(loader.position().cursor);
        dp->all_reduce_sum({pos});
        state.rank_data.clear();
        for (int r = 0; r < world; ++r)
          state.rank_data.push_back({static_cast<int64_t>(pos[r][0].item<double>()),
                                     static_cast<int64_t>(pos[r][1].item<double>())});
        state.data = state.rank_data[0];
      }
      if (!lead) return;
      CheckpointTensors t{as_map(model.run_state()), optimizer.state()};
      for (const auto& [name, p] : objective_params) t.params[name] = p.detach().contiguous();
      result.last_checkpoint = write_checkpoint(cfg.output_dir, state, t, stage.keep_checkpoints);
      std::cerr << "train: checkpoint " << result.last_checkpoint << "\n";
    };

    Progress progress(stage.name, total);
    const auto t_stage = std::chrono::steady_clock::now();
    const double elapsed_before = state.elapsed_s;
    while (state.step < total) {
      sync_bad();
      bool stop = g_stop || (opts.max_steps > 0 && steps_this_run >= opts.max_steps);
      if (dp) stop = dp->all_reduce_sum(stop ? 1.0 : 0.0) > 0;  // a signal to one rank stops them all together
      if (stop) {
        progress.break_line();
        if (g_stop) std::cerr << "train: stopping on a signal\n";
        checkpoint();
        return result;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = scheduled_lr(stage.optimizer, stage.schedule, state.step, total);
      // Each loss is a sum, backpropagated as is; the gradients are divided by the step's target count over all
      // micro-batches and ranks afterwards, so every target token (BEST-RQ: masked frame) of the step weighs the
      // same and accumulation equals the big batch exactly.
      double loss_sum = 0;
      int64_t n_targets = 0, n_tokens = 0, n_examples = 0;
      for (int64_t mb = 0; mb < stage.grad_accum; ++mb) {
        const auto batch = loader.next(stage.batch_size);
        for (const auto& e : batch) n_tokens += e.tokens.size(), ++n_examples;
        int64_t n = 0;
        torch::Tensor l;
        if (best_rq) {
          std::vector<uint64_t> seeds;
          for (int64_t b = 0; b < stage.batch_size; ++b)
            seeds.push_back(mask_seed(cfg.seed, si, state.step, static_cast<size_t>(mb), b * world + env.rank));
          l = model.best_rq_loss_sum(batch, *quantizer, seeds, n);
        } else if (contrastive) {
          l = model.contrastive_loss_sum(batch, *heads, n);
        } else {
          l = model.loss_sum(batch, n);
        }
        l.backward();
        loss_sum += l.item<double>();
        n_targets += n;
      }
      if (dp) {
        auto counts = torch::tensor({loss_sum, static_cast<double>(n_targets), static_cast<double>(n_tokens),
                                     static_cast<double>(n_examples)}, torch::kFloat64);
        std::vector<torch::Tensor> grads;
        for (auto& [name, p] : params) {
          if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
          grads.push_back(p.grad());
        }
        dp->all_reduce_sum({counts});
        dp->all_reduce_sum(grads);
        loss_sum = counts[0].item<double>();
        n_targets = static_cast<int64_t>(counts[1].item<double>());
        n_tokens = static_cast<int64_t>(counts[2].item<double>());
        n_examples = static_cast<int64_t>(counts[3].item<double>());
      }
      if (n_targets > 0) {
        torch::NoGradGuard no_grad;
        for (auto& [name, p] : params)
          if (p.grad().defined()) p.grad().div_(static_cast<double>(n_targets));
      }
      const double grad_norm = clip_grad_norm(params, stage.clip_grad_norm);
      optimizer.step(lr);
      optimizer.zero_grad();
      ++state.step;
      ++steps_this_run;
      state.samples += n_examples;
      state.tokens += n_tokens;
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state.elapsed_s = elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_stage).count();
      const double loss = loss_sum / static_cast<double>(std::max<int64_t>(n_targets, 1));
      if (!std::isfinite(loss))
        throw Error(ErrorKind::Runtime, "stage '" + stage.name + "' step " + std::to_string(state.step) +
                                            ": the loss is not finite (lower the learning rate?)");
      json row = {{"stage", state.stage},
                  {"stage_name", stage.name},
                  {"step", state.step},
                  {"epoch", loader.position().epoch},
                  {"loss", loss},
                  {"lr", lr},
                  {"grad_norm", grad_norm},
                  {"samples_per_s", n_examples / dt},
                  {"tokens_per_s", n_tokens / dt},
                  {"target_tokens", n_targets},
                  {"peak_rss_mb", peak_rss_mb()},
                  {"bad_samples", static_cast<int64_t>(loader.bad().size())},
                  {"elapsed_s", state.elapsed_s}};
      const bool eval_now = !eval_set.empty() && (state.step % stage.eval_every == 0 || state.step == total);
      if (eval_now && contrastive) {
        const auto e = evaluate_retrieval(model, builder, eval_set, *heads, stage.batch_size);
        row["eval_retrieval"] = e.top1;
        row["eval_samples"] = e.samples;
        progress.break_line();
        std::cerr << "train: eval at step " << state.step << ": retrieval " << e.top1 << " (" << e.samples
                  << " samples)\n";
      } else if (eval_now) {
        std::string answers;  // every held-out answer, to see afterwards which parts of the answers are wrong
        const auto e = evaluate(model, builder, eval_set, [&](const EvalAnswer& a) {
          answers += json{{"origin", a.origin},
                          {"reference", a.reference},
                          {"answer", a.answer},
                          {"word_errors", a.word_errors},
                          {"reference_words", a.reference_words}}
                         .dump() +
                     "\n";
        });
        if (lead) {
          char step[16];
          std::snprintf(step, sizeof step, "%08lld", static_cast<long long>(state.step));
          const auto dir = fs::path(cfg.output_dir) / "eval";
          fs::create_directories(dir);
          write_file_atomic((dir / (stage.name + "-step" + step + ".jsonl")).string(), answers);
        }
        row["eval_exact_match"] = e.exact_match;
        row["eval_wer"] = e.wer;
        row["eval_samples"] = e.samples;
        progress.break_line();
        std::cerr << "train: eval at step " << state.step << ": exact match " << e.exact_match << ", WER " << e.wer
                  << " (" << e.samples << " samples)\n";
      }
      if (lead) {
        metrics->write(row);
        progress.update(state.step, row);
      }
      if (stage.checkpoint_every > 0 && state.step % stage.checkpoint_every == 0 && state.step < total) checkpoint();
    }
    std::vector<std::string> adapters;
    std::string saved_model;  // a run that trains the LLM leaves a whole model (a new base) after every stage
    if (lead) adapters = model.save_adapters((fs::path(cfg.output_dir) / "adapters").string(), stage.train);
    if (lead && trains_llm) saved_model = model.save_model((fs::path(cfg.output_dir) / "model").string());
    if (lead && trains_text_model(stage)) model.save_text_model((fs::path(cfg.output_dir) / "text_model").string());
    checkpoint();  // the stage's end: a resume starts the next stage
    json summary = {{"stage", stage.name}, {"steps", total}, {"samples", state.samples}, {"adapters", adapters},
                    {"bad_samples", static_cast<int64_t>(loader.bad().size())}, {"elapsed_s", state.elapsed_s}};
    if (!saved_model.empty()) summary["model"] = saved_model;
    if (lead) std::cout << summary.dump() << "\n" << std::flush;
  }
  result.finished = true;
  return result;
}

}  // namespace llama_mm::train
