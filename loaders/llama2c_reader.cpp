// llama2.c checkpoint reader (Karpathy's legacy "version 0" export: 7 int32 then FP32 weights).
// The format has no magic, so the header is trusted only when every field is sane and the sizes
// it implies add up to exactly the file size. Tensors are exposed zero-copy under GGUF names and
// dims, with metadata synthesized as a GGUF llama file would carry it, so models/ cannot tell
// the formats apart.
#include <cstdlib>
#include <cstring>

#include "loaders/loaders_internal.h"
#include "loaders/mapped_file.h"

namespace nibble {
namespace {

constexpr uint64_t kHeaderBytes = 7 * 4;

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

std::string header_text(const Header& h) {
  return "dim " + std::to_string(h.dim) + ", hidden_dim " + std::to_string(h.hidden_dim) +
         ", n_layers " + std::to_string(h.n_layers) + ", n_heads " + std::to_string(h.n_heads) +
         ", n_kv_heads " + std::to_string(h.n_kv_heads) + ", vocab_size " +
         std::to_string(h.vocab_size) + ", seq_len " + std::to_string(h.seq_len);
}

}  // namespace

ModelFile parse_llama2c(std::shared_ptr<MappedFile> file) {
  ByteReader r(file->data(), file->size(), file->path());
  r.set_context("llama2.c header");
  Header h{};
  h.dim = r.i32("dim");
  h.hidden_dim = r.i32("hidden_dim");
  h.n_layers = r.i32("n_layers");
  h.n_heads = r.i32("n_heads");
  h.n_kv_heads = r.i32("n_kv_heads");
  h.vocab_size = r.i32("vocab_size");
  h.seq_len = r.i32("seq_len");

  auto positive = [&](int32_t v, const char* name) {
    if (v <= 0) r.fail(std::string(name) + " is " + std::to_string(v) + " (must be positive)");
  };
  positive(h.dim, "dim");
  positive(h.hidden_dim, "hidden_dim");
  positive(h.n_layers, "n_layers");
  positive(h.n_heads, "n_heads");
  positive(h.n_kv_heads, "n_kv_heads");
  positive(h.seq_len, "seq_len");
  if (h.vocab_size == 0) r.fail("vocab_size is 0");
  if (h.dim % h.n_heads != 0) {
    r.fail("n_heads " + std::to_string(h.n_heads) + " does not divide dim " +
           std::to_string(h.dim));
  }
  if (h.n_heads % h.n_kv_heads != 0) {
    r.fail("n_kv_heads " + std::to_string(h.n_kv_heads) + " does not divide n_heads " +
           std::to_string(h.n_heads));
  }

  // A negative vocab_size is llama2.c's flag for a separate classifier (wcls) at the end.
  // Widened first: -INT32_MIN does not fit an int32.
  const bool shared_classifier = h.vocab_size > 0;
  const uint64_t vocab = static_cast<uint64_t>(std::abs(static_cast<int64_t>(h.vocab_size)));
  const uint64_t dim = static_cast<uint64_t>(h.dim);
  const uint64_t hidden = static_cast<uint64_t>(h.hidden_dim);
  const uint64_t layers = static_cast<uint64_t>(h.n_layers);
  const uint64_t head_size = dim / static_cast<uint64_t>(h.n_heads);
  const uint64_t kv_dim = head_size * static_cast<uint64_t>(h.n_kv_heads);
  const uint64_t seq_len = static_cast<uint64_t>(h.seq_len);

  // Element offsets of each weight array in llama2.c's order (all layers of one kind together).
  // Every product is of int32-sized factors, at most three deep, and the sum of ~15 such terms:
  // below 2^100 in the worst case, so check rather than trust.
  bool ok = true;
  auto mul = [&ok](uint64_t a, uint64_t b) {
    uint64_t out = 0;
    ok = ok && checked_mul(a, b, &out);
    return out;
  };
  uint64_t cursor = 0;  // in floats
  auto take = [&](uint64_t n) {
    const uint64_t at = cursor;
    ok = ok && checked_add(cursor, n, &cursor);
    return at;
  };
  const uint64_t o_embd = take(mul(vocab, dim));
  const uint64_t o_rms_att = take(mul(layers, dim));
  const uint64_t o_wq = take(mul(layers, mul(dim, dim)));
  const uint64_t o_wk = take(mul(layers, mul(dim, kv_dim)));
  const uint64_t o_wv = take(mul(layers, mul(dim, kv_dim)));
  const uint64_t o_wo = take(mul(layers, mul(dim, dim)));
  const uint64_t o_rms_ffn = take(mul(layers, dim));
  const uint64_t o_w1 = take(mul(layers, mul(dim, hidden)));
  const uint64_t o_w2 = take(mul(layers, mul(hidden, dim)));
  const uint64_t o_w3 = take(mul(layers, mul(dim, hidden)));
  const uint64_t o_rms_final = take(dim);
  // RoPE tables freq_cis_real / freq_cis_imag: unused (RoPE is recomputed) but present.
  take(mul(seq_len, head_size / 2));
  take(mul(seq_len, head_size / 2));
  const uint64_t o_wcls = shared_classifier ? o_embd : take(mul(vocab, dim));
  uint64_t expected = 0;
  ok = ok && checked_mul(cursor, 4, &expected) && checked_add(expected, kHeaderBytes, &expected);
  if (!ok) r.fail("sizes implied by the header (" + header_text(h) + ") overflow");
  if (expected != file->size()) {
    r.fail("header (" + header_text(h) + ") implies a file of " + std::to_string(expected) +
           " bytes, but the file has " + std::to_string(file->size()));
  }
  r.clear_context();

  ModelFile mf;
  mf.path = file->path();
  mf.format = "llama2c";
  mf.version = 0;

  const uint8_t* base = file->data() + kHeaderBytes;
  auto add = [&](std::string name, std::vector<uint64_t> dims, uint64_t float_offset) {
    TensorInfo t;
    t.name = std::move(name);
    t.type = TensorType::F32;
    t.dims = std::move(dims);
    t.nbytes = t.n_elements() * 4;  // within the file: checked above
    t.file_offset = kHeaderBytes + float_offset * 4;
    t.data = base + float_offset * 4;
    mf.tensors.push_back(std::move(t));
  };
  // GGUF dims: [row length, rows]; llama2.c stores W as [out][in], rows of `in` elements.
  add("token_embd.weight", {dim, vocab}, o_embd);
  for (uint64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {dim}, o_rms_att + l * dim);
    add(p + "attn_q.weight", {dim, dim}, o_wq + l * dim * dim);
    add(p + "attn_k.weight", {dim, kv_dim}, o_wk + l * dim * kv_dim);
    add(p + "attn_v.weight", {dim, kv_dim}, o_wv + l * dim * kv_dim);
    add(p + "attn_output.weight", {dim, dim}, o_wo + l * dim * dim);
    add(p + "ffn_norm.weight", {dim}, o_rms_ffn + l * dim);
    add(p + "ffn_gate.weight", {dim, hidden}, o_w1 + l * dim * hidden);
    add(p + "ffn_down.weight", {hidden, dim}, o_w2 + l * hidden * dim);
    add(p + "ffn_up.weight", {dim, hidden}, o_w3 + l * dim * hidden);
  }
  add("output_norm.weight", {dim}, o_rms_final);
  // A tied head is expressed as GGUF does: no output.weight, models fall back to token_embd.
  if (!shared_classifier) add("output.weight", {dim, vocab}, o_wcls);

  // Hyperparameters under the keys and value types llama.cpp's converter writes.
  Metadata& m = mf.meta;
  m.set_string("general.architecture", "llama");
  m.set_uint("general.file_type", 0);  // ALL_F32
  m.set_uint("llama.context_length", seq_len);
  m.set_uint("llama.embedding_length", dim);
  m.set_uint("llama.block_count", layers);
  m.set_uint("llama.feed_forward_length", hidden);
  m.set_uint("llama.attention.head_count", static_cast<uint64_t>(h.n_heads));
  m.set_uint("llama.attention.head_count_kv", static_cast<uint64_t>(h.n_kv_heads));
  m.set_float("llama.attention.layer_norm_rms_epsilon", 1e-5);
  m.set_float("llama.rope.freq_base", 10000.0);
  m.set_uint("llama.rope.dimension_count", head_size);
  m.set_uint("llama.vocab_size", vocab);

  mf.mapping = std::move(file);
  return mf;
}

}  // namespace nibble
