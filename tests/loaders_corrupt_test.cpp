// Corrupt and hostile GGUF files, built from a real file by truncating or patching bytes: every
// one must fail with a FileError that starts with the path and names the field, never crash
// (run under ASan/UBSan) and never allocate according to an absurd count.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "loaders_test_util.h"

namespace nibble {
namespace {

using test::write_bytes;

using test::peek;
using test::poke;

// The real file every test patches, read once.
const std::vector<uint8_t>& q4_0_bytes() {
  static const std::vector<uint8_t> bytes = test::read_bytes(test::kjv_gguf("Q4_0"));
  return bytes;
}

// Expects open_model_file(path) to throw FileError whose message starts with "path: " and
// contains every fragment; returns the message.
std::string expect_file_error(const std::string& path, std::initializer_list<std::string> fragments,
                              const OpenOptions& opt = {}) {
  try {
    open_model_file(path, opt);
  } catch (const FileError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a FileError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error for " << path;
  return {};
}

class CorruptGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(test::kjv_gguf("Q4_0"))) {
      GTEST_SKIP() << "shared model files not found at " << test::kjv_dir();
    }
    bytes_ = q4_0_bytes();
    path_ = dir_.file("bad.gguf");
  }
  // Writes the patched bytes and expects an error with the fragments.
  std::string expect_error(std::initializer_list<std::string> fragments) {
    write_bytes(path_, bytes_);
    return expect_file_error(path_, fragments);
  }
  test::TempDir dir_;
  std::vector<uint8_t> bytes_;
  std::string path_;
};

TEST_F(CorruptGguf, TruncatedAnywhere) {
  const ModelFile good = read_gguf(test::kjv_gguf("Q4_0"));
  const uint64_t data_start = good.tensors.front().file_offset;  // offset 0 in the data section
  const size_t infos = test::locate_tensor_info(bytes_, good.tensors.front().name).name;
  std::vector<size_t> cuts;
  for (size_t n = 1; n < 80; ++n) cuts.push_back(n);                       // header, first keys
  for (size_t n = 80; n < infos; n += infos / 60) cuts.push_back(n);       // inside the KVs
  for (size_t n = infos - 16; n < data_start; n += 37) cuts.push_back(n);  // tensor infos
  for (uint64_t n : {data_start, data_start + 1, data_start + 4096, uint64_t(bytes_.size() / 2),
                     uint64_t(bytes_.size() - 1)}) {
    cuts.push_back(n);  // inside the data
  }
  for (size_t n : cuts) {
    SCOPED_TRACE("truncated to " + std::to_string(n) + " bytes");
    write_bytes(path_, bytes_.data(), n);
    expect_file_error(path_, {});
    if (n % 5 == 0) expect_file_error(path_, {}, OpenOptions{.use_mmap = false, .progress = {}});
  }
  // A cut inside the data names the tensor whose bytes are missing.
  write_bytes(path_, bytes_.data(), bytes_.size() - 1);
  expect_file_error(path_,
                    {"tensor '" + good.tensors.back().name + "'", "extends past end of file"});
}

TEST_F(CorruptGguf, HugeCountsFailFast) {
  const auto t0 = std::chrono::steady_clock::now();
  poke<uint64_t>(bytes_, 8, uint64_t{1} << 60);
  expect_error({"tensor_count 1152921504606846976", "impossible"});
  bytes_ = q4_0_bytes();
  poke<uint64_t>(bytes_, 16, uint64_t{1} << 60);
  expect_error({"metadata_kv_count 1152921504606846976", "impossible"});
  bytes_ = q4_0_bytes();
  poke<uint64_t>(bytes_, 8, ~uint64_t{0});
  poke<uint64_t>(bytes_, 16, ~uint64_t{0});
  expect_error({"tensor_count"});
  bytes_ = q4_0_bytes();
  // Each count alone plausible, together not.
  poke<uint64_t>(bytes_, 8, bytes_.size() / 24 - 1);
  poke<uint64_t>(bytes_, 16, bytes_.size() / 13 - 100);
  expect_error({"cannot both fit"});
  // Everything above failed before allocating or reading further: well under a second even
  // under sanitizers.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(CorruptGguf, CountsSlightlyTooLarge) {
  // One more KV than written: the extra "key" is read from the tensor infos and fails somewhere;
  // one more tensor than written: its info is read from the padding/data.
  poke<uint64_t>(bytes_, 16, peek<uint64_t>(bytes_, 16) + 1);
  expect_error({});
  bytes_ = q4_0_bytes();
  poke<uint64_t>(bytes_, 8, peek<uint64_t>(bytes_, 8) + 1);
  expect_error({});
}

