// The tokenizers on arbitrary bytes: a real vocabulary (the bundled model's sentencepiece one,
// or the GGUF named by NIBBLE_FUZZ_VOCAB), and a small hand-made byte-level BPE vocabulary (all
// 256 byte symbols, a few dozen merges, special tokens) under the pre-tokenizer picked by bits
// 2-3 of the flags. Input: byte 0 holds the flags (bit 0 add_special, bit 1 parse_special), the
// rest is the text. Checks (sentencepiece):
//   - encode and decode never crash or throw, and every id is inside the vocabulary;
//   - streaming the pieces through Utf8Stream gives back exactly decode()'s bytes;
//   - decode(encode(text)) == text for valid UTF-8 text, where that holds: no special-token
//     parsing, no user-defined token spelled in it (those always split), and no U+2581 "▁"
//     (sentencepiece's own space marker, which decodes to a space).
// BPE: ids in range; without special-token parsing the pieces give back exactly the input bytes,
// valid UTF-8 or not (byte-level BPE can spell any byte); with it, decode() still never fails.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loaders/model_file.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace {

std::unique_ptr<nibble::Tokenizer> g_tok;
std::vector<std::string> g_always_split;  // user-defined token texts
std::vector<std::unique_ptr<nibble::Tokenizer>> g_bpe;  // one per pre-tokenizer below

// Pre-tokenizers with different regex machinery: digits first, Llama 3 with ignore_merges,
// single-digit Qwen2, and DeepSeek's six regexes with "$" and long literal classes.
constexpr const char* kBpePre[4] = {"smollm", "llama-bpe", "qwen2", "deepseek-llm"};

// Raw bytes -> the GPT-2 alphabet spelling of gpt2 vocabularies (model-families.md A.2).
std::string gpt2_spelling(std::string_view bytes) {
  std::string s;
  for (char c : bytes) {
    const uint32_t cp = nibble::gpt2_byte_to_code_point(static_cast<uint8_t>(c));
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

nibble::Vocabulary bpe_vocab() {
  nibble::Vocabulary v;
  v.model = "gpt2";
  auto add = [&](std::string text, int32_t type) {
    v.tokens.push_back(std::move(text));
    v.types.push_back(type);
  };
  for (int b = 0; b < 256; ++b) add(gpt2_spelling(std::string(1, static_cast<char>(b))), 1);
  // Merges in rank order, one naming a part no byte sequence produces. Every result is a token:
  // a result that is not one is emitted through one-byte tokens as llama.cpp does, which drops
  // bytes outside printable ASCII, so the round trip below would not hold (unit-tested instead).
  const std::pair<const char*, const char*> merges[] = {
      {" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"}, {"a", "n"}, {" ", "a"}, {" a", "n"},
      {" an", "d"}, {"e", "r"}, {"o", "n"}, {" ", " "}, {"  ", "  "}, {"\n", "\n"},
      {"\xC3", "\xA9"}, {"\xE2\x96", "\x81"}, {"\xE2", "\x96"}, {"\xF0\x9F", "\xA6\x99"},
      {"\xF0", "\x9F"}, {"\xA6", "\x99"}, {"1", "2"}, {"12", "3"}, {"'", "s"}, {"q", "\xFF"},
      {"\xFF", "\xFE"}, {"th", "e"}, {"t", "h"}, {"e", "e"}, {"ee", "ee"}, {"\x01", "\x01"}};
  for (const auto& [l, r] : merges) {
    v.merges.push_back(gpt2_spelling(l) + " " + gpt2_spelling(r));
    add(gpt2_spelling(std::string(l) + r), 1);
  }
  v.merges.push_back("\xE2\x82\xAC q");  // a part outside the alphabet
  add(gpt2_spelling("there"), 1);          // only ignore_merges can produce it
  add("<|endoftext|>", 3);
  add("<|im_start|>", 3);
  add("<tool>", 4);
  add("<0x41>", 6);
  v.bos_id = static_cast<int32_t>(v.tokens.size()) - 3;  // <|im_start|>
  v.eos_id = static_cast<int32_t>(v.tokens.size()) - 4;
  v.add_bos = true;
  v.add_eos = true;
  v.scores.assign(v.tokens.size(), 0.0f);
  return v;
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    int len;
    uint32_t cp;
    if (b < 0x80) { ++i; continue; }
    if (b >= 0xC2 && b <= 0xDF) { len = 2; cp = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; cp = b & 0x0F; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; cp = b & 0x07; }
    else return false;
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("NIBBLE_FUZZ_VOCAB");
  const std::string path = env ? env : NIBBLE_SOURCE_DIR "/assets/kjv-llama-q4_0.gguf";
  try {
    const nibble::ModelFile mf = nibble::read_gguf(path);
    const nibble::Vocabulary v = nibble::read_vocabulary(mf.meta, path);
    for (size_t id = 0; id < v.size(); ++id)
      if (id < v.types.size() && v.types[id] == nibble::kTokenUserDefined && !v.tokens[id].empty())
        g_always_split.push_back(v.tokens[id]);
    g_tok = nibble::make_tokenizer(v, path);
    nibble::Vocabulary bpe = bpe_vocab();
    for (const char* pre : kBpePre) {
      bpe.pre = pre;
      g_bpe.push_back(nibble::make_tokenizer(bpe, std::string("bpe-") + pre));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_tokenizer: cannot load the vocabulary: %s\n", e.what());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool add_special = data[0] & 1, parse_special = data[0] & 2;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const nibble::Tokenizer& tok = *g_tok;

  const std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
  const std::string decoded = tok.decode(ids);

  // Streaming (what generation prints) must give the same bytes as a whole decode, apart from
  // the dummy-prefix space decode() drops at the start.
  nibble::Utf8Stream stream;
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(tok.decode_piece(id));
  streamed += stream.flush();
  if (streamed != decoded && !(streamed.size() == decoded.size() + 1 && streamed[0] == ' ' &&
                               std::string_view(streamed).substr(1) == decoded))
    __builtin_trap();

  bool spm_round_trip = !parse_special && valid_utf8(text) &&
                        text.find("\xE2\x96\x81") == std::string_view::npos;
  for (const std::string& s : g_always_split)
    if (text.find(s) != std::string_view::npos) spm_round_trip = false;
  if (spm_round_trip && decoded != text) {
    std::fprintf(stderr, "round trip differs:\n  in : [%.*s]\n  out: [%s]\n",
                 static_cast<int>(text.size()), text.data(), decoded.c_str());
    __builtin_trap();
  }

  const nibble::Tokenizer& bpe = *g_bpe[(data[0] >> 2) & 3];
  const std::vector<int32_t> bpe_ids = bpe.encode(text, add_special, parse_special);
  std::string pieces;
  for (int32_t id : bpe_ids) {
    if (id < 0 || id >= bpe.n_vocab()) __builtin_trap();
    pieces += bpe.decode_piece(id);
  }
  const std::string bpe_decoded = bpe.decode(bpe_ids);
  if (bpe_decoded.size() > pieces.size()) __builtin_trap();  // clean-up only removes spaces
  if (!parse_special && pieces != text) {
    std::fprintf(stderr, "BPE (%s) round trip differs:\n  in : [%.*s]\n  out: [%s]\n",
                 kBpePre[(data[0] >> 2) & 3], static_cast<int>(text.size()), text.data(),
                 pieces.c_str());
    __builtin_trap();
  }
  return 0;
}
