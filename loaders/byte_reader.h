// The one bounds-checked cursor every loader parses bytes with. Each read checks the bytes left
// first and throws FileError naming the file, the field being read and the offset, so a truncated
// or hostile file can never make a parser read past the end of its buffer. Also holds the
// overflow-checked arithmetic the loaders use for sizes computed from untrusted numbers.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "loaders/model_file.h"

namespace nibble {

// Files are little-endian; the parsers memcpy fields as is, so the host must be too.
static_assert(std::endian::native == std::endian::little,
              "nibble loaders assume a little-endian host");

// Checked arithmetic: false on overflow (the result is then unspecified).
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
// Rounds up to a multiple of `align` (a power of two); false on overflow.
inline bool checked_align_up(uint64_t v, uint64_t align, uint64_t* out) {
  if (!checked_add(v, align - 1, out)) return false;
  *out &= ~(align - 1);
  return true;
}

class ByteReader {
 public:
  ByteReader(const uint8_t* data, uint64_t size, std::string path)
      : data_(data), size_(size), path_(std::move(path)) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }

  // Prefix added to every error message after the path, e.g. "metadata key 'general.name'", so a
  // failure deep inside a value still says which entry it was in. Cheap to set per entry.
  void set_context(std::string context) { context_ = std::move(context); }
  void clear_context() { context_.clear(); }

  [[noreturn]] void fail(const std::string& msg) const {
    std::string full = path_ + ": ";
    if (!context_.empty()) full += context_ + ": ";
    throw FileError(full + msg);
  }

  // Throws unless `n` more bytes are available; `what` names the field for the message.
  void require(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail("truncated: " + std::string(what) + " at offset " + std::to_string(pos_) + " needs " +
           std::to_string(n) + " bytes, only " + std::to_string(remaining()) + " left (file size " +
           std::to_string(size_) + ")");
    }
  }

  template <typename T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint8_t u8(std::string_view what) { return read<uint8_t>(what); }
  uint32_t u32(std::string_view what) { return read<uint32_t>(what); }
  uint64_t u64(std::string_view what) { return read<uint64_t>(what); }
  int32_t i32(std::string_view what) { return read<int32_t>(what); }

  // A view of the next `n` bytes (valid as long as the underlying buffer).
  const uint8_t* bytes(uint64_t n, std::string_view what) {
    require(n, what);
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  void skip(uint64_t n, std::string_view what) { bytes(n, what); }
  void seek(uint64_t pos, std::string_view what) {
    if (pos > size_) {
      fail(std::string(what) + ": offset " + std::to_string(pos) + " is past end of file (size " +
           std::to_string(size_) + ")");
    }
    pos_ = pos;
  }

  // GGUF string: u64 length then bytes. The length is checked against the bytes left (so a
  // corrupt length cannot trigger a huge allocation) and against `max_len`.
  std::string gguf_string(std::string_view what, uint64_t max_len = kMaxStringBytes) {
    const uint64_t start = pos_;
    const uint64_t len = u64(what);
    if (len > max_len) {
      fail(std::string(what) + " at offset " + std::to_string(start) + " has length " +
           std::to_string(len) + ", above the limit of " + std::to_string(max_len) + " bytes");
    }
    if (len > remaining()) {
      fail("truncated: " + std::string(what) + " at offset " + std::to_string(start) +
           " has length " + std::to_string(len) + " but only " + std::to_string(remaining()) +
           " bytes are left (file size " + std::to_string(size_) + ")");
    }
    const uint8_t* p = bytes(len, what);
    return std::string(reinterpret_cast<const char*>(p), len);
  }

  // Longest string any loader accepts: no real key, token or name comes close, and it bounds
  // the allocation a single corrupt length can cause even in a huge file.
  static constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string path_;
  std::string context_;
};

}  // namespace nibble
