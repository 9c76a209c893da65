// Reader of Hugging Face safetensors files: an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data.
// nibble reads the float dtypes checkpoints are published in (F32, F16, BF16), zero copy.
#pragma once

#include <memory>
#include <string>

#include "loaders/model_file.h"

namespace nibble {

// Returns a ModelFile with format "safetensors": one tensor per header entry under the file's
// own names, dims innermost first (a [out, in] weight becomes dims [in, out], as in GGUF), data
// pointing into the mapping; "__metadata__" strings become string metadata. Every length,
// offset, shape and dtype is checked against the file: the header length against the file
// size (and a 100 MB cap), JSON syntax and nesting depth, each tensor's offsets against the
// data section and its byte size against dtype × shape, and tensors must not overlap.
// Throws FileError naming the file, the tensor and the field.
ModelFile read_safetensors(const std::string& path, const OpenOptions& options = {});

}  // namespace nibble
