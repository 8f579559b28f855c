// Warp and block reductions for the CUDA kernels, in a fixed order (butterfly within a warp, then
// the warps' results in warp order), so a rerun gives the same bits.
#pragma once

#include <cuda_runtime.h>

#include <cmath>

namespace bellows::cuda {

constexpr unsigned kFullWarp = 0xffffffffu;

struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Every lane gets the warp's result.
template <class Op, class T>
__device__ T warp_reduce(T x, Op op) {
  for (int o = 16; o > 0; o >>= 1) x = op(x, __shfl_xor_sync(kFullWarp, x, o));
  return x;
}
template <class T>
__device__ T warp_sum(T x) { return warp_reduce(x, SumOp{}); }
__device__ inline float warp_max(float x) { return warp_reduce(x, MaxOp{}); }

// Every thread gets the block's result; `red` is shared scratch of 32 elements, `identity` the
// op's neutral value. Safe to call back to back with the same scratch.
template <class Op, class T>
__device__ T block_reduce(T x, T* red, Op op, T identity) {
  x = warp_reduce(x, op);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // an earlier call's readers are done with red
  if (lane == 0) red[warp] = x;
  __syncthreads();
  T total = identity;
  for (int w = 0; w < int(blockDim.x / 32); ++w) total = op(total, red[w]);
  return total;
}
template <class T>
__device__ T block_sum(T x, T* red) { return block_reduce(x, red, SumOp{}, T(0)); }
__device__ inline float block_max(float x, float* red) { return block_reduce(x, red, MaxOp{}, -INFINITY); }

}  // namespace bellows::cuda
