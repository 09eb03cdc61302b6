// train/data_loader.h: the stream of training examples for a stage: a seeded shuffle per epoch, preprocessing in
// worker threads ahead of the step, and bad samples (missing, corrupt, too long) skipped, logged with their path and
// counted. The order depends only on the seed and the epoch, never on thread timing, so a run resumed from a
// DataPosition sees exactly the examples it would have seen.
#pragma once

#include "train/example_builder.h"

#include <cstdint>
#include <deque>
#include <future>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace llama_mm::train {

// Where the stream is: the next sample is order(epoch)[cursor].
struct DataPosition {
  int64_t epoch = 0, cursor = 0;
};

class DataLoader {
 public:
  // `max_bad_fraction` of the dataset may be unreadable; one more stops the stage (ErrorKind::InputDecode naming
  // `origin` and the last bad sample). `workers` threads preprocess up to 2·workers samples ahead.
  DataLoader(std::vector<Sample> samples, const ExampleBuilder& builder, uint64_t seed, double max_bad_fraction,
             int workers, std::string origin);
  ~DataLoader();

  // The next n good examples in order, crossing into the next epoch (new shuffle) as needed.
  std::vector<Example> next(int64_t n);

  DataPosition position() const { return pos_; }
  // Continues from `pos` with the samples known to be bad (no prefetched work is kept).
  void seek(DataPosition pos, std::set<int64_t> bad);
  const std::set<int64_t>& bad() const { return bad_; }
  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  // The sample order of an epoch: a Fisher-Yates shuffle from a generator seeded by (seed, epoch).
  std::vector<int64_t> order(int64_t epoch) const;

 private:
  using Result = std::variant<Example, std::string>;  // the example, or why the sample is bad
  struct Pending {
    DataPosition pos;
    int64_t index;
    std::future<Result> result;
  };
  void fill();
  DataPosition advance(DataPosition p) const;

  std::vector<Sample> samples_;
  const ExampleBuilder& builder_;
  uint64_t seed_;
  double max_bad_fraction_;
  int workers_;
  std::string origin_;
  DataPosition pos_, ahead_;  // next to hand out; next to schedule
  std::set<int64_t> bad_;
  std::deque<Pending> pending_;
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace llama_mm::train