TEST_F(CorruptGguf, OversizedStringLengths) {
  // The first key starts right after the 24-byte header (llama.cpp's llama2.c converter puts
  // tokenizer.ggml.tokens first, not general.architecture).
  ASSERT_LT(peek<uint64_t>(bytes_, 24), 100u);
  poke<uint64_t>(bytes_, 24, uint64_t{1} << 62);
  expect_error({"metadata entry #0", "key", "above the limit"});
  bytes_ = q4_0_bytes();
  poke<uint64_t>(bytes_, 24, bytes_.size());  // below the cap, above what is left
  expect_error({"metadata entry #0", "truncated", "key"});
  // A string value: general.architecture's "llama".
  bytes_ = q4_0_bytes();
  const size_t value = test::find_gguf_string(bytes_, "general.architecture") + 8 + 20 + 4;
  ASSERT_EQ(peek<uint64_t>(bytes_, value), 5u);
  poke<uint64_t>(bytes_, value, bytes_.size());
  expect_error({"metadata key 'general.architecture'", "truncated", "string value"});
  // A token inside the vocabulary array.
  bytes_ = q4_0_bytes();
  const size_t tok = test::find_gguf_string(bytes_, "<unk>");
  ASSERT_NE(tok, std::string::npos);
  poke<uint64_t>(bytes_, tok, ~uint64_t{0});
  expect_error({"metadata key 'tokenizer.ggml.tokens'", "array string"});
  // A tensor name.
  bytes_ = q4_0_bytes();
  const auto at = test::locate_tensor_info(bytes_, "output.weight");
  poke<uint64_t>(bytes_, at.name, 1u << 20);
  expect_error({"tensor info #0", "tensor name", "above the limit"});
}

