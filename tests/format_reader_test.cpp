// nibble's own file format (docs/format.md) on small files made in the test: what the writer
// writes the reader reads back exactly (metadata of every value type, plain and packed
// tensors, zero copy), the packed layout agrees with the kernels' repacker, and every kind of
// corruption is refused with a FileError naming the file and the field.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "loaders/mapped_file.h"
#include "loaders/model_file.h"
#include "loaders/nibble_format.h"
#include "loaders/nibble_writer.h"
#include "tests/loaders_test_util.h"

namespace nibble {
namespace {

using test::peek;
using test::poke;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

// Quantized bytes of a random rows × k matrix (valid scales, so dequantization is finite).
std::vector<uint8_t> random_matrix(TensorType type, uint64_t k, uint64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  const uint64_t rb = row_bytes(static_cast<uint32_t>(type), k);
  std::vector<uint8_t> out(rb * rows);
  std::vector<float> row(k);
  for (uint64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    quantize_row(type, row.data(), static_cast<int64_t>(k), out.data() + r * rb);
  }
  return out;
}

std::vector<uint8_t> pack(TensorType type, uint64_t k, uint64_t n, const std::vector<uint8_t>& plain) {
  WeightMatrix w;
  w.type = type;
  w.data = plain.data();
  w.cols = static_cast<int64_t>(k);
  w.rows = static_cast<int64_t>(n);
  w.row_bytes = row_bytes(static_cast<uint32_t>(type), k);
  PackedWeight p = repack_packed4(w);
  return std::vector<uint8_t>(p.storage.get(), p.storage.get() + p.storage_bytes);
}

Metadata sample_metadata() {
  Metadata m;
  m.set_string("general.architecture", "llama");
  m.set_string("general.name", "format test");
  m.set_uint("llama.block_count", 2);
  m.set_uint("llama.big", uint64_t{1} << 40, MetaType::U64);
  m.set_int("llama.signed", -7, MetaType::I16);
  m.set_float("llama.eps", 1e-5);
  m.set_float("llama.theta", 500000.0, MetaType::F64);
  m.set_bool("tokenizer.ggml.add_bos_token", true);
  m.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "", "\xE2\x96\x81the"});
  m.set_float_array("tokenizer.ggml.scores", {0.0f, -1.5f, 2.25f, 0.0f, -3.0f});
  m.set_int_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  m.set_string_array("tokenizer.ggml.merges", {"a b", "ab c"});
  m.set_string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}\n{% endfor %}");
  m.set_string("some.future.key", "ignored by today's readers");
  return m;
}

struct Sample {
  Metadata meta = sample_metadata();
  std::vector<NibbleTensorToWrite> tensors;
};

// Five tensors: F32 norm, Q4_0 packed (N = 6: a partial tile), Q8_0 packed, Q4_0 plain (an
// embedding table), Q4_G128 and Q8_C (nibble's types).
Sample sample() {
  Sample s;
  std::vector<float> normf(128, 1.0f);
  std::vector<uint8_t> normb(512);
  std::memcpy(normb.data(), normf.data(), 512);
  s.tensors.push_back({{"blk.0.attn_norm.weight", TensorType::F32, 0, {128}}, normb});
  const auto q4 = random_matrix(TensorType::Q4_0, 256, 6, 2);
  s.tensors.push_back({{"blk.0.attn_q.weight", TensorType::Q4_0, 1, {256, 6}}, pack(TensorType::Q4_0, 256, 6, q4)});
  const auto q8 = random_matrix(TensorType::Q8_0, 128, 8, 3);
  s.tensors.push_back({{"blk.0.ffn_up.weight", TensorType::Q8_0, 1, {128, 8}}, pack(TensorType::Q8_0, 128, 8, q8)});
  s.tensors.push_back({{"token_embd.weight", TensorType::Q4_0, 0, {256, 5}}, random_matrix(TensorType::Q4_0, 256, 5, 4)});
  s.tensors.push_back({{"blk.0.ffn_down.weight", TensorType::Q4_G128, 0, {256, 3}},
                       random_matrix(TensorType::Q4_G128, 256, 3, 5)});
  s.tensors.push_back({{"output.weight", TensorType::Q8_C, 0, {64, 4}}, random_matrix(TensorType::Q8_C, 64, 4, 6)});
  return s;
}

