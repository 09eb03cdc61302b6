// llm/sha256.h: SHA-256 (FIPS 180-4), incremental. Used for the tokenizer fingerprint that adapter files carry,
// in every build (also one without FFmpeg, whose libavutil once provided it).
//
//   Sha256 h;
//   h.update(data, n);
//   std::string hex = h.hex_digest();   // 64 lowercase hex digits; the object is then spent
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace llama_mm {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::array<uint8_t, 32> digest();  // pads and finishes; call once
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace llama_mm
