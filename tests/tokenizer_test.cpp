#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "loaders/model_file.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

const fs::path kShared = NIBBLE_SHARED_DIR;
const fs::path kVectors = kShared / "data" / "tokenizer-vectors";
const fs::path kLlama2Model = kShared / "models" / "llama2-tokenizer.model";
const fs::path kKjvGguf = kShared / "models" / "kjv-llama" / "kjv-llama-Q4_0.gguf";

#define SKIP_UNLESS_EXISTS(path)                                                     \
  do {                                                                               \
    if (!fs::exists(path)) GTEST_SKIP() << "shared file not available: " << (path);  \
  } while (0)

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<Tokenizer> gguf_tokenizer(const fs::path& path) {
  ModelFile file = read_gguf(path.string());
  return make_tokenizer(read_vocabulary(file.meta, path.string()), path.string());
}

// A tiny sentencepiece-style vocabulary that needs no shared files: control tokens, the 256
// byte tokens, and a handful of merges for "Hello world".
Vocabulary tiny_vocab() {
  Vocabulary v;
  v.model = "llama";
  auto add = [&](std::string text, float score, int32_t type) {
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, kTokenUnknown);
  add("<s>", 0, kTokenControl);
  add("</s>", 0, kTokenControl);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, 0, kTokenByte);
  }
  const char* pieces[] = {"\xE2\x96\x81", "H", "e", "l", "o", "w", "r", "d", "ll", "He", "Hell",
                          "Hello", "\xE2\x96\x81Hello", "or", "wor", "worl", "world",
                          "\xE2\x96\x81world", "!", "<|im_end|>"};
  float score = -1;
  for (const char* p : pieces) add(p, score--, kTokenNormal);
  v.types.back() = kTokenControl;  // <|im_end|>
  add("<tool>", 0, kTokenUserDefined);
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_bos = true;
  return v;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

// ---- test vectors --------------------------------------------------------------------------

