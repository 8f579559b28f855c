// exp for the hot loops (softmax, cross-entropy, SiLU): Cephes' single-precision polynomial
// after reduction by powers of two, written so the compiler vectorises the loops that call it
// (glibc's expf is a function call per element). Relative error about 2e-7 over the clamped
// range; inputs below -87.3 give ~1e-38 instead of 0, above 88 saturate at e^88; NaN stays NaN.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace bellows::nn {

inline float fast_expf(float x) {
  x = std::min(std::max(x, -87.3f), 88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // x - n ln2, in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return e * two_n;
}

}  // namespace bellows::nn
