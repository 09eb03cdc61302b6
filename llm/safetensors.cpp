// llm/safetensors.cpp: the safetensors reader (mmap, zero-copy) and atomic writer (mllama-spec.md §1.3).
//
// Reader decisions:
// * The header is fully validated at open, so a bad file fails before any weight is touched. Dtypes that
//   have a known byte width but no LibTorch 1.13 equivalent (F8_E4M3, F8_E5M2, F8_E8M0, U16, U32, U64,
//   C64) are accepted at open — the rest of the checkpoint stays usable — and get() throws for them.
//   Dtypes of unknown width (F4, F6_*, typos) are rejected at open: their size cannot be checked.
// * Gaps between tensors and trailing bytes are tolerated (the reference writer never produces them, but
//   nothing is unsafe about them); overlaps are not.
// * get() aliases the mapping when the data is aligned to its element size (always true for files from the
//   reference writer and ours, which order data by alignment); unaligned data is copied, because ATen
//   kernels may assume naturally aligned elements.
#include "llm/safetensors.h"

#include "llm/atomic_file.h"

#include "llm/error.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llama_mm {

namespace fs = std::filesystem;
using json = nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so must the host be");

namespace {

// ref: huggingface/safetensors safetensors/src/tensor.rs MAX_HEADER_SIZE (100_000_000).
constexpr uint64_t kMaxHeaderSize = 100'000'000;

[[noreturn]] void fail(const std::string& msg) { throw Error(ErrorKind::ModelLoad, msg); }

// Byte width of every fixed-width safetensors dtype; 0 for unknown or sub-byte ones.
size_t dtype_width(const std::string& dtype) {
  static const std::map<std::string, size_t> widths = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}, {"U16", 2}, {"U32", 4},
      {"U64", 8}, {"C64", 8}};
  auto it = widths.find(dtype);
  return it == widths.end() ? 0 : it->second;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

std::string errno_str() { return std::strerror(errno); }

// One header entry, checked for types only; sizes are checked by the caller.
SafetensorsEntry parse_entry(const std::string& where, const json& v) {
  if (!v.is_object()) fail(where + ": expected an object with dtype, shape, data_offsets, got " + v.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) fail(where + ": missing key '" + key + "'");
  SafetensorsEntry e;
  const json& dtype = v["dtype"];
  if (!dtype.is_string()) fail(where + ": key 'dtype' must be a string, got " + dtype.dump());
  e.dtype = dtype.get<std::string>();
  if (dtype_width(e.dtype) == 0) fail(where + ": unknown dtype '" + e.dtype + "'");
  const json& shape = v["shape"];
  if (!shape.is_array()) fail(where + ": key 'shape' must be an array of integers, got " + shape.dump());
  for (const json& d : shape) {
    if (!d.is_number_integer()) fail(where + ": key 'shape' must be an array of integers, got " + shape.dump());
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      fail(where + ": key 'shape' has a negative dimension: " + shape.dump());
    if (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX))
      fail(where + ": key 'shape' has a dimension too large: " + shape.dump());
    e.shape.push_back(d.get<int64_t>());
  }
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    fail(where + ": key 'data_offsets' must be [begin, end] with non-negative integers, got " + off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  return e;
}

}  // namespace

torch::Dtype safetensors_dtype_to_torch(const std::string& dtype, const std::string& context) {
  static const std::map<std::string, torch::Dtype> table = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  auto it = table.find(dtype);
  if (it == table.end())
    fail(context + ": unsupported dtype '" + dtype + "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
  return it->second;
}

std::string torch_dtype_to_safetensors(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat64: return "F64";
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default:
      throw Error(ErrorKind::Runtime, std::string("torch dtype ") + c10::toString(dtype) +
                                          " has no safetensors equivalent supported by llama-mm");
  }
}

