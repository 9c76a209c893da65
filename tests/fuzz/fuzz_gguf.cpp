// GGUF reader on arbitrary bytes: header, metadata (every value type, nested arrays), tensor
// infos and data extents. The only acceptable outcomes are a ModelFile whose every tensor lies
// inside the file, or a FileError; anything else (crash, other exception, over-read, a huge
// allocation caught by -malloc_limit_mb, a hang caught by -timeout) is a finding.
#include <cstdint>

#include "loaders/model_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::string& path = fuzz::input_as_file(data, size);
  try {
    // open_model_file also covers the format detection and the llama2.c fallback.
    ModelFile mf = open_model_file(path, OpenOptions{.use_mmap = false});
    for (const TensorInfo& t : mf.tensors) {
      if (t.file_offset > size || t.nbytes > size - t.file_offset) __builtin_trap();
      // Touch both ends of the extent: ASan reports them if they are outside the buffer.
      if (t.nbytes > 0) fuzz::consume(t.data[0] + t.data[t.nbytes - 1]);
      fuzz::consume(t.n_elements() + t.n_rows());
    }
    // The typed getters must be total on whatever the file held.
    for (const auto& [key, v] : mf.meta.entries()) {
      fuzz::consume(mf.meta.get_uint(key).value_or(0) + mf.meta.get_int(key).value_or(0));
      fuzz::consume(static_cast<uint64_t>(mf.meta.get_float(key).value_or(0) != 0));
      fuzz::consume(mf.meta.get_bool(key).value_or(false) + mf.meta.get_string(key).value_or("").size());
      if (const auto* a = mf.meta.get_string_array(key)) fuzz::consume(a->size());
      if (const auto* a = mf.meta.get_num_array(key)) fuzz::consume(a->size());
      if (const auto* a = mf.meta.get_int_array(key)) fuzz::consume(a->size());
    }
    fuzz::consume(mf.architecture().size());
  } catch (const FileError&) {
    // Rejected with a message: the intended outcome for a bad file.
  }
  return 0;
}
