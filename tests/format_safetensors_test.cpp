// safetensors reader against valid and hostile files, the Hugging Face checkpoint reader's
// config checks and q/k permutation, and SHA-256 against FIPS 180-4's examples.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "loaders/model_file.h"
#include "loaders/mapped_file.h"
#include "loaders/safetensors_reader.h"
#include "quant/hf_checkpoint.h"
#include "quant/sha256.h"
#include "tests/loaders_test_util.h"

namespace nibble {
namespace {

using test::TempDir;
using test::write_bytes;

// A safetensors file: 8-byte header length, the header text, then `data`.
std::vector<uint8_t> safetensors(const std::string& header, const std::vector<uint8_t>& data) {
  const uint64_t n = header.size();
  std::vector<uint8_t> b(8 + header.size() + data.size());
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(b.data() + 8 + header.size(), data.data(), data.size());
  return b;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& words) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  try {
    read_safetensors(path);
    ADD_FAILURE() << "no error; expected '" << words[0] << "'";
  } catch (const FileError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const std::string& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

TEST(Safetensors, ReadsTensorsZeroCopyInnermostFirst) {
  std::vector<uint8_t> data(24 + 8);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  const auto b = safetensors(
      R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},)"
      R"( "n": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},)"
      R"( "__metadata__": {"format": "pt"}})",
      data);
  TempDir dir;
  write_bytes(dir.file("m.safetensors"), b);
  const ModelFile f = read_safetensors(dir.file("m.safetensors"));
  ASSERT_EQ(f.tensors.size(), 2u);
  const TensorInfo& w = f.tensor("w");
  EXPECT_EQ(w.type, TensorType::F32);
  EXPECT_EQ(w.dims, (std::vector<uint64_t>{3, 2}));  // [out, in] becomes GGUF's [in, out]
  EXPECT_EQ(w.nbytes, 24u);
  EXPECT_EQ(w.data, f.mapping->data() + b.size() - 32);
  EXPECT_EQ(f.tensor("n").type, TensorType::BF16);
  EXPECT_EQ(f.tensor("n").data[0], 24);
  EXPECT_EQ(f.meta.get_string("format"), "pt");
}

TEST(Safetensors, HostileHeadersAreRefused) {
  const std::vector<uint8_t> data(64, 0);
  auto entry = [](const std::string& body) { return "{\"t\": {" + body + "}}"; };
  // Header length: past the file, above the format's limit, in a file too short to hold it.
  {
    auto b = safetensors("{}", {});
    const uint64_t n = 1000;
    std::memcpy(b.data(), &n, 8);
    expect_error(b, {"truncated", "header length 1000"});
  }
  {
    auto b = safetensors("{}", {});
    const uint64_t n = uint64_t{1} << 62;
    std::memcpy(b.data(), &n, 8);
    expect_error(b, {"header length", "limit"});
  }
  expect_error({1, 2, 3}, {"truncated", "header length"});
  // Not JSON, not an object, nested to exhaust a recursive parser.
  expect_error(safetensors("{\"t\": ", data), {"not valid JSON"});
  expect_error(safetensors("[1, 2]", data), {"not a JSON object"});
  expect_error(safetensors("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", data),
               {"nests deeper"});
  // Entries: missing fields, unknown dtypes, bad shapes and offsets.
  expect_error(safetensors(entry(R"("shape": [2], "data_offsets": [0, 8])"), data), {"'t'", "dtype"});
  expect_error(safetensors(entry(R"("dtype": "I64", "shape": [2], "data_offsets": [0, 16])"), data),
               {"'t'", "dtype I64 is not supported"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": "2", "data_offsets": [0, 8])"), data), {"shape"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [-2], "data_offsets": [0, 8])"), data),
               {"shape", "positive integer"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [2.5], "data_offsets": [0, 8])"), data), {"shape"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [0], "data_offsets": [0, 0])"), data), {"shape"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [1, 1, 1, 1, 1], "data_offsets": [0, 4])"), data),
               {"more than 4 dims"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4])"), data),
               {"absurd"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [2], "data_offsets": [0])"), data), {"data_offsets"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [2], "data_offsets": [-8, 0])"), data), {"data_offsets"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [2], "data_offsets": [8, 0])"), data), {"data_offsets", "outside"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [2], "data_offsets": [60, 68])"), data),
               {"data_offsets", "outside", "64-byte data section"});
  expect_error(safetensors(entry(R"("dtype": "F32", "shape": [3], "data_offsets": [0, 8])"), data),
               {"data_offsets", "needs 12"});
  expect_error(safetensors(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                           R"( "b": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}})",
                           data),
               {"overlap"});
  expect_error(safetensors(R"({"__metadata__": {"k": 5}})", data), {"__metadata__"});
  expect_error(safetensors(R"({"t": 5})", data), {"'t'", "not an object"});
}