TEST_F(CorruptGguf, OversizedArrayCounts) {
  for (const char* key :
       {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    SCOPED_TRACE(key);
    bytes_ = q4_0_bytes();
    const size_t k = test::find_gguf_string(bytes_, key);
    ASSERT_NE(k, std::string::npos);
    const size_t count = k + 8 + std::strlen(key) + 4 + 4;
    ASSERT_EQ(peek<uint64_t>(bytes_, count), 32000u);
    poke<uint64_t>(bytes_, count, uint64_t{1} << 61);
    expect_error({std::string("metadata key '") + key + "'", "2305843009213693952", "cannot fit"});
    poke<uint64_t>(bytes_, count, ~uint64_t{0});
    expect_error({std::string("metadata key '") + key + "'", "cannot fit"});
  }
}

TEST_F(CorruptGguf, UnknownValueTypes) {
  poke<uint32_t>(bytes_, test::find_gguf_string(bytes_, "general.architecture") + 8 + 20, 13);
  expect_error({"metadata key 'general.architecture'", "unknown value type 13"});
  bytes_ = q4_0_bytes();
  const size_t k = test::find_gguf_string(bytes_, "tokenizer.ggml.tokens");
  poke<uint32_t>(bytes_, k + 8 + 21 + 4, 77);
  expect_error({"metadata key 'tokenizer.ggml.tokens'", "unknown element type 77"});
}

TEST_F(CorruptGguf, DuplicateKey) {
  const size_t k = test::find_gguf_string(bytes_, "tokenizer.ggml.eos_token_id");
  bytes_[k + 8 + 15] = 'b';  // eos -> bos
  expect_error({"metadata key 'tokenizer.ggml.bos_token_id'", "duplicate key"});
}

TEST_F(CorruptGguf, BadTensorOffsets) {
  const auto at = test::locate_tensor_info(bytes_, "blk.0.attn_q.weight");
  const uint64_t off = peek<uint64_t>(bytes_, at.offset);
  poke<uint64_t>(bytes_, at.offset, off + 1);
  expect_error(
      {"tensor 'blk.0.attn_q.weight'", "data offset", "not a multiple of the alignment 32"});
  poke<uint64_t>(bytes_, at.offset, uint64_t{1} << 40);
  expect_error(
      {"tensor 'blk.0.attn_q.weight' data [offset 1099511627776, 36864 bytes] extends "
       "past end of file"});
  poke<uint64_t>(bytes_, at.offset, ~uint64_t{31});  // aligned, and start + offset overflows
  expect_error({"tensor 'blk.0.attn_q.weight'", "extends past end of file"});
  // Just past the end: the last byte of the tensor is missing.
  poke<uint64_t>(bytes_, at.offset, (bytes_.size() - 728256 - 36864 + 32) / 32 * 32);
  expect_error({"tensor 'blk.0.attn_q.weight'", "extends past end of file"});
}

TEST_F(CorruptGguf, BadDims) {
  const auto at = test::locate_tensor_info(bytes_, "blk.0.attn_q.weight");
  for (uint32_t n : {0u, 5u, 0xFFFFFFFFu}) {
    poke<uint32_t>(bytes_, at.n_dims, n);
    expect_error({"tensor 'blk.0.attn_q.weight'", "n_dims " + std::to_string(n)});
  }
  bytes_ = q4_0_bytes();
  poke<uint64_t>(bytes_, at.dims + 8, 0);
  expect_error({"tensor 'blk.0.attn_q.weight'", "dimension 1 is 0"});
  poke<uint64_t>(bytes_, at.dims + 8, uint64_t{1} << 63);
  expect_error({"tensor 'blk.0.attn_q.weight'", "dimension 1"});
  poke<uint64_t>(bytes_, at.dims + 8, uint64_t{1} << 60);  // 256 x 2^60 overflows
  expect_error({"tensor 'blk.0.attn_q.weight'", "overflows"});
  poke<uint64_t>(bytes_, at.dims + 8, uint64_t{1} << 40);  // fits, but not in the file
  expect_error({"tensor 'blk.0.attn_q.weight'", "extends past end of file"});
  bytes_ = q4_0_bytes();
  poke<uint64_t>(bytes_, at.dims, 100);  // Q4_0 rows must be multiples of 32
  expect_error({"tensor 'blk.0.attn_q.weight'", "row length 100", "Q4_0"});
}

TEST_F(CorruptGguf, UnknownTensorType) {
  const auto at = test::locate_tensor_info(bytes_, "blk.0.attn_q.weight");
  poke<uint32_t>(bytes_, at.type, 99);
  expect_error({"tensor 'blk.0.attn_q.weight'", "unknown tensor type id 99"});
  poke<uint32_t>(bytes_, at.type, 4);  // retired Q4_2
  expect_error({"tensor 'blk.0.attn_q.weight'", "unknown tensor type id 4"});
  // Any known type loads, runnable or not (models decide what they can run): Q4_0 -> IQ4_NL
  // has the same block size.
  poke<uint32_t>(bytes_, at.type, 20);
  write_bytes(path_, bytes_);
  const ModelFile m = open_model_file(path_);
  EXPECT_EQ(m.tensor("blk.0.attn_q.weight").type, TensorType::IQ4_NL);
}

TEST_F(CorruptGguf, DuplicateTensorName) {
  const auto at = test::locate_tensor_info(bytes_, "blk.0.attn_k.weight");
  bytes_[at.name + 8 + 11] = 'q';  // attn_k -> attn_q, same length
  expect_error({"tensor 'blk.0.attn_q.weight'", "duplicate tensor name"});
}

TEST_F(CorruptGguf, VersionAndMagic) {
  poke<uint32_t>(bytes_, 4, 1);
  expect_error({"GGUF version 1"});
  poke<uint32_t>(bytes_, 4, 4);
  expect_error({"GGUF version 4"});
  poke<uint32_t>(bytes_, 4, 0x03000000);
  expect_error({"big-endian"});
  poke<uint32_t>(bytes_, 4, 2);  // v2 has the same layout as v3
  write_bytes(path_, bytes_);
  EXPECT_EQ(open_model_file(path_).version, 2u);

  bytes_ = q4_0_bytes();
  bytes_[3] = 'G';
  expect_error({"not a GGUF file or llama2.c checkpoint"});
  write_bytes(path_, bytes_);
  try {
    read_gguf(path_);
    ADD_FAILURE();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos) << e.what();
  }
  write_bytes(path_, bytes_.data(), 3);
  EXPECT_THROW(read_gguf(path_), FileError);
}

