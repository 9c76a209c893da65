// Byte-level BPE (tokenizer.ggml.model = "gpt2"): hand-made vocabularies that need no shared
// files, and SmolLM2's real vocabulary when scripts/fetch-models.sh has fetched it (expected ids
// computed once with llama.cpp's llama-tokenize and written down here).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "loaders/model_file.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Raw bytes -> their spelling in the GPT-2 alphabet (how gpt2 vocabularies store tokens).
std::string mapped(std::string_view bytes) {
  std::string s;
  for (char c : bytes) s += utf8(gpt2_byte_to_code_point(static_cast<uint8_t>(c)));
  return s;
}

// A small gpt2 vocabulary: the 256 byte characters (id = byte), then one token per merge
// result, then whatever extra tokens a test adds. Merges are given as raw-byte pairs.
using Merges = std::vector<std::pair<std::string, std::string>>;

struct TinyBpe {
  Vocabulary v;

  void build(const Merges& merges, std::string pre) {
    v.model = "gpt2";
    v.pre = std::move(pre);
    for (int b = 0; b < 256; ++b) add(mapped(std::string(1, static_cast<char>(b))));
    for (const auto& [l, r] : merges) {
      v.merges.push_back(mapped(l) + " " + mapped(r));
      if (find(mapped(l + r)) < 0) add(mapped(l + r));
    }
  }
  int32_t add(std::string text, int32_t type = kTokenNormal) {
    v.tokens.push_back(std::move(text));
    v.scores.push_back(0.0f);
    v.types.push_back(type);
    return static_cast<int32_t>(v.tokens.size() - 1);
  }
  int32_t find(const std::string& text) const {
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == text) return static_cast<int32_t>(i);
    return -1;
  }
  int32_t id(std::string_view raw) const { return find(mapped(raw)); }
  std::unique_ptr<Tokenizer> make() const { return make_tokenizer(v, "tiny.gguf"); }
};

TinyBpe tiny(const Merges& merges, std::string pre = "gpt-2") {
  TinyBpe t;
  t.build(merges, std::move(pre));
  return t;
}

