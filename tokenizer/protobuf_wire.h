// Just enough of the protobuf wire format to build and inspect a sentencepiece ModelProto:
// Debian's libsentencepiece-dev ships no generated protobuf headers, so nibble writes and reads
// the few fields it needs by hand.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace nibble::protowire {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Appends fields to a message under construction. Submessages are built in their own Writer and
// added with `message`, since their length has to precede them.
class Writer {
 public:
  void varint(uint32_t field, uint64_t value);
  // Negative int32 values are sign-extended to 64 bits: ten bytes, as protobuf encodes them.
  void int32(uint32_t field, int32_t value) { varint(field, static_cast<uint64_t>(int64_t{value})); }
  void fixed32_float(uint32_t field, float value);
  void bytes(uint32_t field, std::string_view value);
  void message(uint32_t field, const Writer& sub) { bytes(field, sub.data_); }

  const std::string& data() const { return data_; }
  std::string take() { return std::move(data_); }

 private:
  void raw_varint(uint64_t value);
  void tag(uint32_t field, WireType type) { raw_varint((uint64_t{field} << 3) | type); }
  std::string data_;
};

// One decoded field: varint and fixed values in `number` (fixed32 as its raw bits),
// length-delimited payloads in `payload` (a view into the parsed buffer).
struct Field {
  uint32_t number = 0;
  WireType type = kVarint;
  uint64_t value = 0;
  std::string_view payload;
};

// Calls `visit` for every top-level field of `message`. Returns false on malformed input
// (truncated varint or payload, unsupported wire type); fields seen before that were visited.
bool for_each_field(std::string_view message, const std::function<void(const Field&)>& visit);

}  // namespace nibble::protowire
