// The tokenizer on arbitrary bytes, with a real vocabulary (the bundled model's, or the GGUF
// named by NIBBLE_FUZZ_VOCAB). Input: byte 0 holds the flags (bit 0 add_special, bit 1
// parse_special), the rest is the text. Checks:
//   - encode and decode never crash or throw, and every id is inside the vocabulary;
//   - streaming the pieces through Utf8Stream gives back exactly decode()'s bytes;
//   - decode(encode(text)) == text for valid UTF-8 text, where that holds: no special-token
//     parsing, no user-defined token spelled in it (those always split), and no U+2581 "▁"
//     (sentencepiece's own space marker, which decodes to a space).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loaders/model_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace {

std::unique_ptr<nibble::Tokenizer> g_tok;
std::vector<std::string> g_always_split;  // user-defined token texts

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

  if (!parse_special && valid_utf8(text) &&
      text.find("\xE2\x96\x81") == std::string_view::npos) {
    for (const std::string& s : g_always_split)
      if (text.find(s) != std::string_view::npos) return 0;
    if (decoded != text) {
      std::fprintf(stderr, "round trip differs:\n  in : [%.*s]\n  out: [%s]\n",
                   static_cast<int>(text.size()), text.data(), decoded.c_str());
      __builtin_trap();
    }
  }
  return 0;
}
