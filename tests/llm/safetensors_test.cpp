// tests/llm/safetensors_test.cpp: tests llm/safetensors.cpp (mllama-spec.md §1.3): round trips of every
// dtype, zero-copy aliasing of the mmap, atomic writes, sharded checkpoints, and one hand-crafted bad file per
// validation rule (each must be a clean ModelLoad error naming the file and the culprit).
#include "llm/safetensors.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llama_mm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::TempDir;

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A raw safetensors file: u64 little-endian length of `header`, `header`, `data`.
std::string raw_safetensors(const std::string& header, const std::string& data, uint64_t declared_len) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &declared_len, 8);
  return out + header + data;
}
std::string raw_safetensors(const std::string& header, const std::string& data = "") {
  return raw_safetensors(header, data, header.size());
}

// Runs `fn`, expects llama_mm::Error of `kind` whose message contains every string of `needles`.
template <typename Fn>
void expect_error(Fn fn, ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning " << needles.front();
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

void expect_load_error(const fs::path& file, std::vector<std::string> needles) {
  needles.insert(needles.begin(), file.filename().string());
  expect_error([&] { SafetensorsFile f(file.string()); }, ErrorKind::ModelLoad, needles);
}

// One tensor of every supported dtype, plus a scalar and empty tensors.
std::map<std::string, torch::Tensor> sample_tensors() {
  torch::manual_seed(0);
  return {
      {"f64", torch::randn({2, 3}, torch::kFloat64)},
      {"f32", torch::randn({3, 5})},
      {"f16", torch::randn({7}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 3, 3}).to(torch::kBFloat16)},
      {"i64", torch::randint(-1000, 1000, {5}, torch::kInt64)},
      {"i32", torch::randint(-1000, 1000, {3, 1}, torch::kInt32)},
      {"i16", torch::randint(-1000, 1000, {3}, torch::kInt16)},
      {"i8", torch::randint(-128, 127, {9}, torch::kInt8)},
      {"u8", torch::randint(0, 255, {4, 2}, torch::kUInt8)},
      {"bool", torch::randint(0, 2, {5}, torch::kInt8).to(torch::kBool)},
      {"scalar", torch::tensor(3.5f).reshape({})},
      {"empty", torch::empty({0, 4}, torch::kFloat32)},
      {"empty_bf16", torch::empty({3, 0}, torch::kBFloat16)},
  };
}

// [start, end) of the mapping of `file` in this process, or {0, 0}.
std::pair<uintptr_t, uintptr_t> mapping_of(const fs::path& file) {
  const std::string want = fs::canonical(file).string();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() < want.size() || line.compare(line.size() - want.size(), want.size(), want) != 0) continue;
    uintptr_t start = 0, end = 0;
    char dash;
    std::istringstream(line) >> std::hex >> start >> dash >> end;
    return {start, end};
  }
  return {0, 0};
}

