// Writes GGUF v3 files laid out exactly as llama.cpp writes them (used by quantize-model, the
// random-model writer and tests that craft files).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loaders/model_file.h"

namespace nibble {

struct GgufTensorToWrite {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // innermost first
  std::vector<uint8_t> data;   // already in `type`'s block layout
};

// Metadata keys are written in map order, except general.architecture first. Alignment from
// general.alignment if present, else 32. Throws FileError on I/O failure.
void write_gguf(const std::string& path, const Metadata& meta,
                const std::vector<GgufTensorToWrite>& tensors);

}  // namespace nibble
