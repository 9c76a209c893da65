// nibble's own file reader (docs/format.md) on arbitrary bytes: header, sections, metadata (GGUF's
// value encoding), tensor directory, layouts and overlap checks, then checksum verification.
// The only acceptable outcomes are a ModelFile whose every tensor lies inside the file with the
// size its type, layout and dims imply, or a FileError; anything else is a finding.
#include <cstdint>

#include "loaders/model_file.h"
#include "loaders/nibble_format.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::string& path = fuzz::input_as_file(data, size);
  try {
    ModelFile mf = read_nibble(path, OpenOptions{.use_mmap = false});
    for (const TensorInfo& t : mf.tensors) {
      if (t.file_offset > size || t.nbytes > size - t.file_offset) __builtin_trap();
      if (t.file_offset % 64 != 0) __builtin_trap();
      if (nbl::tensor_bytes(static_cast<uint32_t>(t.type), t.layout, t.dims, nullptr) != t.nbytes) {
        __builtin_trap();
      }
      if (t.nbytes > 0) fuzz::consume(t.data[0] + t.data[t.nbytes - 1]);
    }
    const VerifyResult v = verify_checksums(mf);
    fuzz::consume(v.checked + v.failed.size());
    for (const auto& [key, value] : mf.meta.entries()) {
      fuzz::consume(mf.meta.get_uint(key).value_or(0) + mf.meta.get_string(key).value_or("").size());
      if (const auto* a = mf.meta.get_string_array(key)) fuzz::consume(a->size());
    }
  } catch (const FileError&) {
  }
  return 0;
}
