// SHA-256 (FIPS 180-4), for the provenance nibble files record (nibble.source.sha256): the
// digest users already have for published checkpoints (sha256sum, SHA256SUMS files).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nibble {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  // Finishes the hash (the object is then spent) and returns the 32-byte digest.
  std::array<uint8_t, 32> finish();
  // finish() as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hex digest of a file's bytes; throws FileError naming the path when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace nibble
