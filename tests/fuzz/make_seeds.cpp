// Writes tiny *valid* inputs (a few KB each) into a seed directory, so the fuzzers start from
// files that parse all the way through instead of only from truncated real headers:
//   gguf/:   a vocabulary-only file and a small tensor file (several types, custom alignment)
//   llama2c/: two checkpoints, shared and separate classifier
//   vocab/:  vocabulary-only GGUFs with byte, control, user-defined and duplicate tokens
// Usage: fuzz_make_seeds DIR (DIR/gguf, DIR/llama2c, DIR/vocab must exist).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "loaders/gguf_writer.h"
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
    write_llama2c(dir + "/llama2c/tiny.bin", false);
    write_llama2c(dir + "/llama2c/tiny-wcls.bin", true);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
