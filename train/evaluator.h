// train/evaluator.h: evaluation during training (`eval_every`): the model answers each evaluation sample greedily,
// as `caption` / `transcribe` would, and the answers are scored against the sample's first assistant turn:
//   eval_exact_match  share of answers equal to the reference (surrounding whitespace ignored)
//   eval_wer          word error rate over all samples: word-level edit distance / reference words
// or, for contrastive pre-training, how often an image's nearest caption is its own (eval_retrieval).
#pragma once

#include "train/data_loader.h"
#include "train/run_model.h"

#include <functional>
#include <string>
#include <vector>

namespace llama_mm::train {

// Word-level Levenshtein distance (substitutions, insertions, deletions) between whitespace-split texts.
int64_t word_edit_distance(const std::string& reference, const std::string& hypothesis);
int64_t word_count(const std::string& text);

struct EvalAnswer {
  std::string origin, reference, answer;
  int64_t word_errors = 0, reference_words = 0;
};

struct EvalResult {
  int64_t samples = 0, bad = 0;
  double exact_match = 0, wer = 0;
  std::vector<EvalAnswer> answers;  // in sample order (unreadable samples are skipped)
};

// `on_answer`, when given, sees each answer as it comes (progress, streaming output).
EvalResult evaluate(RunModel& model, const ExampleBuilder& builder, const std::vector<Sample>& samples,
                    const std::function<void(const EvalAnswer&)>& on_answer = {});

struct RetrievalResult {
  int64_t samples = 0, bad = 0;
  double top1 = 0;  // eval_retrieval: share of images whose nearest caption among all the samples' is their own
};

// Contrastive pre-training's evaluation: every sample's image and caption embedded (in batches of `batch_size`),
// then each image matched against every caption.
RetrievalResult evaluate_retrieval(RunModel& model, const ExampleBuilder& builder, const std::vector<Sample>& samples,
                                   ContrastiveHeadsImpl& heads, int64_t batch_size);

}  // namespace llama_mm::train
