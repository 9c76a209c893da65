// Reference distributions saved to disk (`perplexity --save-logits`) so that comparing many
// quantized files against one reference does not re-run the reference each time.
//
// Layout (little-endian): "NBLG", u32 version 1, u32 n_vocab, u32 n_ctx, u32 n_chunks,
// u32 first (first scored position of a chunk), then the chunk tokens (n_chunks·n_ctx i32, so
// a reader can prove it scores the same text), then for every scored position: f32 floor,
// f32 step, f32 log p(target), u16 code[n_vocab]. code 0 means "below floor" (p < e^−30 of the
// top token: dropped), otherwise log p = floor + code·step. 16 bits over a 30-nat range
// resolve log-probabilities to 4.6e-4 nats; the target's log p is kept exactly for PPL.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace nibble {

struct LogitsFileHeader {
  uint32_t n_vocab = 0, n_ctx = 0, n_chunks = 0, first = 0;
};

class LogitsWriter {
 public:
  // Throws FileError naming the path when it cannot be written.
  LogitsWriter(const std::string& path, const LogitsFileHeader& h,
               const std::vector<int32_t>& chunk_tokens);
  void write(const std::vector<double>& logp, int32_t target);
  void close();

 private:
  std::string path_;
  std::ofstream out_;
  LogitsFileHeader h_;
  std::vector<uint16_t> codes_;
};

class LogitsReader {
 public:
  // Throws FileError naming the path and field for a missing, foreign or truncated
  // file, or one made from other tokens / another vocabulary / another -c.
  LogitsReader(const std::string& path, const LogitsFileHeader& expected,
               const std::vector<int32_t>& chunk_tokens);
  // Next position's normalised log-probabilities (−inf below the floor) and the target's.
  void read(std::vector<double>& logp, double& target_logp);

 private:
  std::string path_;
  std::ifstream in_;
  LogitsFileHeader h_;
  std::vector<uint16_t> codes_;
};

}  // namespace nibble
