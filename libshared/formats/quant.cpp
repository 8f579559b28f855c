// Block layouts of ggml-common.h and the arithmetic of ggml-quants.c's reference (scalar) paths.
// Each dequantiser does its float operations in the reference's order (scale times scale first,
// then times the quant, then minus the min): float multiplication is not associative, and the
// point of following the reference is that a weight reads back bit-identical to llama.cpp's.
// The blocks are read byte by byte with memcpy (the file's buffers carry no alignment promise).
#include "formats/quant.hpp"

#include <cmath>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "formats/half.hpp"

namespace bellows::formats {
namespace {

constexpr size_t kQK = 32;    // elements per block of the legacy types (q4_0, q4_1, q8_0)
constexpr size_t kQKK = 256;  // elements per super-block of the k-quants

// Byte sizes of the block structs below, checked against the sizes ggml_block() reports.
constexpr size_t kQ40Bytes = 2 + kQK / 2;                       // 18
constexpr size_t kQ41Bytes = 2 + 2 + kQK / 2;                   // 20
constexpr size_t kQ80Bytes = 2 + kQK;                           // 34
constexpr size_t kQ4KBytes = 2 + 2 + 12 + kQKK / 2;             // 144
constexpr size_t kQ5KBytes = 2 + 2 + 12 + kQKK / 8 + kQKK / 2;  // 176
constexpr size_t kQ6KBytes = kQKK / 2 + kQKK / 4 + kQKK / 16 + 2;  // 210

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// q4_0, 18 bytes for 32 weights:
//   [0..2)   d        fp16 scale
//   [2..18)  qs[16]   byte j holds weight j (low nibble) and weight j+16 (high nibble), each
//                     stored as q + 8 for q in [-8, 7]
// weight = (nibble - 8) * d
void dequant_q4_0(const uint8_t* in, size_t nblocks, float* y) {
  for (size_t b = 0; b < nblocks; ++b, in += kQ40Bytes, y += kQK) {
    const float d = half_at(in);
    const uint8_t* qs = in + 2;
    for (size_t j = 0; j < kQK / 2; ++j) {
      const int lo = (qs[j] & 0x0F) - 8;
      const int hi = (qs[j] >> 4) - 8;
      y[j] = static_cast<float>(lo) * d;
      y[j + kQK / 2] = static_cast<float>(hi) * d;
    }
  }
}

// q4_1, 20 bytes for 32 weights:
//   [0..2)   d        fp16 scale
//   [2..4)   m        fp16 minimum
//   [4..20)  qs[16]   nibbles as in q4_0, unsigned in [0, 15]
// weight = nibble * d + m
void dequant_q4_1(const uint8_t* in, size_t nblocks, float* y) {
  for (size_t b = 0; b < nblocks; ++b, in += kQ41Bytes, y += kQK) {
    const float d = half_at(in);
    const float m = half_at(in + 2);
    const uint8_t* qs = in + 4;
    for (size_t j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// q8_0, 34 bytes for 32 weights:
//   [0..2)   d        fp16 scale
//   [2..34)  qs[32]   int8 quants
// weight = q * d
void dequant_q8_0(const uint8_t* in, size_t nblocks, float* y) {
  for (size_t b = 0; b < nblocks; ++b, in += kQ80Bytes, y += kQK) {
    const float d = half_at(in);
    for (size_t j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
  }
}

// The twelve scale bytes shared by q4_K and q5_K hold eight 6-bit scales sc[0..8) and eight
// 6-bit mins mn[0..8), one pair per 32-weight sub-block:
//   bytes 0..3   sc[j] in bits 0-5,  bits 6-7 = bits 4-5 of sc[j+4]
//   bytes 4..7   mn[j] in bits 0-5,  bits 6-7 = bits 4-5 of mn[j+4]
//   bytes 8..11  bits 0-3 = bits 0-3 of sc[j+4],  bits 4-7 = bits 0-3 of mn[j+4]
void scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// q4_K, 144 bytes for 256 weights in eight sub-blocks of 32:
//   [0..2)     d           fp16 super-scale of the sub-block scales
//   [2..4)     dmin        fp16 super-scale of the sub-block mins
//   [4..16)    scales[12]  six-bit sc/mn pairs (scale_min_k4)
//   [16..144)  qs[128]     four 32-byte groups; group g holds sub-block 2g in its low nibbles
//                          and sub-block 2g+1 in its high nibbles
// weight = (d * sc) * q - (dmin * mn)
void dequant_q4_k(const uint8_t* in, size_t nblocks, float* y) {
  for (size_t b = 0; b < nblocks; ++b, in += kQ4KBytes) {
    const float d = half_at(in);
    const float dmin = half_at(in + 2);
    const uint8_t* scales = in + 4;
    const uint8_t* q = in + 16;
    for (int g = 0; g < 4; ++g, q += 32) {
      uint8_t sc, mn;
      scale_min_k4(2 * g, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      scale_min_k4(2 * g + 1, scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// q5_K, 176 bytes for 256 weights in eight sub-blocks of 32:
//   [0..2)     d           fp16 super-scale of the sub-block scales
//   [2..4)     dmin        fp16 super-scale of the sub-block mins
//   [4..16)    scales[12]  six-bit sc/mn pairs (scale_min_k4)
//   [16..48)   qh[32]      bit s of qh[l] is the fifth bit of weight l of sub-block s
//   [48..176)  qs[128]     low four bits, laid out as q4_K's qs
// weight = (d * sc) * q - (dmin * mn), q in [0, 31]
void dequant_q5_k(const uint8_t* in, size_t nblocks, float* y) {
  for (size_t b = 0; b < nblocks; ++b, in += kQ5KBytes) {
    const float d = half_at(in);
    const float dmin = half_at(in + 2);
    const uint8_t* scales = in + 4;
    const uint8_t* qh = in + 16;
    const uint8_t* ql = in + 48;
    for (int g = 0; g < 4; ++g, ql += 32) {
      uint8_t sc, mn;
      scale_min_k4(2 * g, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      scale_min_k4(2 * g + 1, scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      const uint8_t bit1 = static_cast<uint8_t>(1u << (2 * g)), bit2 = static_cast<uint8_t>(2u << (2 * g));
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & bit1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & bit2) ? 16 : 0)) - m2;
    }
  }
}

// q6_K, 210 bytes for 256 weights in sixteen sub-blocks of 16, handled as two halves of 128:
//   [0..128)    ql[128]    low four bits; half h uses ql[64h..64h+64): byte l gives weight l
//                          (low nibble) and weight l+64 (high nibble) of the half
//   [128..192)  qh[64]     high two bits; half h uses qh[32h..32h+32): bits 2k..2k+1 of byte l
//                          belong to weight l + 32k of the half
//   [192..208)  scales[16] int8 scale per 16 weights
//   [208..210)  d          fp16 super-scale
// weight = (d * scale) * (q - 32), q in [0, 63]
void dequant_q6_k(const uint8_t* in, size_t nblocks, float* y) {
  for (size_t b = 0; b < nblocks; ++b, in += kQ6KBytes) {
    const uint8_t* ql = in;
    const uint8_t* qh = in + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(in + 192);
    const float d = half_at(in + 208);
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace

void quantize_row_q8_0(const float* x, size_t n, uint8_t* out) {
  BELLOWS_CHECK(n % kQK == 0, "q8_0 row of " + std::to_string(n) + " elements");
  for (size_t b = 0; b < n / kQK; ++b, x += kQK, out += kQ80Bytes) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;  // the reference's MAX(), not fmax(): same answer for finite input
    }
    // The reference derives the quants from the float scale, not from its fp16 rounding.
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(out, &dh, 2);
    for (size_t j = 0; j < kQK; ++j) {
      // |x * id| <= 127 (plus rounding) for finite input; NaN and infinity have no q8_0 form
      // (GgufWriter refuses them) and become 0 here rather than an undefined conversion.
      const float r = std::roundf(x[j] * id);
      out[2 + j] = static_cast<uint8_t>(r >= -128.0f && r <= 127.0f ? static_cast<int8_t>(r) : 0);
    }
  }
}

void dequantize_row(GgmlType type, const uint8_t* in, size_t n, float* out) {
  const GgmlBlock blk = ggml_block(static_cast<uint32_t>(type));
  BELLOWS_CHECK(blk.elems != 0, "dequantize_row: type id " + std::to_string(static_cast<uint32_t>(type)));
  BELLOWS_CHECK(n % blk.elems == 0, std::string(ggml_type_name(type)) + " row of " + std::to_string(n) + " elements");
  const size_t nblocks = n / blk.elems;
  switch (type) {
    case GgmlType::f32:
      std::memcpy(out, in, n * sizeof(float));
      return;
    case GgmlType::f16:
      for (size_t i = 0; i < n; ++i) out[i] = half_at(in + 2 * i);
      return;
    case GgmlType::bf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case GgmlType::q4_0: return dequant_q4_0(in, nblocks, out);
    case GgmlType::q4_1: return dequant_q4_1(in, nblocks, out);
    case GgmlType::q8_0: return dequant_q8_0(in, nblocks, out);
    case GgmlType::q4_k: return dequant_q4_k(in, nblocks, out);
    case GgmlType::q5_k: return dequant_q5_k(in, nblocks, out);
    case GgmlType::q6_k: return dequant_q6_k(in, nblocks, out);
  }
  BELLOWS_CHECK(false, "dequantize_row: unhandled type");
}

}  // namespace bellows::formats
