// GGUF writer: every metadata type and odd-sized tensors round-trip exactly, the layout follows
// llama.cpp's (architecture first, aligned data), and re-writing a real file reads back equal.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "loaders/gguf_writer.h"
#include "loaders/mapped_file.h"
#include "loaders/model_file.h"
#include "loaders_test_util.h"

namespace nibble {
namespace {

using test::write_bytes;

bool is_signed(MetaType t) {
  return t == MetaType::I8 || t == MetaType::I16 || t == MetaType::I32 || t == MetaType::I64;
}

void expect_value_equal(const std::string& key, const MetaValue& a, const MetaValue& b) {
  SCOPED_TRACE(key);
  ASSERT_EQ(a.type, b.type);
  switch (a.type) {
    case MetaType::String:
      EXPECT_EQ(a.s, b.s);
      break;
    case MetaType::F32:
    case MetaType::F64:
      EXPECT_EQ(a.f, b.f);
      break;
    case MetaType::Bool:
      EXPECT_EQ(a.u != 0, b.u != 0);
      break;
    case MetaType::Array:
      EXPECT_EQ(a.elem_type, b.elem_type);
      EXPECT_EQ(a.array_len, b.array_len);
      EXPECT_EQ(a.strs, b.strs);
      EXPECT_EQ(a.nums, b.nums);
      EXPECT_EQ(a.ints, b.ints);
      break;
    default:
      if (is_signed(a.type))
        EXPECT_EQ(a.i, b.i);
      else
        EXPECT_EQ(a.u, b.u);
  }
}

void expect_meta_equal(const Metadata& a, const Metadata& b) {
  ASSERT_EQ(a.entries().size(), b.entries().size());
  for (const auto& [key, value] : a.entries()) {
    const MetaValue* other = b.find(key);
    ASSERT_NE(other, nullptr) << key;
    expect_value_equal(key, value, *other);
  }
}

MetaValue int_array(MetaType elem, std::vector<int64_t> v) {
  MetaValue m;
  m.type = MetaType::Array;
  m.elem_type = elem;
  m.array_len = v.size();
  for (int64_t x : v) m.nums.push_back(static_cast<double>(x));
  m.ints = std::move(v);
  return m;
}

MetaValue float_array(MetaType elem, std::vector<double> v) {
  MetaValue m;
  m.type = MetaType::Array;
  m.elem_type = elem;
  m.array_len = v.size();
  m.nums = std::move(v);
  return m;
}

Metadata every_type() {
  Metadata m;
  m.set_string("general.architecture", "llama");
  m.set_string("a.string", "héllo\nworld");
  m.set_string("a.string_empty", "");
  m.set_uint("a.u8", 255, MetaType::U8);
  m.set_int("a.i8", -128, MetaType::I8);
  m.set_uint("a.u16", 65535, MetaType::U16);
  m.set_int("a.i16", -32768, MetaType::I16);
  m.set_uint("a.u32", 4294967295u, MetaType::U32);
  m.set_int("a.i32", std::numeric_limits<int32_t>::min(), MetaType::I32);
  m.set_uint("a.u64", std::numeric_limits<uint64_t>::max(), MetaType::U64);
  m.set_int("a.i64", std::numeric_limits<int64_t>::min(), MetaType::I64);
  m.set_float("a.f32", 0.1, MetaType::F32);
  m.set_float("a.f64", 0.1, MetaType::F64);
  m.set_bool("a.bool_true", true);
  m.set_bool("a.bool_false", false);
  m.set("arr.u8", int_array(MetaType::U8, {0, 1, 255}));
  m.set("arr.i8", int_array(MetaType::I8, {-128, 0, 127}));
  m.set("arr.u16", int_array(MetaType::U16, {0, 65535}));
  m.set("arr.i16", int_array(MetaType::I16, {-32768, 32767}));
  m.set("arr.u32", int_array(MetaType::U32, {0, 4294967295LL}));
  m.set_int_array("arr.i32", {-5, 0, 7, std::numeric_limits<int32_t>::max()});
  m.set("arr.u64", int_array(MetaType::U64, {0, 1LL << 62}));
  m.set("arr.i64", int_array(MetaType::I64, {std::numeric_limits<int64_t>::min(), 42}));
  m.set("arr.bool", int_array(MetaType::Bool, {1, 0, 1}));
  m.set_float_array("arr.f32", {-1.5f, 0.0f, 3.25e-7f});
  m.set("arr.f64", float_array(MetaType::F64, {0.1, -1e300}));
  m.set_string_array("arr.string", {"a", "", "\xe2\x96\x81the", std::string("nul\0in", 6)});
  m.set_string_array("arr.empty", {});
  return m;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

std::vector<GgufTensorToWrite> odd_tensors() {
  return {
      {"t.f32", TensorType::F32, {7, 3}, random_bytes(7 * 3 * 4, 1)},
      {"t.f16", TensorType::F16, {5}, random_bytes(5 * 2, 2)},
      {"t.f16_4d", TensorType::F16, {3, 1, 2, 1}, random_bytes(6 * 2, 3)},
      {"t.q8_0", TensorType::Q8_0, {64, 3}, random_bytes(2 * 3 * 34, 4)},
      {"t.q8_0_one", TensorType::Q8_0, {32}, random_bytes(34, 5)},
      {"t.f32_one", TensorType::F32, {1}, random_bytes(4, 6)},
  };
}

void expect_tensors_equal(const ModelFile& m, const std::vector<GgufTensorToWrite>& want,
                          uint64_t alignment) {
  ASSERT_EQ(m.tensors.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    const TensorInfo& t = m.tensors[k];
    SCOPED_TRACE(want[k].name);
    EXPECT_EQ(t.name, want[k].name);
    EXPECT_EQ(t.type, want[k].type);
    EXPECT_EQ(t.dims, want[k].dims);
    ASSERT_EQ(t.nbytes, want[k].data.size());
    EXPECT_EQ(std::memcmp(t.data, want[k].data.data(), t.nbytes), 0);
    EXPECT_EQ(t.file_offset % alignment, 0u);
  }
}

TEST(GgufWriter, RoundTripEveryTypeAndOddTensors) {
  test::TempDir dir;
  for (uint64_t alignment : {0u, 32u, 64u, 1u}) {  // 0: key absent (default 32)
    SCOPED_TRACE("alignment " + std::to_string(alignment));
    Metadata meta = every_type();
    if (alignment) meta.set_uint("general.alignment", alignment);
    const auto tensors = odd_tensors();
    const std::string p = dir.file("rt.gguf");
    write_gguf(p, meta, tensors);
    const ModelFile m = open_model_file(p);
    EXPECT_EQ(m.version, 3u);
    expect_meta_equal(meta, m.meta);
    const uint64_t a = alignment ? alignment : 32;
    expect_tensors_equal(m, tensors, a);

    // Layout: general.architecture first; data padded per tensor; the file ends on the padded end
    // of the last tensor, as llama.cpp writes it.
    const std::vector<uint8_t> bytes = test::read_bytes(p);
    EXPECT_EQ(test::find_gguf_string(bytes, "general.architecture"), 24u);
    uint64_t expect_off = m.tensors[0].file_offset;
    for (const TensorInfo& t : m.tensors) {
      EXPECT_EQ(t.file_offset, expect_off) << t.name;
      expect_off += (t.nbytes + a - 1) / a * a;
    }
    EXPECT_EQ(bytes.size(), expect_off);
  }
}

TEST(GgufWriter, NoTensors) {
  test::TempDir dir;
  const std::string p = dir.file("vocab.gguf");
  write_gguf(p, every_type(), {});
  const ModelFile m = open_model_file(p);
  EXPECT_TRUE(m.tensors.empty());
  expect_meta_equal(every_type(), m.meta);
}

TEST(GgufWriter, RejectsBadInput) {
  test::TempDir dir;
  const std::string p = dir.file("bad.gguf");
  Metadata meta;
  meta.set_string("general.architecture", "llama");
  auto expect_throw = [&](std::vector<GgufTensorToWrite> t, const Metadata& m, const char* frag) {
    try {
      write_gguf(p, m, t);
      ADD_FAILURE() << "expected FileError with " << frag;
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind(p + ": ", 0), 0u) << e.what();
    }
  };
  expect_throw({{"x", TensorType::F32, {3}, std::vector<uint8_t>(11)}}, meta, "needs 12");
  expect_throw({{"x", TensorType::Q8_0, {33}, std::vector<uint8_t>(34)}}, meta, "whole number");
  expect_throw({{"x", TensorType::F32, {1}, std::vector<uint8_t>(4)},
                {"x", TensorType::F32, {1}, std::vector<uint8_t>(4)}},
               meta, "duplicate");
  expect_throw({{"x", TensorType::F32, {}, {}}}, meta, "dims");
  expect_throw({{"x", static_cast<TensorType>(99), {1}, std::vector<uint8_t>(4)}}, meta, "99");
  Metadata bad_align = meta;
  bad_align.set_uint("general.alignment", 48);
  expect_throw({}, bad_align, "power of two");
  Metadata nested = meta;
  MetaValue n;
  n.type = MetaType::Array;
  n.elem_type = MetaType::Array;
  n.array_len = 1;
  nested.set("x.nested", n);
  expect_throw({}, nested, "nested");
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_THROW(write_gguf(dir.file("no/such/dir.gguf"), meta, {}), FileError);
}

class RewriteShared : public ::testing::TestWithParam<const char*> {};

TEST_P(RewriteShared, ReadsBackEqual) {
  NIBBLE_REQUIRE_SHARED();
  const std::string src = test::kjv_gguf(GetParam());
  const ModelFile a = read_gguf(src);
  std::vector<GgufTensorToWrite> tensors;
  for (const TensorInfo& t : a.tensors) {
    tensors.push_back({t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  }
  test::TempDir dir;
  const std::string p = dir.file("copy.gguf");
  write_gguf(p, a.meta, tensors);
  const ModelFile b = read_gguf(p);
  expect_meta_equal(a.meta, b.meta);
  expect_tensors_equal(b, tensors, 32);
  // Same content, same padding rule: the copy has the original's size and tensor offsets (only
  // the order of the keys may differ).
  EXPECT_EQ(b.mapping->size(), a.mapping->size());
  for (size_t k = 0; k < a.tensors.size(); ++k) {
    EXPECT_EQ(a.tensors[k].file_offset, b.tensors[k].file_offset) << a.tensors[k].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Kjv, RewriteShared, ::testing::Values("Q4_K_M", "Q8_0"));

TEST(GgufWriter, RewriteVocabularyOnlyFile) {
  NIBBLE_REQUIRE_SHARED();
  const ModelFile a = read_gguf(test::vocab_dir() + "/ggml-vocab-phi-3.gguf");
  test::TempDir dir;
  write_gguf(dir.file("v.gguf"), a.meta, {});
  expect_meta_equal(a.meta, read_gguf(dir.file("v.gguf")).meta);
}

}  // namespace
}  // namespace nibble
