// serve/scheduler.cpp: slot threads over a bounded FIFO (see scheduler.h).
#include "serve/scheduler.h"

#include <algorithm>
#include <exception>
#include <iostream>

namespace llama_mm::serve {

Scheduler::Scheduler(int slots, int queue_capacity) : capacity_(std::max(0, queue_capacity)) {
  for (int i = 0; i < std::max(1, slots); ++i) threads_.emplace_back([this] { work(); });
}

Scheduler::~Scheduler() { shutdown(); }

bool Scheduler::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    // Jobs waiting beyond the free slots count against the queue.
    const int free_slots = slots() - running_;
    if (static_cast<int>(queue_.size()) >= capacity_ + std::max(0, free_slots)) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool Scheduler::full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_ || static_cast<int>(queue_.size()) >= capacity_ + std::max(0, slots() - running_);
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

int Scheduler::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

int Scheduler::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

void Scheduler::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued job has been taken
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    try {
      job();
    } catch (const std::exception& e) {  // jobs report their own errors; this is a last resort
      std::cerr << "serve: a job failed: " << e.what() << "\n";
    }
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
}

}  // namespace llama_mm::serve
