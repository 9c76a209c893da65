#include "runtime/logits_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include "loaders/model_file.h"

namespace nibble {
namespace {

constexpr char kMagic[4] = {'N', 'B', 'L', 'G'};
constexpr uint32_t kVersion = 1;
constexpr double kRange = 30.0;  // nats below the top token that are kept

template <typename T>
void put(std::ofstream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace

LogitsWriter::LogitsWriter(const std::string& path, const LogitsFileHeader& h,
                           const std::vector<int32_t>& chunk_tokens)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc), h_(h), codes_(h.n_vocab) {
  if (!out_) throw FileError(path + ": cannot open for writing");
  out_.write(kMagic, 4);
  put(out_, kVersion);
  put(out_, h.n_vocab);
  put(out_, h.n_ctx);
  put(out_, h.n_chunks);
  put(out_, h.first);
  out_.write(reinterpret_cast<const char*>(chunk_tokens.data()),
             static_cast<std::streamsize>(chunk_tokens.size() * sizeof(int32_t)));
}

void LogitsWriter::write(const std::vector<double>& logp, int32_t target) {
  const double top = *std::max_element(logp.begin(), logp.end());
  const float floor = static_cast<float>(top - kRange);
  const float step = static_cast<float>(kRange / 65534.0);
  for (size_t i = 0; i < logp.size(); ++i) {
    const double c = std::round((logp[i] - floor) / step);
    codes_[i] = c < 1 ? 0 : static_cast<uint16_t>(std::min(c, 65535.0));
  }
  const float target_lp = static_cast<float>(logp[target]);
  put(out_, floor);
  put(out_, step);
  put(out_, target_lp);
  out_.write(reinterpret_cast<const char*>(codes_.data()),
             static_cast<std::streamsize>(codes_.size() * sizeof(uint16_t)));
  if (!out_) throw FileError(path_ + ": write failed (disk full?)");
}

void LogitsWriter::close() {
  out_.close();
  if (!out_) throw FileError(path_ + ": write failed");
}

LogitsReader::LogitsReader(const std::string& path, const LogitsFileHeader& e,
                           const std::vector<int32_t>& chunk_tokens)
    : path_(path), in_(path, std::ios::binary), h_(e), codes_(e.n_vocab) {
  if (!in_) throw FileError(path + ": cannot open reference logits");
  char magic[4] = {};
  uint32_t f[5] = {};
  in_.read(magic, 4);
  in_.read(reinterpret_cast<char*>(f), sizeof f);
  if (!in_ || std::memcmp(magic, kMagic, 4) != 0) {
    throw FileError(path + ": not a nibble logits file (bad magic)");
  }
  if (f[0] != kVersion) throw FileError(path + ": unsupported version " + std::to_string(f[0]));
  if (f[1] != e.n_vocab) {
    throw FileError(path + ": vocabulary of " + std::to_string(f[1]) +
                             " tokens, the model has " + std::to_string(e.n_vocab));
  }
  if (f[2] != e.n_ctx || f[4] != e.first) {
    throw FileError(path + ": made with -c " + std::to_string(f[2]) + ", this run uses -c " +
                             std::to_string(e.n_ctx));
  }
  if (f[3] < e.n_chunks) {
    throw FileError(path + ": holds " + std::to_string(f[3]) + " chunks, " +
                             std::to_string(e.n_chunks) + " needed");
  }
  std::vector<int32_t> tokens(static_cast<size_t>(f[3]) * f[2]);
  in_.read(reinterpret_cast<char*>(tokens.data()),
           static_cast<std::streamsize>(tokens.size() * sizeof(int32_t)));
  if (!in_) throw FileError(path + ": truncated in the token list");
  if (!std::equal(chunk_tokens.begin(), chunk_tokens.end(), tokens.begin())) {
    throw FileError(path + ": made from different text (tokens differ)");
  }
}

void LogitsReader::read(std::vector<double>& logp, double& target_logp) {
  float floor = 0, step = 0, tlp = 0;
  in_.read(reinterpret_cast<char*>(&floor), sizeof floor);
  in_.read(reinterpret_cast<char*>(&step), sizeof step);
  in_.read(reinterpret_cast<char*>(&tlp), sizeof tlp);
  in_.read(reinterpret_cast<char*>(codes_.data()),
           static_cast<std::streamsize>(codes_.size() * sizeof(uint16_t)));
  if (!in_) throw FileError(path_ + ": truncated (fewer positions than the text needs)");
  logp.resize(codes_.size());
  double sum = 0;
  for (size_t i = 0; i < codes_.size(); ++i) {
    logp[i] = codes_[i] == 0 ? -std::numeric_limits<double>::infinity()
                             : floor + static_cast<double>(codes_[i]) * step;
    if (codes_[i]) sum += std::exp(logp[i]);
  }
  // Renormalise what the codes kept, so the stored distribution sums to one.
  const double lse = std::log(sum);
  for (double& v : logp) v -= lse;
  target_logp = tlp;
}

}  // namespace nibble