std::vector<std::string> split(const std::vector<std::string_view>& regexes,
                               std::string_view text) {
  Pretokenizer p(regexes, "test");
  std::vector<std::string_view> pieces;
  p.split(text, pieces);
  return {pieces.begin(), pieces.end()};
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

// ---- alphabet and pre-tokenizers --------------------------------------------------------------

TEST(BpeAlphabet, MatchesGpt2) {
  EXPECT_EQ(gpt2_byte_to_code_point(' '), 0x120u);   // Ġ
  EXPECT_EQ(gpt2_byte_to_code_point('\n'), 0x10Au);  // Ċ
  EXPECT_EQ(gpt2_byte_to_code_point('\t'), 0x109u);
  EXPECT_EQ(gpt2_byte_to_code_point(0x00), 0x100u);
  EXPECT_EQ(gpt2_byte_to_code_point(0x7F), 0x121u);
  EXPECT_EQ(gpt2_byte_to_code_point(0xA0), 0x142u);
  EXPECT_EQ(gpt2_byte_to_code_point(0xAD), 0x143u);
  EXPECT_EQ(gpt2_byte_to_code_point('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(gpt2_byte_to_code_point(0xFF), 0xFFu);
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = gpt2_byte_to_code_point(static_cast<uint8_t>(b));
    EXPECT_LT(cp, 0x144u);
    EXPECT_EQ(gpt2_code_point_to_byte(cp), b);
    seen.insert(cp);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(gpt2_code_point_to_byte(0x20), -1);  // a space is spelled Ġ, not itself
  EXPECT_EQ(gpt2_code_point_to_byte(0x144), -1);
}

TEST(BpePretokenizer, PatternRewrite) {
  EXPECT_EQ(pcre2_pattern(R"(\u4E00-\U0001E943)"), R"(\x{4E00}-\x{0001E943})");
  const std::string ws = pcre2_pattern(R"(\s)");
  EXPECT_EQ(ws.front(), '[');
  EXPECT_EQ(pcre2_pattern(R"([^\s\p{L}])"), "[^" + ws.substr(1, ws.size() - 2) + R"(\p{L}])");
  EXPECT_EQ(pcre2_pattern(R"(\S)"), "[^" + ws.substr(1));
  EXPECT_EQ(pcre2_pattern(R"([\[\\\]]\s)"), R"([\[\\\]])" + ws);  // escaped brackets
}

// \s is exactly A.5's set; PCRE2's own \s would also take U+180E.
TEST(BpePretokenizer, WhitespaceIsExactlyTheCardsSet) {
  const std::set<uint32_t> expected = {0x9,    0xA,    0xB,    0xC,    0xD,    0x20,   0x85,
                                       0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                       0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                       0x2029, 0x202F, 0x205F, 0x3000};
  Pretokenizer p({R"(\s)"}, "test");
  std::vector<std::string_view> pieces;
  std::set<uint32_t> got;
  for (uint32_t cp = 0; cp < 0x3100; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string text = "a";
    text += utf8(cp);
    text += 'b';
    pieces.clear();
    p.split(text, pieces);
    if (pieces.size() == 3) got.insert(cp);
  }
  EXPECT_EQ(got, expected);
}

TEST(BpePretokenizer, MatchesAndGapsAreBothKept) {
  const auto gpt2 = pretokenizer_spec("gpt-2", "t").regexes;
  EXPECT_EQ(split(gpt2, "Hello world's 123  x\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " 123", " ", " x", "\n"}));
  // Trailing whitespace stays one piece; a lone tab before a word is its own piece.
  EXPECT_EQ(split(gpt2, "a   "), (std::vector<std::string>{"a", "   "}));
  EXPECT_EQ(split(gpt2, "a\tb"), (std::vector<std::string>{"a", "\t", "b"}));
  // smollm isolates digits first, then GPT-2 splitting within each piece.
  EXPECT_EQ(split(pretokenizer_spec("smollm", "t").regexes, "ab 2024!"),
            (std::vector<std::string>{"ab", " ", "2", "0", "2", "4", "!"}));
  // A regex that only matches part of the text: the unmatched rest becomes pieces too.
  EXPECT_EQ(split({"[0-9]+"}, "ab12cd3"), (std::vector<std::string>{"ab", "12", "cd", "3"}));
  // Lookaheads and "$" see the end of the current piece, not of the whole text.
  EXPECT_EQ(split({"x", R"(\s+$)"}, "a  x  b  "),
            (std::vector<std::string>{"a", "  ", "x", "  b", "  "}));
  EXPECT_TRUE(split(gpt2, "").empty());
}

TEST(BpePretokenizer, InvalidUtf8KeepsItsBytes) {
  const auto gpt2 = pretokenizer_spec("gpt-2", "t").regexes;
  const std::string text = "ab\xFF\xFE cd\xC3(\xED\xA0\x80 e";
  const auto pieces = split(gpt2, text);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
  // Invalid bytes match as U+FFFD, a symbol: not part of the letters around them.
  EXPECT_EQ(pieces.front(), "ab");
  EXPECT_EQ(pieces[1], "\xFF\xFE");
}

TEST(BpePretokenizer, UnknownNameIsAFileError) {
  const std::string msg = file_error_of([] { pretokenizer_spec("no-such-pre", "v.gguf"); });
  EXPECT_NE(msg.find("v.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no-such-pre"), std::string::npos) << msg;
  for (const char* name : {"gpt-2", "default", "", "llama-bpe", "llama3", "llama-v3", "qwen2",
                           "deepseek-r1-qwen", "smollm", "starcoder", "refact", "deepseek-coder",
                           "deepseek-llm", "falcon", "mpt", "olmo", "dbrx", "smaug-bpe"}) {
    EXPECT_NO_THROW(Pretokenizer(pretokenizer_spec(name, "t").regexes, "t")) << name;
  }
  EXPECT_TRUE(pretokenizer_spec("llama-bpe", "t").ignore_merges);
  EXPECT_FALSE(pretokenizer_spec("smollm", "t").clean_spaces);
  EXPECT_TRUE(pretokenizer_spec("gpt-2", "t").clean_spaces);
}

// ---- encoding -----------------------------------------------------------------------------

TEST(BpeTokenizer, MergesLowestRankFirst) {
  // "ab" outranks "bc": abc -> ab c. Reversed, a bc.
  auto first = tiny({{"a", "b"}, {"b", "c"}});
  EXPECT_EQ(first.make()->encode("abc", false), (std::vector<int32_t>{first.id("ab"), 'c'}));
  auto second = tiny({{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(second.make()->encode("abc", false), (std::vector<int32_t>{'a', second.id("bc")}));

  auto words = tiny({{"h", "e"},
                     {"l", "l"},
                     {"he", "ll"},
                     {"hell", "o"},
                     {" ", "w"},
                     {"o", "r"},
                     {" w", "or"},
                     {"l", "d"},
                     {" wor", "ld"}});
  EXPECT_EQ(words.make()->encode("hello world", false),
            (std::vector<int32_t>{words.id("hello"), words.id(" world")}));
  // Merges never cross pieces: "o" and " w" are in different pieces.
  EXPECT_EQ(words.make()->encode("hello,world", false),
            (std::vector<int32_t>{words.id("hello"), ',', 'w', words.id("or"), words.id("ld")}));
}

TEST(BpeTokenizer, EqualRanksMergeLeftmostFirst) {
  auto v = tiny({{"a", "a"}});
  const auto tok = v.make();
  const int32_t aa = v.id("aa");
  EXPECT_EQ(tok->encode("aaa", false), (std::vector<int32_t>{aa, 'a'}));
  EXPECT_EQ(tok->encode("aaaaa", false), (std::vector<int32_t>{aa, aa, 'a'}));
  auto w = tiny({{"a", "a"}, {"aa", "a"}});
  EXPECT_EQ(w.make()->encode("aaa", false), (std::vector<int32_t>{w.id("aaa")}));
  EXPECT_EQ(w.make()->encode("aaaa", false), (std::vector<int32_t>{w.id("aa"), w.id("aa")}));
}

// The merge loop has two implementations (arrays for short pieces, a heap for long ones); both
// must agree with the textbook algorithm on strings.
std::vector<std::string> naive_bpe(std::string_view piece, const Merges& merges) {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t i = 0; i < merges.size(); ++i) rank.emplace(merges[i], i);
  std::vector<std::string> syms;
  for (char c : piece) syms.emplace_back(1, c);
  for (;;) {
    size_t best = 0, best_rank = SIZE_MAX;
    for (size_t i = 0; i + 1 < syms.size(); ++i)
      if (auto it = rank.find({syms[i], syms[i + 1]}); it != rank.end() && it->second < best_rank)
        best_rank = it->second, best = i;
    if (best_rank == SIZE_MAX) return syms;
    syms[best] += syms[best + 1];
    syms.erase(syms.begin() + best + 1);
  }
}

TEST(BpeTokenizer, ShortAndLongPiecesAgreeWithNaiveBpe) {
  const Merges merges = {{"a", "b"},     {"b", "a"},  {"c", "a"}, {"ab", "ab"},
                         {"a", "a"},     {"ab", "c"}, {"b", "b"}, {"ca", "b"},
                         {"abab", "ab"}, {"aa", "b"}, {"c", "c"}, {"abc", "abab"}};
  auto v = tiny(merges);
  const auto tok = v.make();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t len = 1 + rng() % (trial < 200 ? 70 : 400);
    std::string text;
    for (size_t i = 0; i < len; ++i) text += "abc"[rng() % 3];
    std::vector<int32_t> want;
    for (const auto& s : naive_bpe(text, merges)) want.push_back(v.id(s));
    ASSERT_EQ(tok->encode(text, false), want) << text;
  }
}

TEST(BpeTokenizer, SpecialTokens) {
  auto v = tiny({{"a", "b"}});
  const int32_t eot = v.add("<|endoftext|>", kTokenControl);
  const int32_t tool = v.add("<tool>", kTokenUserDefined);
  const int32_t bos = v.add("<s>", kTokenControl);
  const auto tok = v.make();
  const int32_t ab = v.id("ab");
  // parse_special on: control text becomes the token; off: it is text (split by the regex).
  EXPECT_EQ(tok->encode("ab<|endoftext|>ab", false, true), (std::vector<int32_t>{ab, eot, ab}));
  const auto as_text = tok->encode("ab<|endoftext|>ab", false, false);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), eot), 0);
  EXPECT_EQ(tok->decode(as_text), "ab<|endoftext|>ab");
  // User-defined tokens are split out either way.
  EXPECT_EQ(tok->encode("ab<tool>ab", false, false), (std::vector<int32_t>{ab, tool, ab}));
  EXPECT_EQ(tok->encode("ab<tool>ab", false, true), (std::vector<int32_t>{ab, tool, ab}));
  // Decoding: control tokens are not text, user-defined ones are their literal text.
  EXPECT_EQ(tok->decode_piece(eot), "");
  EXPECT_EQ(tok->decode_piece(bos), "");
  EXPECT_EQ(tok->decode_piece(tool), "<tool>");
  EXPECT_EQ(tok->decode({ab, tool, eot, ab}), "ab<tool>ab");
  EXPECT_EQ(tok->decode_piece(-1), "");
  EXPECT_EQ(tok->decode_piece(tok->n_vocab()), "");
}

TEST(BpeTokenizer, BosAndEos) {
  auto v = tiny({{"a", "b"}});
  const int32_t bos = v.add("<s>", kTokenControl);
  const int32_t eos = v.add("</s>", kTokenControl);
  v.v.bos_id = bos;
  v.v.eos_id = eos;
  const int32_t ab = v.id("ab");
  EXPECT_EQ(v.make()->encode("ab", true), (std::vector<int32_t>{ab}));  // gpt2 default: none
  v.v.add_bos = true;
  EXPECT_EQ(v.make()->encode("ab", true), (std::vector<int32_t>{bos, ab}));
  EXPECT_EQ(v.make()->encode("ab", false), (std::vector<int32_t>{ab}));
  v.v.add_eos = true;
  EXPECT_EQ(v.make()->encode("ab", true), (std::vector<int32_t>{bos, ab, eos}));
  EXPECT_EQ(v.make()->encode("", true), (std::vector<int32_t>{bos, eos}));
  // BOS once for the whole input, not per fragment; BOS text in the input is a second BOS.
  EXPECT_EQ(v.make()->encode("<s>ab", true, true), (std::vector<int32_t>{bos, bos, ab, eos}));
}

// From metadata: llama-bpe forces add-BOS unless the file's key says otherwise.
TEST(BpeTokenizer, LlamaBpeAddsBosUnlessTheFileSaysNo) {
  auto t = tiny({{"a", "b"}});
  Metadata m;
  m.set_string("tokenizer.ggml.model", "gpt2");
  m.set_string("tokenizer.ggml.pre", "llama-bpe");
  m.set_string_array("tokenizer.ggml.tokens", t.v.tokens);
  m.set_string_array("tokenizer.ggml.merges", t.v.merges);
  m.set_uint("tokenizer.ggml.bos_token_id", 'B');
  EXPECT_EQ(make_tokenizer(read_vocabulary(m, "l3"), "l3")->encode("ab", true),
            (std::vector<int32_t>{'B', t.id("ab")}));
  m.set_bool("tokenizer.ggml.add_bos_token", false);
  EXPECT_EQ(make_tokenizer(read_vocabulary(m, "l3"), "l3")->encode("ab", true),
            (std::vector<int32_t>{t.id("ab")}));
  m.set_string("tokenizer.ggml.pre", "smollm");
  m.set_bool("tokenizer.ggml.add_bos_token", true);
  EXPECT_EQ(make_tokenizer(read_vocabulary(m, "s"), "s")->encode("ab", true),
            (std::vector<int32_t>{'B', t.id("ab")}));
}

// ignore_merges (llama-bpe): a piece that is a token wins even where merges cannot reach it.
TEST(BpeTokenizer, IgnoreMergesTakesWholePieceTokens) {
  auto v = tiny({{"x", "y"}}, "llama-bpe");
  const int32_t xyz = v.add(mapped("xyz"));
  EXPECT_EQ(v.make()->encode("xyz", false), (std::vector<int32_t>{xyz}));
  v.v.pre = "dbrx";  // the same regex without the flag
  EXPECT_EQ(v.make()->encode("xyz", false), (std::vector<int32_t>{v.id("xy"), 'z'}));
}

TEST(BpeTokenizer, RoundTripsAnyBytes) {
  auto v = tiny({{" ", "t"},
                 {"h", "e"},
                 {" t", "he"},
                 {"\xC3", "\xA9"},
                 {"\xE2\x96", "\x81"},
                 {"\xE2", "\x96"},
                 {"1", "2"},
                 {"\n", "\n"}},
                "smollm");  // no clean-up of spaces: decode gives back exactly the bytes
  const auto tok = v.make();
  const std::vector<std::string> texts = {"",
                                          " the café ▁ 12 12\n\n\n",
                                          "\xFF\xFE\x80 \xC3 \xE2\x96 \xF0\x9F\x98",
                                          std::string(3, '\0'),
                                          "日本語 🦙 naïve",
                                          "  \t\r\n \xC2\x85\xE1\xA0\x8E x"};
  for (const auto& t : texts) {
    const auto ids = tok->encode(t, false);
    EXPECT_EQ(tok->decode(ids), t);
    std::string pieces;
    for (int32_t id : ids) pieces += tok->decode_piece(id);
    EXPECT_EQ(pieces, t);
  }
  std::mt19937 rng(1);
  const std::string_view alphabet =
      " the\xC3\xA9\xE2\x96\x81"
      "12\n";  // mixed with any byte
  for (int trial = 0; trial < 200; ++trial) {
    std::string t(rng() % 64, '\0');
    for (char& c : t) c = rng() % 4 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
    const auto ids = tok->encode(t, false);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->n_vocab());
    ASSERT_EQ(tok->decode(ids), t);
  }
}

TEST(BpeTokenizer, CleanSpacesFollowsThePreTokenizer) {
  EXPECT_EQ(clean_up_spaces("Hello , world ! Is it ? Yes . I 'm sure it 's what we 've said , "
                            "they 're right . Don 't , I 'd , we 'll . ' quoted '"),
            "Hello, world! Is it? Yes. I'm sure it's what we've said, they're right. Don 't, "
            "I 'd, we 'll.'quoted '");
  EXPECT_EQ(clean_up_spaces("a  . b"), "a . b");
  auto v = tiny({{"a", "b"}}, "gpt-2");
  const std::string text = "ab , ab .";
  EXPECT_EQ(v.make()->decode(v.make()->encode(text, false)), "ab, ab.");
  v.v.pre = "smollm";
  EXPECT_EQ(v.make()->decode(v.make()->encode(text, false)), text);
}

TEST(BpeTokenizer, BadVocabulariesAreFileErrors) {
  auto v = tiny({{"a", "b"}});
  v.v.pre = "mystery-pre";
  std::string msg = file_error_of([&] { v.make(); });
  EXPECT_NE(msg.find("tiny.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mystery-pre"), std::string::npos) << msg;

  v.v.pre = "gpt-2";
  v.v.merges.clear();
  msg = file_error_of([&] { v.make(); });
  EXPECT_NE(msg.find("merges"), std::string::npos) << msg;

  // Odd merges are ignored, not errors: no separator, an empty side, unknown symbols.
  auto odd = tiny({{"a", "b"}});
  odd.v.merges.insert(odd.v.merges.begin(), {"ab", " ", "x ", "\xE2\x82\xAC q"});
  EXPECT_EQ(odd.make()->encode("ab", false), (std::vector<int32_t>{odd.id("ab")}));
}

// A vocabulary without some byte's character: that byte is dropped (llama.cpp looks the
// symbol's text up byte by byte), never an out-of-range id.
TEST(BpeTokenizer, MissingByteSymbolsAreDropped) {
  auto v = tiny({{"a", "b"}});
  v.v.tokens['\n'] = "unused-newline";
  const auto tok = v.make();
  EXPECT_EQ(tok->encode("ab\nab", false), (std::vector<int32_t>{v.id("ab"), v.id("ab")}));
}

// Merge results that are not tokens still merge further; one left at the end is emitted as
// the one-byte tokens of its text (printable ASCII spells itself in the alphabet).
TEST(BpeTokenizer, NonTokenMergeResults) {
  auto v = tiny({{"a", "b"}, {"ab", "c"}});
  v.v.tokens[v.id("ab")] = "unreachable";
  const auto tok = v.make();
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{v.id("abc")}));
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{'a', 'b'}));
}