TEST(SafetensorsDtype, MapsBothWays) {
  for (const char* s : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"})
    EXPECT_EQ(torch_dtype_to_safetensors(safetensors_dtype_to_torch(s, "ctx")), s);
  EXPECT_EQ(safetensors_dtype_to_torch("BF16", "ctx"), torch::kBFloat16);
  expect_error([] { safetensors_dtype_to_torch("F8_E4M3", "model.safetensors: tensor 'w'"); }, ErrorKind::ModelLoad,
               {"model.safetensors: tensor 'w'", "F8_E4M3"});
  expect_error([] { torch_dtype_to_safetensors(torch::kComplexFloat); }, ErrorKind::Runtime, {"ComplexFloat"});
}

TEST(SafetensorsRoundTrip, EveryDtypeScalarsEmptyAndMetadata) {
  TempDir dir;
  const auto path = dir / "model.safetensors";
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode"}};
  write_safetensors(path.string(), tensors, meta);

  SafetensorsFile f(path.string());
  EXPECT_EQ(f.path(), path.string());
  EXPECT_EQ(f.metadata(), meta);
  ASSERT_EQ(f.entries().size(), tensors.size());
  std::vector<std::string> expected_names;
  for (const auto& [name, t] : tensors) {
    expected_names.push_back(name);
    ASSERT_TRUE(f.contains(name)) << name;
    const SafetensorsEntry& e = f.entries().at(name);
    EXPECT_EQ(e.dtype, torch_dtype_to_safetensors(t.scalar_type())) << name;
    EXPECT_EQ(e.shape, t.sizes().vec()) << name;
    EXPECT_EQ(e.end - e.begin, uint64_t(t.numel() * t.element_size())) << name;
    const torch::Tensor got = f.get(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  EXPECT_EQ(f.names(), expected_names);
  EXPECT_EQ(f.get("scalar").dim(), 0);
  EXPECT_FLOAT_EQ(f.get("scalar").item<float>(), 3.5f);
  EXPECT_EQ(f.get("empty").numel(), 0);
  EXPECT_FALSE(f.contains("nope"));
  expect_error([&] { f.get("nope"); }, ErrorKind::ModelLoad, {"model.safetensors", "'nope'"});
}

TEST(SafetensorsRoundTrip, NoMetadataKeyWhenEmptyAndNonContiguousInput) {
  TempDir dir;
  const auto path = dir / "t.safetensors";
  const torch::Tensor t = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();  // non-contiguous view
  write_safetensors(path.string(), {{"w", t}});
  SafetensorsFile f(path.string());
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(torch::equal(f.get("w"), t));
  EXPECT_EQ(read_bytes(path).find("__metadata__"), std::string::npos);
}

// The byte layout a reference reader expects: padded header, sorted keys, consecutive aligned offsets.
TEST(SafetensorsWrite, HeaderLayoutMatchesReferenceWriter) {
  TempDir dir;
  const auto path = dir / "m.safetensors";
  const auto tensors = sample_tensors();
  write_safetensors(path.string(), tensors, {{"format", "pt"}});
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_GT(header.find_last_not_of(' ') + 8, header.size()) << "padding is fewer than 8 spaces";
  const json j = json::parse(header);
  EXPECT_EQ(j["__metadata__"], json({{"format", "pt"}}));
  size_t last_pos = 0;
  for (const auto& kv : tensors) {  // std::map order: sorted
    const size_t pos = header.find("\"" + kv.first + "\":");
    EXPECT_GT(pos, last_pos) << kv.first << " written in sorted order";
    last_pos = pos;
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, t] : tensors) {
    const auto off = j[name]["data_offsets"];
    ranges.emplace_back(off[0].get<uint64_t>(), off[1].get<uint64_t>());
    EXPECT_EQ(off[0].get<uint64_t>() % t.element_size(), 0u) << name << " is naturally aligned";
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t expect_begin = 0;
  for (const auto& [b, e] : ranges) {
    EXPECT_EQ(b, expect_begin);
    expect_begin = e;
  }
  EXPECT_EQ(expect_begin, bytes.size() - 8 - n) << "data buffer is exactly covered";
}

TEST(SafetensorsFileTest, ZeroCopyAliasesTheMappingAndOutlivesTheFile) {
  TempDir dir;
  const auto path = dir / "z.safetensors";
  const torch::Tensor w = torch::randn({64, 64});
  write_safetensors(path.string(), {{"w", w}, {"b", torch::randn({3}).to(torch::kBFloat16)}});

  torch::Tensor got;
  {
    SafetensorsFile f(path.string());
    const auto [start, end] = mapping_of(path);
    ASSERT_NE(start, 0u) << "file is mmapped";
    got = f.get("w");
    const auto p = reinterpret_cast<uintptr_t>(got.data_ptr());
    EXPECT_GE(p, start);
    EXPECT_LE(p + got.nbytes(), end);
    EXPECT_EQ(f.get("w").data_ptr(), got.data_ptr()) << "no copy per get()";
    const auto pb = reinterpret_cast<uintptr_t>(f.get("b").data_ptr());
    EXPECT_TRUE(pb >= start && pb + 6 <= end);
  }
  // The file object is gone; the tensor still holds the mapping.
  EXPECT_NE(mapping_of(path).first, 0u);
  EXPECT_TRUE(torch::equal(got, w));
  got = torch::Tensor();
  EXPECT_EQ(mapping_of(path).first, 0u) << "last reference gone: munmapped";
}

TEST(SafetensorsFileTest, UnalignedDataIsReadCorrectly) {
  TempDir dir;
  const auto path = dir / "u.safetensors";
  const float vals[2] = {1.5f, -2.25f};
  std::string data(1, '\x07');
  data.append(reinterpret_cast<const char*>(vals), sizeof(vals));
  // The data buffer is 8-aligned (header padded to 8), so 'f' at offset 1 is misaligned for F32.
  std::string header = R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  write_bytes(path, raw_safetensors(header, data));
  SafetensorsFile f(path.string());
  const torch::Tensor t = f.get("f");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % alignof(float), 0u);
  EXPECT_FLOAT_EQ(t[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(t[1].item<float>(), -2.25f);
  EXPECT_EQ(f.get("b").item<uint8_t>(), 7);
}

TEST(SafetensorsFileTest, Float8AcceptedAtOpenRejectedOnGet) {
  TempDir dir;
  const auto path = dir / "f8.safetensors";
  write_bytes(path, raw_safetensors(R"({"q":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]},)"
                                    R"("s":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                                    std::string("\x01\x02\x03\x04\x05\x06", 6)));
  SafetensorsFile f(path.string());
  EXPECT_EQ(f.entries().at("q").dtype, "F8_E4M3");
  EXPECT_EQ(f.get("s")[1].item<uint8_t>(), 6);
  expect_error([&] { f.get("q"); }, ErrorKind::ModelLoad, {"f8.safetensors", "'q'", "F8_E4M3"});
}

TEST(SafetensorsWrite, AtomicReplaceLeavesNoTempFile) {
  TempDir dir;
  const auto path = dir / "a.safetensors";
  write_safetensors(path.string(), {{"big", torch::randn({1000})}}, {{"v", "1"}});
  const torch::Tensor small = torch::arange(3, torch::kInt32);
  write_safetensors(path.string(), {{"small", small}});
  size_t n_files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    ++n_files;
    EXPECT_EQ(e.path().filename(), "a.safetensors");
  }
  EXPECT_EQ(n_files, 1u);
  SafetensorsFile f(path.string());
  EXPECT_EQ(f.names(), std::vector<std::string>{"small"});
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(torch::equal(f.get("small"), small));
  uint64_t n = 0;
  const std::string bytes = read_bytes(path);
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(bytes.size(), 8 + n + 12) << "replaced whole, no tail of the old file";
}

TEST(SafetensorsWrite, FailuresThrowRuntimeAndLeaveNothing) {
  TempDir dir;
  const auto missing = dir / "no_such_dir" / "x.safetensors";
  expect_error([&] { write_safetensors(missing.string(), {{"w", torch::ones({2})}}); }, ErrorKind::Runtime,
               {missing.string()});
  EXPECT_FALSE(fs::exists(dir / "no_such_dir"));

  // Target is a directory: the rename fails after the temp file was written; the temp must be removed.
  const auto target_dir = dir / "occupied";
  fs::create_directory(target_dir);
  expect_error([&] { write_safetensors(target_dir.string(), {{"w", torch::ones({2})}}); }, ErrorKind::Runtime,
               {target_dir.string()});
  EXPECT_TRUE(fs::is_directory(target_dir));

  const torch::Tensor complex = torch::ones({2}, torch::kComplexFloat);
  expect_error([&] { write_safetensors((dir / "c.safetensors").string(), {{"c", complex}}); },
               ErrorKind::Runtime, {"c.safetensors", "'c'"});
  expect_error([&] { write_safetensors((dir / "m.safetensors").string(), {{"__metadata__", torch::ones({2})}}); },
               ErrorKind::Runtime, {"m.safetensors", "__metadata__"});
  size_t n_files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) n_files += e.path().filename() != "occupied";
  EXPECT_EQ(n_files, 0u) << "no temp or partial files";
}

// Writes `shards` (file name -> tensors) and a model.safetensors.index.json listing `weight_map`.
void write_sharded(const TempDir& dir, const std::map<std::string, std::map<std::string, torch::Tensor>>& shards,
                   json weight_map = nullptr) {
  if (weight_map.is_null()) {
    weight_map = json::object();
    for (const auto& [file, ts] : shards)
      for (const auto& kv : ts) weight_map[kv.first] = file;
  }
  for (const auto& [file, ts] : shards) write_safetensors((dir / file).string(), ts);
  const json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}

std::map<std::string, std::map<std::string, torch::Tensor>> three_shards() {
  return {{"model-00001-of-00003.safetensors",
           {{"a.weight", torch::randn({4, 4}).to(torch::kBFloat16)}, {"b.weight", torch::randn({4})}}},
          {"model-00002-of-00003.safetensors", {{"c.weight", torch::arange(6).reshape({2, 3})}}},
          {"model-00003-of-00003.safetensors",
           {{"d.weight", torch::ones({2}, torch::kFloat16)}, {"e.bias", torch::zeros({})}}}};
}

TEST(SafetensorsCheckpointTest, ShardedThroughIndexDirectoryOrJsonPath) {
  TempDir dir;
  const auto shards = three_shards();
  write_sharded(dir, shards);
  for (const std::string& p : {dir.path().string(), (dir / "model.safetensors.index.json").string()}) {
    SafetensorsCheckpoint ck(p);
    EXPECT_EQ(ck.files().size(), 3u);
    EXPECT_EQ(ck.names(), (std::vector<std::string>{"a.weight", "b.weight", "c.weight", "d.weight", "e.bias"}));
    for (const auto& [file, ts] : shards)
      for (const auto& [name, t] : ts) {
        EXPECT_TRUE(ck.contains(name));
        EXPECT_EQ(fs::path(ck.file_of(name)).filename(), file);
        EXPECT_EQ(ck.entry(name).shape, t.sizes().vec());
        EXPECT_TRUE(torch::equal(ck.get(name), t)) << name;
      }
    EXPECT_FALSE(ck.contains("zzz"));
    expect_error([&] { ck.get("zzz"); }, ErrorKind::ModelLoad, {"'zzz'", dir.path().string()});
    expect_error([&] { ck.entry("zzz"); }, ErrorKind::ModelLoad, {"'zzz'"});
  }
}

TEST(SafetensorsCheckpointTest, SingleFileDirectoryAndPathAndMissing) {
  TempDir dir;
  const torch::Tensor w = torch::randn({3});
  write_safetensors((dir / "model.safetensors").string(), {{"w", w}});
  for (const std::string& p : {dir.path().string(), (dir / "model.safetensors").string()}) {
    SafetensorsCheckpoint ck(p);
    EXPECT_EQ(ck.files().size(), 1u);
    EXPECT_EQ(ck.names(), std::vector<std::string>{"w"});
    EXPECT_TRUE(torch::equal(ck.get("w"), w));
  }
  TempDir empty;
  expect_error([&] { SafetensorsCheckpoint ck(empty.path().string()); }, ErrorKind::ModelLoad,
               {"no model.safetensors or model.safetensors.index.json in", empty.path().string()});
  expect_error([&] { SafetensorsCheckpoint ck((empty / "nope.safetensors").string()); }, ErrorKind::ModelLoad,
               {"nope.safetensors"});
}

TEST(SafetensorsCheckpointTest, IndexWinsOverSingleFile) {
  TempDir dir;
  write_sharded(dir, three_shards());
  write_safetensors((dir / "model.safetensors").string(), {{"stray", torch::ones({1})}});
  SafetensorsCheckpoint ck(dir.path().string());
  EXPECT_EQ(ck.files().size(), 3u);
  EXPECT_FALSE(ck.contains("stray"));
}

TEST(SafetensorsCheckpointTest, BadIndexes) {
  const std::string index_name = "model.safetensors.index.json";
  {
    TempDir dir;
    auto shards = three_shards();
    write_sharded(dir, shards);
    fs::remove(dir / "model-00002-of-00003.safetensors");
    expect_error([&] { SafetensorsCheckpoint ck(dir.path().string()); }, ErrorKind::ModelLoad,
                 {index_name, "model-00002-of-00003.safetensors", "missing"});
  }
  {
    TempDir dir;
    json wm = {{"a.weight", "model-00001-of-00003.safetensors"}, {"b.weight", "model-00001-of-00003.safetensors"},
               {"c.weight", "model-00002-of-00003.safetensors"}, {"d.weight", "model-00003-of-00003.safetensors"},
               {"e.bias", "model-00003-of-00003.safetensors"}, {"ghost.weight", "model-00002-of-00003.safetensors"}};
    write_sharded(dir, three_shards(), wm);
    expect_error([&] { SafetensorsCheckpoint ck(dir.path().string()); }, ErrorKind::ModelLoad,
                 {index_name, "'ghost.weight'", "model-00002-of-00003.safetensors"});
  }
  {
    TempDir dir;
    json wm = {{"a.weight", "model-00002-of-00003.safetensors"}, {"b.weight", "model-00001-of-00003.safetensors"},
               {"c.weight", "model-00002-of-00003.safetensors"}, {"d.weight", "model-00003-of-00003.safetensors"},
               {"e.bias", "model-00003-of-00003.safetensors"}};
    write_sharded(dir, three_shards(), wm);  // a.weight lives in shard 1, the index says shard 2
    expect_error([&] { SafetensorsCheckpoint ck(dir.path().string()); }, ErrorKind::ModelLoad,
                 {index_name, "'a.weight'", "absent from shard", "model-00002-of-00003.safetensors"});
  }
  {
    TempDir dir;
    auto shards = three_shards();
    shards["model-00003-of-00003.safetensors"]["a.weight"] = torch::ones({1});
    write_sharded(dir, shards);
    expect_error([&] { SafetensorsCheckpoint ck(dir.path().string()); }, ErrorKind::ModelLoad,
                 {index_name, "'a.weight'", "two shards", "model-00001-of-00003", "model-00003-of-00003"});
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"weight_map\": ", "not valid JSON"},
      {"[]", "weight_map"},
      {"{\"metadata\": {}}", "weight_map"},
      {"{\"weight_map\": [1]}", "weight_map"},
      {"{\"weight_map\": {}}", "empty"},
      {"{\"weight_map\": {\"a\": 3}}", "'a'"},
  };
  for (const auto& [text, needle] : bad) {
    TempDir dir;
    std::ofstream(dir / index_name) << text;
    expect_error([&] { SafetensorsCheckpoint ck(dir.path().string()); }, ErrorKind::ModelLoad, {index_name, needle});
  }
}

TEST(SafetensorsFileTest, EveryBadHeaderIsANamedError) {
  TempDir dir;
  const std::string d16(16, '\0');
  struct Case {
    std::string header;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"{\"w\": ", {"not valid JSON", "parse error"}},
      {"[1, 2]", {"must be a JSON object"}},
      {R"({"w": 5})", {"'w'", "expected an object"}},
      {R"({"w":{"shape":[4],"data_offsets":[0,16]}})", {"'w'", "'dtype'"}},
      {R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", {"'w'", "'shape'"}},
      {R"({"w":{"dtype":"F32","shape":[4]}})", {"'w'", "'data_offsets'"}},
      {R"({"w":{"dtype":5,"shape":[4],"data_offsets":[0,16]}})", {"'w'", "'dtype'"}},
      {R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", {"'w'", "'shape'"}},
      {R"({"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}})", {"'w'", "'shape'"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", {"'w'", "'data_offsets'"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-1,16]}})", {"'w'", "'data_offsets'"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":"0-16"}})", {"'w'", "'data_offsets'"}},
      {R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", {"'w'", "negative"}},
      {R"({"w":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", {"'w'", "unknown dtype 'F4'"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", {"'w'", "begin > end"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", {"'w'", "out of range"}},
      {R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})",
       {"tensor 'model.norm.weight': data_offsets [0, 12] do not match shape [4] × F32 (16 bytes)"}},
      {R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})",
       {"'w'", "do not match shape [3] × F32 (12 bytes)"}},
      {R"({"w":{"dtype":"BF16","shape":[],"data_offsets":[0,4]}})", {"'w'", "do not match shape [] × BF16 (2 bytes)"}},
      {R"({"w":{"dtype":"I8","shape":[0,5],"data_offsets":[0,1]}})",
       {"'w'", "do not match shape [0, 5] × I8 (0 bytes)"}},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]}})",
       {"'w'", "overflows"}},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       {"'a'", "'b'", "overlap"}},
      {R"({"__metadata__":[1]})", {"'__metadata__'"}},
      {R"({"__metadata__":{"format":"pt","n":1}})", {"'__metadata__'", "'n'"}},
  };
  int i = 0;
  for (const auto& c : cases) {
    const auto path = dir / ("bad" + std::to_string(i++) + ".safetensors");
    write_bytes(path, raw_safetensors(c.header, d16));
    SCOPED_TRACE(c.header);
    expect_load_error(path, c.needles);
  }
  // Header fields that are valid must not trip the checks above: the same layout, well formed, opens.
  const auto ok = dir / "ok.safetensors";
  const std::string ok_header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  write_bytes(ok, raw_safetensors(ok_header, d16));
  EXPECT_NO_THROW(SafetensorsFile f(ok.string()));
}

