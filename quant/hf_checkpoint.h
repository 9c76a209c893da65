// Hugging Face LLaMA checkpoints as quantizer input: a directory with config.json, one or more
// *.safetensors shards (F32/F16/BF16) and tokenizer.model, presented as the ModelFile a GGUF
// LLaMA file would give (llama.cpp's tensor names and metadata keys), so the quantizers treat
// every input alike.
#pragma once

#include <string>

#include "loaders/model_file.h"

namespace nibble {

// HF's attention uses rotate-half RoPE (pairs i and i + d/2 of a head); GGUF LLaMA files and
// nibble rotate adjacent pairs (2i, 2i+1). Reordering each head's q/k rows as
// [0, d/2, 1, d/2+1, …] makes the two the same computation (llama.cpp's converter does this).
// Rows are `row_bytes` each, `n_rows` = n_head × head_dim.
void permute_rope_rows(const uint8_t* src, uint8_t* dst, uint64_t n_rows, uint64_t row_bytes,
                       uint64_t n_head);
// The inverse (GGUF order back to HF's), for tests that build HF checkpoints.
void unpermute_rope_rows(const uint8_t* src, uint8_t* dst, uint64_t n_rows, uint64_t row_bytes,
                         uint64_t n_head);

// True when `path` is a directory holding a config.json.
bool is_hf_checkpoint(const std::string& path);

// Reads the checkpoint: hyperparameters from config.json (model_type "llama"; linear rope
// scaling only), tensors renamed (model.embed_tokens → token_embd, layers.N.self_attn.q_proj →
// blk.N.attn_q, …, lm_head → output), q/k rows permuted (copies; every other tensor is a view
// into its shard's mapping), the vocabulary from tokenizer_path or DIR/tokenizer.model, and
// tokenizer_config.json's chat_template when present. Throws FileError naming the file and
// field for anything missing, malformed or unsupported.
ModelFile read_hf_checkpoint(const std::string& dir, const std::string& tokenizer_path);

}  // namespace nibble
