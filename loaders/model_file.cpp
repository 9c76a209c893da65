// Metadata accessors, ModelFile helpers and format detection. The format parsers live in
// gguf_reader.cpp and llama2c_reader.cpp.
#include "loaders/model_file.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "loaders/loaders_internal.h"
#include "loaders/mapped_file.h"
#include "loaders/nibble_format.h"

namespace nibble {

bool MetaValue::is_integer() const {
  switch (type) {
    case MetaType::U8:
    case MetaType::I8:
    case MetaType::U16:
    case MetaType::I16:
    case MetaType::U32:
    case MetaType::I32:
    case MetaType::U64:
    case MetaType::I64:
      return true;
    default:
      return false;
  }
}

bool MetaValue::is_float() const { return type == MetaType::F32 || type == MetaType::F64; }

namespace {

bool is_signed_int(MetaType t) {
  return t == MetaType::I8 || t == MetaType::I16 || t == MetaType::I32 || t == MetaType::I64;
}

}  // namespace

const MetaValue* Metadata::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

std::optional<uint64_t> Metadata::get_uint(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || !v->is_integer()) return std::nullopt;
  if (is_signed_int(v->type)) {
    if (v->i < 0) return std::nullopt;  // a negative count is not a uint
    return static_cast<uint64_t>(v->i);
  }
  return v->u;
}

std::optional<int64_t> Metadata::get_int(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || !v->is_integer()) return std::nullopt;
  if (is_signed_int(v->type)) return v->i;
  if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(v->u);
}

std::optional<double> Metadata::get_float(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_integer()) {
    return is_signed_int(v->type) ? static_cast<double>(v->i) : static_cast<double>(v->u);
  }
  return std::nullopt;
}

std::optional<bool> Metadata::get_bool(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type == MetaType::Bool) return v->u != 0;
  // Some converters store flags as integers; accept them rather than silently using a default.
  if (v->is_integer()) return is_signed_int(v->type) ? v->i != 0 : v->u != 0;
  return std::nullopt;
}

std::optional<std::string> Metadata::get_string(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::String) return std::nullopt;
  return v->s;
}

const std::vector<std::string>* Metadata::get_string_array(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::Array || v->elem_type != MetaType::String)
    return nullptr;
  return &v->strs;
}

const std::vector<double>* Metadata::get_num_array(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::Array) return nullptr;
  if (v->elem_type == MetaType::String || v->elem_type == MetaType::Array) return nullptr;
  return &v->nums;
}

const std::vector<int64_t>* Metadata::get_int_array(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::Array) return nullptr;
  // Float arrays keep only `nums` (see loaders_internal.h): an int view of scores would lie.
  MetaValue probe;
  probe.type = v->elem_type;
  if (!probe.is_integer() && v->elem_type != MetaType::Bool) return nullptr;
  return &v->ints;
}

void Metadata::set_uint(const std::string& key, uint64_t v, MetaType t) {
  MetaValue m;
  m.type = t;
  m.u = v;
  m.i = static_cast<int64_t>(v);
  m.f = static_cast<double>(v);
  set(key, std::move(m));
}

void Metadata::set_int(const std::string& key, int64_t v, MetaType t) {
  MetaValue m;
  m.type = t;
  m.i = v;
  m.u = static_cast<uint64_t>(v);
  m.f = static_cast<double>(v);
  set(key, std::move(m));
}

void Metadata::set_float(const std::string& key, double v, MetaType t) {
  MetaValue m;
  m.type = t;
  // An F32 value is stored as the float the file will hold, so a written-and-read value compares
  // equal to what was set.
  m.f = t == MetaType::F32 ? static_cast<double>(static_cast<float>(v)) : v;
  set(key, std::move(m));
}

void Metadata::set_bool(const std::string& key, bool v) {
  MetaValue m;
  m.type = MetaType::Bool;
  m.u = v ? 1 : 0;
  m.i = v ? 1 : 0;
  set(key, std::move(m));
}

void Metadata::set_string(const std::string& key, std::string v) {
  MetaValue m;
  m.type = MetaType::String;
  m.s = std::move(v);
  set(key, std::move(m));
}

void Metadata::set_string_array(const std::string& key, std::vector<std::string> v) {
  MetaValue m;
  m.type = MetaType::Array;
  m.elem_type = MetaType::String;
  m.array_len = v.size();
  m.strs = std::move(v);
  set(key, std::move(m));
}

void Metadata::set_float_array(const std::string& key, const std::vector<float>& v) {
  MetaValue m;
  m.type = MetaType::Array;
  m.elem_type = MetaType::F32;
  m.array_len = v.size();
  m.nums.assign(v.begin(), v.end());
  set(key, std::move(m));
}

void Metadata::set_int_array(const std::string& key, const std::vector<int32_t>& v) {
  MetaValue m;
  m.type = MetaType::Array;
  m.elem_type = MetaType::I32;
  m.array_len = v.size();
  m.ints.assign(v.begin(), v.end());
  m.nums.assign(v.begin(), v.end());
  set(key, std::move(m));
}

uint64_t TensorInfo::n_elements() const {
  // Loaders have checked the product does not overflow; hand-built infos saturate rather than
  // wrap so a size computed from them fails checks instead of looking small.
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (!checked_mul(n, d, &n)) return std::numeric_limits<uint64_t>::max();
  }
  return n;
}

ModelFile::ModelFile() = default;
ModelFile::~ModelFile() = default;
ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;

const TensorInfo* ModelFile::find_tensor(const std::string& name) const {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorInfo& ModelFile::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  if (t == nullptr) throw FileError(path + ": missing tensor " + name);
  return *t;
}

std::string ModelFile::architecture() const {
  return meta.get_string("general.architecture").value_or("");
}

ModelFile read_gguf(const std::string& path, const OpenOptions& options) {
  return parse_gguf(MappedFile::open(path, options.use_mmap, options.progress));
}

ModelFile read_llama2c(const std::string& path, const OpenOptions& options) {
  return parse_llama2c(MappedFile::open(path, options.use_mmap, options.progress));
}

ModelFile open_model_file(const std::string& path, const OpenOptions& options) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path, options.use_mmap, options.progress);
  if (file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0) return parse_gguf(file);
  if (file->size() >= sizeof nbl::kMagic &&
      std::memcmp(file->data(), nbl::kMagic, sizeof nbl::kMagic) == 0) {
    return parse_nibble(file, options.verify);
  }
  // llama2.c checkpoints have no magic: the only way to recognise one is a header whose sizes
  // add up to exactly the file size, so a failure there means "neither format".
  try {
    return parse_llama2c(file);
  } catch (const FileError& e) {
    std::string why = e.what();
    const std::string prefix = path + ": ";
    if (why.compare(0, prefix.size(), prefix) == 0) why = why.substr(prefix.size());
    throw FileError(path + ": not a GGUF file or llama2.c checkpoint, nor a nibble file (as "
                    "llama2.c: " + why + ")");
  }
}

}  // namespace nibble
