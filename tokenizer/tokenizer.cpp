#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <span>
#include <unordered_map>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace nibble {
namespace {

// Texts of tokens that end a turn or a generation in some chat format (llama.cpp's list).
constexpr std::array<std::string_view, 22> kEndOfGenerationTexts = {
    "<|eot_id|>",      "<|im_end|>",     "<|end|>",       "<|return|>",
    "<|call|>",        "<|flush|>",      "<|calls|>",     "<end_of_turn>",
    "<|endoftext|>",   "</s>",           "<|eom_id|>",    "<EOT>",
    "_<EOT>",          "[EOT]",          "[EOS]",         "<|end_of_text|>",
    "<end_of_utterance>", "<eos>",       "<turn|>",       "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",  // <｜end▁of▁sentence｜>
    "[e~[",
};

// Fill-in-the-middle pad / repository / file-separator tokens: llama.cpp auto-detects one of each
// by text and ends generation on them too (SmolLM2's <reponame> is one).
constexpr std::string_view kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRepo[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimFileSep[] = {"<|file_sep|>"};
constexpr std::span<const std::string_view> kFimEndTexts[] = {kFimPad, kFimRepo, kFimFileSep};

}  // namespace

Tokenizer::Tokenizer(Vocabulary vocab) : vocab_(std::move(vocab)) {
  std::unordered_map<std::string_view, int32_t> by_text;
  for (size_t id = 0; id < vocab_.size(); ++id)
    by_text.emplace(vocab_.tokens[id], static_cast<int32_t>(id));
  auto has = [&](std::string_view t) { return by_text.count(t) != 0; };

  for (std::string_view text : kEndOfGenerationTexts) {
    // Formats with tool calls use "<|end|>" / "</s>" inside a turn, so there they do not stop.
    if (text == "<|end|>" &&
        ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>"))))
      continue;
    if (text == "</s>" && has("<|tool_response>")) continue;
    if (auto it = by_text.find(text); it != by_text.end()) eog_ids_.push_back(it->second);
  }
  // Only one of each FIM kind is detected (the first spelling present), as llama.cpp does.
  for (const auto& spellings : kFimEndTexts) {
    for (std::string_view text : spellings) {
      if (auto it = by_text.find(text); it != by_text.end()) {
        eog_ids_.push_back(it->second);
        break;
      }
    }
  }
  const auto n = static_cast<int32_t>(vocab_.size());
  for (int32_t id : {vocab_.eos_id, vocab_.eot_id})
    if (id >= 0 && id < n) eog_ids_.push_back(id);
  std::sort(eog_ids_.begin(), eog_ids_.end());
  eog_ids_.erase(std::unique(eog_ids_.begin(), eog_ids_.end()), eog_ids_.end());
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += decode_piece(id);
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(const Vocabulary& vocab, const std::string& source) {
  if (vocab.model == "llama") return std::make_unique<SentencePieceTokenizer>(vocab, source);
  if (vocab.model == "gpt2") return std::make_unique<BpeTokenizer>(vocab, source);
  throw FileError(source + ": tokenizer model '" + vocab.model + "' is not supported");
}

// ---- Utf8Stream ----------------------------------------------------------------------------

namespace {

// Length of the character a lead byte starts, or 0 for a byte that can never start one
// (continuation bytes, the overlong leads C0/C1, and F5..FF beyond U+10FFFF).
int sequence_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Whether `b` may follow `lead` as its first continuation byte. The narrowed ranges exclude
// overlong forms, UTF-16 surrogates and code points past U+10FFFF, so a sequence that can only
// be invalid is released at once instead of waiting for more bytes.
bool valid_second(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return (b & 0xC0) == 0x80;
  }
}

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  size_t pos = 0;  // everything before pos is released
  const size_t n = pending_.size();
  while (pos < n) {
    const auto lead = static_cast<uint8_t>(pending_[pos]);
    const int len = sequence_length(lead);
    if (len <= 1) {  // ASCII, or a byte no character starts with: pass it through alone
      ++pos;
      continue;
    }
    int have = 1;  // bytes of this sequence present and valid so far
    while (have < len && pos + have < n) {
      const auto b = static_cast<uint8_t>(pending_[pos + have]);
      const bool ok = have == 1 ? valid_second(lead, b) : (b & 0xC0) == 0x80;
      if (!ok) break;
      ++have;
    }
    if (have == len) {
      pos += len;
    } else if (pos + have == n) {
      break;  // a valid prefix cut off by the end of the input: wait for more bytes
    } else {
      ++pos;  // broken sequence: release the lead byte as is and resynchronise after it
    }
  }
  std::string out = pending_.substr(0, pos);
  pending_.erase(0, pos);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace nibble