struct VectorCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<VectorCase> read_vectors(const fs::path& gguf) {
  const std::string inp = read_text(gguf.string() + ".inp");
  const std::string out = read_text(gguf.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VectorCase> cases;
  for (size_t pos = 0; pos < inp.size();) {
    size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

class TokenizerVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectors, MatchesReference) {
  const fs::path gguf = kVectors / ("ggml-vocab-" + GetParam() + ".gguf");
  SKIP_UNLESS_EXISTS(gguf);
  auto tok = gguf_tokenizer(gguf);
  const auto cases = read_vectors(gguf);
  ASSERT_EQ(cases.size(), 46u);
  int passed = 0;
  for (const auto& c : cases) {
    const auto got = tok->encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids_str(got), ids_str(c.ids)) << "text: '" << c.text << "'";
    passed += got == c.ids;
  }
  EXPECT_EQ(passed, 46);
}

INSTANTIATE_TEST_SUITE_P(Sentencepiece, TokenizerVectors, ::testing::Values("llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) if (c == '-') c = '_';
                           return name;
                         });

// ---- Llama 2 tokenizer.model vs the GGUF-embedded vocabulary -------------------------------

const std::vector<std::string> kSampleTexts = {
    "",
    "Hello world",
    " Hello world",
    "   leading spaces and trailing  ",
    "In the beginning God created the heaven and the earth.\nAnd the earth was without form.",
    "\n\nnewlines\n",
    "tabs\tand\r\ncarriage returns",
    "Ünïcödé: naïve café, Straße, Ελληνικά, русский",
    "CJK 你好，世界 and 日本語のテキスト",
    "emoji 🦙🚀 👨‍👩‍👧 done",
    "<s> looks special </s> but is text",
    "numbers 3.14159 1,000,000 and code: int main() { return 0; }",
};

TEST(SentencepieceModel, MatchesGgufVocabulary) {
  SKIP_UNLESS_EXISTS(kLlama2Model);
  SKIP_UNLESS_EXISTS(kKjvGguf);
  const Vocabulary from_model = read_sentencepiece_model(kLlama2Model.string());
  EXPECT_EQ(from_model.size(), 32000u);
  EXPECT_EQ(from_model.bos_id, 1);
  EXPECT_EQ(from_model.eos_id, 2);
  EXPECT_EQ(from_model.unk_id, 0);
  EXPECT_TRUE(from_model.add_bos);
  EXPECT_TRUE(from_model.add_space_prefix);
  EXPECT_EQ(from_model.types[3], kTokenByte);
  EXPECT_EQ(from_model.types[1], kTokenControl);

  ModelFile file = read_gguf(kKjvGguf.string());
  const Vocabulary from_gguf = read_vocabulary(file.meta, kKjvGguf.string());
  EXPECT_EQ(from_model.tokens, from_gguf.tokens);

  auto a = make_tokenizer(from_model, kLlama2Model.string());
  auto b = make_tokenizer(from_gguf, kKjvGguf.string());
  for (const auto& text : kSampleTexts) {
    for (bool special : {false, true})
      EXPECT_EQ(ids_str(a->encode(text, special)), ids_str(b->encode(text, special)))
          << "text: '" << text << "'";
  }
  EXPECT_TRUE(a->encode("", false).empty());
  EXPECT_EQ(ids_str(a->encode("Hello world", false)), "15043 3186");
}

TEST(SentencepieceModel, RoundTripsText) {
  SKIP_UNLESS_EXISTS(kLlama2Model);
  auto tok = make_tokenizer(read_sentencepiece_model(kLlama2Model.string()), "llama2");
  for (const auto& text : kSampleTexts) {
    EXPECT_EQ(tok->decode(tok->encode(text, false)), text);
    EXPECT_EQ(tok->decode(tok->encode(text, true)), text);
    // Piece by piece through a Utf8Stream gives the same bytes, minus the leading space.
    Utf8Stream stream;
    std::string streamed;
    for (int32_t id : tok->encode(text, false)) streamed += stream.push(tok->decode_piece(id));
    streamed += stream.flush();
    EXPECT_EQ(streamed, text.empty() ? "" : " " + text);
  }
}

TEST(SentencepieceModel, ByteFallbackPieces) {
  SKIP_UNLESS_EXISTS(kLlama2Model);
  auto tok = make_tokenizer(read_sentencepiece_model(kLlama2Model.string()), "llama2");
  // U+1F999 has no piece of its own: it becomes four byte tokens, each decoding to one byte.
  const auto ids = tok->encode("\xF0\x9F\xA6\x99", false);
  ASSERT_EQ(ids.size(), 5u);  // "▁" then the four bytes
  EXPECT_EQ(tok->decode_piece(ids[1]), "\xF0");
  EXPECT_EQ(tok->decode_piece(ids[4]), "\x99");
  EXPECT_EQ(tok->decode_piece(1), "");  // <s>
  EXPECT_EQ(tok->decode_piece(tok->encode("Hello world", false)[1]), " world");
}

TEST(SentencepieceModel, ChunkedEncodingMatchesOneCall) {
  // The tokenizer encodes long text in newline-ended chunks; sentencepiece in one call on the
  // same ModelProto (dummy prefix inside the model) must give the same ids.
  const fs::path text_path = kShared / "data" / "kjv-valid.txt";
  SKIP_UNLESS_EXISTS(kLlama2Model);
  SKIP_UNLESS_EXISTS(text_path);
  const Vocabulary vocab = read_sentencepiece_model(kLlama2Model.string());
  auto tok = make_tokenizer(vocab, "llama2");
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(sentencepiece_model_proto(vocab)).ok());
  const std::string text = read_text(text_path).substr(0, 60000) + " tail without newline";
  const std::vector<int> reference = sp.EncodeAsIds(text);
  EXPECT_EQ(tok->encode(text, false), std::vector<int32_t>(reference.begin(), reference.end()));
}

