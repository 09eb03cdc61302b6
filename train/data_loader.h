// train/data_loader.h: the stream of training examples for a stage: a seeded shuffle per epoch, preprocessing in
// worker threads ahead of the step, and bad samples (missing, corrupt, too long) skipped, logged with their path and
// counted. The order depends only on the seed and the epoch, never on thread timing, so a run resumed from a
// DataPosition sees exactly the examples it would have seen.
//
// Length bucketing (audio): with LoaderOptions::bucket_batch set, each epoch's shuffled order is cut into windows
// of bucket_window batches; each window is sorted by clip duration, cut into batches of bucket_batch, and those
// batches are shuffled within the window. A batch then holds clips of similar length (little padding) while the
// epoch stays random at the batch level. Durations come from the manifest ("duration") or the file headers.
//
// Data parallel: the epochs, concatenated, form one global stream; rank r of world w reads (and preprocesses) only
// stream positions r, r + w, r + 2w, ... With no bad samples, the w ranks' next(n) together are exactly one
// process's next(n · w).
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

struct LoaderOptions {
  uint64_t seed = 0;
  double max_bad_fraction = 0.01;  // of the dataset may be unreadable; more stops the stage
  int workers = 1;                 // threads preprocess up to 2·workers samples ahead
  std::string origin;              // the manifest, for messages
  int rank = 0, world = 1;         // data parallel: this process reads stream positions rank, rank + world, ...
  int64_t bucket_batch = 0;        // audio length bucketing: samples per global micro-batch; 0: off
  int64_t bucket_window = 64;      // batches per sorted window
};

class DataLoader {
 public:
  // With bucketing on, durations missing from the samples are read from the file headers (`workers` threads).
  DataLoader(std::vector<Sample> samples, const ExampleBuilder& builder, LoaderOptions options);
  ~DataLoader();

  // The next n good examples of this rank's stream, crossing into the next epoch (new order) as needed. More bad
  // samples than max_bad_fraction allows is ErrorKind::InputDecode naming the manifest and the last bad sample
  // (with several ranks: from add_bad, on the set all ranks share).
  std::vector<Example> next(int64_t n);

  // Where this rank's stream continues.
  DataPosition position() const { return pos_; }
  // Continues from `pos` with the samples known to be bad (no prefetched work is kept).
  void seek(DataPosition pos, std::set<int64_t> bad);
  const std::set<int64_t>& bad() const { return bad_; }
  // Adds the bad samples other ranks found (they are not read again) and checks the bad fraction on the whole set.
  void add_bad(const std::set<int64_t>& bad);
  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  // The sample order of an epoch: a Fisher-Yates shuffle from a generator seeded by (seed, epoch), then the
  // length bucketing.
  std::vector<int64_t> order(int64_t epoch) const;
  // The first position of rank `rank`'s stream.
  static DataPosition start(int rank, int64_t size);

 private:
  using Result = std::variant<Example, std::string>;  // the example, or why the sample is bad
  struct Pending {
    DataPosition pos;
    int64_t index;
    std::future<Result> result;
  };
  void fill();
  DataPosition advance(DataPosition p) const;
  void check_bad_fraction(const std::string& last) const;

  std::vector<Sample> samples_;
  const ExampleBuilder& builder_;
  LoaderOptions opt_;
  std::vector<double> durations_;  // seconds, -1 unknown; only with bucketing
  DataPosition pos_, ahead_;  // next to hand out; next to schedule
  std::set<int64_t> bad_;
  std::deque<Pending> pending_;
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace llama_mm::train
