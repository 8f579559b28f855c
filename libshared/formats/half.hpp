// IEEE half (f16) and bfloat16 <-> float, rounding to nearest even as PyTorch and numpy do, so a
// tensor written here reads back bit-identical to what torch's .to(dtype) would have produced
// (NaNs aside: they stay quiet NaNs with their sign and the payload's top bits, as x86's F16C
// does, where torch's scalar bf16 path writes one canonical NaN).
#pragma once

#include <cstdint>

namespace bellows::formats {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);    // round to nearest even; overflow -> inf; NaN stays NaN
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);   // round to nearest even; NaN stays (quiet) NaN

}  // namespace bellows::formats