TEST(Safetensors, RandomBytesNeverCrash) {
  // Headers mutated byte by byte: a FileError or a valid file, nothing else.
  const std::string header = R"({"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}})";
  const std::vector<uint8_t> good = safetensors(header, std::vector<uint8_t>(12, 1));
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t v : {uint8_t{0}, uint8_t{'9'}, uint8_t{'['}, uint8_t{'"'}, uint8_t{0xff}}) {
      auto b = good;
      b[i] = v;
      write_bytes(path, b);
      try {
        const ModelFile f = read_safetensors(path);
        for (const TensorInfo& t : f.tensors) ASSERT_LE(t.file_offset + t.nbytes, b.size());
      } catch (const FileError&) {
      }
    }
  }
}

TEST(HfCheckpoint, PermutationIsInvertedExactly) {
  // 2 heads of 8 rows: GGUF row 2i+j of a head is HF row j·4+i.
  const uint64_t rows = 16, rb = 3;
  std::vector<uint8_t> hf(rows * rb), gguf(rows * rb), back(rows * rb);
  for (size_t i = 0; i < hf.size(); ++i) hf[i] = static_cast<uint8_t>(i / rb);
  permute_rope_rows(hf.data(), gguf.data(), rows, rb, 2);
  const std::vector<uint8_t> want = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
  for (uint64_t r = 0; r < rows; ++r) EXPECT_EQ(gguf[r * rb], want[r]) << r;
  unpermute_rope_rows(gguf.data(), back.data(), rows, rb, 2);
  EXPECT_EQ(back, hf);
}

TEST(HfCheckpoint, ConfigErrorsNameTheFileAndField) {
  TempDir dir;
  auto expect_config_error = [&](const std::string& config, const std::string& word) {
    std::filesystem::create_directories(dir.file("ckpt"));
    write_bytes(dir.file("ckpt/config.json"), reinterpret_cast<const uint8_t*>(config.data()), config.size());
    try {
      read_hf_checkpoint(dir.file("ckpt"), "");
      ADD_FAILURE() << "accepted: " << config;
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_config_error("{\"model_type\": \"gpt2\"}", "model_type 'gpt2'");
  expect_config_error("not json", "not a JSON object");
  expect_config_error("{\"model_type\": \"llama\"}", "missing hidden_size");
  expect_config_error(R"({"model_type": "llama", "hidden_size": -4})", "hidden_size is not a positive integer");
  const std::string base = R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,)"
                           R"( "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 300)";
  expect_config_error(base + R"(, "num_key_value_heads": 3})", "num_key_value_heads 3");
  expect_config_error(base + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})", "rope_scaling");
  expect_config_error(base + "}", "tokenizer.model");
  EXPECT_TRUE(is_hf_checkpoint(dir.file("ckpt")));
  EXPECT_FALSE(is_hf_checkpoint(dir.file("ckpt/config.json")));
}

TEST(Sha256, MatchesFipsExamples) {
  auto hex = [](const std::string& s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.finish_hex();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces (exercises the partial-block path).
  Sha256 h;
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.finish_hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace nibble
