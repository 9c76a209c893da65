// A model ready to run: the file's mapping, the family's weights bound to it, and the
// tokenizer — what the public API's model handle holds, shared read-only by its contexts.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "loaders/model_file.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace nibble {

struct LoadOptions {
  std::string tokenizer_path;  // sentencepiece .model for files without an embedded vocabulary
  bool use_mmap = true;
  bool vocab_only = false;     // load the tokenizer alone (vocabulary-only GGUF files)
  // Fraction 0…1 of the load done; return false to cancel (throws LoadCancelled).
  std::function<bool(float)> progress;
};

struct LoadedModel {
  ModelFile file;
  std::unique_ptr<Model> model;  // null when vocab_only
  std::unique_ptr<Tokenizer> tokenizer;
};

// Throws FileError naming the file for anything unreadable or unsupported, including a
// tokenizer whose size does not match the model's embedding table.
std::unique_ptr<LoadedModel> load_model_and_tokenizer(const std::string& path,
                                                      const LoadOptions& options);

}  // namespace nibble
