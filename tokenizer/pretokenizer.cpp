#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>

#include "loaders/model_file.h"

namespace nibble {
namespace {

// ---- the regex lists (model-families.md A.4) ------------------------------------------------

// GPT-2's pattern. The final "|\s+" is the original GPT-2 ending, which llama.cpp's hand-written
// splitter reproduces; since unmatched gaps are kept as pieces too, it changes nothing here.
constexpr std::string_view kGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

// Llama 3 (case-insensitive contractions spelled out, as llama.cpp stores it).
constexpr std::string_view kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen2: Llama 3 with single digits.
constexpr std::string_view kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen 3.5: marks join letters.
constexpr std::string_view kQwen35 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kDigit = R"re(\p{N})re";
constexpr std::string_view kThreeDigits = "[0-9][0-9][0-9]";
constexpr std::string_view kCjk = R"re([\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+)re";

constexpr std::string_view kDeepseekLlmLetters =
    R"re(\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+)re";

struct NamedSpec {
  std::vector<std::string_view> names;
  std::vector<std::string_view> regexes;
  bool ignore_merges;
  bool clean_spaces;
};

// Names that share a list are grouped; a name appears once. Forced add-BOS is not here: it is a
// vocabulary default (read_vocabulary), which the file's add_bos_token key may override.
// Left out on purpose: the BERT-style "+ add SEP" names (jina-v1-en, jina-v2-code, roberta-bpe),
// whose SEP handling nibble lacks, and tekken / gpt-4o, whose llama.cpp form is an approximation
// of Hugging Face's case classes that a real Unicode engine would not reproduce.
const std::vector<NamedSpec>& named_specs() {
  // clang-format off
  static const std::vector<NamedSpec> specs = {
    NamedSpec{{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
               "a.x-4.0", "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais"},
              {kGpt2}, false, true},
    NamedSpec{{"trillion", "granite-docling"}, {kGpt2}, false, false},
    NamedSpec{{"default", ""},
              {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", kThreeDigits}, false, true},
    NamedSpec{{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
               "lfm2", "jina-v5-nano"},
              {kLlama3}, true, true},
    NamedSpec{{"dbrx", "smaug-bpe", "glm4", "chatglm-bpe"}, {kLlama3}, false, true},
    NamedSpec{{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"},
              {kQwen2}, false, false},
    NamedSpec{{"megrez", "stablelm2"}, {kQwen2}, false, true},
    NamedSpec{{"qwen35"}, {kQwen35}, false, false},
    NamedSpec{{"smollm", "command-r"}, {kDigit, kGpt2}, false, false},
    NamedSpec{{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
              {kDigit, kGpt2}, false, true},
    NamedSpec{{"deepseek-coder"},
              {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjk, kDigit}, false, false},
    NamedSpec{{"deepseek-llm"},
              {R"re([\r\n])re", kDeepseekLlmLetters,
               R"re(\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+)re",
               R"re(\s+$)re", kCjk, R"re(\p{N}+)re"},
              false, false},
    // llama.cpp's category approximation keeps "~" out of \p{S} here (" ~x" -> " ", "~x");
    // PCRE2's real tables give " ~", "x", as Hugging Face does.
    NamedSpec{{"deepseek-v3", "hunyuan-dense", "joyai-llm"},
              {R"re(\p{N}{1,3})re", R"re([\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+)re",
               R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
              false, false},
    NamedSpec{{"falcon"}, {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, kThreeDigits}, false, true},
  };
  // clang-format on
  return specs;
}

// The card's \s (A.5): U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028,
// U+2029, U+202F, U+205F, U+3000. As the inside of a character class.
constexpr std::string_view kWhitespaceClass =
    R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// ---- UTF-8 ----------------------------------------------------------------------------------

// `len` if s[i] starts a well-formed sequence of that length whose second byte lies in
// [lo, hi] (the narrowed ranges exclude overlongs, surrogates and code points past U+10FFFF).
size_t sequence_if_valid(std::string_view s, size_t i, size_t len, uint8_t lo, uint8_t hi) {
  if (i + len > s.size()) return 0;
  const auto b1 = static_cast<uint8_t>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return 0;
  return len;
}

// Length of the valid UTF-8 character at s[i] (strict), or 0 when the bytes there start none.
size_t utf8_char_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return sequence_if_valid(s, i, 2, 0x80, 0xBF);
  if (b0 == 0xE0) return sequence_if_valid(s, i, 3, 0xA0, 0xBF);
  if (b0 == 0xED) return sequence_if_valid(s, i, 3, 0x80, 0x9F);
  if (b0 >= 0xE1 && b0 <= 0xEF) return sequence_if_valid(s, i, 3, 0x80, 0xBF);
  if (b0 == 0xF0) return sequence_if_valid(s, i, 4, 0x90, 0xBF);
  if (b0 >= 0xF1 && b0 <= 0xF3) return sequence_if_valid(s, i, 4, 0x80, 0xBF);
  if (b0 == 0xF4) return sequence_if_valid(s, i, 4, 0x80, 0x8F);
  return 0;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // Runs of ASCII, the common case, eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::copy_n(s.data() + i, 8, reinterpret_cast<char*>(&w));
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const size_t len = utf8_char_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// ---- PCRE2 ownership ------------------------------------------------------------------------

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* m) const { pcre2_match_context_free(m); }
};
struct JitStackDeleter {
  void operator()(pcre2_jit_stack* s) const { pcre2_jit_stack_free(s); }
};
using CodePtr = std::unique_ptr<pcre2_code, CodeDeleter>;
using MatchDataPtr = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;
using MatchContextPtr = std::unique_ptr<pcre2_match_context, MatchContextDeleter>;
using JitStackPtr = std::unique_ptr<pcre2_jit_stack, JitStackDeleter>;

std::string pcre2_error_text(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0)
    return "PCRE2 error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

struct Range {
  size_t begin, end;
};

}  // namespace

PretokenizerSpec pretokenizer_spec(std::string_view pre, const std::string& source) {
  for (const NamedSpec& s : named_specs()) {
    if (std::find(s.names.begin(), s.names.end(), pre) == s.names.end()) continue;
    PretokenizerSpec spec;
    spec.regexes.assign(s.regexes.begin(), s.regexes.end());
    spec.ignore_merges = s.ignore_merges;
    spec.clean_spaces = s.clean_spaces;
    return spec;
  }
  throw FileError(source + ": unknown BPE pre-tokenizer '" + std::string(pre) +
                  "' (tokenizer.ggml.pre)");
}

std::string pcre2_pattern(std::string_view re) {
  std::string out;
  out.reserve(re.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index in `re` just after "[" or "[^"
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      const char e = re[i + 1];
      if (e == 'u' || e == 'U') {
        const size_t digits = e == 'u' ? 4 : 8;
        if (i + 2 + digits > re.size()) throw std::invalid_argument("truncated \\u escape");
        out += "\\x{";
        out.append(re.substr(i + 2, digits));
        out += '}';
        i += 1 + digits;
      } else if (e == 's' || e == 'S') {
        if (in_class && e == 'S') throw std::invalid_argument("\\S inside a class");
        if (in_class) {
          out += kWhitespaceClass;
        } else {
          out += e == 's' ? "[" : "[^";
          out += kWhitespaceClass;
          out += ']';
        }
        ++i;
      } else {
        out += c;
        out += e;
        ++i;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_start = i + 1;
      if (class_start < re.size() && re[class_start] == '^') {
        out += "[^";
        ++i;
        ++class_start;
        continue;
      }
    } else if (in_class && c == ']' && i > class_start) {
      in_class = false;  // a "]" right after "[" or "[^" is a literal
    }
    out += c;
  }
  return out;
}

struct Pretokenizer::Impl {
  struct Regex {
    CodePtr code;
    bool jit = false;
  };
  std::vector<Regex> regexes;
  std::string source;

  // Runs one regex over subject[r.begin, r.end) (that range alone is the subject, so lookaheads
  // and "$" see the piece's end) and appends matches and gaps to `out`.
  void refine(const Regex& re, const char* subject, Range r, pcre2_match_data* md,
              MatchContextPtr& mctx, JitStackPtr& stack, std::vector<Range>& out) const {
    const auto* sub = reinterpret_cast<PCRE2_SPTR>(subject + r.begin);
    const size_t len = r.end - r.begin;
    size_t gap = 0, at = 0;
    while (at < len) {
      // The JIT entry point skips pcre2_match's checks (it never validates UTF either).
      int rc = re.jit
                   ? pcre2_jit_match(re.code.get(), sub, len, at, 0, md, mctx.get())
                   : pcre2_match(re.code.get(), sub, len, at, PCRE2_NO_UTF_CHECK, md, mctx.get());
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !stack) {
        // Long runs can outgrow the 32 KiB default JIT stack: give this call a large one.
        stack.reset(pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr));
        mctx.reset(pcre2_match_context_create(nullptr));
        if (!stack || !mctx) throw std::bad_alloc();
        pcre2_jit_stack_assign(mctx.get(), nullptr, stack.get());
        continue;
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0)
        throw FileError(source +
                        ": pre-tokenizer regex failed on this text: " + pcre2_error_text(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t ms = ov[0], me = ov[1];
      if (me <= ms || ms < gap) {
        // An empty match: step over one character (the gap goes on).
        const size_t step = utf8_char_length(std::string_view(subject + r.begin, len), at);
        at += step ? step : 1;
        continue;
      }
      if (ms > gap) out.push_back({r.begin + gap, r.begin + ms});
      out.push_back({r.begin + ms, r.begin + me});
      gap = at = me;
    }
    if (gap < len) out.push_back({r.begin + gap, r.end});
  }
};

Pretokenizer::Pretokenizer(const std::vector<std::string_view>& regexes, const std::string& source)
    : impl_(std::make_unique<Impl>()) {
  impl_->source = source;
  for (std::string_view card : regexes) {
    const std::string pattern = pcre2_pattern(card);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // DOLLAR_ENDONLY: "$" is the end of the piece, not also before a final newline.
    CodePtr code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                               PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_offset,
                               nullptr));
    if (!code)
      throw FileError(source + ": cannot compile pre-tokenizer regex '" + pattern + "' at " +
                      std::to_string(err_offset) + ": " + pcre2_error_text(err));
    // Without JIT (unsupported CPU, or a PCRE2 built without it) pcre2_match interprets.
    const bool jit = pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE) == 0;
    impl_->regexes.push_back({std::move(code), jit});
  }
}

Pretokenizer::~Pretokenizer() = default;
Pretokenizer::Pretokenizer(Pretokenizer&&) noexcept = default;
Pretokenizer& Pretokenizer::operator=(Pretokenizer&&) noexcept = default;

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  // PCRE2 in UTF mode needs valid UTF-8 (checking it per match would make splitting quadratic).
  // Invalid bytes are matched as U+FFFD in a repaired copy whose offsets map back to `text`.
  std::string repaired;
  std::vector<size_t> original;  // offset in `text` of each offset in `repaired`
  std::string_view subject = text;
  if (!valid_utf8(text)) {
    repaired.reserve(text.size() + 16);
    original.reserve(text.size() + 16);
    for (size_t i = 0; i < text.size();) {
      const size_t len = utf8_char_length(text, i);
      if (len == 0) {
        repaired += kReplacement;
        original.insert(original.end(), kReplacement.size(), i);
        ++i;
      } else {
        repaired.append(text.substr(i, len));
        for (size_t k = 0; k < len; ++k) original.push_back(i + k);
        i += len;
      }
    }
    original.push_back(text.size());
    subject = repaired;
  }

  MatchDataPtr md(pcre2_match_data_create(1, nullptr));
  if (!md) throw std::bad_alloc();
  MatchContextPtr mctx;
  JitStackPtr stack;
  std::vector<Range> current{{0, subject.size()}}, next;
  for (const Impl::Regex& re : impl_->regexes) {
    next.clear();
    next.reserve(current.size() + subject.size() / 4);
    for (Range r : current) impl_->refine(re, subject.data(), r, md.get(), mctx, stack, next);
    current.swap(next);
  }

  pieces.reserve(pieces.size() + current.size());
  if (original.empty()) {
    for (Range r : current) pieces.push_back(text.substr(r.begin, r.end - r.begin));
  } else {
    for (Range r : current) {
      const size_t b = original[r.begin], e = original[r.end];
      pieces.push_back(text.substr(b, e - b));
    }
  }
}

}  // namespace nibble