std::string write_sample(const TempDir& dir, const std::string& name = "model.q4") {
  const Sample s = sample();
  const std::string path = dir.file(name);
  write_nibble(path, s.meta, s.tensors);
  return path;
}

// Header fields and directory entries, located in the bytes of a file.
uint64_t hdr64(const std::vector<uint8_t>& b, uint64_t at) { return peek<uint64_t>(b, at); }

struct EntryAt {
  size_t type, layout, n_dims, group, dims, offset, size, checksum;
};
EntryAt locate_entry(const std::vector<uint8_t>& b, const std::string& name) {
  const size_t dir = hdr64(b, nbl::hdr::kDirOffset);
  const size_t at = test::find_gguf_string(b, name, dir);
  if (at == std::string::npos) throw std::runtime_error("no entry " + name);
  EntryAt e{};
  e.type = at + 8 + name.size();
  e.layout = e.type + 4;
  e.n_dims = e.layout + 4;
  e.group = e.n_dims + 4;
  e.dims = e.group + 4;
  e.offset = e.dims + 8 * peek<uint32_t>(b, e.n_dims);
  e.size = e.offset + 8;
  e.checksum = e.size + 8;
  return e;
}

// Recomputes the header checksum so a test can reach a check that comes before it... or after.
void fix_header_checksum(std::vector<uint8_t>& b) {
  nbl::Checksum h;
  h.update(b.data(), nbl::kHeaderChecksummed);
  h.update(b.data() + hdr64(b, nbl::hdr::kMetaOffset), hdr64(b, nbl::hdr::kMetaSize));
  h.update(b.data() + hdr64(b, nbl::hdr::kDirOffset), hdr64(b, nbl::hdr::kDirSize));
  poke<uint64_t>(b, nbl::hdr::kChecksum, h.digest());
}

