// Edge cases of the GGUF-vocabulary -> sentencepiece conversion and of the tokenizer that the
// fuzz targets (tests/fuzz) exercise, pinned as plain tests so they run in every build (the
// fuzzers only run in the clang fuzz build). Any input a fuzzer finds crashing is added here.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "loaders/model_file.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace {

using namespace nibble;

// `tokens` followed by the 256 <0xNN> byte pieces sentencepiece insists on with byte fallback
// (typed as such; the given tokens default to NORMAL).
Metadata vocab_meta(std::vector<std::string> tokens, std::vector<int32_t> types) {
  if (!tokens.empty()) {
    if (types.empty()) types.assign(tokens.size(), kTokenNormal);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      tokens.push_back(name);
      types.push_back(kTokenByte);
    }
  }
  Metadata m;
  m.set_string("tokenizer.ggml.model", "llama");
  m.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
  if (!types.empty()) m.set_int_array("tokenizer.ggml.token_type", types);
  return m;
}

// Encodes and decodes a text with every special-token mode; ids must stay in the vocabulary.
void exercise(const Tokenizer& tok) {
  const std::string text = "  ab <s>\n\xC3\xA9\xFF the</s> x";
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = tok.encode(text, special, special);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.n_vocab()) << id;
    (void)tok.decode(ids);
  }
  EXPECT_EQ(tok.decode({-1, tok.n_vocab(), 1 << 30}), "");
  EXPECT_EQ(tok.decode_piece(-3), "");
}

// Empty and repeated token texts, which sentencepiece itself refuses, become unreachable
// placeholders instead of failing the load.
TEST(VocabConversion, EmptyAndDuplicateTokenTexts) {
  const Metadata m = vocab_meta({"<unk>", "", "a", "a", "", "b"}, {});
  const Vocabulary v = read_vocabulary(m, "t");
  const auto tok = make_tokenizer(v, "t");
  exercise(*tok);
}

// Token types outside the enum, byte types on texts that are not <0xNN>, several UNKNOWNs, and
// special ids pointing outside the vocabulary are all tolerated (normalised or ignored).
TEST(VocabConversion, OutOfRangeTypesAndIds) {
  Metadata m = vocab_meta({"<unk>", "<s>", "</s>", "<0xZZ>", "<0x41>", "x", "y", "<0x4>"},
                          {2, 3, 3, 6, 6, -7, 1000, 6});
  m.set_uint("tokenizer.ggml.bos_token_id", 100000);
  m.set_uint("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu);
  m.set_uint("tokenizer.ggml.unknown_token_id", 5);
  m.set_int("tokenizer.ggml.padding_token_id", -1);
  const Vocabulary v = read_vocabulary(m, "t");
  EXPECT_EQ(v.bos_id, 1);  // out-of-range value ignored, default kept
  const auto tok = make_tokenizer(v, "t");
  exercise(*tok);
}

// A vocabulary of one token, and one with no UNKNOWN-typed token at all.
TEST(VocabConversion, TinyVocabularies) {
  for (const auto& tokens : {std::vector<std::string>{"a"}, std::vector<std::string>{"x", "y"}}) {
    const Vocabulary v = read_vocabulary(vocab_meta(tokens, {}), "t");
    const auto tok = make_tokenizer(v, "t");
    exercise(*tok);
  }
}

// Without the 256 byte pieces sentencepiece refuses a byte-fallback model: a FileError, not a
// crash (the fuzzer's tiny vocabularies hit this first).
TEST(VocabConversion, MissingBytePiecesIsAFileError) {
  Metadata m;
  m.set_string("tokenizer.ggml.model", "llama");
  m.set_string_array("tokenizer.ggml.tokens", {"<unk>", "a", "b"});
  EXPECT_THROW(make_tokenizer(read_vocabulary(m, "t"), "t"), FileError);
}

// A one-character piece typed CONTROL that plain text contains: sentencepiece's BPE emits it,
// then rejects its own segmentation (control pieces consume no input). Found by fuzz_vocab in CI;
// the text's encode fails with a FileError naming the file, never an escaping runtime_error.
TEST(VocabConversion, SingleCharacterControlPieceIsAFileError) {
  const Metadata m = vocab_meta({"<unk>", "<s>", "\xE2\x96\x81", "a", "b", "ab"},
                                {kTokenUnknown, kTokenControl, kTokenNormal, kTokenNormal,
                                 kTokenControl, kTokenNormal});
  const auto tok = make_tokenizer(read_vocabulary(m, "vocab.gguf"), "vocab.gguf");
  try {
    (void)tok->encode("b", false);
    FAIL() << "expected a FileError";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.gguf"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW((void)tok->encode("a", false));  // text without the piece still encodes
}

// Wrongly typed or mismatched arrays are FileErrors naming the key, not crashes.
TEST(VocabConversion, MalformedArraysAreFileErrors) {
  Metadata m = vocab_meta({"a", "b"}, {1, 1, 1});
  EXPECT_THROW(read_vocabulary(m, "t"), FileError);
  m = vocab_meta({"a", "b"}, {});
  m.set_float_array("tokenizer.ggml.scores", {1.0f});
  EXPECT_THROW(read_vocabulary(m, "t"), FileError);
  m = Metadata();
  m.set_string("tokenizer.ggml.model", "llama");
  m.set_int_array("tokenizer.ggml.tokens", {1, 2, 3});  // ints, not strings
  EXPECT_THROW(read_vocabulary(m, "t"), FileError);
  m = vocab_meta({}, {});
  EXPECT_THROW(read_vocabulary(m, "t"), FileError);
  m = vocab_meta({"a"}, {});
  m.set_string("tokenizer.ggml.model", "no-such-model");
  EXPECT_THROW(read_vocabulary(m, "t"), FileError);
  m.set_string("tokenizer.ggml.model", "gpt2");
  EXPECT_THROW(make_tokenizer(read_vocabulary(m, "t"), "t"), FileError);
}

// Pieces that are UTF-8 fragments: streaming them releases only whole characters, and the
// concatenation of what was released equals the bytes pushed.
TEST(Utf8StreamHardening, FragmentsAndGarbage) {
  Utf8Stream s;
  std::string out;
  for (const char* piece : {"\xE6", "\x97", "\xA5", "\xFF", "\xF0\x9F", "\x98\x80", "\xC3"})
    out += s.push(piece);
  out += s.flush();
  EXPECT_EQ(out, "\xE6\x97\xA5\xFF\xF0\x9F\x98\x80\xC3");
}

}  // namespace
