// Shared by the reference and the dispatched ops. Not part of the public interface.
#pragma once

#include <cmath>
#include <cstdint>

namespace nibble::detail {

// Rotary angles are computed in double by both implementations, so the two can only differ in
// how they apply the rotation.
inline void rope_cos_sin(int64_t pair_begin, int64_t pair_end, int64_t rot_dim, int64_t pos, float base,
                         float freq_scale, float* cos_out, float* sin_out) {
  for (int64_t i = pair_begin; i < pair_end; ++i) {
    const double theta = static_cast<double>(pos) * freq_scale *
                         std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
    cos_out[i - pair_begin] = static_cast<float>(std::cos(theta));
    sin_out[i - pair_begin] = static_cast<float>(std::sin(theta));
  }
}

// Pairs per chunk of angles kept on the stack.
constexpr int64_t kRopeChunk = 64;

}  // namespace nibble::detail