// ---------------------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path + ": cannot open: " + errno_str());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string err = errno_str();
    ::close(fd);
    fail(path + ": cannot stat: " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail(path + ": file is " + std::to_string(size_) + " bytes, shorter than the 8-byte header length");
  }
  void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string mmap_err = errno_str();
  ::close(fd);  // the mapping keeps the file referenced
  if (addr == MAP_FAILED) fail(path + ": mmap failed: " + mmap_err);
  const size_t size = size_;
  mapping_ = std::shared_ptr<void>(addr, [size](void* p) { ::munmap(p, size); });
  const auto* bytes = static_cast<const uint8_t*>(addr);

  uint64_t n = 0;
  std::memcpy(&n, bytes, 8);  // little-endian host (static_assert above)
  if (n > size_ - 8)
    fail(path + ": header length " + std::to_string(n) + " exceeds file size " + std::to_string(size_));
  if (n > kMaxHeaderSize)
    fail(path + ": header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderSize) +
         " bytes");
  data_ = bytes + 8 + n;
  const uint64_t data_size = size_ - 8 - n;

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + n));
  } catch (const json::exception& e) {
    fail(path + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) fail(path + ": header must be a JSON object, got " + std::string(header.type_name()));

  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(path + ": '__metadata__' must be an object of strings, got " + value.dump());
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(path + ": '__metadata__' key '" + k + "' must be a string, got " + v.dump());
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    SafetensorsEntry e = parse_entry(where, value);
    if (e.begin > e.end)
      fail(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] have begin > end");
    if (e.end > data_size)
      fail(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] out of range of the " + std::to_string(data_size) + "-byte data buffer");
    // numel × width with overflow checks: a crafted shape must not wrap around to a matching size.
    uint64_t bytes_needed = dtype_width(e.dtype);
    for (int64_t d : e.shape)
      if (__builtin_mul_overflow(bytes_needed, static_cast<uint64_t>(d), &bytes_needed))
        fail(where + ": shape " + shape_str(e.shape) + " × " + e.dtype + " overflows");
    if (e.end - e.begin != bytes_needed)
      fail(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] do not match shape " + shape_str(e.shape) + " × " + e.dtype + " (" + std::to_string(bytes_needed) +
           " bytes)");
    entries_.emplace(name, std::move(e));
  }

  // Overlaps: sort non-empty ranges by begin; each must start at or after the previous one's end.
  std::vector<const std::pair<const std::string, SafetensorsEntry>*> ranges;
  for (const auto& kv : entries_)
    if (kv.second.end > kv.second.begin) ranges.push_back(&kv);
  std::sort(ranges.begin(), ranges.end(), [](auto* a, auto* b) { return a->second.begin < b->second.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const auto& prev = *ranges[i - 1];
    const auto& cur = *ranges[i];
    if (cur.second.begin < prev.second.end)
      fail(path + ": tensors '" + prev.first + "' [" + std::to_string(prev.second.begin) + ", " +
           std::to_string(prev.second.end) + ") and '" + cur.first + "' [" + std::to_string(cur.second.begin) + ", " +
           std::to_string(cur.second.end) + ") overlap");
  }
}

SafetensorsFile::~SafetensorsFile() = default;

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_ + ": no tensor '" + name + "'");
  const SafetensorsEntry& e = it->second;
  const torch::Dtype dtype = safetensors_dtype_to_torch(e.dtype, path_ + ": tensor '" + name + "'");
  const auto options = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
  if (e.end == e.begin) return torch::empty(e.shape, options);  // numel 0: no bytes to alias
  // from_blob wants void*; the pages are PROT_READ, so writing through the tensor faults (documented in the header).
  void* ptr = const_cast<uint8_t*>(data_ + e.begin);
  auto mapping = mapping_;
  torch::Tensor t = torch::from_blob(ptr, e.shape, [mapping](void*) {}, options);
  if (reinterpret_cast<uintptr_t>(ptr) % dtype_width(e.dtype) != 0) return t.clone();
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path) {
  std::error_code ec;
  fs::path file = path;
  if (fs::is_directory(file, ec)) {
    if (fs::exists(file / "model.safetensors.index.json", ec))
      file /= "model.safetensors.index.json";
    else if (fs::exists(file / "model.safetensors", ec))
      file /= "model.safetensors";
    else
      fail("no model.safetensors or model.safetensors.index.json in " + path);
  } else if (!fs::exists(file, ec)) {
    fail(path + ": no such file or directory");
  }

  if (file.extension() != ".json") {
    files_.push_back(std::make_unique<SafetensorsFile>(file.string()));
    for (const auto& kv : files_[0]->entries()) where_.emplace(kv.first, 0);
    return;
  }

  const std::string index = file.string();
  json j;
  {
    std::ifstream in(index, std::ios::binary);
    if (!in) fail(index + ": cannot open: " + errno_str());
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail(index + ": not valid JSON: " + e.what());
    }
  }
  if (!j.is_object() || !j.contains("weight_map")) fail(index + ": missing 'weight_map' object");
  if (!j["weight_map"].is_object()) fail(index + ": 'weight_map' must be an object, got " + j["weight_map"].dump());
  const json& weight_map = j["weight_map"];
  if (weight_map.empty()) fail(index + ": 'weight_map' is empty");

  // Open each shard once, in name order so files() is deterministic.
  std::map<std::string, size_t> shard_index;
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (!shard.is_string())
      fail(index + ": weight_map['" + tensor + "'] must be a shard file name, got " + shard.dump());
    shard_index.emplace(shard.get<std::string>(), 0);
  }
  const fs::path dir = file.parent_path();
  for (auto& [shard, idx] : shard_index) {
    const fs::path shard_path = dir / shard;
    if (!fs::is_regular_file(shard_path, ec))
      fail(index + ": shard '" + shard + "' is missing (" + shard_path.string() + ")");
    idx = files_.size();
    files_.push_back(std::make_unique<SafetensorsFile>(shard_path.string()));
  }
  // Every tensor any shard holds is reachable, and no name may live in two shards.
  for (size_t i = 0; i < files_.size(); ++i) {
    for (const auto& kv : files_[i]->entries()) {
      auto [it, inserted] = where_.emplace(kv.first, i);
      if (!inserted)
        fail(index + ": tensor '" + kv.first + "' appears in two shards: " + files_[it->second]->path() + " and " +
             files_[i]->path());
    }
  }
  for (const auto& [tensor, shard] : weight_map.items()) {
    const size_t want = shard_index.at(shard.get<std::string>());
    auto it = where_.find(tensor);
    if (it == where_.end() || it->second != want)
      fail(index + ": tensor '" + tensor + "' is listed in weight_map but absent from shard " + files_[want]->path() +
           (it == where_.end() ? "" : " (it is in " + files_[it->second]->path() + ")"));
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

const std::string& SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) {
    const std::string dir = fs::path(files_.front()->path()).parent_path().string();
    fail("tensor '" + name + "' not found in the checkpoint at " + (dir.empty() ? "." : dir) + " (" +
         std::to_string(files_.size()) + " file(s))");
  }
  return files_[it->second]->path();
}

const SafetensorsEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  file_of(name);  // throws for unknown names
  return files_[where_.at(name)]->entries().at(name);
}

torch::Tensor SafetensorsCheckpoint::get(const std::string& name) const {
  file_of(name);
  return files_[where_.at(name)]->get(name);
}

// ---------------------------------------------------------------------------------------------------------
// write_safetensors

namespace {

[[noreturn]] void write_fail(const std::string& path, const std::string& msg) {
  throw Error(ErrorKind::Runtime, path + ": cannot write safetensors file: " + msg);
}

void write_all(int fd, const void* buf, size_t n, const std::string& tmp) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t(1) << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("write to " + tmp + " failed: " + errno_str());
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Everything that can fail without touching the disk comes first.
  std::vector<std::pair<std::string, torch::Tensor>> data;
  json header = json::object();
  try {
    for (const auto& [name, t] : tensors) {
      if (name == "__metadata__") write_fail(path, "'__metadata__' is reserved and cannot name a tensor");
      if (!t.defined()) write_fail(path, "tensor '" + name + "' is undefined");
      torch::Tensor c = t.is_sparse() ? t.to_dense() : t;
      c = c.to(torch::kCPU).contiguous();
      std::string dtype;
      try {
        dtype = torch_dtype_to_safetensors(c.scalar_type());
      } catch (const Error& e) {
        write_fail(path, "tensor '" + name + "': " + e.what());
      }
      header[name] = {{"dtype", dtype}, {"shape", c.sizes().vec()}};
      data.emplace_back(name, std::move(c));
    }
    // Widest elements first, then by name: with an 8-byte-aligned data buffer every tensor is naturally
    // aligned, so readers can alias it (ref: huggingface/safetensors tensor.rs `prepare` sorts the same way).
    std::stable_sort(data.begin(), data.end(),
                     [](const auto& a, const auto& b) { return a.second.element_size() > b.second.element_size(); });
    uint64_t offset = 0;
    for (const auto& [name, t] : data) {
      const uint64_t nbytes = t.numel() * t.element_size();
      header[name]["data_offsets"] = {offset, offset + nbytes};
      offset += nbytes;
    }
    if (!metadata.empty()) header["__metadata__"] = metadata;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    write_fail(path, e.what());
  }

  std::string header_str;
  try {
    header_str = header.dump();
  } catch (const json::exception& e) {
    write_fail(path, std::string("header is not valid UTF-8: ") + e.what());
  }
  // Pad with spaces to a multiple of 8 so the data buffer is 8-byte aligned (as the reference writer does).
  header_str.append((8 - header_str.size() % 8) % 8, ' ');
  const uint64_t n = header_str.size();

  // ".<seq>" on top of ".tmp.<pid>" keeps concurrent writers of one path in one process apart.
  static std::atomic<unsigned> seq{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(seq++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) write_fail(path, "cannot create " + tmp + ": " + errno_str());
  try {
    write_all(fd, &n, 8, tmp);
    write_all(fd, header_str.data(), header_str.size(), tmp);
    for (const auto& kv : data) write_all(fd, kv.second.data_ptr(), kv.second.numel() * kv.second.element_size(), tmp);
    if (::fsync(fd) != 0) throw std::runtime_error("fsync of " + tmp + " failed: " + errno_str());
    const int rc = ::close(fd);
    fd = -1;  // closed even when close() reports an error; never close a number that may be reused
    if (rc != 0) throw std::runtime_error("close of " + tmp + " failed: " + errno_str());
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw std::runtime_error("rename of " + tmp + " failed: " + errno_str());
  } catch (const std::exception& e) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    write_fail(path, e.what());
  }

  try {
    sync_directory(fs::path(path).parent_path().string());  // make the rename itself durable
  } catch (const Error& e) {
    write_fail(path, e.what());
  }
}

}  // namespace llama_mm
