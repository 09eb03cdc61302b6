// data/dataset_writer.h (internal to data/): the folder layout every generator writes: media files under a
// subfolder, then a JSONL manifest (one object per item) written last and atomically, with progress.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace llama_mm::data::detail {

// Item i's media file name: "000042.<ext>".
std::string item_file_name(int64_t i, const std::string& ext);

// Checks out_dir and n (Usage errors naming `command`, e.g. "data motion"), creates out_dir/media_subdir, calls
// write_item(i, media_dir) for i in [0, n) (it writes the item's file and returns its manifest object), then
// writes out_dir/manifest_name. Returns the manifest's path.
std::string write_dataset(const std::string& command, const std::string& out_dir, int64_t n,
                          const std::string& media_subdir, const std::string& manifest_name,
                          const std::function<nlohmann::json(int64_t, const std::filesystem::path&)>& write_item,
                          const std::function<void(int64_t, int64_t)>& progress);

}  // namespace llama_mm::data::detail
