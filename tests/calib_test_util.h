// Shared by the calibrated-quantization tests that run the bundled model.
#pragma once

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "runtime/session.h"

namespace nibble::testing_calib {

// Writes `line` 40 times to TempDir()/<pid>_name: a calibration text of a few thousand tokens.
inline std::string write_calibration_text(const std::string& dir, const std::string& name,
                                          const std::string& line) {
  // The process id in the name: ctest runs the tests of one binary as parallel processes, and
  // two writing one path let a reader see it truncated (0 tokens).
  const std::string path = dir + "/" + std::to_string(::getpid()) + "_" + name;
  std::ofstream out(path);
  for (int i = 0; i < 40; ++i) out << line << "\n";
  return path;
}

// Every token's logits for ids, evaluated at once (2 threads, context 64).
inline std::vector<float> logits_of(const ModelFile& f, const std::vector<int32_t>& ids) {
  auto model = load_model(f);
  SessionOptions o;
  o.n_ctx = 64;
  o.n_threads = 2;
  Session s(*model, o);
  std::vector<float> out(ids.size() * model->config().n_vocab);
  s.eval_all_logits(ids.data(), static_cast<int64_t>(ids.size()), out.data());
  return out;
}

}  // namespace nibble::testing_calib