TEST_F(CorruptGguf, RandomByteFlipsNeverCrash) {
  // Flips bytes in the header, the first KVs and the tensor infos; whatever the result, it is a
  // parsed file or a FileError.
  const ModelFile good = read_gguf(test::kjv_gguf("Q4_0"));
  const size_t infos = test::locate_tensor_info(bytes_, good.tensors.front().name).name;
  const size_t end = good.tensors.front().file_offset;
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 60; ++iter) {
    bytes_ = q4_0_bytes();
    for (int k = 0; k < 4; ++k) {
      const bool in_infos = rng() % 2;
      const size_t at = in_infos ? infos + rng() % (end - infos) : rng() % 512;
      bytes_[at] = static_cast<uint8_t>(rng());
    }
    write_bytes(path_, bytes_);
    try {
      open_model_file(path_);
    } catch (const FileError& e) {
      ++errors;
      EXPECT_EQ(std::string(e.what()).rfind(path_ + ": ", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(GgufFiles, NotModelFiles) {
  test::TempDir dir;
  const std::string empty = dir.file("empty.gguf");
  write_bytes(empty, nullptr, 0);
  expect_file_error(empty, {"empty"});
  expect_file_error(dir.path(), {"directory"});
  expect_file_error("/dev/zero", {"not a regular file"});
  expect_file_error(dir.file("missing.gguf"), {"cannot open", "No such file"});
  for (bool mmap : {true, false}) {
    EXPECT_THROW(read_gguf(empty, OpenOptions{.use_mmap = mmap, .progress = {}}), FileError);
    EXPECT_THROW(read_llama2c("/dev/zero", OpenOptions{.use_mmap = mmap, .progress = {}}), FileError);
  }
}

// Small files built byte by byte for what the writer cannot express.
class Bytes {
 public:
  template <typename T>
  Bytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b_.insert(b_.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint64_t tensors, uint64_t kvs) {
    b_.insert(b_.end(), {'G', 'G', 'U', 'F'});
    return put<uint32_t>(3).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  std::vector<uint8_t> b_;
};

TEST(GgufCrafted, NestedArraysSkippedOrRejected) {
  test::TempDir dir;
  const std::string p = dir.file("nested.gguf");
  Bytes b;
  b.header(0, 2);
  // [[1, 2], [3]] of i32, then a plain key after it to prove the cursor is in the right place.
  b.str("test.nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(2);
  b.put<uint32_t>(5).put<uint64_t>(2).put<int32_t>(1).put<int32_t>(2);
  b.put<uint32_t>(5).put<uint64_t>(1).put<int32_t>(3);
  b.str("test.after").put<uint32_t>(8).str("ok");
  write_bytes(p, b.b_);
  const ModelFile m = open_model_file(p);
  const MetaValue* v = m.meta.find("test.nested");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, MetaType::Array);
  EXPECT_EQ(v->elem_type, MetaType::Array);
  EXPECT_EQ(v->array_len, 2u);
  EXPECT_EQ(m.meta.get_num_array("test.nested"), nullptr);
  EXPECT_EQ(m.meta.get_string("test.after"), "ok");

  // Nested past the depth limit: rejected, not recursed without bound.
  Bytes d;
  d.header(0, 1);
  d.str("test.deep").put<uint32_t>(9);
  for (int k = 0; k < 50; ++k) d.put<uint32_t>(9).put<uint64_t>(1);
  d.put<uint32_t>(0).put<uint64_t>(0);
  write_bytes(p, d.b_);
  expect_file_error(p, {"metadata key 'test.deep'", "nested deeper"});
}

TEST(GgufCrafted, Alignment) {
  test::TempDir dir;
  const std::string p = dir.file("a.gguf");
  Metadata meta;
  meta.set_string("general.architecture", "llama");
  meta.set_uint("general.alignment", 64);
  GgufTensorToWrite t{"x", TensorType::F32, {3}, std::vector<uint8_t>(12, 1)};
  write_gguf(p, meta,
             {t, GgufTensorToWrite{"y", TensorType::F32, {1}, std::vector<uint8_t>(4, 2)}});
  ASSERT_EQ(open_model_file(p).tensor("y").file_offset % 64, 0u);

  std::vector<uint8_t> bytes = test::read_bytes(p);
  const size_t k = test::find_gguf_string(bytes, "general.alignment");
  const size_t value = k + 8 + 17 + 4;
  ASSERT_EQ(peek<uint32_t>(bytes, value), 64u);
  for (uint32_t bad : {0u, 48u, 1u << 30}) {
    poke<uint32_t>(bytes, value, bad);
    write_bytes(p, bytes);
    expect_file_error(p, {"general.alignment " + std::to_string(bad), "power of two"});
  }
  poke<uint32_t>(bytes, value, 64);
  poke<uint32_t>(bytes, value - 4, 6);  // now an f32
  write_bytes(p, bytes);
  expect_file_error(p, {"general.alignment has type f32"});
}

}  // namespace
}  // namespace nibble
