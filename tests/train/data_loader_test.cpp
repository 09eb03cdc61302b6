// Tests train/data_loader on 12 generated clips of different lengths: two data-parallel ranks read disjoint shares
// whose union is one process's stream, a bad sample is read (and found) only by the rank whose share it is in and
// is shared with add_bad, seek continues a stream exactly, and length bucketing gives batches of similar duration
// (from the headers or the manifest) while the order stays a seeded permutation.
#include "adapters/adapters.h"
#include "llm/llm.h"
#include "test_util.h"
#include "train/train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace llama_mm::train {
namespace {

namespace fs = std::filesystem;

class DataLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("data_loader_test");
    tok_ = new Tokenizer(Tokenizer::from_json_string(make_byte_level_tokenizer_json()));
    for (int i = 0; i < 12; ++i) {  // clip i lasts 0.1 · (1 + (5 i) mod 12) s: lengths not in manifest order
      const double seconds = 0.1 * (1 + (5 * i) % 12);
      const auto path = (*dir_ / ("c" + std::to_string(i) + ".wav")).string();
      test::run_ffmpeg("-f lavfi -i sine=frequency=440:duration=" + std::to_string(seconds) + " -ar 16000 -ac 1 '" +
                       path + "'");
      seconds_.push_back(seconds);
    }
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }

  static std::vector<Sample> samples(bool with_missing = false) {
    std::vector<Sample> out;
    for (int i = 0; i < 12; ++i) {
      Sample s;
      s.kind = MediaKind::Audio;
      s.media = (*dir_ / ("c" + std::to_string(i) + ".wav")).string();
      if (with_missing && i == 7) s.media = (*dir_ / "missing.wav").string();
      s.turns = {{"user", ""}, {"assistant", "x"}};
      s.origin = "m:" + std::to_string(i);
      out.push_back(s);
    }
    return out;
  }
  static ExampleBuilder builder() {
    ExampleBuilderOptions o;
    o.speech = SpeechModelConfig::preset("tiny", 64);
    o.features_only = true;
    return ExampleBuilder(*tok_, o);
  }
  static LoaderOptions options(int rank, int world) {
    LoaderOptions o;
    o.seed = 9;
    o.max_bad_fraction = 0.5;
    o.workers = 2;
    o.origin = "m";
    o.rank = rank;
    o.world = world;
    return o;
  }
  static std::multiset<std::string> origins(const std::vector<Example>& v) {
    std::multiset<std::string> s;
    for (const auto& e : v) s.insert(e.origin);
    return s;
  }
  static test::TempDir* dir_;
  static Tokenizer* tok_;
  static std::vector<double> seconds_;
};
test::TempDir* DataLoaderTest::dir_ = nullptr;
Tokenizer* DataLoaderTest::tok_ = nullptr;
std::vector<double> DataLoaderTest::seconds_;

TEST_F(DataLoaderTest, TwoRanksTogetherReadOneProcessStream) {
  const auto b = builder();
  DataLoader one(samples(), b, options(0, 1)), r0(samples(), b, options(0, 2)), r1(samples(), b, options(1, 2));
  for (int step = 0; step < 3; ++step) {  // 3 × 6 examples: the third step crosses into epoch 1's order
    const auto all = one.next(6), a = r0.next(3), c = r1.next(3);
    auto both = origins(a);
    for (const auto& o : origins(c)) both.insert(o);
    EXPECT_EQ(origins(all), both) << step;
    for (const auto& o : origins(a)) EXPECT_EQ(origins(c).count(o), 0u) << step << " " << o;
  }
  EXPECT_EQ(one.position().epoch, 1);
  EXPECT_EQ(one.position().cursor, 6);
  EXPECT_EQ(r0.position().cursor, 6);  // rank 0 continues at the global stream's position 18, rank 1 at 19
  EXPECT_EQ(r1.position().cursor, 7);

  // A resumed stream continues exactly.
  DataLoader again(samples(), b, options(1, 2));
  again.seek(r1.position(), r1.bad());
  EXPECT_EQ(origins(again.next(4)), origins(r1.next(4)));
}

TEST_F(DataLoaderTest, ABadSampleIsReadOnlyByTheRankWhoseShareItIsIn) {
  const auto b = builder();
  DataLoader r0(samples(true), b, options(0, 2)), r1(samples(true), b, options(1, 2));
  const auto order = r0.order(0);
  const auto at = std::find(order.begin(), order.end(), 7) - order.begin();
  DataLoader& owner = at % 2 == 0 ? r0 : r1;
  DataLoader& other = at % 2 == 0 ? r1 : r0;
  owner.next(6);  // its whole share of epoch 0
  other.next(5);  // one fewer: the owner skipped the bad one and read into epoch 1
  EXPECT_EQ(owner.bad(), (std::set<int64_t>{7}));
  EXPECT_TRUE(other.bad().empty());
  other.add_bad(owner.bad());
  EXPECT_EQ(other.bad(), (std::set<int64_t>{7}));
  // More bad samples than max_bad_fraction allows is an error naming the manifest.
  auto strict = options(0, 2);
  strict.max_bad_fraction = 0.0;
  DataLoader r(samples(), b, strict);
  try {
    r.add_bad({7});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InputDecode);
    EXPECT_NE(std::string(e.what()).find("max_bad_fraction"), std::string::npos) << e.what();
  }
}

// Sum over consecutive batches of (longest − shortest) duration.
double spread(const std::vector<int64_t>& order, const std::vector<double>& seconds, int64_t batch) {
  double s = 0;
  for (size_t i = 0; i + batch <= order.size(); i += batch) {
    double lo = 1e9, hi = -1e9;
    for (int64_t j = 0; j < batch; ++j) lo = std::min(lo, seconds[order[i + j]]), hi = std::max(hi, seconds[order[i + j]]);
    s += hi - lo;
  }
  return s;
}

TEST_F(DataLoaderTest, LengthBucketingBatchesClipsOfSimilarDuration) {
  const auto b = builder();
  auto o = options(0, 1);
  DataLoader plain(samples(), b, o);
  o.bucket_batch = 3;
  o.bucket_window = 4;  // one window: the 12 clips sorted, cut into 4 batches, the batches shuffled
  DataLoader bucketed(samples(), b, o);
  for (int64_t epoch : {0, 1}) {
    auto order = bucketed.order(epoch);
    auto sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 12; ++i) ASSERT_EQ(sorted[i], i);  // a permutation
    // The durations are 0.1 … 1.2 s, one each: sorted batches of 3 spread 0.2 s each.
    EXPECT_NEAR(spread(order, seconds_, 3), 4 * 0.2, 0.1) << epoch;
    EXPECT_GT(spread(plain.order(epoch), seconds_, 3), 4 * 0.2 + 0.5) << epoch;
    EXPECT_EQ(order, bucketed.order(epoch));  // seeded
  }
  EXPECT_NE(bucketed.order(0), bucketed.order(1));  // the batches are shuffled per epoch
  // Durations the manifest states are used as they are (here: the reverse of the real ones).
  auto stated = samples();
  std::vector<double> reversed;
  for (int i = 0; i < 12; ++i) reversed.push_back(stated[i].duration_s = 2.0 - seconds_[i]);
  DataLoader from_manifest(std::move(stated), b, o);
  EXPECT_NEAR(spread(from_manifest.order(0), reversed, 3), 4 * 0.2, 0.1);
}

}  // namespace
}  // namespace llama_mm::train
