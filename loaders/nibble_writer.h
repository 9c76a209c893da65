// Writes nibble's own model file (docs/format.md): metadata in GGUF's encoding, a tensor
// directory with per-tensor layout ids and XXH64 checksums, page-aligned data. Tensor bytes are
// streamed, so a writer never needs the whole model in memory (a 1.1B model's F16 copy is 2 GB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loaders/model_file.h"

namespace nibble {

struct NibbleTensorDesc {
  std::string name;
  TensorType type = TensorType::F32;
  uint32_t layout = 0;         // 0 plain rows, 1 kLayoutPacked4 (bytes already packed)
  std::vector<uint64_t> dims;  // innermost first
};

struct NibbleTensorToWrite {
  NibbleTensorDesc desc;
  std::vector<uint8_t> data;  // in desc.type and desc.layout
};

// Called once per tensor, in order, with a sink that appends bytes to that tensor's data; the
// bytes must add up to exactly the tensor's size (nbl::tensor_bytes).
using NibbleDataSink = std::function<void(const void* bytes, size_t n)>;
using NibbleDataWriter = std::function<void(size_t tensor, const NibbleDataSink& sink)>;

// Validates every descriptor first, writes to PATH.partial and renames it into place only when
// complete, so a failed or interrupted write never leaves a file that looks like a model.
// Throws FileError naming the path (and the tensor or key) on bad input or I/O failure;
// exceptions thrown by `data` propagate after the partial file is removed.
void write_nibble_streamed(const std::string& path, const Metadata& meta,
                           const std::vector<NibbleTensorDesc>& tensors,
                           const NibbleDataWriter& data);

void write_nibble(const std::string& path, const Metadata& meta,
                  const std::vector<NibbleTensorToWrite>& tensors);

}  // namespace nibble
