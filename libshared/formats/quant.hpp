// ggml's block formats, one row at a time: quantise (q8_0, as ggml's reference quantize_row_q8_0_ref)
// and dequantise (q4_0, q4_1, q8_0, q4_K, q5_K, q6_K), following ggml-common.h's block layouts and
// ggml-quants.c's reference (non-SIMD) code paths so that values are bit-identical to llama.cpp's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/gguf.hpp"

namespace bellows::formats {

// n must be a multiple of 32; out gets n/32 blocks of 34 bytes.
void quantize_row_q8_0(const float* x, size_t n, uint8_t* out);
// n elements (a multiple of the type's block) from `in` to `out`; f32/f16/bf16 too.
void dequantize_row(GgmlType type, const uint8_t* in, size_t n, float* out);

}  // namespace bellows::formats
