#include "runtime/loaded_model.h"

namespace nibble {

std::unique_ptr<LoadedModel> load_model_and_tokenizer(const std::string& path,
                                                      const LoadOptions& options) {
  auto lm = std::make_unique<LoadedModel>();
  OpenOptions open;
  open.use_mmap = options.use_mmap;
  // Reading the file is the slow part (without mmap); binding weights is quick.
  auto report = [&](float f) {
    if (options.progress && !options.progress(f)) throw LoadCancelled(path + ": loading cancelled");
  };
  if (options.progress) {
    open.progress = [&](uint64_t done, uint64_t total) {
      return options.progress(0.9f * static_cast<float>(done) / static_cast<float>(total));
    };
  }
  lm->file = open_model_file(path, open);

  Vocabulary vocab;
  if (!options.tokenizer_path.empty()) {
    vocab = read_sentencepiece_model(options.tokenizer_path);
    lm->tokenizer = make_tokenizer(vocab, options.tokenizer_path);
  } else if (lm->file.meta.has("tokenizer.ggml.tokens")) {
    vocab = read_vocabulary(lm->file.meta, path);
    lm->tokenizer = make_tokenizer(vocab, path);
  } else {
    throw FileError(path + ": the file has no tokenizer; pass one with --tokenizer tokenizer.model");
  }
  if (options.vocab_only) {
    report(1.0f);
    return lm;
  }

  lm->model = load_model(lm->file);
  const int64_t n_vocab = lm->model->config().n_vocab;
  if (lm->tokenizer->n_vocab() != n_vocab) {
    throw FileError(path + ": tokenizer has " + std::to_string(lm->tokenizer->n_vocab()) +
                    " tokens but the embedding table has " + std::to_string(n_vocab) + " rows");
  }
  report(1.0f);
  return lm;
}

}  // namespace nibble
