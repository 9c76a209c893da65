#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>

namespace nibble {
namespace {

// ---- the GPT-2 byte alphabet (A.2) ----------------------------------------------------------

// Bytes that stand for themselves; the other 68, in increasing order, take U+0100 onwards.
constexpr bool printable_byte(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

constexpr std::array<uint16_t, 256> kByteToCodePoint = [] {
  std::array<uint16_t, 256> t{};
  unsigned next = 0x100;
  for (unsigned b = 0; b < 256; ++b) t[b] = static_cast<uint16_t>(printable_byte(b) ? b : next++);
  return t;
}();

constexpr unsigned kAlphabetEnd = 0x144;  // one past the highest code point the alphabet uses
constexpr std::array<int16_t, kAlphabetEnd> kCodePointToByte = [] {
  std::array<int16_t, kAlphabetEnd> t{};
  for (auto& v : t) v = -1;
  for (unsigned b = 0; b < 256; ++b) t[kByteToCodePoint[b]] = static_cast<int16_t>(b);
  return t;
}();

// UTF-8 of the alphabet character of each byte (one or two bytes).
struct MappedChar {
  char bytes[2];
  uint8_t size;
};
constexpr std::array<MappedChar, 256> kMappedChar = [] {
  std::array<MappedChar, 256> t{};
  for (unsigned b = 0; b < 256; ++b) {
    const unsigned cp = kByteToCodePoint[b];
    if (cp < 0x80) {
      t[b] = {{static_cast<char>(cp), 0}, 1};
    } else {
      t[b] = {{static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))}, 2};
    }
  }
  return t;
}();

// Decodes the UTF-8 character at s[i] leniently (token texts come from the file): returns the
// code point and its length, or length 0 for a byte that starts no well-formed character.
std::pair<uint32_t, size_t> next_code_point(std::string_view s, size_t i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  size_t len = b0 >= 0xF0 && b0 <= 0xF7 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (len == 0 || b0 > 0xF7 || i + len > s.size()) return {0, 0};
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {0, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, len};
}

// Token text in the alphabet -> the bytes it stands for. A character outside the alphabet
// (possible only in odd files) is kept as its own UTF-8.
std::string alphabet_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto [cp, len] = next_code_point(text, i);
    if (len == 0) {
      out.push_back(text[i++]);
      continue;
    }
    if (cp < kAlphabetEnd && kCodePointToByte[cp] >= 0)
      out.push_back(static_cast<char>(kCodePointToByte[cp]));
    else
      out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

// "<0xAB>" -> 0xAB, or -1.
int byte_token_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int v = 0;
  for (char c : text.substr(3, 2)) {
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

// Pieces shorter than this merge in small arrays, rescanning for the best pair each step
// (quadratic, but with no heap and no links it wins for words); longer ones use a heap.
constexpr size_t kShortPiece = 64;

// The per-call piece cache stops growing here (entries), bounding memory on huge inputs; pieces
// longer than kMaxCachedPiece bytes (rarely repeated) are not cached.
constexpr size_t kMaxCacheEntries = size_t{1} << 16;
constexpr size_t kMaxCachedPiece = 256;

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

}  // namespace

uint32_t gpt2_byte_to_code_point(uint8_t b) { return kByteToCodePoint[b]; }

int gpt2_code_point_to_byte(uint32_t cp) { return cp < kAlphabetEnd ? kCodePointToByte[cp] : -1; }

// ---- merge ranks ------------------------------------------------------------------------------

// (left symbol, right symbol) -> (rank, merged symbol), open addressing on one 64-bit key: one
// multiply and usually one cache line per lookup, where a map of string pairs would hash or
// compare strings.
struct BpeTokenizer::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = kNoRank;
    uint32_t merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  std::vector<Slot> slots;
  uint64_t mask = 0;

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;  // load factor <= 1/2
    slots.resize(cap);
    mask = cap - 1;
  }
  static uint64_t key(uint32_t l, uint32_t r) { return (uint64_t{l} << 32) | r; }

  // First insertion wins: a repeated merge keeps its lowest rank.
  void insert(uint32_t l, uint32_t r, int32_t rank, uint32_t merged) {
    const uint64_t k = key(l, r);
    for (uint64_t i = mix64(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return;
      if (slots[i].key == kEmpty) {
        slots[i] = {k, rank, merged};
        return;
      }
    }
  }
  const Slot* find(uint32_t l, uint32_t r) const {
    const uint64_t k = key(l, r);
    for (uint64_t i = mix64(k) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.key == k) return &s;
      if (s.key == kEmpty) return nullptr;
    }
  }
};

