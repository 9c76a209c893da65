#include "tokenizer/vocabulary.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "tokenizer/protobuf_wire.h"

namespace nibble {
namespace {

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTypes = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kEot = "tokenizer.ggml.eot_token_id";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr const char* kChatTemplate = "tokenizer.chat_template";

// Tokenizer models llama.cpp knows. Only some are implemented by make_tokenizer, but a file
// naming one of the others is still a well-formed vocabulary (its tokens can be listed).
constexpr std::array<std::string_view, 7> kKnownModels = {"llama", "gpt2",   "bert",  "t5",
                                                          "rwkv",  "plamo2", "gemma4"};

// Pre-tokenizers whose byte-level BPE vocabularies add BOS unless the file says otherwise
// (the Llama 3 family, Mistral's tekken, chameleon).
constexpr std::array<std::string_view, 11> kBosPreTokenizers = {
    "llama-bpe", "llama3",   "llama-v3", "falcon3", "falcon-h1", "pixtral",
    "midm-2.0",  "lfm2",     "jina-v5-nano", "tekken", "chameleon"};

bool contains(auto& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Special ids: a value outside the vocabulary (typically 0xFFFFFFFF written for "none") leaves
// the default in place, as llama.cpp does.
void read_id(const Metadata& meta, const char* key, size_t n_vocab, int32_t& id) {
  if (auto v = meta.get_uint(key); v && *v < n_vocab) id = static_cast<int32_t>(*v);
}

}  // namespace

Vocabulary read_vocabulary(const Metadata& meta, const std::string& source) {
  Vocabulary v;
  auto model = meta.get_string(kModel);
  if (!model) throw FileError(source + ": missing " + kModel);
  v.model = *model;
  if (v.model == "none" || v.model == "no_vocab")
    throw FileError(source + ": the file has no vocabulary (" + kModel + " = " + v.model + ")");
  if (!contains(kKnownModels, v.model))
    throw FileError(source + ": unknown tokenizer model '" + v.model + "' in " + kModel);
  v.pre = meta.get_string(kPre).value_or("");

  const auto* tokens = meta.get_string_array(kTokens);
  if (!tokens) throw FileError(source + ": missing " + kTokens);
  if (tokens->empty()) throw FileError(source + ": " + kTokens + " is empty");
  v.tokens = *tokens;
  const size_t n = v.tokens.size();
  auto length_error = [&](const char* key, size_t got) {
    return FileError(source + ": " + key + " has " + std::to_string(got) + " entries but " +
                     kTokens + " has " + std::to_string(n));
  };

  v.scores.assign(n, 0.0f);
  if (const auto* scores = meta.get_num_array(kScores)) {
    if (scores->size() != n) throw length_error(kScores, scores->size());
    std::transform(scores->begin(), scores->end(), v.scores.begin(),
                   [](double s) { return static_cast<float>(s); });
  }
  v.types.assign(n, kTokenNormal);
  if (const auto* types = meta.get_int_array(kTypes)) {
    if (types->size() != n) throw length_error(kTypes, types->size());
    std::transform(types->begin(), types->end(), v.types.begin(),
                   [](int64_t t) { return static_cast<int32_t>(t); });
  }
  if (const auto* merges = meta.get_string_array(kMerges)) v.merges = *merges;

  const bool spm = v.model == "llama";
  if (spm) {
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    v.add_bos = true;
  } else if (v.model == "gpt2") {
    v.bos_id = 11;
    v.eos_id = 11;
    v.add_bos = contains(kBosPreTokenizers, v.pre);
  }
  read_id(meta, kBos, n, v.bos_id);
  read_id(meta, kEos, n, v.eos_id);
  read_id(meta, kUnk, n, v.unk_id);
  read_id(meta, kPad, n, v.pad_id);
  read_id(meta, kEot, n, v.eot_id);
  // Defaults must also exist: a tiny vocabulary may not reach id 11 or 2.
  for (int32_t* id : {&v.bos_id, &v.eos_id, &v.unk_id})
    if (*id >= static_cast<int32_t>(n)) *id = -1;

  v.add_bos = meta.get_bool(kAddBos).value_or(v.add_bos);
  v.add_eos = meta.get_bool(kAddEos).value_or(false);
  v.add_space_prefix = meta.get_bool(kAddSpacePrefix).value_or(true);
  v.chat_template = meta.get_string(kChatTemplate).value_or("");
  return v;
}

void write_vocabulary(const Vocabulary& vocab, Metadata& meta) {
  meta.set_string(kModel, vocab.model);
  if (!vocab.pre.empty()) meta.set_string(kPre, vocab.pre);
  meta.set_string_array(kTokens, vocab.tokens);
  if (!vocab.scores.empty()) meta.set_float_array(kScores, vocab.scores);
  if (!vocab.types.empty()) meta.set_int_array(kTypes, vocab.types);
  if (!vocab.merges.empty()) meta.set_string_array(kMerges, vocab.merges);
  auto write_id = [&](const char* key, int32_t id) {
    if (id >= 0) meta.set_uint(key, static_cast<uint64_t>(id), MetaType::U32);
  };
  write_id(kBos, vocab.bos_id);
  write_id(kEos, vocab.eos_id);
  write_id(kUnk, vocab.unk_id);
  write_id(kPad, vocab.pad_id);
  write_id(kEot, vocab.eot_id);
  meta.set_bool(kAddBos, vocab.add_bos);
  meta.set_bool(kAddEos, vocab.add_eos);
  meta.set_bool(kAddSpacePrefix, vocab.add_space_prefix);
  if (!vocab.chat_template.empty()) meta.set_string(kChatTemplate, vocab.chat_template);
}

Vocabulary read_sentencepiece_model(const std::string& path) {
  sentencepiece::SentencePieceProcessor sp;
  if (auto status = sp.Load(path); !status.ok())
    throw FileError(path + ": not a readable sentencepiece model: " + status.ToString());

  // The processor API has no IsUserDefined and does not expose the normalizer options, so
  // those two come from the serialized ModelProto (pieces = field 1, each with its type in
  // field 3; normalizer_spec = field 3 with add_dummy_prefix in field 3).
  const std::string proto = sp.serialized_model_proto();
  std::vector<int32_t> proto_types;
  bool add_dummy_prefix = true;
  protowire::for_each_field(proto, [&](const protowire::Field& f) {
    if (f.type != protowire::kLengthDelimited) return;
    if (f.number == 1) {
      int32_t type = kTokenNormal;
      protowire::for_each_field(f.payload, [&](const protowire::Field& p) {
        if (p.number == 3 && p.type == protowire::kVarint) type = static_cast<int32_t>(p.value);
      });
      proto_types.push_back(type);
    } else if (f.number == 3) {
      protowire::for_each_field(f.payload, [&](const protowire::Field& p) {
        if (p.number == 3 && p.type == protowire::kVarint) add_dummy_prefix = p.value != 0;
      });
    }
  });

  Vocabulary v;
  v.model = "llama";
  const int n = sp.GetPieceSize();
  v.tokens.reserve(n);
  v.scores.reserve(n);
  v.types.reserve(n);
  for (int id = 0; id < n; ++id) {
    v.tokens.push_back(sp.IdToPiece(id));
    v.scores.push_back(sp.GetScore(id));
    int32_t type = kTokenNormal;
    if (sp.IsUnknown(id)) type = kTokenUnknown;
    else if (sp.IsControl(id)) type = kTokenControl;
    else if (sp.IsByte(id)) type = kTokenByte;
    else if (sp.IsUnused(id)) type = kTokenUnused;
    else if (static_cast<size_t>(id) < proto_types.size() && proto_types[id] == kTokenUserDefined)
      type = kTokenUserDefined;
    v.types.push_back(type);
  }
  v.bos_id = sp.bos_id() < n ? sp.bos_id() : -1;
  v.eos_id = sp.eos_id() < n ? sp.eos_id() : -1;
  v.unk_id = sp.unk_id() < n ? sp.unk_id() : -1;
  v.pad_id = sp.pad_id() < n ? sp.pad_id() : -1;
  v.add_bos = true;
  v.add_eos = false;
  v.add_space_prefix = add_dummy_prefix;
  return v;
}

}  // namespace nibble