// Speed is a benchmark's business (no timed assertions in unit tests); this pins that the
// chunked encoder handles the whole corpus and gives the text back.
TEST(SentencepieceModel, EncodesTheWholeCorpus) {
  SKIP_UNLESS_EXISTS(kLlama2Model);
  std::string text;
  for (const char* name : {"kjv-train.txt", "kjv-valid.txt"})
    if (fs::exists(kShared / "data" / name)) text += read_text(kShared / "data" / name);
  if (text.empty()) GTEST_SKIP() << "shared KJV text not available";
  auto tok = make_tokenizer(read_sentencepiece_model(kLlama2Model.string()), "llama2");
  const auto start = std::chrono::steady_clock::now();
  const auto ids = tok->encode(text, true);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("encoded %zu bytes into %zu tokens in %.2f s\n", text.size(), ids.size(), seconds);
  EXPECT_GT(ids.size(), text.size() / 8);
  EXPECT_EQ(tok->decode(std::vector<int32_t>(ids.begin() + 1, ids.end())), text);
}

// ---- behaviour on a hand-made vocabulary (no shared files needed) --------------------------

TEST(Tokenizer, AddsBosAndEosOnlyWhenAsked) {
  Vocabulary v = tiny_vocab();
  auto tok = make_tokenizer(v, "tiny");
  const auto plain = tok->encode("Hello world", false);
  EXPECT_EQ(ids_str(plain), "271 276");  // ▁Hello ▁world
  const auto with_bos = tok->encode("Hello world", true);
  ASSERT_EQ(with_bos.size(), 3u);
  EXPECT_EQ(with_bos[0], 1);
  v.add_eos = true;
  v.add_bos = false;
  auto eos_tok = make_tokenizer(v, "tiny");
  EXPECT_EQ(ids_str(eos_tok->encode("Hello world", true)), "271 276 2");
}

TEST(Tokenizer, ParsesSpecialTokensOnlyWhenAsked) {
  auto tok = make_tokenizer(tiny_vocab(), "tiny");
  const auto as_text = tok->encode("<s>Hello", false, false);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), 1), 0);
  const auto parsed = tok->encode("<s>Hello", false, true);
  // The fragment after a special token gets the dummy-prefix space again.
  EXPECT_EQ(ids_str(parsed), "1 271");
  EXPECT_EQ(ids_str(tok->encode("Hello<|im_end|>", false, true)), "271 278");
  // User-defined tokens are split out even without parse_special.
  const auto user = tok->encode("Hello<tool>", false, false);
  ASSERT_FALSE(user.empty());
  EXPECT_EQ(user.back(), 279);
}

TEST(Tokenizer, ByteFallbackRoundTrip) {
  auto tok = make_tokenizer(tiny_vocab(), "tiny");
  for (std::string text : {"Hello world!", "héllo wörld", "日本語 🦙", "  two leading", "tab\there\n"}) {
    EXPECT_EQ(tok->decode(tok->encode(text, true)), text);
  }
  // Characters without a piece become byte tokens (ids 3 + byte value).
  const auto ids = tok->encode("\xC3\xA9", false);
  EXPECT_EQ(ids_str(ids), "259 198 172");  // ▁, 0xC3, 0xA9
}