// ---- per-call state ---------------------------------------------------------------------------

struct BpeTokenizer::EncodeState {
  std::vector<std::string_view> pieces;
  // Short merges: symbols, and rank / result of each adjacent pair.
  std::vector<uint32_t> syms;
  std::vector<int32_t> ranks;
  std::vector<uint32_t> merged;
  // Long merges: a linked list of symbols and a heap of candidate pairs.
  struct Node {
    uint32_t sym;
    int32_t prev, next;
  };
  struct Candidate {
    int32_t rank, left;   // lowest rank first, then leftmost
    uint32_t lsym, rsym;  // the pair when pushed: a stale entry no longer matches
  };
  std::vector<Node> nodes;
  std::vector<Candidate> heap;
  std::string mapped;  // ignore_merges: the piece in the alphabet

  // Whole-piece results of this call (texts repeat: words, indentation). Keys view the text
  // being encoded, values index `ids`. Open addressing, grown by doubling up to a bound.
  struct CacheSlot {
    const char* data = nullptr;
    uint32_t size = 0, first = 0, count = 0;
  };
  std::vector<CacheSlot> cache;
  size_t cache_used = 0;
  std::vector<int32_t> ids;

  static uint64_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }

  // Where `s` is or would go.
  CacheSlot& slot(std::string_view s, uint64_t h) {
    const uint64_t mask = cache.size() - 1;
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
      CacheSlot& c = cache[i];
      if (!c.data || (c.size == s.size() && std::memcmp(c.data, s.data(), s.size()) == 0)) return c;
    }
  }
  const CacheSlot* find(std::string_view s, uint64_t h) {
    if (cache.empty()) return nullptr;
    const CacheSlot& c = slot(s, h);
    return c.data ? &c : nullptr;
  }
  void insert(std::string_view s, uint64_t h, const int32_t* first, size_t count) {
    if (cache_used >= kMaxCacheEntries || s.size() > kMaxCachedPiece) return;
    if ((cache_used + 1) * 2 > cache.size()) grow();
    CacheSlot& c = slot(s, h);
    c = {s.data(), static_cast<uint32_t>(s.size()), static_cast<uint32_t>(ids.size()),
         static_cast<uint32_t>(count)};
    ids.insert(ids.end(), first, first + count);
    ++cache_used;
  }
  void grow() {
    std::vector<CacheSlot> old;
    old.swap(cache);
    cache.resize(old.empty() ? 1024 : old.size() * 2);
    for (const CacheSlot& c : old)
      if (c.data) slot({c.data, c.size}, hash({c.data, c.size})) = c;
  }
};

// ---- construction -----------------------------------------------------------------------------

