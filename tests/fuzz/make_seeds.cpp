// Writes tiny *valid* inputs (a few KB each) into a seed directory, so the fuzzers start from
// files that parse all the way through instead of only from truncated real headers:
//   gguf/:   a vocabulary-only file and a small tensor file (several types, custom alignment)
//   llama2c/: two checkpoints, shared and separate classifier
//   vocab/:  vocabulary-only GGUFs with byte, control, user-defined and duplicate tokens, and
//            byte-level BPE (gpt2) ones with merges under two pre-tokenizers
//   nibble/: nibble files (docs/format.md): plain and packed tensors, nibble's own types
//   safetensors/: a small checkpoint shard with every supported dtype
// Usage: fuzz_make_seeds DIR (DIR/gguf, DIR/llama2c, DIR/vocab, DIR/nibble, DIR/safetensors
// must exist).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loaders/gguf_writer.h"
#include "loaders/nibble_writer.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace {

using namespace nibble;

Vocabulary tiny_vocab(bool with_extras) {
  Vocabulary v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "<0xC3>", "<0xA9>", "\xE2\x96\x81",
              "\xE2\x96\x81" "a", "b", "ab", "\xE2\x96\x81" "ab", "c", "\xE2\x96\x81" "the", "e",
              "h", "t", "th"};
  v.types.assign(v.tokens.size(), kTokenNormal);
  v.types[0] = kTokenUnknown;
  v.types[1] = v.types[2] = kTokenControl;
  for (int i = 3; i <= 6; ++i) v.types[i] = kTokenByte;
  if (with_extras) {  // added before the byte pieces: ids stay small
    v.tokens.push_back("<|im_end|>");
    v.types.push_back(kTokenUserDefined);
    v.tokens.push_back("ab");  // duplicate text: becomes an unreachable placeholder
    v.types.push_back(kTokenNormal);
    v.tokens.push_back("");  // empty text, likewise
    v.types.push_back(kTokenNormal);
    v.tokens.push_back("x\ny");  // a piece spanning a newline turns off newline chunking
    v.types.push_back(kTokenNormal);
  }
  // sentencepiece requires all 256 byte pieces when byte fallback is on (nibble's conversion
  // turns it on), so without them every vocabulary would be rejected before tokenizing.
  for (int b = 0; b < 256; ++b) {
    if (b == 0x0A || b == 0x41 || b == 0xC3 || b == 0xA9) continue;  // already above
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.tokens.push_back(name);
    v.types.push_back(kTokenByte);
  }
  for (size_t i = 0; i < v.tokens.size(); ++i) v.scores.push_back(-static_cast<float>(i));
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_bos = true;
  return v;
}

// A byte-level BPE vocabulary: the 256 byte characters of the GPT-2 alphabet (A.2), a few merges
// (one whose result is not a token, one with an unknown part), special and added tokens.
Vocabulary tiny_bpe_vocab(const std::string& pre) {
  Vocabulary v;
  v.model = "gpt2";
  v.pre = pre;
  auto spell = [](std::string_view bytes) {
    std::string s;
    for (char c : bytes) {
      const uint32_t cp = gpt2_byte_to_code_point(static_cast<uint8_t>(c));
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    return s;
  };
  for (int b = 0; b < 256; ++b) v.tokens.push_back(spell(std::string(1, static_cast<char>(b))));
  const std::pair<std::string, std::string> merges[] = {
      {" ", "t"}, {"h", "e"}, {" t", "he"}, {"a", "b"}, {"\xC3", "\xA9"}, {"1", "2"}, {"ab", "c"}};
  for (const auto& [l, r] : merges) {
    v.merges.push_back(spell(l) + " " + spell(r));
    if (l != "ab") v.tokens.push_back(spell(l + r));  // "abc" stays a non-token symbol
  }
  v.merges.push_back("\xE2\x82\xAC q");
  v.tokens.push_back("<|endoftext|>");
  v.tokens.push_back("<|im_start|>");
  v.tokens.push_back("<tool>");
  v.types.assign(v.tokens.size(), kTokenNormal);
  v.types[v.tokens.size() - 3] = v.types[v.tokens.size() - 2] = kTokenControl;
  v.types.back() = kTokenUserDefined;
  v.bos_id = v.eos_id = static_cast<int32_t>(v.tokens.size()) - 3;
  v.add_bos = pre == "llama-bpe";
  return v;
}

void write_vocab_file(const std::string& path, bool extras) {
  Metadata m;
  write_vocabulary(tiny_vocab(extras), m);
  write_gguf(path, m, {});
}

void write_tensor_file(const std::string& path) {
  Metadata m;
  m.set_string("general.architecture", "llama");
  m.set_string("general.name", "fuzz seed");
  m.set_uint("general.alignment", 64);
  m.set_uint("llama.embedding_length", 32);
  m.set_int("llama.some_signed", -5, MetaType::I64);
  m.set_float("llama.rope.freq_base", 10000.0, MetaType::F64);
  m.set_bool("llama.flag", true);
  m.set_float_array("llama.floats", {1.5f, -2.0f});
  m.set_int_array("llama.ints", {1, -2, 3});
  m.set_string_array("llama.strings", {"a", "", "ccc"});
  std::vector<GgufTensorToWrite> t;
  t.push_back({"f32", TensorType::F32, {4, 2}, std::vector<uint8_t>(32, 0x3f)});
  t.push_back({"f16", TensorType::F16, {8}, std::vector<uint8_t>(16, 0x3c)});
  t.push_back({"q8_0", TensorType::Q8_0, {32, 2}, std::vector<uint8_t>(68, 1)});
  t.push_back({"q4_0", TensorType::Q4_0, {32, 1, 1, 1}, std::vector<uint8_t>(18, 0x88)});
  t.push_back({"bf16", TensorType::BF16, {2, 2, 2}, std::vector<uint8_t>(16, 0x40)});
  write_gguf(path, m, t);
}

void write_llama2c(const std::string& path, bool separate_classifier) {
  const int32_t dim = 8, hidden = 16, layers = 1, heads = 2, kv_heads = 1, vocab = 12, seq = 4;
  const int64_t kv_dim = dim / heads * kv_heads, head = dim / heads;
  int64_t floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * dim * kv_dim +
                                           3 * dim * hidden) +
                   dim + seq * head;
  if (separate_classifier) floats += vocab * dim;
  const int32_t header[7] = {dim, hidden, layers, heads, kv_heads,
                             separate_classifier ? -vocab : vocab, seq};
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  std::vector<float> w(static_cast<size_t>(floats));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 7) * 0.125f;
  out.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size() * 4));
}

