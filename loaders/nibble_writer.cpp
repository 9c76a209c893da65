// nibble file writer (layout in docs/format.md). The header, metadata and directory are built in
// memory first (their sizes do not depend on the data), written with the checksums still zero,
// then the tensors are streamed; at the end the tensor checksums and the header checksum are
// patched in place.
#include "loaders/nibble_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "loaders/byte_reader.h"
#include "loaders/loaders_internal.h"
#include "loaders/nibble_format.h"

namespace nibble {
namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* b = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), b, b + sizeof(T));
}

template <typename T>
void poke(std::vector<uint8_t>& out, uint64_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof(T));
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// The output file under construction; removed unless commit() renamed it into place.
class PartialFile {
 public:
  explicit PartialFile(std::string final_path)
      : final_(std::move(final_path)), tmp_(final_ + ".partial") {
    f_.reset(std::fopen(tmp_.c_str(), "wb"));
    if (!f_) throw FileError(final_ + ": cannot create " + tmp_ + ": " + std::strerror(errno));
  }
  ~PartialFile() {
    if (!committed_) {
      f_.reset();
      std::remove(tmp_.c_str());
    }
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  void write(const void* p, size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f_.get()) != n) fail("write failed");
  }
  void zeros(uint64_t n) {
    static const uint8_t kZeros[4096] = {};
    while (n > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
      write(kZeros, k);
      n -= k;
    }
  }
  void write_at(uint64_t offset, const void* p, size_t n) {
    if (fseeko(f_.get(), static_cast<off_t>(offset), SEEK_SET) != 0) fail("seek failed");
    write(p, n);
  }
  void commit() {
    if (std::fflush(f_.get()) != 0) fail("write failed");
    std::FILE* raw = f_.release();
    if (std::fclose(raw) != 0) fail("close failed");
    if (std::rename(tmp_.c_str(), final_.c_str()) != 0) fail("cannot rename " + tmp_ + " into place");
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw FileError(final_ + ": " + what + ": " + std::strerror(errno));
  }
  std::string final_, tmp_;
  std::unique_ptr<std::FILE, FileCloser> f_;
  bool committed_ = false;
};

}  // namespace

