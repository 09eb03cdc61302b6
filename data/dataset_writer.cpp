// data/dataset_writer.cpp: see dataset_writer.h.
#include "data/dataset_writer.h"

#include "llm/atomic_file.h"
#include "llm/error.h"

#include <cstdio>
#include <sstream>

namespace llama_mm::data::detail {

namespace fs = std::filesystem;

std::string item_file_name(int64_t i, const std::string& ext) {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.", static_cast<long long>(i));
  return name + ext;
}

std::string write_dataset(const std::string& command, const std::string& out_dir, int64_t n,
                          const std::string& media_subdir, const std::string& manifest_name,
                          const std::function<nlohmann::json(int64_t, const fs::path&)>& write_item,
                          const std::function<void(int64_t, int64_t)>& progress) {
  if (out_dir.empty()) throw Error(ErrorKind::Usage, command + ": an output folder is required");
  if (n < 1) throw Error(ErrorKind::Usage, command + ": the number of items (-n) must be at least 1");
  const fs::path dir(out_dir), media = dir / media_subdir;
  std::error_code ec;
  fs::create_directories(media, ec);
  if (ec) throw Error(ErrorKind::Runtime, command + ": cannot create " + media.string() + ": " + ec.message());
  std::ostringstream manifest;
  for (int64_t i = 0; i < n; ++i) {
    manifest << write_item(i, media).dump() << "\n";
    if (progress) progress(i + 1, n);
  }
  const std::string path = (dir / manifest_name).string();
  write_file_atomic(path, manifest.str());
  return path;
}

}  // namespace llama_mm::data::detail
