// train/data_loader.cpp: seeded order, prefetching and bad-sample accounting (see data_loader.h).
#include "train/data_loader.h"

#include "llm/error.h"

#include <iostream>
#include <random>

namespace llama_mm::train {

DataLoader::DataLoader(std::vector<Sample> samples, const ExampleBuilder& builder, uint64_t seed,
                       double max_bad_fraction, int workers, std::string origin)
    : samples_(std::move(samples)),
      builder_(builder),
      seed_(seed),
      max_bad_fraction_(max_bad_fraction),
      workers_(std::max(1, workers)),
      origin_(std::move(origin)) {
  if (samples_.empty()) throw Error(ErrorKind::InputDecode, origin_ + ": the dataset has no samples");
}

DataLoader::~DataLoader() {
  for (auto& p : pending_)
    if (p.result.valid()) p.result.wait();
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  std::vector<int64_t> idx(samples_.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::mt19937_64 gen(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
  for (size_t i = idx.size(); i > 1; --i) {  // Fisher-Yates with an explicit bound: the same on every platform
    const uint64_t j = gen() % i;
    std::swap(idx[i - 1], idx[j]);
  }
  return idx;
}

DataPosition DataLoader::advance(DataPosition p) const {
  if (++p.cursor == size()) p = {p.epoch + 1, 0};
  return p;
}

void DataLoader::fill() {
  while (static_cast<int>(pending_.size()) < 2 * workers_) {
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
    if (static_cast<double>(bad_.size()) > max_bad_fraction_ * static_cast<double>(size()) ||
        static_cast<int64_t>(bad_.size()) == size())
      throw Error(ErrorKind::InputDecode,
                  origin_ + ": " + std::to_string(bad_.size()) + " of " + std::to_string(size()) +
                      " samples are unreadable, more than data.max_bad_fraction " + std::to_string(max_bad_fraction_) +
                      " allows; the last: " + msg);
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
