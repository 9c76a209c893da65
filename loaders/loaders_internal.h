// Shared between the loaders' .cpp files only: the format parsers work on an already opened
// mapping so open_model_file() maps a file once and hands it to whichever format matches.
//
// Metadata arrays as the GGUF reader fills them: integer and bool elements go to both `ints`
// and `nums`; float elements only to `nums`; strings to `strs`; nested arrays are validated and
// skipped (only `array_len` is kept).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "loaders/byte_reader.h"
#include "loaders/model_file.h"

namespace nibble {

ModelFile parse_gguf(std::shared_ptr<MappedFile> file);
ModelFile parse_llama2c(std::shared_ptr<MappedFile> file);
ModelFile parse_nibble(std::shared_ptr<MappedFile> file, bool verify);

// GGUF's metadata value encoding, shared with nibble's own format (docs/format.md): one value of
// type `type_id` read at r's position (gguf_reader.cpp), and one key/value appended to `out`
// (gguf_writer.cpp; throws FileError naming `path` and the key for an unwritable value).
MetaValue read_gguf_value(ByteReader& r, uint32_t type_id);
void append_gguf_kv(std::vector<uint8_t>& out, const std::string& path, const std::string& key,
                    const MetaValue& value);

}  // namespace nibble
