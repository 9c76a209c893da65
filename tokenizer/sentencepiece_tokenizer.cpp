#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <unordered_set>

#include "tokenizer/protobuf_wire.h"

namespace nibble {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁", sentencepiece's space

// "<0xAB>" → 0xAB, or -1 when the text is not a byte piece's spelling.
int byte_piece_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}

std::string replace_space_markers(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, kSpaceMarker.size()) == kSpaceMarker) {
      out.push_back(' ');
      i += kSpaceMarker.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

int32_t type_of(const Vocabulary& vocab, size_t id) {
  return id < vocab.types.size() ? vocab.types[id] : kTokenNormal;
}

}  // namespace

std::string sentencepiece_model_proto(const Vocabulary& vocab, bool dummy_prefix_in_model) {
  const size_t n = vocab.size();
  // sentencepiece insists on exactly one UNKNOWN piece; real files break this (Phi-3 types its
  // padding fillers as unknown and <unk> as control), so the declared unk id wins.
  int64_t unk = vocab.unk_id >= 0 && static_cast<size_t>(vocab.unk_id) < n ? vocab.unk_id : -1;
  for (size_t id = 0; unk < 0 && id < n; ++id)
    if (type_of(vocab, id) == kTokenUnknown) unk = static_cast<int64_t>(id);
  if (unk < 0) unk = 0;

  protowire::Writer model;
  std::unordered_set<std::string_view> seen;
  seen.reserve(n * 2);
  for (size_t id = 0; id < n; ++id) {
    std::string_view text = vocab.tokens[id];
    int32_t type = type_of(vocab, id);
    if (static_cast<int64_t>(id) == unk) type = kTokenUnknown;
    else if (type == kTokenUnknown) type = kTokenUnused;
    else if (type < kTokenNormal || type > kTokenByte) type = kTokenNormal;
    if (type == kTokenByte && byte_piece_value(text) < 0) type = kTokenNormal;

    // sentencepiece also rejects empty and repeated piece texts. Such a token can never be
    // produced by encoding anyway, so it keeps its id under a private name, marked unused.
    std::string placeholder;
    if (text.empty() || !seen.insert(text).second) {
      placeholder = "<nibble-unreachable-" + std::to_string(id) + ">";
      text = placeholder;
      if (type != kTokenUnknown) type = kTokenUnused;
    }

    protowire::Writer piece;
    piece.bytes(1, text);
    piece.fixed32_float(2, id < vocab.scores.size() ? vocab.scores[id] : 0.0f);
    piece.varint(3, static_cast<uint64_t>(type));
    model.message(1, piece);
  }

  auto id_or_none = [n](int32_t id) { return id >= 0 && static_cast<size_t>(id) < n ? id : -1; };
  protowire::Writer trainer;
  trainer.varint(3, 2);  // model_type BPE: merges by piece score, like llama.cpp's SPM path
  trainer.varint(4, n);  // vocab_size
  trainer.varint(35, 1);  // byte_fallback: unknown characters become <0xXX> pieces
  trainer.int32(40, static_cast<int32_t>(unk));
  trainer.int32(41, id_or_none(vocab.bos_id));
  trainer.int32(42, id_or_none(vocab.eos_id));
  trainer.int32(43, id_or_none(vocab.pad_id));
  model.message(2, trainer);

  protowire::Writer normalizer;
  normalizer.bytes(1, "identity");  // GGUF vocabularies are used without Unicode normalization
  normalizer.varint(3, vocab.add_space_prefix && dummy_prefix_in_model ? 1 : 0);
  normalizer.varint(4, 0);  // remove_extra_whitespaces: llama.cpp keeps runs of spaces
  normalizer.varint(5, 1);  // escape_whitespaces: space → "▁"
  model.message(3, normalizer);
  return model.take();
}

SentencePieceTokenizer::SentencePieceTokenizer(Vocabulary vocab, const std::string& source)
    : Tokenizer(std::move(vocab)),
      processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()),
      splitter_(vocab_),
      source_(source) {
  if (vocab_.size() == 0) throw FileError(source + ": the vocabulary is empty");
  // The tokenizer adds the dummy-prefix space itself, so that text can be encoded in chunks.
  if (auto status = processor_->LoadFromSerializedProto(
          sentencepiece_model_proto(vocab_, /*dummy_prefix_in_model=*/false));
      !status.ok())
    throw FileError(source + ": sentencepiece rejects the vocabulary: " + status.ToString());

  newline_splits_ = true;
  for (size_t id = 0; id < vocab_.size() && newline_splits_; ++id) {
    const int32_t type = type_of(vocab_, id);
    const bool producible = type == kTokenNormal || type == kTokenUndefined;
    const std::string& text = vocab_.tokens[id];
    if (producible && text.size() > 1 && text.find('\n') != std::string::npos)
      newline_splits_ = false;
  }

  pieces_.resize(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) {
    const std::string& text = vocab_.tokens[id];
    switch (type_of(vocab_, id)) {
      case kTokenControl:
        break;  // BOS/EOS and chat markers are not text
      case kTokenByte:
        if (int b = byte_piece_value(text); b >= 0) {
          pieces_[id] = std::string(1, static_cast<char>(b));
          break;
        }
        [[fallthrough]];
      default:
        pieces_[id] = replace_space_markers(text);
    }
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special,
                                                    bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos && vocab_.bos_id >= 0) out.push_back(vocab_.bos_id);
  for (const TextFragment& f : splitter_.split(text, parse_special)) {
    if (f.is_token())
      out.push_back(f.token);
    else
      encode_fragment(f.text, out);
  }
  if (add_special && vocab_.add_eos && vocab_.eos_id >= 0) out.push_back(vocab_.eos_id);
  return out;
}

void SentencePieceTokenizer::encode_fragment(std::string_view text,
                                             std::vector<int32_t>& out) const {
  // llama.cpp adds the dummy-prefix space to the first raw fragment and to every fragment after
  // a special token, i.e. to every raw fragment, since they are always separated by tokens.
  // Chunks after the first within a fragment must not get one.
  constexpr size_t kChunk = 4096;
  std::vector<int> ids;
  std::string first;
  bool at_start = true;
  while (!text.empty()) {
    size_t end = text.size();
    if (newline_splits_ && text.size() > kChunk) {
      if (size_t nl = text.find('\n', kChunk); nl != std::string_view::npos) end = nl + 1;
    }
    std::string_view chunk = text.substr(0, end);
    text.remove_prefix(end);
    if (at_start && vocab_.add_space_prefix) {
      first.assign(1, ' ');
      first.append(chunk.data(), chunk.size());
      chunk = first;
    }
    at_start = false;
    if (auto status = processor_->Encode(chunk, &ids); !status.ok())
      throw FileError(source_ + ": the vocabulary cannot encode this text: " + status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }
}

std::string SentencePieceTokenizer::decode_piece(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return {};
  return pieces_[id];
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool at_start = true;
  for (int32_t id : ids) {
    std::string piece = decode_piece(id);
    if (piece.empty()) continue;
    // Only the first text token can carry the dummy-prefix space; a byte token for a real
    // space (never produced, since spaces are "▁") would not start with the marker.
    if (at_start && vocab_.add_space_prefix && piece[0] == ' ' &&
        std::string_view(vocab_.tokens[id]).starts_with(kSpaceMarker))
      piece.erase(0, 1);
    at_start = false;
    out += piece;
  }
  return out;
}

}  // namespace nibble
