// llm/atomic_file.h: files that are either wholly there or not at all, as checkpoints and outputs must be: write a
// temp file in the same directory, fsync it, rename it over the target, fsync the directory.
#pragma once

#include <string>

namespace llama_mm {

// Writes `content` to `path` atomically (ErrorKind::Runtime naming the path on failure; the temp file is removed).
void write_file_atomic(const std::string& path, const std::string& content);

// Makes renames and creations in `dir` durable. Filesystems that refuse fsync on a directory (EINVAL) are fine.
void sync_directory(const std::string& dir);

}  // namespace llama_mm
