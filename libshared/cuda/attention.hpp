// Flash-style attention on CUDA in fp32: tiled over keys with an online softmax, so the T x T
// scores are never stored. The forward keeps each query's log-sum-exp; the backward recomputes
// the probabilities from it (FlashAttention-2's recipe) in two kernels, one for dq (per query
// tile) and one for dk/dv (per key tile, summing the query heads of a kv head), so that every
// gradient element is written by one thread in a fixed order: no atomics, bit-identical reruns.
//
// Layouts as the Backend's: q, out [B*Tq, H*D]; k, v [B*Tk, KV*D]; lse, delta [B, H, Tq].
// Query i of batch row b sits at position t0 + i and sees keys s in [lo, t0 + i], lo =
// doc_start[b*Tq + i] (0 without doc_start).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace bellows::cuda {

constexpr int kMaxAttentionHeadDim = 128;

// out =, lse = (lse may be null: inference keeps nothing)
void attention_forward(cudaStream_t s, float* out, float* lse, const float* q, const float* k, const float* v,
                       const int32_t* doc_start, int B, int Tq, int Tk, int t0, int H, int KV, int D);
// dq, dk, dv =; delta [B,H,T] is scratch (rowsum(dout * out))
void attention_backward(cudaStream_t s, float* dq, float* dk, float* dv, float* delta, const float* dout,
                        const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const int32_t* doc_start, int B, int T, int H, int KV, int D);

}  // namespace bellows::cuda
