// Reader of nibble's own model file (docs/format.md). Tensors are zero-copy views into the
// mapping — pre-packed weights included, so models use the file's pages as they are. Every
// offset, size and count is checked against the file (and against the section it belongs to)
// before it is used; each error names the file and the field.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "loaders/loaders_internal.h"
#include "loaders/mapped_file.h"
#include "loaders/nibble_format.h"

namespace nibble {
namespace {

// Smallest encodings, to reject counts that cannot fit before allocating for them: a key/value
// is key length (8) + type (4) + a 1-byte value; a directory entry is name length (8), type,
// layout, n_dims and group_size (16), one dim (8), offset, size and checksum (24).
constexpr uint64_t kMinKvBytes = 13;
constexpr uint64_t kMinEntryBytes = 56;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

struct Section {
  const char* name;
  uint64_t offset, size;
};

}  // namespace

ModelFile parse_nibble(std::shared_ptr<MappedFile> file, bool verify) {
  const std::string path = file->path();
  const uint64_t actual_size = file->size();
  ByteReader r(file->data(), actual_size, path);
  ModelFile mf;
  mf.path = path;
  mf.format = "nibble";

  r.set_context("header");
  if (std::memcmp(r.bytes(8, "magic"), nbl::kMagic, 8) != 0) {
    r.fail("bad magic: not a nibble model file");
  }
  const auto major = r.read<uint16_t>("version_major");
  const auto minor = r.read<uint16_t>("version_minor");
  if (major != nbl::kVersionMajor) {
    r.fail("version_major " + std::to_string(major) + "." + std::to_string(minor) +
           " is not supported: this reader reads version " + std::to_string(nbl::kVersionMajor) +
           ".x files");
  }
  mf.version = major;
  mf.version_minor = minor;
  const uint32_t header_size = r.u32("header_size");
  const uint64_t file_size = r.u64("file_size");
  // The size first: for a truncated file this is the one message that says what happened.
  if (file_size != actual_size) {
    if (actual_size < file_size) {
      r.fail("truncated: field file_size says " + std::to_string(file_size) +
             " bytes but the file has only " + std::to_string(actual_size));
    }
    r.fail("field file_size says " + std::to_string(file_size) + " bytes but the file has " +
           std::to_string(actual_size) + " (data appended, or a corrupt header)");
  }
  if (header_size < nbl::kHeaderSize || header_size > actual_size) {
    r.fail("header_size " + std::to_string(header_size) + " is out of range (" +
           std::to_string(nbl::kHeaderSize) + " to the file size " + std::to_string(actual_size) +
           ")");
  }
  r.require(nbl::kHeaderSize - r.pos(), "the rest of the header");
  Section meta{"metadata", r.u64("metadata_offset"), r.u64("metadata_size")};
  Section dir{"directory", r.u64("directory_offset"), r.u64("directory_size")};
  const uint64_t tensor_count = r.u64("tensor_count");
  Section data{"data", r.u64("data_offset"), r.u64("data_size")};
  const uint32_t alignment = r.u32("data_alignment");
  r.u32("reserved");
  const uint64_t stored_header_checksum = r.u64("header_checksum");

  for (const Section& s : {meta, dir, data}) {
    uint64_t end = 0;
    if (!checked_add(s.offset, s.size, &end) || end > actual_size) {
      r.fail(std::string(s.name) + " section [" + s.name + "_offset " + std::to_string(s.offset) +
             ", " + s.name + "_size " + std::to_string(s.size) + "] extends past end of file (size " +
             std::to_string(actual_size) + ")");
    }
    if (s.offset < header_size) {
      r.fail(std::string(s.name) + "_offset " + std::to_string(s.offset) +
             " points into the header (header_size " + std::to_string(header_size) + ")");
    }
  }
  // Sections may be empty (a vocabulary-only file has no data), but never overlap.
  const Section all[] = {meta, dir, data};
  for (int a = 0; a < 3; ++a) {
    for (int b = a + 1; b < 3; ++b) {
      const Section &x = all[a], &y = all[b];
      if (x.size != 0 && y.size != 0 && x.offset < y.offset + y.size && y.offset < x.offset + x.size) {
        r.fail(std::string(x.name) + " section [" + std::to_string(x.offset) + ", +" +
               std::to_string(x.size) + ") overlaps the " + y.name + " section [" +
               std::to_string(y.offset) + ", +" + std::to_string(y.size) + ")");
      }
    }
  }
  if (data.offset % nbl::kPageAlign != 0) {
    r.fail("data_offset " + std::to_string(data.offset) + " is not page aligned (a multiple of " +
           std::to_string(nbl::kPageAlign) + ")");
  }
  if (data.offset + data.size != actual_size) {
    r.fail("data section [data_offset " + std::to_string(data.offset) + ", data_size " +
           std::to_string(data.size) + "] does not end at the end of the file (size " +
           std::to_string(actual_size) + ")");
  }
  if (alignment < nbl::kDataAlignment || alignment > nbl::kMaxDataAlignment ||
      !std::has_single_bit(alignment)) {
    r.fail("data_alignment " + std::to_string(alignment) + " is not a power of two from " +
           std::to_string(nbl::kDataAlignment) + " to " + std::to_string(nbl::kMaxDataAlignment));
  }
  if (tensor_count > dir.size / kMinEntryBytes) {
    r.fail("tensor_count " + std::to_string(tensor_count) + " cannot fit in the " +
           std::to_string(dir.size) + "-byte directory (each entry needs at least " +
           std::to_string(kMinEntryBytes) + " bytes)");
  }

  // Metadata: GGUF's key/value encoding, read by the GGUF reader's own decoder.
  {
    ByteReader m(file->data() + meta.offset, meta.size, path);
    const std::string where = "metadata (section at offset " + std::to_string(meta.offset) + ")";
    m.set_context(where);
    const uint64_t count = m.u64("key/value count");
    if (count > m.remaining() / kMinKvBytes) {
      m.fail("key/value count " + std::to_string(count) + " cannot fit in the " +
             std::to_string(m.remaining()) + " bytes of the section");
    }
    for (uint64_t k = 0; k < count; ++k) {
      m.set_context(where + ": entry #" + std::to_string(k));
      std::string key = m.gguf_string("key");
      m.set_context(where + ": key '" + key + "'");
      const uint32_t type_id = m.u32("value type");
      MetaValue v = read_gguf_value(m, type_id);
      if (mf.meta.has(key)) m.fail("duplicate key");
      mf.meta.set(key, std::move(v));
    }
    m.set_context(where);
    if (m.remaining() != 0) {
      m.fail(std::to_string(m.remaining()) + " bytes after the last key/value (metadata_size " +
             std::to_string(meta.size) + " does not match the entries)");
    }
  }

  // Tensor directory.
  std::vector<uint64_t> rel_offsets;
  {
    ByteReader d(file->data() + dir.offset, dir.size, path);
    const std::string where = "directory (section at offset " + std::to_string(dir.offset) + ")";
    std::unordered_set<std::string> names;
    names.reserve(tensor_count);  // bounded by the size check above
    mf.tensors.reserve(tensor_count);
    rel_offsets.reserve(tensor_count);
    for (uint64_t k = 0; k < tensor_count; ++k) {
      d.set_context(where + ": entry #" + std::to_string(k));
      TensorInfo t;
      t.name = d.gguf_string("name", nbl::kMaxNameBytes);
      if (t.name.empty()) d.fail("empty tensor name");
      d.set_context("tensor '" + t.name + "'");
      if (!names.insert(t.name).second) d.fail("duplicate tensor name");
      const uint32_t type_id = d.u32("type");
      const uint32_t layout = d.u32("layout");
      const uint32_t n_dims = d.u32("n_dims");
      const uint32_t group = d.u32("group_size");
      if (n_dims == 0 || n_dims > nbl::kMaxDims) {
        d.fail("n_dims " + std::to_string(n_dims) + " is out of range (1.." +
               std::to_string(nbl::kMaxDims) + ")");
      }
      t.dims.resize(n_dims);
      uint64_t n_elements = 1;
      for (uint32_t i = 0; i < n_dims; ++i) {
        t.dims[i] = d.u64("dims");
        if (t.dims[i] == 0 || !checked_mul(n_elements, t.dims[i], &n_elements) ||
            n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          d.fail("dims " + dims_text(t.dims) + " are absurd (each must be at least 1, the element "
                 "count below 2^63)");
        }
      }
      const TypeTraits* traits = type_traits(type_id);
      if (traits == nullptr) {
        d.fail("unknown tensor type id " + std::to_string(type_id) +
               " (written by a newer nibble? this reader cannot interpret it)");
      }
      t.type = static_cast<TensorType>(type_id);
      if (layout != nbl::kLayoutPlain && layout != nbl::kLayoutPacked) {
        d.fail("unknown layout id " + std::to_string(layout) +
               " (this reader knows 0 plain and 1 packed4)");
      }
      t.layout = layout;
      std::string why;
      const uint64_t expected = nbl::tensor_bytes(type_id, layout, t.dims, &why);
      if (expected == 0) d.fail(traits->name + std::string(" ") + dims_text(t.dims) + ": " + why);
      const uint32_t want_group = nbl::group_size(t.type, t.dims[0]);
      if (group != want_group) {
        d.fail("group_size " + std::to_string(group) + " does not match type " + traits->name +
               " (expected " + std::to_string(want_group) + ")");
      }
      const uint64_t offset = d.u64("offset");
      t.nbytes = d.u64("size");
      t.checksum = d.u64("checksum");
      t.has_checksum = true;
      if (t.nbytes != expected) {
        d.fail("size " + std::to_string(t.nbytes) + " does not match " + traits->name + " " +
               nbl::layout_name(layout) + " " + dims_text(t.dims) + " (" +
               std::to_string(expected) + " bytes)");
      }
      if (offset % alignment != 0) {
        d.fail("offset " + std::to_string(offset) + " is misaligned (not a multiple of data_alignment " +
               std::to_string(alignment) + ")");
      }
      uint64_t end = 0;
      if (!checked_add(offset, t.nbytes, &end) || end > data.size) {
        d.fail("data [offset " + std::to_string(offset) + ", size " + std::to_string(t.nbytes) +
               "] extends past the end of the data section (data_size " +
               std::to_string(data.size) + ") and of the file");
      }
      t.file_offset = data.offset + offset;
      t.data = file->data() + t.file_offset;
      rel_offsets.push_back(offset);
      mf.tensors.push_back(std::move(t));
    }
    d.set_context(where);
    if (d.remaining() != 0) {
      d.fail(std::to_string(d.remaining()) + " bytes after the last entry (directory_size " +
             std::to_string(dir.size) + " does not match tensor_count " +
             std::to_string(tensor_count) + ")");
    }
  }

  // No two tensors share bytes: in offset order each starts at or after the previous one's end.
  std::vector<size_t> order(mf.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rel_offsets[a] < rel_offsets[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const size_t prev = order[k - 1], cur = order[k];
    if (mf.tensors[prev].nbytes == 0 || mf.tensors[cur].nbytes == 0) continue;
    if (rel_offsets[cur] < rel_offsets[prev] + mf.tensors[prev].nbytes) {
      r.clear_context();
      r.fail("tensor '" + mf.tensors[cur].name + "' (offset " + std::to_string(rel_offsets[cur]) +
             ") overlaps tensor '" + mf.tensors[prev].name + "' (offset " +
             std::to_string(rel_offsets[prev]) + ", size " + std::to_string(mf.tensors[prev].nbytes) +
             ")");
    }
  }

  // Last, the checksum over header, metadata and directory: a field corrupted by hand has been
  // named above; this catches what still parses.
  nbl::Checksum h;
  h.update(file->data(), nbl::kHeaderChecksummed);
  h.update(file->data() + meta.offset, meta.size);
  h.update(file->data() + dir.offset, dir.size);
  if (h.digest() != stored_header_checksum) {
    r.clear_context();
    r.fail("header_checksum mismatch (stored " + hex(stored_header_checksum) + ", computed " +
           hex(h.digest()) + "): the header, metadata or tensor directory is corrupt");
  }

  mf.mapping = std::move(file);
  if (verify) verify_checksums_or_throw(mf);
  return mf;
}

ModelFile read_nibble(const std::string& path, const OpenOptions& options) {
  return parse_nibble(MappedFile::open(path, options.use_mmap, options.progress), options.verify);
}

VerifyResult verify_checksums(const ModelFile& file) {
  VerifyResult v;
  for (const TensorInfo& t : file.tensors) {
    if (!t.has_checksum) {
      ++v.without_checksum;
      continue;
    }
    const uint64_t got = nbl::checksum(t.data, t.nbytes);
    ++v.checked;
    if (got != t.checksum) {
      v.failed.push_back("tensor '" + t.name + "': checksum mismatch (stored " + hex(t.checksum) +
                         ", computed " + hex(got) + ")");
    }
  }
  return v;
}

void verify_checksums_or_throw(const ModelFile& file) {
  const VerifyResult v = verify_checksums(file);
  if (v.failed.empty()) return;
  std::string msg = file.path + ": " + v.failed[0] + ": the data is corrupt";
  if (v.failed.size() > 1) msg += " (and " + std::to_string(v.failed.size() - 1) + " more tensors)";
  throw FileError(msg);
}

}  // namespace nibble
