// Shared between the loaders' .cpp files only: the format parsers work on an already opened
// mapping so open_model_file() maps a file once and hands it to whichever format matches.
//
// Metadata arrays as the GGUF reader fills them: integer and bool elements go to both `ints`
// and `nums`; float elements only to `nums`; strings to `strs`; nested arrays are validated and
// skipped (only `array_len` is kept).
#pragma once

#include <memory>

#include "loaders/byte_reader.h"
#include "loaders/model_file.h"

namespace nibble {

ModelFile parse_gguf(std::shared_ptr<MappedFile> file);
ModelFile parse_llama2c(std::shared_ptr<MappedFile> file);

}  // namespace nibble
