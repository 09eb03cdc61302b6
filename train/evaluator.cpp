// train/evaluator.cpp: greedy answers and their exact-match and word error rates (see evaluator.h).
#include "train/evaluator.h"

#include "llm/error.h"

#include <algorithm>
#include <sstream>

namespace llama_mm::train {

namespace {

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

int64_t word_count(const std::string& text) { return static_cast<int64_t>(words(text).size()); }

int64_t word_edit_distance(const std::string& reference, const std::string& hypothesis) {
  const auto r = words(reference), h = words(hypothesis);
  std::vector<int64_t> prev(h.size() + 1), cur(h.size() + 1);
  for (size_t j = 0; j <= h.size(); ++j) prev[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= r.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= h.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[h.size()];
}

EvalResult evaluate(RunModel& model, const ExampleBuilder& builder, const std::vector<Sample>& samples,
                    const std::function<void(const EvalAnswer&)>& on_answer) {
  EvalResult r;
  int64_t exact = 0, errors = 0, ref_words = 0;
  for (const auto& s : samples) {
    Example ex;
    try {
      ex = builder.build(s);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::InputDecode) throw;
      ++r.bad;
      continue;
    }
    const auto it = std::find_if(s.turns.begin(), s.turns.end(), [](const Turn& t) { return t.role == "assistant"; });
    const std::string reference = trimmed(it->text);
    const std::string answer = trimmed(model.answer(ex, word_count(reference) * 8 + 16));
    EvalAnswer a{s.origin, reference, answer, word_edit_distance(reference, answer), word_count(reference)};
    ++r.samples;
    exact += answer == reference;
    errors += a.word_errors;
    ref_words += a.reference_words;
    if (on_answer) on_answer(a);
    r.answers.push_back(std::move(a));
  }
  if (r.samples > 0) r.exact_match = static_cast<double>(exact) / static_cast<double>(r.samples);
  r.wer = ref_words > 0 ? static_cast<double>(errors) / static_cast<double>(ref_words) : 0.0;
  return r;
}

RetrievalResult evaluate_retrieval(RunModel& model, const ExampleBuilder& builder, const std::vector<Sample>& samples,
                                   ContrastiveHeadsImpl& heads, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  RetrievalResult r;
  std::vector<torch::Tensor> images, texts;
  std::vector<std::vector<int64_t>> captions;
  std::vector<Example> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    auto e = model.image_text_embeddings(batch, heads);
    images.push_back(e.images);
    texts.push_back(e.texts);
    captions.insert(captions.end(), e.captions.begin(), e.captions.end());
    batch.clear();
  };
  for (const auto& s : samples) {
    try {
      batch.push_back(builder.build(s));
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::InputDecode) throw;
      ++r.bad;
      continue;
    }
    if (static_cast<int64_t>(batch.size()) == batch_size) flush();
  }
  flush();
  r.samples = static_cast<int64_t>(captions.size());
  if (r.samples == 0) return r;
  const auto all_images = torch::cat(images), all_texts = torch::cat(texts);
  r.top1 = retrieval_top1(all_images, all_texts, same_captions(captions).to(all_images.device()));
  return r;
}

}  // namespace llama_mm::train
