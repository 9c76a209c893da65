// Writes GGUF v3 files laid out exactly as llama.cpp writes them (used by quantize-model, the
// random-model writer and tests that craft files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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

// A tensor's entry in the file when its bytes are produced while writing (write_gguf_streamed).
struct GgufTensorDesc {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // innermost first
};

// Called once per tensor, in order, with a sink that appends bytes to that tensor's data; the
// bytes written must add up to exactly the tensor's size in its type.
using GgufDataSink = std::function<void(const void* bytes, size_t n)>;
using GgufDataWriter = std::function<void(size_t tensor, const GgufDataSink& sink)>;

// write_gguf for data too large to hold at once (e.g. a 4 GB F32 model made row by row).
void write_gguf_streamed(const std::string& path, const Metadata& meta,
                         const std::vector<GgufTensorDesc>& tensors, const GgufDataWriter& data);

// Metadata keys are written in map order, except general.architecture first. Alignment from
// general.alignment if present, else 32. Throws FileError on I/O failure.
void write_gguf(const std::string& path, const Metadata& meta,
                const std::vector<GgufTensorToWrite>& tensors);

}  // namespace nibble
