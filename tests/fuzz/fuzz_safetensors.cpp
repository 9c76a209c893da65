// safetensors reader on arbitrary bytes: header length, the JSON header (nesting, types, shapes,
// dtypes, offsets) and the overlap check. A ModelFile whose tensors all lie inside the file with
// dtype × shape bytes, or a FileError; anything else is a finding.
#include <cstdint>

#include "loaders/safetensors_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::string& path = fuzz::input_as_file(data, size);
  try {
    ModelFile mf = read_safetensors(path, OpenOptions{.use_mmap = false});
    for (const TensorInfo& t : mf.tensors) {
      if (t.file_offset > size || t.nbytes > size - t.file_offset) __builtin_trap();
      const uint64_t esize = t.type == TensorType::F32 ? 4 : 2;
      if (t.n_elements() * esize != t.nbytes) __builtin_trap();
      if (t.nbytes > 0) fuzz::consume(t.data[0] + t.data[t.nbytes - 1]);
    }
  } catch (const FileError&) {
  }
  return 0;
}