BpeTokenizer::BpeTokenizer(Vocabulary vocab, const std::string& source)
    : Tokenizer(std::move(vocab)),
      spec_(pretokenizer_spec(vocab_.pre, source)),
      pretokenizer_(spec_.regexes, source),
      splitter_(vocab_) {
  if (vocab_.size() == 0) throw FileError(source + ": the vocabulary is empty");
  // llama.cpp refuses a gpt2 vocabulary without the merges key; nibble cannot tell an absent key
  // from an empty array, and without merges the vocabulary could only spell single bytes.
  if (vocab_.merges.empty())
    throw FileError(source +
                    ": byte-level BPE (gpt2) vocabulary has no merges (tokenizer.ggml.merges)");
  const auto n_vocab = static_cast<uint32_t>(vocab_.size());

  token_ids_.reserve(vocab_.size() * 2);
  for (uint32_t id = 0; id < n_vocab; ++id) token_ids_.emplace(vocab_.tokens[id], id);

  // Strings of merges that are not tokens get symbol ids after the vocabulary.
  std::unordered_map<std::string, uint32_t> extra_ids;
  auto intern = [&](std::string_view text) -> uint32_t {
    if (auto it = token_ids_.find(text); it != token_ids_.end()) return it->second;
    auto [it, inserted] = extra_ids.try_emplace(std::string(text), 0);
    if (inserted) {
      it->second = n_vocab + static_cast<uint32_t>(extra_symbols_.size());
      extra_symbols_.emplace_back(text);
    }
    return it->second;
  };

  for (unsigned b = 0; b < 256; ++b) {
    byte_symbol_[b] = intern({kMappedChar[b].bytes, kMappedChar[b].size});
    const char c = static_cast<char>(b);
    auto it = token_ids_.find(std::string_view(&c, 1));
    single_byte_token_[b] = it != token_ids_.end() ? it->second : -1;
  }

  merges_ = std::make_unique<MergeTable>(vocab_.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
    const std::string_view m = vocab_.merges[rank];
    // The separator is the first space after the first byte (A.1): a left part starting with
    // a literal space keeps it.
    const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    if (space == std::string_view::npos || space + 1 >= m.size()) continue;  // can never apply
    const std::string_view left = m.substr(0, space), right = m.substr(space + 1);
    joined.assign(left);
    joined.append(right);
    const uint32_t l = intern(left), r = intern(right);
    merges_->insert(l, r, static_cast<int32_t>(rank), intern(joined));
  }

  pieces_.resize(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) {
    const std::string& text = vocab_.tokens[id];
    const int32_t type = id < vocab_.types.size() ? vocab_.types[id] : kTokenNormal;
    switch (type) {
      case kTokenNormal:
        pieces_[id] = alphabet_to_bytes(text);
        break;
      case kTokenUserDefined:
        pieces_[id] = text;  // added tokens are stored as literal text
        break;
      case kTokenByte:
        if (int b = byte_token_value(text); b >= 0)
          pieces_[id] = std::string(1, static_cast<char>(b));
        break;
      default:
        break;  // control, unknown, unused, undefined: not text (as llama.cpp renders them)
    }
  }
}

BpeTokenizer::~BpeTokenizer() = default;

// ---- encoding ---------------------------------------------------------------------------------

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special,
                                          bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 2);
  if (add_special && vocab_.add_bos && vocab_.bos_id >= 0) out.push_back(vocab_.bos_id);
  EncodeState st;
  for (const TextFragment& f : splitter_.split(text, parse_special)) {
    if (f.is_token())
      out.push_back(f.token);
    else
      encode_fragment(f.text, st, out);
  }
  if (add_special && vocab_.add_eos && vocab_.eos_id >= 0) out.push_back(vocab_.eos_id);
  return out;
}

void BpeTokenizer::encode_fragment(std::string_view text, EncodeState& st,
                                   std::vector<int32_t>& out) const {
  st.pieces.clear();
  pretokenizer_.split(text, st.pieces);
  for (std::string_view piece : st.pieces) encode_piece(piece, st, out);
}

void BpeTokenizer::encode_piece(std::string_view piece, EncodeState& st,
                                std::vector<int32_t>& out) const {
  if (piece.size() == 1) {  // one byte: its symbol, whatever the flags
    emit_symbol(byte_symbol_[static_cast<uint8_t>(piece[0])], out);
    return;
  }
  const uint64_t h = EncodeState::hash(piece);
  if (const auto* hit = st.find(piece, h)) {
    out.insert(out.end(), st.ids.begin() + hit->first, st.ids.begin() + hit->first + hit->count);
    return;
  }
  const size_t start = out.size();
  bool done = false;
  if (spec_.ignore_merges) {
    st.mapped.clear();
    for (char c : piece) {
      const MappedChar& m = kMappedChar[static_cast<uint8_t>(c)];
      st.mapped.append(m.bytes, m.size);
    }
    if (auto it = token_ids_.find(st.mapped); it != token_ids_.end()) {
      out.push_back(it->second);
      done = true;
    }
  }
  if (!done) {
    if (piece.size() < kShortPiece)
      merge(piece, st);
    else
      merge_long(piece, st);
    for (uint32_t s : st.syms) emit_symbol(s, out);
  }
  st.insert(piece, h, out.data() + start, out.size() - start);
}

void BpeTokenizer::emit_symbol(uint32_t symbol, std::vector<int32_t>& out) const {
  const size_t n_vocab = vocab_.size();
  if (symbol < n_vocab) {
    out.push_back(static_cast<int32_t>(symbol));
    return;
  }
  // A string no token spells (a vocabulary missing a byte's character, or merges producing
  // non-tokens): llama.cpp then looks up each byte of its text as a one-byte token and drops
  // the bytes that have none.
  for (char c : extra_symbols_[symbol - n_vocab])
    if (const int32_t id = single_byte_token_[static_cast<uint8_t>(c)]; id >= 0) out.push_back(id);
}

