#include "quant/float_weights.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "loaders/nibble_format.h"

namespace nibble {

FloatTensor load_float_tensor(const ModelFile& src, const std::string& name) {
  const TensorInfo& t = src.tensor(name);
  if (!can_dequantize(t.type)) {
    throw FileError(src.path + ": tensor '" + name + "' has type " +
                    type_name(static_cast<uint32_t>(t.type)) + ", which cannot be dequantized");
  }
  FloatTensor f;
  f.cols = static_cast<int64_t>(t.row_length());
  f.rows = static_cast<int64_t>(t.n_rows());
  const uint64_t rb = row_bytes(static_cast<uint32_t>(t.type), t.row_length());
  std::vector<uint8_t> unpacked;
  const uint8_t* bytes = t.data;
  if (t.layout != 0) {
    unpacked.resize(t.n_rows() * rb);
    nbl::unpack_packed4(t.type, t.dims, t.data, unpacked.data());
    bytes = unpacked.data();
  }
  f.v.resize(static_cast<size_t>(f.rows * f.cols));
  for (int64_t r = 0; r < f.rows; ++r) dequantize_row(t.type, bytes + r * rb, f.cols, f.row(r));
  return f;
}

FloatTensor& float_tensor(FloatTensors& w, const ModelFile& src, const std::string& name) {
  auto it = w.find(name);
  if (it == w.end()) it = w.emplace(name, load_float_tensor(src, name)).first;
  return it->second;
}

namespace {

template <typename Tensors>
ModelFile overlay(const ModelFile& src, Tensors& replaced, bool release) {
  ModelFile m;
  m.path = src.path;
  m.format = src.format;
  m.version = src.version;
  m.version_minor = src.version_minor;
  m.meta = src.meta;
  m.mapping = src.mapping;
  m.extra_mappings = src.extra_mappings;
  for (const TensorInfo& t : src.tensors) {
    TensorInfo c = t;
    const auto it = replaced.find(t.name);
    if (it != replaced.end()) {
      std::vector<uint8_t> bytes(it->second.v.size() * sizeof(float));
      std::memcpy(bytes.data(), it->second.v.data(), bytes.size());
      c.type = TensorType::F32;
      c.layout = 0;
      c.has_checksum = false;
      c.nbytes = bytes.size();
      c.data = bytes.data();  // the heap block moves with the vector
      m.owned_buffers.push_back(std::move(bytes));
      if constexpr (!std::is_const_v<Tensors>) {
        if (release) replaced.erase(it);
      }
    }
    m.tensors.push_back(std::move(c));
  }
  return m;
}

}  // namespace

void add_float_tensor_after(ModelFile& m, const std::string& after, const std::string& name, FloatTensor t) {
  if (m.find_tensor(name)) throw std::invalid_argument("tensor '" + name + "' exists already");
  auto it = std::find_if(m.tensors.begin(), m.tensors.end(), [&](const TensorInfo& x) { return x.name == after; });
  if (it == m.tensors.end()) throw std::invalid_argument("no tensor '" + after + "' to insert after");
  std::vector<uint8_t> bytes(t.v.size() * sizeof(float));
  std::memcpy(bytes.data(), t.v.data(), bytes.size());
  TensorInfo info;
  info.name = name;
  info.type = TensorType::F32;
  info.dims = {static_cast<uint64_t>(t.cols), static_cast<uint64_t>(t.rows)};
  info.nbytes = bytes.size();
  info.data = bytes.data();
  m.owned_buffers.push_back(std::move(bytes));
  m.tensors.insert(it + 1, std::move(info));
}

ModelFile with_float_tensors(const ModelFile& src, const FloatTensors& replaced) {
  return overlay(src, replaced, false);
}

ModelFile with_float_tensors(const ModelFile& src, FloatTensors&& replaced) {
  return overlay(src, replaced, true);
}

}  // namespace nibble
