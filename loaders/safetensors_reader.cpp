// safetensors reader (format: header length u64, JSON header, data). The JSON is parsed with
// nlohmann-json without exceptions; everything the header claims is validated before a tensor
// view is made.
#include "loaders/safetensors_reader.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "loaders/byte_reader.h"
#include "loaders/mapped_file.h"

namespace nibble {
namespace {

using json = nlohmann::json;

// The safetensors specification caps the header at 100 MB; real ones are a few hundred KB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Real headers nest three levels (root → tensor → shape); anything deep is hostile, and
// refusing it before parsing keeps any recursion in the parser bounded.
constexpr int kMaxDepth = 8;
constexpr size_t kMaxDims = 4;

struct Dtype {
  const char* name;
  TensorType type;
  uint64_t bytes;
};
constexpr Dtype kDtypes[] = {
    {"F32", TensorType::F32, 4}, {"F16", TensorType::F16, 2}, {"BF16", TensorType::BF16, 2}};

// Max nesting of [ and { outside strings, stopping early once above the limit.
int nesting_depth(const char* p, uint64_t n) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (uint64_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > kMaxDepth) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

std::string dims_text(const json& shape) { return shape.dump(); }

}  // namespace

ModelFile read_safetensors(const std::string& path, const OpenOptions& options) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path, options.use_mmap, options.progress);
  ByteReader r(file->data(), file->size(), path);
  ModelFile mf;
  mf.path = path;
  mf.format = "safetensors";

  const uint64_t header_len = r.u64("header length");
  if (header_len > kMaxHeaderBytes) {
    r.fail("header length " + std::to_string(header_len) + " is above the format's limit of " +
           std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (header_len > r.remaining()) {
    r.fail("truncated: header length " + std::to_string(header_len) + " but only " +
           std::to_string(r.remaining()) + " bytes follow (file size " +
           std::to_string(file->size()) + ")");
  }
  const char* text = reinterpret_cast<const char*>(r.bytes(header_len, "header"));
  const uint64_t data_start = r.pos();
  const uint64_t data_size = r.remaining();
  if (header_len < 2 || text[0] != '{') r.fail("header is not a JSON object");
  if (nesting_depth(text, header_len) > kMaxDepth) {
    r.fail("header JSON nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  const json header = json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) r.fail("header is not valid JSON");
  if (!header.is_object()) r.fail("header is not a JSON object");

  std::vector<std::pair<uint64_t, uint64_t>> extents;  // [begin, end) within the data section
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) r.fail("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) r.fail("__metadata__ '" + key + "' is not a string");
        mf.meta.set_string(key, value.get<std::string>());
      }
      continue;
    }
    r.set_context("tensor '" + name + "'");
    if (!entry.is_object()) r.fail("entry is not an object");
    if (name.empty()) r.fail("empty tensor name");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) r.fail("dtype is missing or not a string");
    if (shape_it == entry.end() || !shape_it->is_array()) r.fail("shape is missing or not an array");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      r.fail("data_offsets is missing or not [begin, end]");
    }
    const std::string dtype = dtype_it->get<std::string>();
    const Dtype* dt = nullptr;
    for (const Dtype& d : kDtypes) {
      if (dtype == d.name) dt = &d;
    }
    if (dt == nullptr) r.fail("dtype " + dtype + " is not supported (F32, F16 or BF16)");

    const json& shape = *shape_it;
    if (shape.size() > kMaxDims) {
      r.fail("shape " + dims_text(shape) + " has more than " + std::to_string(kMaxDims) + " dims");
    }
    TensorInfo t;
    t.name = name;
    t.type = dt->type;
    uint64_t n_elements = 1;
    for (const json& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() == 0) {
        r.fail("shape " + dims_text(shape) + " has a dimension that is not a positive integer");
      }
      const uint64_t v = d.get<uint64_t>();
      if (!checked_mul(n_elements, v, &n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        r.fail("shape " + dims_text(shape) + " is absurd (element count overflows)");
      }
      t.dims.insert(t.dims.begin(), v);  // safetensors is outermost first; nibble innermost first
    }
    if (t.dims.empty()) t.dims.push_back(1);  // a scalar
    const json& offs = *offsets_it;
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      r.fail("data_offsets " + offs.dump() + " are not non-negative integers");
    }
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      r.fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
             "] are outside the " + std::to_string(data_size) + "-byte data section (file size " +
             std::to_string(file->size()) + ")");
    }
    uint64_t nbytes = 0;
    if (!checked_mul(n_elements, dt->bytes, &nbytes) || nbytes != end - begin) {
      r.fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
             std::to_string(end - begin) + " bytes but " + dtype + " " + dims_text(shape) +
             " needs " + (nbytes == 0 ? std::string("more") : std::to_string(nbytes)));
    }
    t.nbytes = nbytes;
    t.file_offset = data_start + begin;
    t.data = file->data() + t.file_offset;
    extents.emplace_back(begin, end);
    mf.tensors.push_back(std::move(t));
    r.clear_context();
  }

  std::vector<size_t> order(extents.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return extents[a] < extents[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = extents[order[k - 1]];
    const auto& cur = extents[order[k]];
    if (cur.first < prev.second && cur.first != cur.second) {
      r.fail("tensor '" + mf.tensors[order[k]].name + "' data_offsets overlap tensor '" +
             mf.tensors[order[k - 1]].name + "'");
    }
  }
  mf.mapping = std::move(file);
  return mf;
}

}  // namespace nibble
