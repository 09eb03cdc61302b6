// tests/media/crc32.h: zlib's CRC-32 (polynomial 0xEDB88320), to check whole arrays against the CRCs the
// fixture generator (scripts/fixtures/gen_mllama_preprocess.py, zlib.crc32) stores for them, and to write
// PNG chunks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llama_mm::test {

inline uint32_t crc32(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

}  // namespace llama_mm::test