void write_nibble_streamed(const std::string& path, const Metadata& meta,
                           const std::vector<NibbleTensorDesc>& tensors,
                           const NibbleDataWriter& data) {
  // Validate and place every tensor before a byte is written.
  std::vector<uint64_t> offsets, sizes;
  std::set<std::string> names;
  uint64_t data_size = 0;
  for (const NibbleTensorDesc& t : tensors) {
    const std::string where = path + ": tensor '" + t.name + "': ";
    if (t.name.empty() || t.name.size() > nbl::kMaxNameBytes) {
      throw FileError(where + "name must be 1 to " + std::to_string(nbl::kMaxNameBytes) + " bytes");
    }
    if (!names.insert(t.name).second) throw FileError(where + "duplicate name");
    for (uint64_t d : t.dims) {
      if (d == 0) throw FileError(where + "has a zero dimension");
    }
    std::string why;
    const uint64_t n = nbl::tensor_bytes(static_cast<uint32_t>(t.type), t.layout, t.dims, &why);
    if (n == 0) throw FileError(where + why);
    offsets.push_back(data_size);
    sizes.push_back(n);
    uint64_t padded = 0;
    if (!checked_align_up(n, nbl::kDataAlignment, &padded) ||
        !checked_add(data_size, padded, &data_size)) {
      throw FileError(where + "data size overflows");
    }
  }

  // Metadata: GGUF's encoding, general.architecture first as llama.cpp orders it.
  std::vector<uint8_t> meta_bytes;
  put<uint64_t>(meta_bytes, meta.entries().size());
  if (const MetaValue* arch = meta.find("general.architecture")) {
    append_gguf_kv(meta_bytes, path, "general.architecture", *arch);
  }
  for (const auto& [key, value] : meta.entries()) {
    if (key != "general.architecture") append_gguf_kv(meta_bytes, path, key, value);
  }

  // Directory, checksums zero for now (their positions remembered).
  std::vector<uint8_t> dir;
  std::vector<uint64_t> checksum_at;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const NibbleTensorDesc& t = tensors[k];
    put<uint64_t>(dir, t.name.size());
    dir.insert(dir.end(), t.name.begin(), t.name.end());
    put<uint32_t>(dir, static_cast<uint32_t>(t.type));
    put<uint32_t>(dir, t.layout);
    put<uint32_t>(dir, static_cast<uint32_t>(t.dims.size()));
    put<uint32_t>(dir, nbl::group_size(t.type, t.dims[0]));
    for (uint64_t d : t.dims) put<uint64_t>(dir, d);
    put<uint64_t>(dir, offsets[k]);
    put<uint64_t>(dir, sizes[k]);
    checksum_at.push_back(dir.size());
    put<uint64_t>(dir, 0);
  }

  const uint64_t meta_offset = nbl::kHeaderSize;
  const uint64_t dir_offset = meta_offset + meta_bytes.size();
  uint64_t data_offset = 0, file_size = 0;
  if (!checked_align_up(dir_offset + dir.size(), nbl::kPageAlign, &data_offset) ||
      !checked_add(data_offset, data_size, &file_size)) {
    throw FileError(path + ": file size overflows");
  }

  std::vector<uint8_t> header(nbl::kHeaderSize, 0);
  std::memcpy(header.data(), nbl::kMagic, sizeof nbl::kMagic);
  namespace h = nbl::hdr;
  poke<uint16_t>(header, h::kVersionMajor, nbl::kVersionMajor);
  poke<uint16_t>(header, h::kVersionMinor, nbl::kVersionMinor);
  poke<uint32_t>(header, h::kHeaderSize, nbl::kHeaderSize);
  poke<uint64_t>(header, h::kFileSize, file_size);
  poke<uint64_t>(header, h::kMetaOffset, meta_offset);
  poke<uint64_t>(header, h::kMetaSize, meta_bytes.size());
  poke<uint64_t>(header, h::kDirOffset, dir_offset);
  poke<uint64_t>(header, h::kDirSize, dir.size());
  poke<uint64_t>(header, h::kTensorCount, tensors.size());
  poke<uint64_t>(header, h::kDataOffset, data_offset);
  poke<uint64_t>(header, h::kDataSize, data_size);
  poke<uint32_t>(header, h::kDataAlignment, nbl::kDataAlignment);

  PartialFile f(path);
  f.write(header.data(), header.size());
  f.write(meta_bytes.data(), meta_bytes.size());
  f.write(dir.data(), dir.size());
  f.zeros(data_offset - (dir_offset + dir.size()));
  for (size_t k = 0; k < tensors.size(); ++k) {
    nbl::Checksum sum;
    uint64_t written = 0;
    try {
      data(k, [&](const void* p, size_t n) {
        if (n > sizes[k] - written) throw FileError("more data than its type and shape hold");
        f.write(p, n);
        sum.update(p, n);
        written += n;
      });
    } catch (const FileError& e) {
      throw FileError(path + ": tensor '" + tensors[k].name + "': " + e.what());
    }
    if (written != sizes[k]) {
      throw FileError(path + ": tensor '" + tensors[k].name + "' got " + std::to_string(written) +
                      " bytes of data, its type, layout and shape need " + std::to_string(sizes[k]));
    }
    poke<uint64_t>(dir, checksum_at[k], sum.digest());
    f.zeros((nbl::kDataAlignment - sizes[k] % nbl::kDataAlignment) % nbl::kDataAlignment);
  }

  nbl::Checksum hsum;
  hsum.update(header.data(), nbl::kHeaderChecksummed);
  hsum.update(meta_bytes.data(), meta_bytes.size());
  hsum.update(dir.data(), dir.size());
  poke<uint64_t>(header, h::kChecksum, hsum.digest());
  f.write_at(0, header.data(), header.size());
  f.write_at(dir_offset, dir.data(), dir.size());
  f.commit();
}

void write_nibble(const std::string& path, const Metadata& meta,
                  const std::vector<NibbleTensorToWrite>& tensors) {
  std::vector<NibbleTensorDesc> descs;
  descs.reserve(tensors.size());
  for (const NibbleTensorToWrite& t : tensors) descs.push_back(t.desc);
  write_nibble_streamed(path, meta, descs, [&](size_t k, const NibbleDataSink& sink) {
    sink(tensors[k].data.data(), tensors[k].data.size());
  });
}

}  // namespace nibble
