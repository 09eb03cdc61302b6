// train/data_loader.cpp: seeded order, prefetching and bad-sample accounting (see data_loader.h).
#include "train/data_loader.h"

#include "llm/error.h"
#include "media/audio_decode.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <random>
#include <thread>

namespace llama_mm::train {

DataLoader::DataLoader(std::vector<Sample> samples, const ExampleBuilder& builder, LoaderOptions options)
    : samples_(std::move(samples)), builder_(builder), opt_(std::move(options)) {
  opt_.workers = std::max(1, opt_.workers);
  opt_.world = std::max(1, opt_.world);
  if (samples_.empty()) throw Error(ErrorKind::InputDecode, opt_.origin + ": the dataset has no samples");
  pos_ = ahead_ = start(opt_.rank, size());
  if (opt_.bucket_batch <= 0) return;
  // Durations for the bucketing: the manifest's, else the audio headers' (read in parallel; unreadable: -1, and
  // the sample is reported when its turn comes).
  durations_.assign(samples_.size(), -1.0);
  std::atomic<size_t> next{0};
  auto probe = [this, &next] {
    for (size_t i; (i = next++) < samples_.size();) {
      const Sample& s = samples_[i];
      if (s.duration_s >= 0 || s.kind != MediaKind::Audio) {
        durations_[i] = s.duration_s;
        continue;
      }
      try {
        durations_[i] = media::probe_audio_seconds(s.media);
      } catch (const std::exception&) {
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < opt_.workers; ++t) threads.emplace_back(probe);
  probe();
  for (auto& t : threads) t.join();
}

DataLoader::~DataLoader() {
  for (auto& p : pending_)
    if (p.result.valid()) p.result.wait();
}

namespace {

// Fisher-Yates with an explicit bound: the same on every platform.
template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& gen) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen() % i]);
}

}  // namespace

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  std::vector<int64_t> idx(samples_.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::mt19937_64 gen(opt_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
  shuffle(idx, gen);
  if (opt_.bucket_batch <= 0) return idx;
  const int64_t B = opt_.bucket_batch, window = B * std::max<int64_t>(1, opt_.bucket_window), n = size();
  std::vector<int64_t> out;
  out.reserve(idx.size());
  for (int64_t w0 = 0; w0 < n; w0 += window) {
    const auto first = idx.begin() + w0, last = idx.begin() + std::min(n, w0 + window);
    std::stable_sort(first, last, [this](int64_t a, int64_t b) { return durations_[a] < durations_[b]; });
    // Whole batches are shuffled within the window; a partial one stays last so the others keep their bounds.
    const int64_t len = last - first, whole = len / B;
    std::vector<int64_t> batches(whole);
    for (int64_t b = 0; b < whole; ++b) batches[b] = b;
    shuffle(batches, gen);
    for (int64_t b : batches) out.insert(out.end(), first + b * B, first + (b + 1) * B);
    out.insert(out.end(), first + whole * B, last);
  }
  return out;
}

DataPosition DataLoader::start(int rank, int64_t size) { return {rank / size, rank % size}; }

DataPosition DataLoader::advance(DataPosition p) const {
  const int64_t g = p.epoch * size() + p.cursor + opt_.world;
  return {g / size(), g % size()};
}

void DataLoader::check_bad_fraction(const std::string& last) const {
  const auto n_bad = static_cast<int64_t>(bad_.size());
  if (static_cast<double>(n_bad) > opt_.max_bad_fraction * static_cast<double>(size()) || n_bad == size())
    throw Error(ErrorKind::InputDecode, opt_.origin + ": " + std::to_string(n_bad) + " of " + std::to_string(size()) +
                                            " samples are unreadable, more than data.max_bad_fraction " +
                                            std::to_string(opt_.max_bad_fraction) + " allows" +
                                            (last.empty() ? "" : "; the last: " + last));
}

void DataLoader::add_bad(const std::set<int64_t>& bad) {
  bad_.insert(bad.begin(), bad.end());
  check_bad_fraction("");
}

void DataLoader::fill() {
  while (static_cast<int>(pending_.size()) < 2 * opt_.workers) {
    if (order_epoch_ != ahead_.epoch) order_ = order(ahead_.epoch), order_epoch_ = ahead_.epoch;
    const int64_t index = order_[ahead_.cursor];
    Pending p{ahead_, index, {}};
    if (bad_.count(index)) {
      std::promise<Result> known;
      known.set_value(std::string());
      p.result = known.get_future();
    } else {
      const Sample* s = &samples_[index];
      const ExampleBuilder* b = &builder_;
      p.result = std::async(std::launch::async, [s, b]() -> Result {
        try {
          return b->build(*s);
        } catch (const Error& e) {
          if (e.kind() != ErrorKind::InputDecode) throw;  // a config or model problem is not the sample's
          return std::string(e.what());
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
      });
    }
    pending_.push_back(std::move(p));
    ahead_ = advance(ahead_);
  }
}

std::vector<Example> DataLoader::next(int64_t n) {
  std::vector<Example> out;
  while (static_cast<int64_t>(out.size()) < n) {
    fill();
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    pos_ = advance(p.pos);
    Result r = p.result.get();
    if (auto* ex = std::get_if<Example>(&r)) {
      out.push_back(std::move(*ex));
      continue;
    }
    const std::string& why = std::get<std::string>(r);
    if (why.empty()) continue;  // known bad, already reported
    bad_.insert(p.index);
    std::string msg = why;
    if (msg.find(samples_[p.index].media) == std::string::npos) msg = samples_[p.index].media + ": " + msg;
    std::cerr << "train: skipping bad sample (" << samples_[p.index].origin << "): " << msg << "\n";
    // With several ranks the fraction is checked on the shared set (add_bad), so that all stop together.
    if (opt_.world == 1 || static_cast<int64_t>(bad_.size()) == size()) check_bad_fraction(msg);
  }
  return out;
}

void DataLoader::seek(DataPosition pos, std::set<int64_t> bad) {
  for (auto& p : pending_)
    if (p.result.valid()) p.result.wait();
  pending_.clear();
  pos_ = ahead_ = pos;
  bad_ = std::move(bad);
}

}  // namespace llama_mm::train