TEST(Tokenizer, EndOfGeneration) {
  Vocabulary v = tiny_vocab();
  auto tok = make_tokenizer(v, "tiny");
  EXPECT_TRUE(tok->is_end_of_generation(2));    // EOS, and "</s>" by text
  EXPECT_TRUE(tok->is_end_of_generation(278));  // <|im_end|>
  EXPECT_FALSE(tok->is_end_of_generation(1));
  EXPECT_FALSE(tok->is_end_of_generation(271));
  // "</s>" is not an end of generation in formats that have <|tool_response> ... unless EOS.
  v.tokens.push_back("<|tool_response>");
  v.scores.push_back(0);
  v.types.push_back(kTokenControl);
  v.eos_id = 278;
  auto tool = make_tokenizer(v, "tiny");
  EXPECT_FALSE(tool->is_end_of_generation(2));
  EXPECT_TRUE(tool->is_end_of_generation(278));
  EXPECT_TRUE(tool->is_end_of_generation(280));
  // The first FIM repo spelling present ends generation (SmolLM2's <reponame>); <file_sep> is
  // not a FIM spelling.
  for (const char* t : {"<reponame>", "<file_sep>"}) {
    v.tokens.push_back(t);
    v.scores.push_back(0);
    v.types.push_back(kTokenControl);
  }
  auto fim = make_tokenizer(v, "tiny");
  EXPECT_TRUE(fim->is_end_of_generation(fim->n_vocab() - 2));
  EXPECT_FALSE(fim->is_end_of_generation(fim->n_vocab() - 1));
}

TEST(Tokenizer, UnknownTypeFixups) {
  // Phi-3 style: <unk> typed control, fillers typed unknown. sentencepiece must still load it.
  Vocabulary v = tiny_vocab();
  v.types[0] = kTokenControl;
  v.tokens.push_back("[PAD300]");
  v.scores.push_back(0);
  v.types.push_back(kTokenUnknown);
  v.tokens.push_back("");  // empty and duplicate texts must not stop loading either
  v.scores.push_back(0);
  v.types.push_back(kTokenNormal);
  v.tokens.push_back("H");
  v.scores.push_back(0);
  v.types.push_back(kTokenNormal);
  auto tok = make_tokenizer(v, "tiny");
  EXPECT_EQ(ids_str(tok->encode("Hello world", false)), "271 276");
}

// ---- vocabulary metadata -------------------------------------------------------------------

Metadata llama_metadata(const Vocabulary& v) {
  Metadata m;
  write_vocabulary(v, m);
  return m;
}

TEST(Vocabulary, MetadataRoundTrip) {
  Vocabulary v = tiny_vocab();
  v.chat_template = "{{ messages }}";
  v.add_space_prefix = false;
  v.eot_id = 278;
  const Vocabulary r = read_vocabulary(llama_metadata(v), "meta");
  EXPECT_EQ(r.model, "llama");
  EXPECT_EQ(r.tokens, v.tokens);
  EXPECT_EQ(r.scores, v.scores);
  EXPECT_EQ(r.types, v.types);
  EXPECT_EQ(r.bos_id, 1);
  EXPECT_EQ(r.eos_id, 2);
  EXPECT_EQ(r.unk_id, 0);
  EXPECT_EQ(r.eot_id, 278);
  EXPECT_EQ(r.pad_id, -1);
  EXPECT_TRUE(r.add_bos);
  EXPECT_FALSE(r.add_eos);
  EXPECT_FALSE(r.add_space_prefix);
  EXPECT_EQ(r.chat_template, v.chat_template);
}

TEST(Vocabulary, DefaultsAndOutOfRangeIds) {
  Metadata m;
  m.set_string("tokenizer.ggml.model", "llama");
  m.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  m.set_uint("tokenizer.ggml.bos_token_id", 4294967295u);
  m.set_uint("tokenizer.ggml.eos_token_id", 3);
  const Vocabulary v = read_vocabulary(m, "meta");
  EXPECT_EQ(v.bos_id, 1);  // out of range: default kept
  EXPECT_EQ(v.eos_id, 3);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_EQ(v.scores, std::vector<float>(4, 0.0f));
  EXPECT_EQ(v.types, std::vector<int32_t>(4, kTokenNormal));
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.add_space_prefix);

  m.set_string("tokenizer.ggml.model", "gpt2");
  const Vocabulary g = read_vocabulary(m, "meta");
  EXPECT_FALSE(g.add_bos);
}