TEST(SafetensorsFileTest, BadHeaderLengths) {
  TempDir dir;
  const auto tiny = dir / "tiny.safetensors";
  write_bytes(tiny, "12345");
  expect_load_error(tiny, {"shorter than"});
  const auto empty = dir / "empty.safetensors";
  write_bytes(empty, "");
  expect_load_error(empty, {"shorter than"});

  const auto over = dir / "over.safetensors";
  write_bytes(over, raw_safetensors("{}", "0123456789", 1000));  // file is 8 + 2 + 10 = 20 bytes
  expect_load_error(over, {"header length 1000 exceeds file size 20"});
  const auto huge = dir / "huge.safetensors";
  write_bytes(huge, raw_safetensors("{}", "", ~uint64_t(0)));
  expect_load_error(huge, {"header length 18446744073709551615 exceeds file size 10"});

  // A header length that fits the file but is absurd: a sparse file, so the test writes almost nothing.
  const auto absurd = dir / "absurd.safetensors";
  write_bytes(absurd, raw_safetensors("", "", 200'000'000));
  fs::resize_file(absurd, 8 + 200'000'000);
  expect_load_error(absurd, {"header length 200000000 exceeds the limit"});

  expect_load_error(dir / "missing.safetensors", {"cannot open"});
  expect_load_error(dir.path(), {"not a regular file"});
}

TEST(SafetensorsFileTest, TruncatedFilesAreCleanErrors) {
  TempDir dir;
  const auto path = dir / "full.safetensors";
  write_safetensors(path.string(), {{"a", torch::randn({8})}, {"b", torch::randn({2, 2}).to(torch::kBFloat16)}},
                    {{"format", "pt"}});
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  ASSERT_NO_THROW(SafetensorsFile f(path.string()));
  for (size_t cut : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(9), size_t(8 + n / 2), size_t(8 + n - 1),
                     size_t(8 + n), size_t(8 + n + 1), bytes.size() / 2 + n / 2, bytes.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(bytes.size()));
    const auto cut_path = dir / ("cut" + std::to_string(cut) + ".safetensors");
    write_bytes(cut_path, bytes.substr(0, cut));
    expect_load_error(cut_path, {});
  }
}

}  // namespace
}  // namespace llama_mm
