// IEEE half (f16) and bfloat16 <-> float, rounding to nearest even as PyTorch and numpy do, so a
// tensor written here reads back bit-identical to what torch's .to(dtype) would have produced.
#pragma once

#include <cstdint>

namespace bellows::formats {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);    // round to nearest even; overflow -> inf; NaN stays NaN
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);   // round to nearest even; NaN stays (quiet) NaN

}  // namespace bellows::formats
