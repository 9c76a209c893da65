#include "tokenizer/protobuf_wire.h"

#include <cstring>

namespace nibble::protowire {

void Writer::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    data_.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  data_.push_back(static_cast<char>(value));
}

void Writer::varint(uint32_t field, uint64_t value) {
  tag(field, kVarint);
  raw_varint(value);
}

void Writer::fixed32_float(uint32_t field, float value) {
  tag(field, kFixed32);
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  // Protobuf fixed-width values are little-endian regardless of the host.
  for (int i = 0; i < 4; ++i) data_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

void Writer::bytes(uint32_t field, std::string_view value) {
  tag(field, kLengthDelimited);
  raw_varint(value.size());
  data_.append(value);
}

namespace {

bool read_varint(std::string_view in, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    const auto byte = static_cast<uint8_t>(in[pos++]);
    out |= uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

uint64_t read_le(std::string_view in, size_t pos, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(in[pos + i])} << (8 * i);
  return v;
}

}  // namespace

bool for_each_field(std::string_view message, const std::function<void(const Field&)>& visit) {
  size_t pos = 0;
  while (pos < message.size()) {
    uint64_t key;
    if (!read_varint(message, pos, key)) return false;
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.type = static_cast<WireType>(key & 7);
    switch (f.type) {
      case kVarint:
        if (!read_varint(message, pos, f.value)) return false;
        break;
      case kFixed64:
        if (message.size() - pos < 8) return false;
        f.value = read_le(message, pos, 8);
        pos += 8;
        break;
      case kFixed32:
        if (message.size() - pos < 4) return false;
        f.value = read_le(message, pos, 4);
        pos += 4;
        break;
      case kLengthDelimited: {
        uint64_t len;
        if (!read_varint(message, pos, len) || len > message.size() - pos) return false;
        f.payload = message.substr(pos, len);
        pos += len;
        break;
      }
      default:
        return false;  // groups (3, 4) are not used by sentencepiece
    }
    visit(f);
  }
  return true;
}

}  // namespace nibble::protowire
