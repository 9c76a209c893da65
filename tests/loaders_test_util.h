// Helpers shared by the loaders tests: where the shared real files are, temp dirs, byte I/O and
// locating fields inside a real GGUF so corruption tests can patch them.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "loaders/model_file.h"

namespace nibble::test {

inline std::string shared_dir() { return NIBBLE_SHARED_DIR; }
inline std::string kjv_dir() { return shared_dir() + "/models/kjv-llama"; }
inline std::string kjv_gguf(const std::string& type) {
  return kjv_dir() + "/kjv-llama-" + type + ".gguf";
}
inline std::string vocab_dir() { return shared_dir() + "/data/tokenizer-vectors"; }

#define NIBBLE_REQUIRE_SHARED()                                                        \
  do {                                                                                 \
    if (!std::filesystem::exists(::nibble::test::kjv_dir())) {                         \
      GTEST_SKIP() << "shared model files not found at " << ::nibble::test::kjv_dir(); \
    }                                                                                  \
  } while (0)

// A fresh directory removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nibble-loaders-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<uint8_t> b(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!in) throw std::runtime_error("cannot read " + path);
  return b;
}

inline void write_bytes(const std::string& path, const uint8_t* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out) throw std::runtime_error("cannot write " + path);
}
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  write_bytes(path, b.data(), b.size());
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}
template <typename T>
T peek(const std::vector<uint8_t>& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

// Offset of a GGUF string (u64 length + bytes) equal to `s`, searched from `from`; npos if none.
inline size_t find_gguf_string(const std::vector<uint8_t>& b, const std::string& s,
                               size_t from = 0) {
  std::vector<uint8_t> pat(8 + s.size());
  const uint64_t len = s.size();
  std::memcpy(pat.data(), &len, 8);
  std::memcpy(pat.data() + 8, s.data(), s.size());
  auto it =
      std::search(b.begin() + static_cast<std::ptrdiff_t>(from), b.end(), pat.begin(), pat.end());
  return it == b.end() ? std::string::npos : static_cast<size_t>(it - b.begin());
}

// Field offsets of one tensor info in a GGUF file's bytes.
struct TensorInfoAt {
  size_t name = 0;    // the name's u64 length
  size_t n_dims = 0;  // u32
  size_t dims = 0;    // u64 each
  size_t type = 0;    // u32
  size_t offset = 0;  // u64
};
inline TensorInfoAt locate_tensor_info(const std::vector<uint8_t>& b, const std::string& name) {
  TensorInfoAt at;
  at.name = find_gguf_string(b, name);
  if (at.name == std::string::npos) throw std::runtime_error("tensor info not found: " + name);
  at.n_dims = at.name + 8 + name.size();
  at.dims = at.n_dims + 4;
  at.type = at.dims + 8 * peek<uint32_t>(b, at.n_dims);
  at.offset = at.type + 4;
  return at;
}

}  // namespace nibble::test