// Writes the bytes, opens them, and expects a FileError whose message names the file and
// contains every one of `words`.
void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& words,
                  bool verify = false) {
  TempDir dir;
  const std::string path = dir.file("bad.q4");
  write_bytes(path, bytes);
  for (bool mmap : {true, false}) {
    OpenOptions o;
    o.use_mmap = mmap;
    o.verify = verify;
    try {
      open_model_file(path, o);
      ADD_FAILURE() << "no error; expected one mentioning '" << words[0] << "'";
      return;
    } catch (const FileError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      for (const std::string& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
    }
  }
}

TEST(NibbleFormat, RoundTripsMetadataAndTensorsZeroCopy) {
  TempDir dir;
  const std::string path = write_sample(dir);
  const Sample s = sample();
  OpenOptions o;
  o.verify = true;
  const ModelFile f = open_model_file(path, o);
  EXPECT_EQ(f.format, "nibble");
  EXPECT_EQ(f.version, 1u);
  EXPECT_EQ(f.version_minor, 0u);
  // Metadata: every key and value type as written.
  ASSERT_EQ(f.meta.entries().size(), s.meta.entries().size());
  for (const auto& [key, v] : s.meta.entries()) {
    const MetaValue* got = f.meta.find(key);
    ASSERT_NE(got, nullptr) << key;
    EXPECT_EQ(got->type, v.type) << key;
    EXPECT_EQ(got->s, v.s) << key;
    EXPECT_EQ(got->strs, v.strs) << key;
    EXPECT_EQ(got->nums, v.nums) << key;
    EXPECT_EQ(got->ints, v.ints) << key;
    if (v.is_float()) {
      EXPECT_EQ(got->f, v.f) << key;
    }
    if (v.is_integer() || v.type == MetaType::Bool) {
      EXPECT_EQ(got->u, v.u) << key;
    }
  }
  EXPECT_EQ(f.meta.get_uint("llama.big"), uint64_t{1} << 40);
  EXPECT_EQ(f.meta.get_int("llama.signed"), -7);
  // Tensors: same bytes, in place in the mapping, 64-byte aligned, page-aligned data section.
  ASSERT_EQ(f.tensors.size(), s.tensors.size());
  const uint8_t* base = f.mapping->data();
  for (size_t k = 0; k < s.tensors.size(); ++k) {
    const TensorInfo& t = f.tensors[k];
    const NibbleTensorToWrite& w = s.tensors[k];
    EXPECT_EQ(t.name, w.desc.name);
    EXPECT_EQ(t.type, w.desc.type);
    EXPECT_EQ(t.layout, w.desc.layout);
    EXPECT_EQ(t.dims, w.desc.dims);
    ASSERT_EQ(t.nbytes, w.data.size()) << t.name;
    EXPECT_EQ(0, std::memcmp(t.data, w.data.data(), t.nbytes)) << t.name;
    EXPECT_EQ(t.data, base + t.file_offset) << t.name << ": not a view into the mapping";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << t.name;
    EXPECT_TRUE(t.has_checksum);
    EXPECT_EQ(t.checksum, nbl::checksum(w.data.data(), w.data.size()));
  }
  const std::vector<uint8_t> b = read_bytes(path);
  EXPECT_EQ(hdr64(b, nbl::hdr::kDataOffset) % 4096, 0u);
  EXPECT_EQ(hdr64(b, nbl::hdr::kFileSize), b.size());
  const VerifyResult v = verify_checksums(f);
  EXPECT_EQ(v.checked, s.tensors.size());
  EXPECT_TRUE(v.failed.empty());
}

TEST(NibbleFormat, VocabularyOnlyFileHasNoDataSection) {
  TempDir dir;
  write_nibble(dir.file("vocab.q4"), sample_metadata(), {});
  const ModelFile f = open_model_file(dir.file("vocab.q4"));
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_EQ(f.meta.get_string("general.name"), "format test");
}

TEST(NibbleFormat, PackedLayoutSizeAndInverseMatchTheKernels) {
  // docs/format.md's packed4 size and the unpacking written from it agree with
  // kernels/repack.h for every tile tail and group count.
  for (TensorType type : {TensorType::Q4_0, TensorType::Q8_0}) {
    for (uint64_t k : {64u, 128u, 256u, 384u, 640u, 2048u}) {
      for (uint64_t n = 1; n <= 9; ++n) {
        const std::vector<uint64_t> dims = {k, n};
        WeightMatrix w;
        w.type = type;
        const auto plain = random_matrix(type, k, n, static_cast<uint32_t>(k * 10 + n));
        w.data = plain.data();
        w.cols = static_cast<int64_t>(k);
        w.rows = static_cast<int64_t>(n);
        w.row_bytes = row_bytes(static_cast<uint32_t>(type), k);
        const bool kernels = packed_layout_fits(w);
        ASSERT_EQ(kernels, nbl::packed_layout_allowed(type, dims)) << type_name(uint32_t(type)) << " K=" << k;
        if (!kernels) continue;
        const PackedWeight p = repack_packed4(w);
        ASSERT_EQ(p.storage_bytes, nbl::tensor_bytes(static_cast<uint32_t>(type), 1, dims, nullptr))
            << type_name(uint32_t(type)) << " K=" << k << " N=" << n;
        std::vector<uint8_t> back(plain.size());
        nbl::unpack_packed4(type, dims, p.storage.get(), back.data());
        ASSERT_EQ(back, plain) << type_name(uint32_t(type)) << " K=" << k << " N=" << n;
      }
    }
  }
  std::string why;
  EXPECT_EQ(nbl::tensor_bytes(uint32_t(TensorType::Q4_1), 1, {256, 4}, &why), 0u);
  EXPECT_NE(why.find("packed4"), std::string::npos) << why;
  EXPECT_EQ(nbl::tensor_bytes(uint32_t(TensorType::Q4_0), 1, {256, 4, 2}, &why), 0u);
  EXPECT_EQ(nbl::tensor_bytes(uint32_t(TensorType::Q4_0), 7, {256, 4}, &why), 0u);
  EXPECT_NE(why.find("unknown layout id 7"), std::string::npos) << why;
  EXPECT_EQ(nbl::group_size(TensorType::Q8_C, 300), 300u);
  EXPECT_EQ(nbl::group_size(TensorType::Q4_G128, 256), 128u);
  EXPECT_EQ(nbl::group_size(TensorType::F16, 256), 0u);
}

TEST(NibbleFormat, WriterRefusesBadInputAndLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("bad.q4");
  auto expect_refused = [&](std::vector<NibbleTensorToWrite> t, const std::string& word) {
    try {
      write_nibble(path, sample_metadata(), t);
      ADD_FAILURE() << "accepted; expected '" << word << "'";
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  };
  expect_refused({{{"a", TensorType::Q4_1, 1, {256, 4}}, std::vector<uint8_t>(640)}}, "packed4");
  expect_refused({{{"a", TensorType::Q4_0, 0, {100, 4}}, std::vector<uint8_t>(10)}}, "whole number");
  expect_refused({{{"a", TensorType::F32, 0, {4}}, std::vector<uint8_t>(15)}}, "need 16");
  expect_refused({{{"a", TensorType::F32, 0, {4}}, std::vector<uint8_t>(16)},
                  {{"a", TensorType::F32, 0, {4}}, std::vector<uint8_t>(16)}},
                 "duplicate");
  expect_refused({{{"a", static_cast<TensorType>(999), 0, {4}}, {}}}, "unknown tensor type id 999");
  // A producer that fails midway: its exception propagates, nothing is left behind.
  EXPECT_THROW(write_nibble_streamed(path, sample_metadata(), {{"a", TensorType::F32, 0, {4}}},
                                     [](size_t, const NibbleDataSink&) { throw std::invalid_argument("boom"); }),
               std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST(NibbleFormat, TruncationAnywhereIsAnError) {
  TempDir dir;
  const std::vector<uint8_t> good = read_bytes(write_sample(dir));
  const size_t data_offset = hdr64(good, nbl::hdr::kDataOffset);
  // Every length through the header, then steps through metadata, directory and data.
  std::vector<size_t> cuts;
  for (size_t n = 0; n < 256; ++n) cuts.push_back(n);
  for (size_t n = 256; n < data_offset + 64; n += 13) cuts.push_back(n);
  for (size_t n = data_offset + 64; n < good.size(); n += 997) cuts.push_back(n);
  cuts.push_back(good.size() - 1);
  const std::string path = dir.file("cut.q4");
  for (size_t n : cuts) {
    write_bytes(path, good.data(), n);
    try {
      open_model_file(path);
      ADD_FAILURE() << "a file cut to " << n << " of " << good.size() << " bytes opened";
    } catch (const FileError& e) {
      const std::string msg = e.what();
      ASSERT_NE(msg.find(path), std::string::npos) << msg;
      // Past the magic the reader knows it is a nibble file and says the file is truncated.
      if (n >= 8) {
        ASSERT_NE(msg.find("truncated"), std::string::npos) << n << ": " << msg;
      }
    }
  }
}

TEST(NibbleFormat, CorruptHeaderFieldsAreNamed) {
  TempDir dir;
  const std::vector<uint8_t> good = read_bytes(write_sample(dir));
  namespace h = nbl::hdr;
  {
    auto b = good;
    b[1] = 'X';
    expect_error(b, {"not a GGUF file or llama2.c checkpoint"});  // no magic: not recognised
  }
  {
    auto b = good;
    poke<uint16_t>(b, h::kVersionMajor, 2);
    expect_error(b, {"version_major 2.0", "not supported"});
  }
  {
    auto b = good;  // a newer minor version is read (and its checksum still holds the header)
    poke<uint16_t>(b, h::kVersionMinor, 7);
    fix_header_checksum(b);
    TempDir d2;
    write_bytes(d2.file("minor.q4"), b);
    EXPECT_EQ(open_model_file(d2.file("minor.q4")).version_minor, 7u);
  }
  {
    auto b = good;
    poke<uint32_t>(b, h::kHeaderSize, 16);
    expect_error(b, {"header_size 16"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kFileSize, good.size() + 4096);
    expect_error(b, {"truncated", "file_size"});
  }
  {
    auto b = good;
    b.resize(b.size() + 100, 0);
    expect_error(b, {"file_size", "appended"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kMetaOffset, good.size());
    expect_error(b, {"metadata section", "past end of file"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kMetaSize, ~uint64_t{0} - 8);  // offset + size overflows
    expect_error(b, {"metadata section", "past end of file"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kDirOffset, 64);
    expect_error(b, {"directory_offset 64", "header"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kDirOffset, hdr64(good, h::kMetaOffset) + 8);
    expect_error(b, {"overlaps"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kDataOffset, hdr64(good, h::kDataOffset) - 64);
    poke<uint64_t>(b, h::kDataSize, hdr64(good, h::kDataSize) + 64);
    expect_error(b, {"data_offset", "page aligned"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kDataSize, hdr64(good, h::kDataSize) - 64);
    expect_error(b, {"does not end at the end of the file"});
  }
  {
    auto b = good;
    poke<uint32_t>(b, h::kDataAlignment, 48);
    expect_error(b, {"data_alignment 48"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kTensorCount, uint64_t{1} << 40);
    expect_error(b, {"tensor_count"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kTensorCount, 5);  // one entry left over
    expect_error(b, {"bytes after the last entry", "tensor_count 5"});
  }
  {
    auto b = good;
    poke<uint64_t>(b, h::kChecksum, hdr64(good, h::kChecksum) ^ 1);
    expect_error(b, {"header_checksum mismatch"});
  }
  {
    auto b = good;  // a metadata byte that still parses: only the checksum sees it
    const size_t at = test::find_gguf_string(b, "format test");
    b[at + 8] = 'F';
    expect_error(b, {"header_checksum mismatch"});
  }
}

TEST(NibbleFormat, CorruptMetadataIsNamed) {
  TempDir dir;
  const std::vector<uint8_t> good = read_bytes(write_sample(dir));
  const size_t meta = hdr64(good, nbl::hdr::kMetaOffset);
  {
    auto b = good;
    poke<uint64_t>(b, meta, uint64_t{1} << 50);
    expect_error(b, {"metadata", "key/value count"});
  }
  {
    auto b = good;  // the value type of general.architecture (the first key)
    const size_t key = test::find_gguf_string(b, "general.architecture", meta);
    poke<uint32_t>(b, key + 8 + 20, 77);
    expect_error(b, {"metadata", "general.architecture", "unknown value type 77"});
  }
  {
    auto b = good;  // a string length running past the section
    const size_t key = test::find_gguf_string(b, "general.architecture", meta);
    poke<uint64_t>(b, key + 8 + 20 + 4, 1u << 20);
    expect_error(b, {"metadata", "general.architecture", "string value"});
  }
}

TEST(NibbleFormat, CorruptDirectoryEntriesAreNamed) {
  TempDir dir;
  const std::vector<uint8_t> good = read_bytes(write_sample(dir));
  const std::string q = "blk.0.attn_q.weight", up = "blk.0.ffn_up.weight";
  const EntryAt e = locate_entry(good, q);
  const uint64_t file_size = good.size();
  auto corrupt = [&](const std::function<void(std::vector<uint8_t>&)>& f,
                     const std::vector<std::string>& words) {
    auto b = good;
    f(b);
    expect_error(b, words);
  };
  corrupt([&](auto& b) { poke<uint32_t>(b, e.type, 999); }, {q, "unknown tensor type id 999"});
  corrupt([&](auto& b) { poke<uint32_t>(b, e.type, 4); }, {q, "unknown tensor type id 4"});  // retired
  corrupt([&](auto& b) { poke<uint32_t>(b, e.layout, 2); }, {q, "unknown layout id 2"});
  corrupt([&](auto& b) { poke<uint32_t>(b, e.layout, 0); }, {q, "size", "does not match"});
  corrupt([&](auto& b) { poke<uint32_t>(b, e.type, uint32_t(TensorType::Q4_1)); }, {q, "packed4"});
  corrupt([&](auto& b) { poke<uint32_t>(b, e.n_dims, 0); }, {q, "n_dims 0"});
  corrupt([&](auto& b) { poke<uint32_t>(b, e.n_dims, 9); }, {q, "n_dims 9"});
  corrupt([&](auto& b) { poke<uint32_t>(b, e.group, 64); }, {q, "group_size 64"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.dims, 0); }, {q, "dims", "absurd"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.dims + 8, uint64_t{1} << 62); }, {q, "dims", "absurd"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.dims + 8, 9); }, {q, "size", "does not match"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.offset, file_size); }, {q, "past the end"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.offset, ~uint64_t{0} - 63); }, {q, "past the end"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.offset, peek<uint64_t>(good, e.offset) + 32); }, {q, "offset", "misaligned"});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.size, peek<uint64_t>(good, e.size) + 64); }, {q, "size"});
  // Overlap: ffn_up placed on top of attn_q (aligned, inside the data, right size).
  corrupt([&](auto& b) { poke<uint64_t>(b, locate_entry(good, up).offset, peek<uint64_t>(good, e.offset)); },
          {"overlaps", q, up});
  corrupt([&](auto& b) { poke<uint64_t>(b, e.type - q.size() - 8, uint64_t{1} << 40); }, {"name"});
  // A duplicate name (same length, so the directory still parses).
  corrupt([&](auto& b) {
    const size_t at = test::find_gguf_string(b, up, hdr64(good, nbl::hdr::kDirOffset));
    std::memcpy(b.data() + at + 8, "blk.0.attn_q.weight", up.size());
  }, {"duplicate tensor name"});
}

TEST(NibbleFormat, BadTensorChecksumFailsVerifyOnly) {
  TempDir dir;
  std::vector<uint8_t> b = read_bytes(write_sample(dir));
  const std::string q = "blk.0.ffn_down.weight";
  const EntryAt e = locate_entry(b, q);
  b[hdr64(b, nbl::hdr::kDataOffset) + peek<uint64_t>(b, e.offset) + 10] ^= 0x40;
  const std::string path = dir.file("flipped.q4");
  write_bytes(path, b);
  const ModelFile f = open_model_file(path);  // a normal open reads no tensor data
  const VerifyResult v = verify_checksums(f);
  EXPECT_EQ(v.checked, 6u);
  ASSERT_EQ(v.failed.size(), 1u);
  EXPECT_NE(v.failed[0].find(q), std::string::npos) << v.failed[0];
  expect_error(b, {"tensor '" + q + "'", "checksum mismatch"}, /*verify=*/true);
}

TEST(NibbleFormat, RandomCorruptionNeverCrashes) {
  // Flipping bytes anywhere gives a file that opens or a FileError; run under ASan this also
  // shows no read outside the file.
  TempDir dir;
  const std::vector<uint8_t> good = read_bytes(write_sample(dir));
  const size_t limit = hdr64(good, nbl::hdr::kDataOffset);
  std::mt19937 rng(42);
  const std::string path = dir.file("fuzzed.q4");
  for (int i = 0; i < 300; ++i) {
    auto b = good;
    for (int k = 0; k < 3; ++k) b[rng() % limit] = static_cast<uint8_t>(rng());
    write_bytes(path, b);
    try {
      OpenOptions o;
      o.use_mmap = false;
      o.verify = true;
      const ModelFile f = open_model_file(path, o);
      for (const TensorInfo& t : f.tensors) ASSERT_LE(t.file_offset + t.nbytes, b.size());
    } catch (const FileError&) {
    }
  }
}

}  // namespace
}  // namespace nibble
