// GGUF v3 writer with llama.cpp's layout: header, KVs, tensor infos, zero padding to the
// alignment, then each tensor's data padded to the alignment (the last one too), offsets
// relative to the data section. Inputs are validated first, so a bad call never leaves a
// half-written file that looks like a model.
#include "loaders/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>

#include "loaders/byte_reader.h"
#include "loaders/loaders_internal.h"

namespace nibble {
namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;  // as the reader accepts

class Out {
 public:
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  template <typename T>
  void put(T v) {
    raw(&v, sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

bool is_signed(MetaType t) {
  return t == MetaType::I8 || t == MetaType::I16 || t == MetaType::I32 || t == MetaType::I64;
}

// Writes one numeric element of type `t` from an integer (exact) value.
void put_int(Out& o, MetaType t, int64_t i, uint64_t u) {
  switch (t) {
    case MetaType::U8:
      o.put<uint8_t>(static_cast<uint8_t>(u));
      break;
    case MetaType::I8:
      o.put<int8_t>(static_cast<int8_t>(i));
      break;
    case MetaType::U16:
      o.put<uint16_t>(static_cast<uint16_t>(u));
      break;
    case MetaType::I16:
      o.put<int16_t>(static_cast<int16_t>(i));
      break;
    case MetaType::U32:
      o.put<uint32_t>(static_cast<uint32_t>(u));
      break;
    case MetaType::I32:
      o.put<int32_t>(static_cast<int32_t>(i));
      break;
    case MetaType::U64:
      o.put<uint64_t>(u);
      break;
    case MetaType::I64:
      o.put<int64_t>(i);
      break;
    case MetaType::Bool:
      o.put<uint8_t>(u != 0 ? 1 : 0);
      break;
    default:
      break;
  }
}

bool is_int_like(MetaType t) {
  switch (t) {
    case MetaType::U8:
    case MetaType::I8:
    case MetaType::U16:
    case MetaType::I16:
    case MetaType::U32:
    case MetaType::I32:
    case MetaType::U64:
    case MetaType::I64:
    case MetaType::Bool:
      return true;
    default:
      return false;
  }
}

void put_value(Out& o, const std::string& path, const std::string& key, const MetaValue& v) {
  auto fail = [&](const std::string& msg) -> void {
    throw FileError(path + ": metadata key '" + key + "': " + msg);
  };
  o.put<uint32_t>(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case MetaType::String:
      o.str(v.s);
      return;
    case MetaType::F32:
      o.put<float>(static_cast<float>(v.f));
      return;
    case MetaType::F64:
      o.put<double>(v.f);
      return;
    case MetaType::Bool:
      o.put<uint8_t>(v.u != 0 || v.i != 0 ? 1 : 0);
      return;
    case MetaType::Array:
      break;
    default:
      if (!is_int_like(v.type)) fail("unknown value type " + std::to_string(uint32_t(v.type)));
      // Signed types carry their value in `i`, unsigned in `u` (setters and the reader fill both).
      put_int(o, v.type, is_signed(v.type) ? v.i : static_cast<int64_t>(v.u),
              is_signed(v.type) ? static_cast<uint64_t>(v.i) : v.u);
      return;
  }

  const MetaType e = v.elem_type;
  o.put<uint32_t>(static_cast<uint32_t>(e));
  if (e == MetaType::String) {
    o.put<uint64_t>(v.strs.size());
    for (const std::string& s : v.strs) o.str(s);
  } else if (e == MetaType::Array) {
    fail("nested arrays cannot be written (the reader keeps only their length)");
  } else if (e == MetaType::F32 || e == MetaType::F64) {
    o.put<uint64_t>(v.nums.size());
    for (double d : v.nums) {
      if (e == MetaType::F32)
        o.put<float>(static_cast<float>(d));
      else
        o.put<double>(d);
    }
  } else if (is_int_like(e)) {
    // Prefer the exact int64 copy; arrays built by hand may only have `nums`.
    if (!v.ints.empty() || v.nums.empty()) {
      o.put<uint64_t>(v.ints.size());
      for (int64_t i : v.ints) put_int(o, e, i, static_cast<uint64_t>(i));
    } else {
      o.put<uint64_t>(v.nums.size());
      for (double d : v.nums) {
        if (!(d >= -9.2e18 && d <= 1.8e19) || d != std::floor(d)) {
          fail("array element " + std::to_string(d) + " is not an integer");
        }
        if (d < 0) {
          const auto i = static_cast<int64_t>(d);
          put_int(o, e, i, static_cast<uint64_t>(i));
        } else {
          const auto u = static_cast<uint64_t>(d);
          put_int(o, e, static_cast<int64_t>(u), u);
        }
      }
    }
  } else {
    fail("unknown array element type " + std::to_string(uint32_t(e)));
  }
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

void write_gguf_streamed(const std::string& path, const Metadata& meta,
                         const std::vector<GgufTensorDesc>& tensors, const GgufDataWriter& data) {
  uint64_t alignment = kDefaultAlignment;
  if (meta.has("general.alignment")) {
    const std::optional<uint64_t> a = meta.get_uint("general.alignment");
    if (!a || *a == 0 || !std::has_single_bit(*a) || *a > kMaxAlignment) {
      throw FileError(path + ": general.alignment must be a power of two up to " +
                      std::to_string(kMaxAlignment));
    }
    alignment = *a;
  }

  // Validate tensors and compute their sizes and offsets before writing anything.
  std::vector<uint64_t> offsets, sizes;
  std::set<std::string> names;
  uint64_t data_size = 0;
  for (const GgufTensorDesc& t : tensors) {
    const std::string where = path + ": tensor '" + t.name + "': ";
    if (!names.insert(t.name).second) throw FileError(where + "duplicate name");
    if (t.dims.empty() || t.dims.size() > 4) throw FileError(where + "needs 1 to 4 dims");
    const TypeTraits* tr = type_traits(t.type);
    if (tr == nullptr)
      throw FileError(where + "unknown type id " + std::to_string(uint32_t(t.type)));
    uint64_t n = 1;
    for (uint64_t d : t.dims) {
      if (d == 0 || !checked_mul(n, d, &n)) throw FileError(where + "bad dims");
    }
    if (t.dims[0] % tr->block_elems != 0) {
      throw FileError(where + "row length " + std::to_string(t.dims[0]) +
                      " is not a whole number of " + tr->name + " blocks");
    }
    uint64_t nbytes = 0;
    if (!checked_mul(n / tr->block_elems, tr->block_bytes, &nbytes)) {
      throw FileError(where + "data size overflows");
    }
    offsets.push_back(data_size);
    sizes.push_back(nbytes);
    uint64_t padded = 0;
    if (!checked_align_up(nbytes, alignment, &padded) ||
        !checked_add(data_size, padded, &data_size)) {
      throw FileError(where + "data size overflows");
    }
  }

  Out o;
  o.raw("GGUF", 4);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors.size());
  o.put<uint64_t>(meta.entries().size());
  // llama.cpp always writes general.architecture first; readers that peek at it rely on that.
  if (const MetaValue* arch = meta.find("general.architecture")) {
    o.str("general.architecture");
    put_value(o, path, "general.architecture", *arch);
  }
  for (const auto& [key, value] : meta.entries()) {
    if (key == "general.architecture") continue;
    o.str(key);
    put_value(o, path, key, value);
  }
  for (size_t k = 0; k < tensors.size(); ++k) {
    const GgufTensorDesc& t = tensors[k];
    o.str(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) o.put<uint64_t>(d);
    o.put<uint32_t>(static_cast<uint32_t>(t.type));
    o.put<uint64_t>(offsets[k]);
  }
  std::vector<uint8_t>& head = o.bytes();
  head.resize((head.size() + alignment - 1) / alignment * alignment, 0);

  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) throw FileError(path + ": cannot create: " + std::strerror(errno));
  // Leaves no truncated file behind: a reader could mistake it for a (corrupt) model.
  auto discard = [&](const std::string& why) {
    f.reset();
    std::remove(path.c_str());
    throw FileError(path + ": " + why);
  };
  auto put = [&](const void* p, size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f.get()) != n) discard(std::string("write failed: ") + std::strerror(errno));
  };
  put(head.data(), head.size());
  static const uint8_t zeros[kMaxAlignment > 4096 ? 4096 : kMaxAlignment] = {};
  for (size_t k = 0; k < tensors.size(); ++k) {
    uint64_t written = 0;
    try {
      data(k, [&](const void* p, size_t n) {
        if (written + n > sizes[k]) throw FileError("more data than its shape holds");
        put(p, n);
        written += n;
      });
    } catch (const std::exception& e) {
      if (f) discard("tensor '" + tensors[k].name + "': " + e.what());
      throw;
    }
    if (written != sizes[k]) {
      discard("tensor '" + tensors[k].name + "' has " + std::to_string(written) +
              " bytes of data, its shape needs " + std::to_string(sizes[k]));
    }
    uint64_t pad = (alignment - sizes[k] % alignment) % alignment;
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(zeros)));
      put(zeros, n);
      pad -= n;
    }
  }
  if (std::fflush(f.get()) != 0) discard(std::string("write failed: ") + std::strerror(errno));
  std::FILE* raw = f.release();
  if (std::fclose(raw) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(path.c_str());
    throw FileError(path + ": close failed: " + err);
  }
}

void write_gguf(const std::string& path, const Metadata& meta,
                const std::vector<GgufTensorToWrite>& tensors) {
  std::vector<GgufTensorDesc> descs;
  descs.reserve(tensors.size());
  for (const GgufTensorToWrite& t : tensors) descs.push_back({t.name, t.type, t.dims});
  write_gguf_streamed(path, meta, descs, [&](size_t k, const GgufDataSink& sink) {
    sink(tensors[k].data.data(), tensors[k].data.size());
  });
}

}  // namespace nibble

namespace nibble {

// nibble's own files store metadata in GGUF's encoding (docs/format.md); one encoder for both.
void append_gguf_kv(std::vector<uint8_t>& out, const std::string& path, const std::string& key,
                    const MetaValue& value) {
  Out o;
  o.str(key);
  put_value(o, path, key, value);
  out.insert(out.end(), o.bytes().begin(), o.bytes().end());
}

}  // namespace nibble
