#include "formats/half.hpp"

#include <bit>

namespace bellows::formats {

namespace {

constexpr uint32_t kF32ExpMask = 0x7F800000u;
constexpr uint32_t kF32AbsMask = 0x7FFFFFFFu;
// f32 and f16 exponent biases differ by 127 - 15 = 112.
constexpr uint32_t kRebias = 112u << 23;

// Shift right by `shift` (1..31) rounding to nearest, ties to even: the rounding every
// narrowing here must share so that results match hardware and torch bit for bit.
uint32_t shift_round_even(uint32_t v, unsigned shift) {
  uint32_t q = v >> shift;
  uint32_t rem = v & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;
  return q;
}

// |f| below 2^-14: f16 subnormal (or zero) with unit 2^-24.
uint16_t f16_subnormal_from_abs(uint32_t ax) {
  if (ax <= 0x33000000u) return 0;  // <= 2^-25: the tie at 2^-25 rounds to the even 0
  uint32_t exp = ax >> 23;          // 102..112 here, so the shift below is 14..24
  uint32_t significand = (ax & 0x7FFFFFu) | 0x800000u;
  // A carry out of the top subnormal lands on 0x0400, the smallest normal: still correct.
  return static_cast<uint16_t>(shift_round_even(significand, 126 - exp));
}

}  // namespace

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) {
    // Set the quiet bit so a signalling NaN never escapes into arithmetic (as F16C does).
    uint32_t bits = mant == 0 ? 0x7F800000u : 0x7FC00000u | (mant << 13);
    return std::bit_cast<float>(sign | bits);
  }
  if (exp == 0) {
    // Subnormal: mant * 2^-24, exact in float (mant has at most 10 bits).
    float mag = static_cast<float>(mant) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(mag));
  }
  return std::bit_cast<float>(sign | ((((exp << 10) | mant) << 13) + kRebias));
}

uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t ax = x & kF32AbsMask;
  if (ax > kF32ExpMask) return sign | 0x7E00u | ((ax >> 13) & 0x3FFu);  // keep the payload's top bits
  // 65520 is halfway between 65504 (largest finite, odd significand) and 65536: even wins -> inf.
  if (ax >= 0x477FF000u) return sign | 0x7C00u;
  if (ax < 0x38800000u) return sign | f16_subnormal_from_abs(ax);
  // Normal: rebias and round away the 13 low significand bits; a carry into the exponent field
  // is the correct next binade, and the overflow bound above keeps it below inf.
  return sign | static_cast<uint16_t>(shift_round_even(ax - kRebias, 13));
}

float bf16_to_f32(uint16_t b) {
  // bf16 is the top half of an f32, so widening is exact (NaN payloads included).
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  // Rounding a NaN could carry its payload away (into inf); quieting keeps it a NaN.
  if ((x & kF32AbsMask) > kF32ExpMask) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  // Finite values that round past the largest bf16 carry into the exponent and become inf.
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace bellows::formats
