// GGUF v2/v3 reader. Tensors are zero-copy views into the mapping. Every count, length, offset
// and size read from the file is checked (through ByteReader and checked_* arithmetic) before
// it is used to index or allocate, so a corrupt file fails with a FileError naming the field.
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "loaders/loaders_internal.h"
#include "loaders/mapped_file.h"

namespace nibble {
namespace {

// Smallest possible encodings, used to reject counts that cannot fit in the bytes left before
// allocating anything for them: a tensor info is name length (8) + n_dims (4) + type (4) +
// offset (8) with an empty name and no dims; a KV is key length (8) + type (4) + a 1-byte value.
constexpr uint64_t kMinTensorInfoBytes = 24;
constexpr uint64_t kMinKvBytes = 13;
constexpr uint32_t kMaxDims = 4;
// Alignment above this is no real file's and would make padding arithmetic silly.
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;
constexpr uint64_t kDefaultAlignment = 32;
// Nested arrays never occur in LLaMA files; they are validated and skipped, to this depth.
constexpr int kMaxArrayDepth = 4;
// Tensor names in ggml are at most 63 bytes; allow far more, but not a gigabyte.
constexpr uint64_t kMaxTensorNameBytes = 4096;

const char* meta_type_name(uint32_t t) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  return t < 13 ? names[t] : "unknown";
}

// Bytes of one encoded value of scalar type `t`; strings count their 8-byte length prefix and
// arrays their 12-byte header (the minimum they can occupy). 0 for an unknown type id.
uint64_t min_value_bytes(uint32_t t) {
  switch (static_cast<MetaType>(t)) {
    case MetaType::U8:
    case MetaType::I8:
    case MetaType::Bool:
      return 1;
    case MetaType::U16:
    case MetaType::I16:
      return 2;
    case MetaType::U32:
    case MetaType::I32:
    case MetaType::F32:
      return 4;
    case MetaType::U64:
    case MetaType::I64:
    case MetaType::F64:
      return 8;
    case MetaType::String:
      return 8;
    case MetaType::Array:
      return 12;
  }
  return 0;
}

bool is_int_type(MetaType t) {
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

// Decodes one fixed-size numeric element at `p`. Integers are exact in `i`/`u`; `f` is their
// double value (what `nums` stores).
struct Num {
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
};

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Num decode_num(MetaType t, const uint8_t* p) {
  Num n;
  auto from_unsigned = [&n](uint64_t v) {
    n.u = v;
    n.i = static_cast<int64_t>(v);
    n.f = static_cast<double>(v);
  };
  auto from_signed = [&n](int64_t v) {
    n.i = v;
    n.u = static_cast<uint64_t>(v);
    n.f = static_cast<double>(v);
  };
  switch (t) {
    case MetaType::U8:
      from_unsigned(load<uint8_t>(p));
      break;
    case MetaType::Bool:
      from_unsigned(load<uint8_t>(p) != 0 ? 1 : 0);
      break;
    case MetaType::I8:
      from_signed(load<int8_t>(p));
      break;
    case MetaType::U16:
      from_unsigned(load<uint16_t>(p));
      break;
    case MetaType::I16:
      from_signed(load<int16_t>(p));
      break;
    case MetaType::U32:
      from_unsigned(load<uint32_t>(p));
      break;
    case MetaType::I32:
      from_signed(load<int32_t>(p));
      break;
    case MetaType::U64:
      from_unsigned(load<uint64_t>(p));
      break;
    case MetaType::I64:
      from_signed(load<int64_t>(p));
      break;
    case MetaType::F32:
      n.f = load<float>(p);
      break;
    case MetaType::F64:
      n.f = load<double>(p);
      break;
    default:
      break;
  }
  return n;
}

// Validates and skips a nested array's body (its element type and count already read).
void skip_array_body(ByteReader& r, uint32_t elem_type, uint64_t count, int depth);

// Reads an array header (element type, count) and checks the count can fit in the bytes left.
std::pair<uint32_t, uint64_t> read_array_header(ByteReader& r) {
  const uint32_t elem = r.u32("array element type");
  const uint64_t min_bytes = min_value_bytes(elem);
  if (min_bytes == 0) r.fail("array has unknown element type " + std::to_string(elem));
  const uint64_t count = r.u64("array length");
  if (count > r.remaining() / min_bytes) {
    r.fail("array of " + std::to_string(count) + " " + meta_type_name(elem) +
           " elements cannot fit in the " + std::to_string(r.remaining()) +
           " bytes left (file size " + std::to_string(r.size()) + ")");
  }
  return {elem, count};
}

void skip_array_body(ByteReader& r, uint32_t elem_type, uint64_t count, int depth) {
  const auto t = static_cast<MetaType>(elem_type);
  if (t == MetaType::String) {
    for (uint64_t k = 0; k < count; ++k) {
      const uint64_t len = r.u64("string length in nested array");
      r.skip(len, "string in nested array");
    }
  } else if (t == MetaType::Array) {
    if (depth >= kMaxArrayDepth) {
      r.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    }
    for (uint64_t k = 0; k < count; ++k) {
      auto [e, c] = read_array_header(r);
      skip_array_body(r, e, c, depth + 1);
    }
  } else {
    r.skip(count * min_value_bytes(elem_type), "array elements");  // count checked vs remaining
  }
}

MetaValue read_value(ByteReader& r, uint32_t type_id) {
  MetaValue v;
  const uint64_t min_bytes = min_value_bytes(type_id);
  if (min_bytes == 0) r.fail("unknown value type " + std::to_string(type_id));
  v.type = static_cast<MetaType>(type_id);

  if (v.type == MetaType::String) {
    v.s = r.gguf_string("string value");
    return v;
  }
  if (v.type != MetaType::Array) {
    const Num n = decode_num(v.type, r.bytes(min_bytes, "value"));
    v.i = n.i;
    v.u = n.u;
    v.f = n.f;
    return v;
  }

  auto [elem, count] = read_array_header(r);
  v.elem_type = static_cast<MetaType>(elem);
  v.array_len = count;
  if (v.elem_type == MetaType::String) {
    v.strs.reserve(count);  // count <= remaining / 8, so bounded by the file size
    for (uint64_t k = 0; k < count; ++k) v.strs.push_back(r.gguf_string("array string"));
  } else if (v.elem_type == MetaType::Array) {
    skip_array_body(r, elem, count, 1);
  } else {
    const uint64_t esize = min_value_bytes(elem);
    const uint8_t* p = r.bytes(count * esize, "array elements");  // count checked vs remaining
    const bool ints = is_int_type(v.elem_type);
    v.nums.resize(count);
    if (ints) v.ints.resize(count);
    for (uint64_t k = 0; k < count; ++k) {
      const Num n = decode_num(v.elem_type, p + k * esize);
      v.nums[k] = n.f;
      if (ints) v.ints[k] = n.i;
    }
  }
  return v;
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

}  // namespace

ModelFile parse_gguf(std::shared_ptr<MappedFile> file) {
  ByteReader r(file->data(), file->size(), file->path());
  ModelFile mf;
  mf.path = file->path();
  mf.format = "gguf";

  const uint8_t* magic = r.bytes(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) r.fail("bad magic: not a GGUF file");
  const uint32_t version = r.u32("version");
  if (version != 2 && version != 3) {
    const uint32_t swapped = __builtin_bswap32(version);
    if (swapped == 2 || swapped == 3) {
      r.fail("big-endian GGUF (version " + std::to_string(swapped) + ") is not supported");
    }
    r.fail("unsupported GGUF version " + std::to_string(version) + " (only 2 and 3 are read)");
  }
  mf.version = version;

  const uint64_t tensor_count = r.u64("tensor_count");
  const uint64_t kv_count = r.u64("metadata_kv_count");
  // Fail fast on absurd counts: each entry needs a minimum number of bytes, so a count larger
  // than the bytes left allow is corrupt, whatever the entries would contain.
  if (tensor_count > r.remaining() / kMinTensorInfoBytes) {
    r.fail("tensor_count " + std::to_string(tensor_count) + " is impossible: only " +
           std::to_string(r.remaining()) + " bytes follow the header and each tensor info needs " +
           "at least " + std::to_string(kMinTensorInfoBytes));
  }
  if (kv_count > r.remaining() / kMinKvBytes) {
    r.fail("metadata_kv_count " + std::to_string(kv_count) + " is impossible: only " +
           std::to_string(r.remaining()) + " bytes follow the header and each key/value needs " +
           "at least " + std::to_string(kMinKvBytes));
  }
  if (tensor_count * kMinTensorInfoBytes + kv_count * kMinKvBytes > r.remaining()) {
    r.fail("tensor_count " + std::to_string(tensor_count) + " and metadata_kv_count " +
           std::to_string(kv_count) + " cannot both fit in the " + std::to_string(r.remaining()) +
           " bytes after the header");
  }

  // Metadata.
  for (uint64_t k = 0; k < kv_count; ++k) {
    r.set_context("metadata entry #" + std::to_string(k));
    std::string key = r.gguf_string("key");
    r.set_context("metadata key '" + key + "'");
    const uint32_t type_id = r.u32("value type");
    MetaValue v = read_value(r, type_id);
    if (mf.meta.has(key)) r.fail("duplicate key");
    mf.meta.set(key, std::move(v));
  }
  r.clear_context();

  uint64_t alignment = kDefaultAlignment;
  if (const MetaValue* a = mf.meta.find("general.alignment")) {
    const std::optional<uint64_t> av = mf.meta.get_uint("general.alignment");
    if (!av) {
      r.fail(std::string("general.alignment has type ") +
             meta_type_name(static_cast<uint32_t>(a->type)) + ", expected an unsigned integer");
    }
    if (*av == 0 || !std::has_single_bit(*av) || *av > kMaxAlignment) {
      r.fail("general.alignment " + std::to_string(*av) + " is not a power of two between 1 and " +
             std::to_string(kMaxAlignment));
    }
    alignment = *av;
  }

  // Tensor infos.
  std::unordered_set<std::string> names;
  names.reserve(tensor_count);  // bounded by the size check above
  mf.tensors.reserve(tensor_count);
  std::vector<uint64_t> offsets;
  offsets.reserve(tensor_count);
  for (uint64_t k = 0; k < tensor_count; ++k) {
    r.set_context("tensor info #" + std::to_string(k));
    TensorInfo t;
    t.name = r.gguf_string("tensor name", kMaxTensorNameBytes);
    r.set_context("tensor '" + t.name + "'");
    if (!names.insert(t.name).second) r.fail("duplicate tensor name");

    const uint32_t n_dims = r.u32("n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) {
      r.fail("n_dims " + std::to_string(n_dims) + " is out of range (1.." +
             std::to_string(kMaxDims) + ")");
    }
    t.dims.resize(n_dims);
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      t.dims[d] = r.u64("dimension");
      // ggml stores dims as int64, so anything above INT64_MAX is corrupt too.
      if (t.dims[d] == 0 ||
          t.dims[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        r.fail("dimension " + std::to_string(d) + " is " + std::to_string(t.dims[d]) +
               " (must be 1 to 2^63-1)");
      }
      if (!checked_mul(n_elements, t.dims[d], &n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        r.fail("element count of dims " + dims_text(t.dims) + " overflows");
      }
    }

    const uint32_t type_id = r.u32("type");
    // nibble's own type ids (>= kFirstNibbleType) exist only in nibble files, never in GGUF.
    const TypeTraits* traits = type_id < kFirstNibbleType ? type_traits(type_id) : nullptr;
    if (traits == nullptr) r.fail("unknown tensor type id " + std::to_string(type_id));
    t.type = static_cast<TensorType>(type_id);
    if (t.dims[0] % traits->block_elems != 0) {
      r.fail(std::string("row length ") + std::to_string(t.dims[0]) + " is not a whole number of " +
             traits->name + " blocks of " + std::to_string(traits->block_elems) + " elements");
    }
    const uint64_t n_blocks = n_elements / traits->block_elems;  // exact: dims[0] divides
    if (!checked_mul(n_blocks, traits->block_bytes, &t.nbytes)) {
      r.fail("byte size of " + std::string(traits->name) + " dims " + dims_text(t.dims) +
             " overflows");
    }

    const uint64_t offset = r.u64("data offset");
    if (offset % alignment != 0) {
      r.fail("data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
             std::to_string(alignment));
    }
    offsets.push_back(offset);
    mf.tensors.push_back(std::move(t));
  }
  r.clear_context();

  // The data section starts at the first aligned offset after the infos. Vocabulary-only files
  // (no tensors) may end right after the infos, without padding, so this is only checked
  // against the file size through the tensors.
  uint64_t data_start = 0;
  if (!checked_align_up(r.pos(), alignment, &data_start)) r.fail("data section start overflows");
  for (size_t k = 0; k < mf.tensors.size(); ++k) {
    TensorInfo& t = mf.tensors[k];
    uint64_t begin = 0, end = 0;
    if (!checked_add(data_start, offsets[k], &begin) || !checked_add(begin, t.nbytes, &end) ||
        end > file->size()) {
      r.fail("tensor '" + t.name + "' data [offset " + std::to_string(offsets[k]) + ", " +
             std::to_string(t.nbytes) + " bytes] extends past end of file (data section at " +
             std::to_string(data_start) + ", size " + std::to_string(file->size()) + ")");
    }
    t.file_offset = begin;
    t.data = file->data() + begin;
  }

  mf.mapping = std::move(file);
  return mf;
}

}  // namespace nibble

namespace nibble {

// nibble's own files store metadata in GGUF's encoding (docs/format.md); one decoder for both.
MetaValue read_gguf_value(ByteReader& r, uint32_t type_id) { return read_value(r, type_id); }

}  // namespace nibble
