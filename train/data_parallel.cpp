// train/data_parallel.cpp: c10d Gloo process group (see data_parallel.h).
#include "train/data_parallel.h"

#include "llm/error.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <iostream>

namespace llama_mm::train {

namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < lo || n > hi)
    throw Error(ErrorKind::Config, std::string(name) + "=" + v + ": expected an integer in [" + std::to_string(lo) +
                                       ", " + std::to_string(hi) + "]");
  return static_cast<int>(n);
}

}  // namespace

DistributedEnv DistributedEnv::from_environment() {
  DistributedEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 16);
  e.rank = env_int("RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, 1 << 16);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  return e;
}

struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

DataParallel::DataParallel(const DistributedEnv& env) : env_(env), impl_(std::make_unique<Impl>()) {
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = env.world_size;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::Runtime, "data parallel: rank " + std::to_string(env.rank) + " of " +
                                        std::to_string(env.world_size) + " could not join " + env.master_addr + ":" +
                                        std::to_string(env.master_port) + ": " + e.what());
  }
  std::cerr << "train: rank " << env.rank << " of " << env.world_size << " joined " << env.master_addr << ":"
            << env.master_port << " (Gloo)\n";
}

DataParallel::~DataParallel() = default;

void DataParallel::all_reduce_sum(const std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
  // fp64 when the first tensor is (counts, positions), else fp32 (gradients).
  const auto dtype = tensors[0].scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.detach().to(torch::kCPU, dtype).reshape({-1}));
  std::vector<torch::Tensor> buffer{torch::cat(flat_parts)};
  impl_->pg->allreduce(buffer)->wait();
  int64_t offset = 0;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(buffer[0].narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

double DataParallel::all_reduce_sum(double value) {
  auto t = torch::tensor({value}, torch::kFloat64);
  std::vector<torch::Tensor> buffer{t};
  impl_->pg->allreduce(buffer)->wait();
  return buffer[0].item<double>();
}

void DataParallel::barrier() { impl_->pg->barrier()->wait(); }

}  // namespace llama_mm::train
