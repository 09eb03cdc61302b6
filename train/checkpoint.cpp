// train/checkpoint.cpp: atomic checkpoint folders (see checkpoint.h).
#include "train/checkpoint.h"

#include "llm/atomic_file.h"
#include "llm/error.h"
#include "llm/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llama_mm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json position_json(const DataPosition& p) { return {{"epoch", p.epoch}, {"cursor", p.cursor}}; }
DataPosition position_of(const json& j) { return {j.at("epoch").get<int64_t>(), j.at("cursor").get<int64_t>()}; }

}  // namespace

json CheckpointState::to_json() const {
  json j = {{"stage", stage},     {"stage_name", stage_name}, {"step", step},
            {"total_steps", total_steps},
            {"data", position_json(data)},
            {"bad_samples", std::vector<int64_t>(bad_samples.begin(), bad_samples.end())},
            {"seed", seed},       {"samples", samples},       {"tokens", tokens}, {"elapsed_s", elapsed_s}};
  if (!rank_data.empty()) {
    j["rank_data"] = json::array();
    for (const auto& p : rank_data) j["rank_data"].push_back(position_json(p));
  }
  return j;
}

CheckpointState CheckpointState::from_json(const json& j, const std::string& origin) {
  try {
    CheckpointState s;
    s.stage = j.at("stage").get<int64_t>();
    s.stage_name = j.at("stage_name").get<std::string>();
    s.step = j.at("step").get<int64_t>();
    s.total_steps = j.at("total_steps").get<int64_t>();
    s.data = position_of(j.at("data"));
    if (j.contains("rank_data"))
      for (const auto& p : j.at("rank_data")) s.rank_data.push_back(position_of(p));
    for (const auto& b : j.at("bad_samples")) s.bad_samples.insert(b.get<int64_t>());
    s.seed = j.at("seed").get<uint64_t>();
    s.samples = j.at("samples").get<int64_t>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.elapsed_s = j.at("elapsed_s").get<double>();
    return s;
  } catch (const json::exception& e) {
    throw Error(ErrorKind::ModelLoad, origin + ": not a checkpoint state: " + e.what());
  }
}

namespace {

std::string folder_name(const CheckpointState& s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "stage%02lld-step%08lld", static_cast<long long>(s.stage + 1),
                static_cast<long long>(s.step));
  return buf;
}

std::vector<fs::path> complete_checkpoints(const std::string& run_dir) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("stage", 0) == 0 && fs::exists(e.path() / "state.json")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());  // zero-padded names: lexical order is training order
  return out;
}

void maybe_die_for_test() {
  static int written = 0;
  ++written;
  const char* env = std::getenv("LLAMA_MM_TEST_KILL_IN_CHECKPOINT");
  if (env && std::atoi(env) == written) std::raise(SIGKILL);
}

}  // namespace

std::string write_checkpoint(const std::string& run_dir, const CheckpointState& state, const CheckpointTensors& tensors,
                             int64_t keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  const fs::path final_dir = root / folder_name(state);
  const fs::path tmp = root / (".tmp-" + folder_name(state) + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_safetensors((tmp / "params.safetensors").string(), tensors.params, {{"format", "pt"}});
  maybe_die_for_test();
  write_safetensors((tmp / "optimizer.safetensors").string(), tensors.optimizer, {{"format", "pt"}});
  write_file_atomic((tmp / "state.json").string(), state.to_json().dump(2) + "\n");
  fs::remove_all(final_dir);  // a checkpoint of the same step (a re-run after a resume) is replaced
  fs::rename(tmp, final_dir);
  sync_directory(root.string());
  auto all = complete_checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(keep, 1)) < all.size(); ++i) fs::remove_all(all[i]);
  for (const auto& e : fs::directory_iterator(root))  // leftovers of crashed writes
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(e.path());
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().string();
}

CheckpointState read_checkpoint_state(const std::string& dir) {
  const std::string path = (fs::path(dir) / "state.json").string();
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::ModelLoad, path + ": cannot read the checkpoint state");
  std::stringstream s;
  s << in.rdbuf();
  try {
    return CheckpointState::from_json(json::parse(s.str()), path);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::ModelLoad, path + ": not valid JSON: " + e.what());
  }
}

CheckpointTensors read_checkpoint_tensors(const std::string& dir) {
  CheckpointTensors t;
  for (auto [file, out] : {std::pair{"params.safetensors", &t.params}, {"optimizer.safetensors", &t.optimizer}}) {
    SafetensorsFile f((fs::path(dir) / file).string());
    for (const auto& name : f.names()) (*out)[name] = f.get(name).clone();
  }
  return t;
}

}  // namespace llama_mm::train