void write_nibble_file(const std::string& path, bool with_tensors) {
  Metadata m;
  m.set_string("general.architecture", "llama");
  m.set_uint("llama.embedding_length", 32);
  m.set_float_array("llama.floats", {1.5f, -2.0f});
  m.set_string_array("llama.strings", {"a", "", "ccc"});
  m.set_string("nibble.quantization.recipe", "q4");
  std::vector<NibbleTensorToWrite> t;
  if (with_tensors) {
    t.push_back({{"norm", TensorType::F32, 0, {8}}, std::vector<uint8_t>(32, 0x3f)});
    // Q4_0 128 x 5 in packed4: 2 tiles of align64(4 * 72) = 320 bytes.
    t.push_back({{"q4_packed", TensorType::Q4_0, 1, {128, 5}}, std::vector<uint8_t>(640, 0x88)});
    t.push_back({{"q8_packed", TensorType::Q8_0, 1, {64, 4}}, std::vector<uint8_t>(320, 1)});
    t.push_back({{"q4_g128", TensorType::Q4_G128, 0, {128, 2}}, std::vector<uint8_t>(132, 0x77)});
    t.push_back({{"q8_c", TensorType::Q8_C, 0, {32, 2}}, std::vector<uint8_t>(72, 2)});
  }
  write_nibble(path, m, t);
}

void write_safetensors(const std::string& path) {
  const std::string header =
      R"({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},)"
      R"( "b": {"dtype": "F16", "shape": [4], "data_offsets": [16, 24]},)"
      R"( "c": {"dtype": "BF16", "shape": [1, 2, 2], "data_offsets": [24, 32]}})";
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  const std::vector<char> data(32, 0x3c);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    write_vocab_file(dir + "/gguf/tiny-vocab.gguf", false);
    write_tensor_file(dir + "/gguf/tiny-tensors.gguf");
    write_vocab_file(dir + "/vocab/tiny-vocab.gguf", false);
    write_vocab_file(dir + "/vocab/tiny-vocab-extras.gguf", true);
    for (const char* pre : {"llama-bpe", "deepseek-llm"}) {
      Metadata m;
      write_vocabulary(tiny_bpe_vocab(pre), m);
      write_gguf(dir + "/vocab/tiny-bpe-" + pre + ".gguf", m, {});
    }
    write_llama2c(dir + "/llama2c/tiny.bin", false);
    write_llama2c(dir + "/llama2c/tiny-wcls.bin", true);
    write_nibble_file(dir + "/nibble/tiny.q4", true);
    write_nibble_file(dir + "/nibble/vocab-only.q4", false);
    write_safetensors(dir + "/safetensors/tiny.safetensors");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
