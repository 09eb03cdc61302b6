// llm/safetensors.h: zero-copy reader and atomic writer for the Hugging Face safetensors format
// (mllama-spec.md §1.3), including sharded checkpoints through model.safetensors.index.json.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets:[begin,end)}, "__metadata__": {str: str}}, then the data buffer.
// Every error is a llama_mm::Error(ErrorKind::ModelLoad) naming the file and, where there is one, the tensor.
//
// Thread-safety: a SafetensorsFile / SafetensorsCheckpoint is immutable after open; tensors returned
// by get() alias the read-only mmap and keep it alive (shared ownership), so they must not be written.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace llama_mm {

struct SafetensorsEntry {
  std::string dtype;           // "F32", "BF16", ... as written in the header
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0; // byte offsets relative to the data buffer, end exclusive
};

// torch dtype for a safetensors dtype string (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL); throws for others.
torch::Dtype safetensors_dtype_to_torch(const std::string& dtype, const std::string& context);
std::string torch_dtype_to_safetensors(torch::Dtype dtype);

// One .safetensors file, mmapped read-only and validated on open: header length within the file,
// valid JSON, known dtypes, offsets in bounds, non-overlapping and sized numel × dtype size.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const;
  // Zero-copy CPU tensor over the mapping (read-only; clone() before writing).
  torch::Tensor get(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;  // munmaps when the last tensor and this file are gone
  size_t size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data buffer
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: a directory (model.safetensors, or model.safetensors.index.json + shards),
// a single .safetensors file, or an index .json file. Tensor names are unique across shards.
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  torch::Tensor get(const std::string& name) const;
  // The file that holds `name` (for error messages).
  const std::string& file_of(const std::string& name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

// Writes tensors (any device/layout; saved contiguous, little-endian, on CPU) and string metadata to
// `path` atomically: a temp file in the same directory, fsync, rename, fsync of the directory.
void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace llama_mm
