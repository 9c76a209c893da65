// What every loader produces: a model file's metadata (typed key/values, GGUF key names) and
// its tensor directory (name, type, shape, byte span inside the mapping). Nothing outside
// loaders/ parses bytes; models read hyperparameters and tensors from here by name.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"

namespace nibble {

class MappedFile;

// Thrown for any unreadable, truncated, inconsistent or unsupported model file; the message
// names the file and what is wrong.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The caller's progress callback asked to stop loading.
class LoadCancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// GGUF metadata value types (same numbering as the format).
enum class MetaType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

struct MetaValue {
  MetaType type = MetaType::U32;
  MetaType elem_type = MetaType::U32;  // arrays only
  // Scalars: integers (signed or unsigned, bool as 0/1) in `i`/`u`, floats in `f`, strings in `s`.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  // Arrays: numeric elements in `nums` (as double, exact for every integer below 2^53) and in
  // `ints` (as int64), string elements in `strs`. Nested arrays are skipped (count kept).
  std::vector<double> nums;
  std::vector<int64_t> ints;
  std::vector<std::string> strs;
  uint64_t array_len = 0;

  bool is_integer() const;
  bool is_float() const;
};

class Metadata {
 public:
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const MetaValue* find(const std::string& key) const;

  // Typed getters: nullopt when absent; FileError-free — a value of the wrong kind is nullopt too.
  std::optional<uint64_t> get_uint(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // ints convert
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  const std::vector<std::string>* get_string_array(const std::string& key) const;
  const std::vector<double>* get_num_array(const std::string& key) const;
  const std::vector<int64_t>* get_int_array(const std::string& key) const;

  void set(const std::string& key, MetaValue v) { kv_[key] = std::move(v); }
  void set_uint(const std::string& key, uint64_t v, MetaType t = MetaType::U32);
  void set_int(const std::string& key, int64_t v, MetaType t = MetaType::I32);
  void set_float(const std::string& key, double v, MetaType t = MetaType::F32);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, std::string v);
  void set_string_array(const std::string& key, std::vector<std::string> v);
  void set_float_array(const std::string& key, const std::vector<float>& v);
  void set_int_array(const std::string& key, const std::vector<int32_t>& v);

  const std::map<std::string, MetaValue>& entries() const { return kv_; }

 private:
  std::map<std::string, MetaValue> kv_;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // dims[0] is innermost (row length K); up to 4
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  uint64_t file_offset = 0;  // absolute offset of the data in the file
  // How the bytes are arranged: 0 plain rows (GGUF's layout, every GGUF and llama2.c tensor),
  // 1 kLayoutPacked4 (kernels/repack.h), stored pre-packed in nibble's own files.
  uint32_t layout = 0;
  // nibble files: XXH64 of the tensor's bytes, checked by verify_checksums().
  bool has_checksum = false;
  uint64_t checksum = 0;

  uint64_t n_elements() const;
  uint64_t row_length() const { return dims.empty() ? 1 : dims[0]; }
  uint64_t n_rows() const { return row_length() ? n_elements() / row_length() : 0; }
};

class ModelFile {
 public:
  ModelFile();
  ~ModelFile();
  ModelFile(ModelFile&&) noexcept;
  ModelFile& operator=(ModelFile&&) noexcept;

  std::string path;
  std::string format;  // "gguf", "llama2c", "nibble"
  uint32_t version = 0;
  uint32_t version_minor = 0;  // nibble files
  Metadata meta;
  std::vector<TensorInfo> tensors;

  const TensorInfo* find_tensor(const std::string& name) const;
  // Throws FileError "PATH: missing tensor NAME".
  const TensorInfo& tensor(const std::string& name) const;
  // "general.architecture", or "" when absent.
  std::string architecture() const;

  // Keeps the bytes tensors point into alive: the mapping, or buffers a loader had to build.
  std::shared_ptr<const MappedFile> mapping;
  std::vector<std::vector<uint8_t>> owned_buffers;
  // Further files tensors point into (a Hugging Face checkpoint's safetensors shards).
  std::vector<std::shared_ptr<const MappedFile>> extra_mappings;
};

struct OpenOptions {
  bool use_mmap = true;  // false: read the file into memory instead
  // Called with (bytes done, total) while the file is read; return false to cancel.
  std::function<bool(uint64_t, uint64_t)> progress;
  // nibble files: check every tensor's checksum while opening (reads the whole file).
  bool verify = false;
};

// Opens a model file, detecting its format from its first bytes (GGUF or nibble magic; otherwise
// a llama2.c checkpoint header). Every count, length, offset and size is checked against the
// file before use. Throws FileError.
ModelFile open_model_file(const std::string& path, const OpenOptions& options = {});

ModelFile read_gguf(const std::string& path, const OpenOptions& options = {});
ModelFile read_llama2c(const std::string& path, const OpenOptions& options = {});
// nibble's own format (docs/format.md); the reader is loaders/nibble_reader.cpp.
ModelFile read_nibble(const std::string& path, const OpenOptions& options = {});

// Checks the checksum of every tensor that has one (nibble files; GGUF and llama2.c carry
// none). Reads every byte of those tensors.
struct VerifyResult {
  uint64_t checked = 0;             // tensors whose checksum was computed
  uint64_t without_checksum = 0;    // tensors the format gives no checksum
  std::vector<std::string> failed;  // "tensor 'NAME': checksum mismatch (stored …, computed …)"
};
VerifyResult verify_checksums(const ModelFile& file);
// As above, throwing FileError "PATH: tensor 'NAME': checksum mismatch …" on the first failure.
void verify_checksums_or_throw(const ModelFile& file);

}  // namespace nibble
