// train/data_parallel.h: data parallelism over processes with LibTorch's c10d, configured the torchrun way from
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Every rank holds the whole model, reads and
// preprocesses only its share of the data stream (data_loader.h: positions rank, rank + world, ...), and the
// gradients of the trainable parameters are summed across ranks before clipping and the optimizer step: with no
// bad samples the update equals one process's with the global batch, up to summation order. Bad samples found by
// one rank are shared with all. Rank 0 writes checkpoints, adapters and metrics. Gloo carries the tensors (CPU; CUDA tensors are staged through host memory).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace c10d {
class ProcessGroup;
}

namespace llama_mm::train {

struct DistributedEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // From the environment; unset: a single process. Bad values are ErrorKind::Config naming the variable.
  static DistributedEnv from_environment();
};

class DataParallel {
 public:
  // Connects all ranks (the TCP store on MASTER_ADDR:MASTER_PORT, served by rank 0).
  explicit DataParallel(const DistributedEnv& env);
  ~DataParallel();
  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  // Sums every tensor across ranks, in place (one flat buffer per call: fp64 if the first tensor is, else fp32).
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors);
  double all_reduce_sum(double value);
  void barrier();

 private:
  DistributedEnv env_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llama_mm::train