template <typename F>
std::string file_error_of(F&& f) {
  try {
    f();
  } catch (const FileError& e) {
    return e.what();
  }
  return "(no FileError)";
}

TEST(Vocabulary, Errors) {
  Metadata m;
  m.set_string("tokenizer.ggml.model", "llama");
  EXPECT_NE(file_error_of([&] { read_vocabulary(m, "x.gguf"); }).find("x.gguf"), std::string::npos);
  EXPECT_NE(file_error_of([&] { read_vocabulary(m, "x.gguf"); }).find("tokens"), std::string::npos);

  m.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
  m.set_float_array("tokenizer.ggml.scores", {0.0f});
  EXPECT_NE(file_error_of([&] { read_vocabulary(m, "x.gguf"); }).find("scores"), std::string::npos);

  m.set_float_array("tokenizer.ggml.scores", {0.0f, 0.0f});
  m.set_int_array("tokenizer.ggml.token_type", {1, 1, 1});
  EXPECT_NE(file_error_of([&] { read_vocabulary(m, "x.gguf"); }).find("token_type"),
            std::string::npos);

  m.set_int_array("tokenizer.ggml.token_type", {1, 1});
  m.set_string("tokenizer.ggml.model", "mystery");
  EXPECT_NE(file_error_of([&] { read_vocabulary(m, "x.gguf"); }).find("mystery"),
            std::string::npos);
  EXPECT_THROW(read_sentencepiece_model("/nonexistent/tokenizer.model"), FileError);
}

// Byte-level BPE is supported now; a gpt2 vocabulary without merges is still refused clearly.
TEST(Vocabulary, Gpt2WithoutMergesIsRejectedClearly) {
  Metadata m;
  m.set_string("tokenizer.ggml.model", "gpt2");
  m.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
  const Vocabulary v = read_vocabulary(m, "bpe.gguf");
  const std::string msg = file_error_of([&] { make_tokenizer(v, "bpe.gguf"); });
  EXPECT_NE(msg.find("bpe.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("merges"), std::string::npos) << msg;

  const fs::path gguf = kVectors / "ggml-vocab-gpt-2.gguf";
  SKIP_UNLESS_EXISTS(gguf);
  EXPECT_EQ(gguf_tokenizer(gguf)->encode("Hello world", false),
            (std::vector<int32_t>{15496, 995}));  // model-families.md A.6
}

// ---- Utf8Stream ----------------------------------------------------------------------------

TEST(Utf8Stream, ReleasesWholeCharacters) {
  Utf8Stream s;
  EXPECT_EQ(s.push("ab"), "ab");
  EXPECT_EQ(s.push("\xE6"), "");  // first byte of 日
  EXPECT_EQ(s.push("\x97"), "");
  EXPECT_EQ(s.push("\xA5" "c"), "\xE6\x97\xA5" "c");
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.push("\xA6\x99\xF0"), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(s.flush(), "\xF0");
  EXPECT_EQ(s.flush(), "");
}

TEST(Utf8Stream, PassesInvalidBytesThrough) {
  Utf8Stream s;
  EXPECT_EQ(s.push("\x80"), "\x80");          // stray continuation byte
  EXPECT_EQ(s.push("\xFF" "a"), "\xFF" "a");  // never valid in UTF-8
  EXPECT_EQ(s.push("\xC0\xAF"), "\xC0\xAF");  // overlong lead
  EXPECT_EQ(s.push("\xE6" "x"), "\xE6" "x");  // lead byte interrupted by ASCII
  EXPECT_EQ(s.push("\xED\xA0"), "\xED\xA0");  // surrogate: can never complete
  EXPECT_EQ(s.push("\xC3"), "");
  EXPECT_EQ(s.push("\xC3\xA9"), "\xC3\xC3\xA9");  // broken lead released, then é
}

}  // namespace
}  // namespace nibble
