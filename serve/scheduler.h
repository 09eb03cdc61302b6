// serve/scheduler.h: the generation slots (`-np`) and the bounded queue in front of them. A request's media is
// encoded on its HTTP thread before it gets here; a job is one generation, run on a free slot in arrival order.
// A full queue refuses the job (the server answers 503 with Retry-After). Jobs watch their own cancellation
// (client gone, deadline) through the generation callback.
//
// Today each slot runs its generation on its own thread with its own KV cache; the slots share the weights.
// Batching the slots' decode steps into one forward pass is the next step (issue 7).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llama_mm::serve {

class Scheduler {
 public:
  using Job = std::function<void()>;
  Scheduler(int slots, int queue_capacity);
  ~Scheduler();  // shutdown()

  // Queues a job; false when `queue_capacity` jobs are already waiting (or after shutdown).
  bool submit(Job job);
  // True when a submit now would be refused (checked before costly media encoding).
  bool full() const;
  // Stops taking jobs and returns once every queued and running job has finished.
  void shutdown();

  int slots() const { return static_cast<int>(threads_.size()); }
  int running() const;
  int waiting() const;

 private:
  void work();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  int capacity_, running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace llama_mm::serve
