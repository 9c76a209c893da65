// Strict command-line parsing for nibble's tools: every value is checked whole, and a bad
// flag ends the program with one clear line instead of a surprise later.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline long long parse_int(const std::string& flag, const std::string& s, long long lo,
                           long long hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
    throw UsageError(flag + ": expected an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + s + "'");
  }
  return v;
}

inline unsigned long long parse_u64(const std::string& flag, const std::string& s) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || *end != '\0' || errno == ERANGE) {
    throw UsageError(flag + ": expected a non-negative integer, got '" + s + "'");
  }
  return v;
}

inline float parse_float(const std::string& flag, const std::string& s, float lo, float hi) {
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v < lo || v > hi) {
    throw UsageError(flag + ": expected a number in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + s + "'");
  }
  return v;
}

// Walks argv; value() takes the argument after the current flag or fails naming it.
class Args {
 public:
  Args(int argc, char** argv, int first) : argc_(argc), argv_(argv), i_(first) {}
  bool done() const { return i_ >= argc_; }
  std::string next() { return argv_[i_++]; }
  std::string value(const std::string& flag) {
    if (i_ >= argc_) throw UsageError(flag + " needs a value");
    return argv_[i_++];
  }

 private:
  int argc_;
  char** argv_;
  int i_;
};

}  // namespace cli
