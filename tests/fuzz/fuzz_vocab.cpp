// GGUF vocabulary -> sentencepiece conversion: a GGUF file's tokenizer.ggml.* metadata goes
// through read_vocabulary, the hand-built ModelProto (sentencepiece_model_proto) and
// make_tokenizer, and the resulting tokenizer encodes and decodes a fixed text. Accepted
// outcomes: a working tokenizer, or FileError (file or vocabulary rejected).
#include <cstdint>
#include <string_view>

#include "loaders/model_file.h"
#include "tests/fuzz/fuzz_util.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace {

// Spaces, newlines, multi-byte characters, a byte no vocabulary has, and special-token
// spellings, so splitting, byte fallback and the dummy prefix are all exercised.
constexpr std::string_view kText =
    "  Hello world\n\nIn the beginning <s></s><unk><|im_end|> caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80"
    "\xFF\t.";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::string& path = fuzz::input_as_file(data, size);
  try {
    const ModelFile mf = read_gguf(path, OpenOptions{.use_mmap = false});
    const Vocabulary vocab = read_vocabulary(mf.meta, path);
    if (vocab.model == "llama") fuzz::consume(sentencepiece_model_proto(vocab).size());
    const auto tok = make_tokenizer(vocab, path);
    for (bool special : {false, true}) {
      const std::vector<int32_t> ids = tok->encode(kText, special, special);
      for (int32_t id : ids)
        if (id < 0 || id >= tok->n_vocab()) __builtin_trap();
      fuzz::consume(tok->decode(ids).size());
    }
    // Out-of-range ids decode to nothing rather than indexing past the table.
    fuzz::consume(tok->decode({-1, tok->n_vocab(), 0}).size());
    fuzz::consume(tok->is_end_of_generation(tok->eos()));
  } catch (const FileError&) {
  }
  return 0;
}
