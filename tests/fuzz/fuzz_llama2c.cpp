// llama2.c checkpoint reader on arbitrary bytes. The format has no magic, so the header is
// accepted only when its sizes add up to exactly the file size; the fuzzer checks that the
// arithmetic behind that (int32 fields, negative vocab flag, overflow) never misbehaves and that
// every synthesised tensor lies inside the file.
#include <cstdint>

#include "loaders/model_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::string& path = fuzz::input_as_file(data, size);
  try {
    ModelFile mf = read_llama2c(path, OpenOptions{.use_mmap = false});
    for (const TensorInfo& t : mf.tensors) {
      if (t.file_offset > size || t.nbytes > size - t.file_offset) __builtin_trap();
      if (t.nbytes > 0) fuzz::consume(t.data[0] + t.data[t.nbytes - 1]);
    }
  } catch (const FileError&) {
  }
  return 0;
}
