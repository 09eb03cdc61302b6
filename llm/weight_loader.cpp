// llm/weight_loader.cpp: strict state-dict loading (conventions.md §1 rule 11).
#include "llm/weight_loader.h"

#include "llm/error.h"

#include <map>
#include <set>
#include <sstream>

namespace llama_mm {

namespace {
std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void load_weights_strict(torch::nn::Module& module, const SafetensorsCheckpoint& ckpt, const std::string& origin,
                         const WeightLoadOptions& opts) {
  std::map<std::string, torch::Tensor> targets;
  for (auto& p : module.named_parameters(/*recurse=*/true)) targets[p.key()] = p.value();
  for (auto& b : module.named_buffers(/*recurse=*/true)) targets[b.key()] = b.value();

  std::vector<std::string> unexpected, mismatched, missing;
  std::map<std::string, std::string> source;  // parameter name -> checkpoint key (shape matches)
  std::set<std::string> seen;                 // parameter names the checkpoint provides, matching or not
  for (const auto& key : ckpt.names()) {
    bool ignored = false;
    for (const auto& suf : opts.ignore_suffixes) ignored = ignored || ends_with(key, suf);
    if (ignored) continue;
    const std::string name = opts.rename ? opts.rename(key) : key;
    if (name.empty()) continue;
    auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(key);
      continue;
    }
    seen.insert(name);
    const auto& e = ckpt.entry(key);
    if (c10::IntArrayRef(e.shape) != it->second.sizes()) {
      mismatched.push_back(key + ": expected " + shape_str(it->second.sizes()) + ", got " +
                           shape_str(e.shape) + " in " + ckpt.file_of(key));
      continue;
    }
    source[name] = key;
  }
  for (const auto& [name, t] : targets)
    if (!seen.count(name)) missing.push_back(name);

  if (!unexpected.empty() || !mismatched.empty() || !missing.empty()) {
    std::ostringstream msg;
    msg << origin << ": checkpoint does not match the model (" << missing.size() << " missing, "
        << unexpected.size() << " unexpected, " << mismatched.size() << " mis-shaped)";
    for (const auto& m : missing) msg << "\n  missing: " << m;
    for (const auto& u : unexpected) msg << "\n  unexpected: " << u;
    for (const auto& m : mismatched) msg << "\n  mis-shaped: " << m;
    throw Error(ErrorKind::ModelLoad, msg.str());
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, key] : source) targets[name].copy_(ckpt.get(key));
}

}  // namespace llama_mm
