// tests/adapters/adapter_file_test.cpp: adapters/adapter_file.cpp: header round trip, base compatibility and
// the errors for files that are not adapters.
#include "adapters/adapter_file.h"

#include "llm/error.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llama_mm {
namespace {

BaseModelInfo tiny_base() {
  auto tok = Tokenizer::from_json_string(make_byte_level_tokenizer_json());
  return {64, 512, tokenizer_fingerprint(tok)};
}

std::string error_of(const std::function<void()>& f, ErrorKind kind) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(AdapterFile, WritesAndReadsTheHeaderAndTensors) {
  test::TempDir tmp;
  AdapterHeader h;
  h.modality = "speech";
  h.base = tiny_base();
  h.config = {{"answer", 42}};
  const auto path = (tmp / "a.safetensors").string();
  write_adapter_file(path, h, {{"adapter.w", torch::arange(6, torch::kFloat32).view({2, 3})}});
  auto f = read_adapter_file(path, "speech");
  EXPECT_EQ(f.header.format_version, kAdapterFormatVersion);
  EXPECT_EQ(f.header.modality, "speech");
  EXPECT_EQ(f.header.base.to_json(), h.base.to_json());
  EXPECT_EQ(f.header.config, h.config);
  EXPECT_TRUE(torch::equal(f.tensors->get("adapter.w"), torch::arange(6, torch::kFloat32).view({2, 3})));
  EXPECT_NO_THROW(check_base_compatible(f.header, tiny_base(), path));
  // Asking for another modality names both.
  auto msg = error_of([&] { read_adapter_file(path, "image"); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("speech"), std::string::npos) << msg;
}

TEST(AdapterFile, AnotherBaseModelIsRefusedNamingTheField) {
  AdapterHeader h;
  h.modality = "speech";
  h.base = tiny_base();
  auto other = tiny_base();
  other.hidden_size = 4096;
  auto msg = error_of([&] { check_base_compatible(h, other, "s.safetensors"); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("s.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
  other = tiny_base();
  other.tokenizer_sha256 = tokenizer_fingerprint(Tokenizer::from_json_string(make_byte_level_tokenizer_json(20)));
  msg = error_of([&] { check_base_compatible(h, other, "s.safetensors"); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("tokenizer_sha256"), std::string::npos) << msg;
}

TEST(AdapterFile, FingerprintFollowsTheVocabularyNotTheJsonText) {
  const auto json = make_byte_level_tokenizer_json();
  const auto a = tokenizer_fingerprint(Tokenizer::from_json_string(json));
  EXPECT_EQ(a.size(), 64u);
  // The same tokenizer re-serialised with other formatting.
  EXPECT_EQ(a, tokenizer_fingerprint(Tokenizer::from_json_string(nlohmann::json::parse(json).dump(1))));
  // One more special token changes it.
  EXPECT_NE(a, tokenizer_fingerprint(Tokenizer::from_json_string(with_added_special_token(json, "<|image|>", 512))));
}

TEST(AdapterFile, FilesThatAreNotAdaptersAreClearErrors) {
  test::TempDir tmp;
  const auto plain = (tmp / "model.safetensors").string();
  write_safetensors(plain, {{"w", torch::zeros({2})}});
  auto msg = error_of([&] { read_adapter_file(plain); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("not a llama-mm adapter"), std::string::npos) << msg;

  const auto future = (tmp / "future.safetensors").string();
  write_safetensors(future, {{"w", torch::zeros({2})}},
                    {{kAdapterMetadataKey, R"({"format_version": 9, "modality": "speech", "base": {}, "config": {}})"}});
  msg = error_of([&] { read_adapter_file(future); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("format_version"), std::string::npos) << msg;

  const auto typo = (tmp / "typo.safetensors").string();
  write_safetensors(typo, {{"w", torch::zeros({2})}},
                    {{kAdapterMetadataKey, R"({"format_version": 1, "modality": "speech", "bsae": {}, "config": {}})"}});
  msg = error_of([&] { read_adapter_file(typo); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("bsae"), std::string::npos) << msg;

  // A truncated adapter file.
  AdapterHeader h;
  h.modality = "speech";
  h.base = tiny_base();
  const auto good = (tmp / "good.safetensors").string();
  write_adapter_file(good, h, {{"w", torch::zeros({1000})}});
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const auto cut = (tmp / "cut.safetensors").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  msg = error_of([&] { read_adapter_file(cut); }, ErrorKind::ModelLoad);
  EXPECT_NE(msg.find("cut.safetensors"), std::string::npos) << msg;
}

}  // namespace
}  // namespace llama_mm