TEST(BpeTokenizer, ConcurrentEncodesAgree) {
  auto v = tiny({{" ", "t"}, {"h", "e"}, {" t", "he"}, {"a", "n"}, {" ", "a"}, {" a", "n"}});
  const auto tok = v.make();
  std::string text;
  for (int i = 0; i < 2000; ++i) text += i % 7 ? " the an" : " and\n";
  const auto want = tok->encode(text, false);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 5; ++k) ok[t] += tok->encode(text, false) == want;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, std::vector<int>(4, 5));
}

// ---- SmolLM2 (real vocabulary) ----------------------------------------------------------------

fs::path smollm2_path() {
  const char* env = std::getenv("NIBBLE_MODELS");
  const char* home = std::getenv("HOME");
  const fs::path dir = env ? fs::path(env) : fs::path(home ? home : ".") / ".cache/nibble/models";
  return dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

class SmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path path = smollm2_path();
    if (!fs::exists(path))
      GTEST_SKIP() << path << " not found: run scripts/fetch-models.sh to fetch SmolLM2";
    const ModelFile file = read_gguf(path.string());
    tok_ = make_tokenizer(read_vocabulary(file.meta, path.string()), path.string());
  }
  std::unique_ptr<Tokenizer> tok_;
};

// Expected ids: llama.cpp's llama-tokenize (--ids --no-escape; parse-special as noted).
TEST_F(SmolLM2, MatchesLlamaCpp) {
  using Ids = std::vector<int32_t>;
  EXPECT_EQ(tok_->encode("Hello world", true), (Ids{19556, 905}));  // no BOS: the file says so
  const std::string chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
  EXPECT_EQ(tok_->encode(chat, true, true),
            (Ids{1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198}));
  EXPECT_EQ(tok_->encode(chat, true, false),
            (Ids{44, 108, 306, 79,    3738, 108, 46, 4093, 198, 1780, 314, 216,
                 34, 27,  34,  15137, 108,  306, 79, 486,  108, 46,   198}));
  EXPECT_EQ(tok_->encode("In the beginning God created the heaven and the earth.", true),
            (Ids{788, 260, 3616, 1839, 2312, 260, 10419, 284, 260, 3103, 30}));
  EXPECT_EQ(
      tok_->encode("Ünïcödé: naïve café, 日本語 🦙 12345", true),
      (Ids{142, 246,   94,  25972, 83,  7466,  84,  2756, 42,  15486, 46494, 37366, 28, 17097, 241,
           115, 40993, 179, 120,   248, 15107, 116, 243,  216, 33,    34,    35,    36, 37}));
  EXPECT_EQ(tok_->encode("  leading\t\ttabs\n\n  trailing  ", true),
            (Ids{216, 2899, 197, 197, 100, 7366, 8866, 35079, 256}));
  EXPECT_EQ(tok_->encode("I'm sure they'll say it's 3.14159, isn't it?", true),
            (Ids{57, 5248, 2090, 502, 3060, 1643, 357,  506, 216, 35, 30,
                 33, 36,   33,   37,  41,   28,   3247, 982, 357, 47}));
  // smollm has no clean-up of spaces: decoding gives the text back.
  const std::string text = "Hello , world ! It 's 3.14 .";
  EXPECT_EQ(tok_->decode(tok_->encode(text, false)), text);
  EXPECT_TRUE(tok_->is_end_of_generation(2));  // <|im_end|>
}

// The whole KJV validation text: llama-tokenize gives 103723 ids; their FNV-1a hash (over the
// ids as little-endian 32-bit words) was computed from its output.
TEST_F(SmolLM2, KjvValidMatchesLlamaCpp) {
  const fs::path kjv = fs::path(NIBBLE_SHARED_DIR) / "data" / "kjv-valid.txt";
  if (!fs::exists(kjv)) GTEST_SKIP() << "shared text not available: " << kjv;
  std::ifstream in(kjv, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  const auto ids = tok_->encode(s.str(), false, true);
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) {
      h ^= (static_cast<uint32_t>(id) >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  EXPECT_EQ(ids.size(), 103723u);
  EXPECT_EQ(h, 0x9eafadb41e1f65d4ull);
  EXPECT_EQ(tok_->decode(ids), s.str());
}

}  // namespace
}  // namespace nibble