void BpeTokenizer::merge(std::string_view piece, EncodeState& st) const {
  const size_t n = piece.size();
  auto& syms = st.syms;
  auto& ranks = st.ranks;
  auto& merged = st.merged;
  syms.resize(n);
  ranks.resize(n);
  merged.resize(n);
  for (size_t i = 0; i < n; ++i) syms[i] = byte_symbol_[static_cast<uint8_t>(piece[i])];
  auto pair_at = [&](size_t i) {  // rank of (syms[i], syms[i + 1])
    if (const auto* s = merges_->find(syms[i], syms[i + 1])) {
      ranks[i] = s->rank;
      merged[i] = s->merged;
    } else {
      ranks[i] = kNoRank;
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) pair_at(i);

  size_t m = n;  // live symbols; pairs are 0 .. m-2
  while (m > 1) {
    size_t best = 0;
    int32_t best_rank = ranks[0];
    for (size_t i = 1; i + 1 < m; ++i)
      if (ranks[i] < best_rank) {  // strict: the leftmost of equal ranks wins
        best_rank = ranks[i];
        best = i;
      }
    if (best_rank == kNoRank) break;
    syms[best] = merged[best];
    // Drop symbol best+1 and pair best; pairs best-1 and best now have new right/left sides.
    std::copy(syms.begin() + best + 2, syms.begin() + m, syms.begin() + best + 1);
    std::copy(ranks.begin() + best + 1, ranks.begin() + m - 1, ranks.begin() + best);
    std::copy(merged.begin() + best + 1, merged.begin() + m - 1, merged.begin() + best);
    --m;
    if (best + 1 < m) pair_at(best);
    if (best > 0) pair_at(best - 1);
  }
  syms.resize(m);
}

void BpeTokenizer::merge_long(std::string_view piece, EncodeState& st) const {
  using Candidate = EncodeState::Candidate;
  using Node = EncodeState::Node;
  const auto n = static_cast<int32_t>(piece.size());
  auto& nodes = st.nodes;
  auto& heap = st.heap;
  nodes.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i)
    nodes[i] = {byte_symbol_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  // std heap functions keep the greatest on top: "greater" = lower rank, then further left.
  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  auto push = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = nodes[left].next;
    if (right < 0) return;
    if (const auto* s = merges_->find(nodes[left].sym, nodes[right].sym)) {
      heap.push_back({s->rank, left, nodes[left].sym, nodes[right].sym});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  constexpr uint32_t kDead = std::numeric_limits<uint32_t>::max();
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    Node& left = nodes[c.left];
    if (left.sym != c.lsym || left.next < 0) continue;  // merged away or changed since
    Node& right = nodes[left.next];
    if (right.sym != c.rsym) continue;
    left.sym = merges_->find(c.lsym, c.rsym)->merged;
    left.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = c.left;
    right.sym = kDead;
    push(left.prev);
    push(c.left);
  }
  st.syms.clear();
  for (int32_t i = 0; i >= 0; i = nodes[i].next) st.syms.push_back(nodes[i].sym);
}

// ---- decoding ---------------------------------------------------------------------------------

std::string BpeTokenizer::decode_piece(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return {};
  return pieces_[id];
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out = Tokenizer::decode(ids);
  return spec_.clean_spaces ? clean_up_spaces(out) : out;
}

std::string clean_up_spaces(std::string_view text) {
  // Three passes, in Hugging Face's order; each works on the previous one's output.
  // 1. " ?", " !", " .", " ," lose the space.
  std::string a;
  a.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (text[i] == ' ' && (next == '?' || next == '!' || next == '.' || next == ',')) continue;
    a.push_back(text[i]);
  }
  // 2. " ' " becomes "'".
  std::string b;
  b.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (a.compare(i, 3, " ' ") == 0) {
      b.push_back('\'');
      i += 2;
      continue;
    }
    b.push_back(a[i]);
  }
  // 3. The space before the contractions 's, 'm, 're, 've goes ('t, 'd, 'll keep theirs).
  std::string c;
  c.reserve(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] == ' ' && i + 2 < b.size() && b[i + 1] == '\'') {
      const std::string_view rest = std::string_view(b).substr(i + 2);
      if (rest.starts_with('s') || rest.starts_with('m') || rest.starts_with("re") ||
          rest.starts_with("ve"))
        continue;
    }
    c.push_back(b[i]);
  }
  return c;
}

}  // namespace nibble
