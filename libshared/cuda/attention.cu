#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "core/error.hpp"
#include "cuda/attention.hpp"
#include "cuda/reduce.cuh"

namespace bellows::cuda {
namespace {

constexpr int kWarps = 4;  // warps per block
constexpr int kTile = 32;  // keys (forward, dq) or queries (dk/dv) per tile: one per lane

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw RuntimeError(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

// Kernels above 48 KiB of shared memory must opt in (once per kernel: `done` is the caller's
// static, sized for the widest head the instantiation serves).
template <class K>
void allow_smem(K kernel, size_t bytes, bool& done) {
  if (done) return;
  done = true;
  if (bytes > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) throw RuntimeError(std::string("CUDA attention shared memory: ") + cudaGetErrorString(e));
  }
}

// Block: (query tile of kWarps * QPW rows, head, batch row); warp w owns rows w*QPW.. of the
// tile, lane j scores key j of each key tile, and owns output dims lane + 32 x (x < DP).
// Shared: Qs [BQ][D+1], Ks [kTile][D+1], Vs [kTile][D] (padding: lanes read different rows).
template <int DP, int QPW>
__global__ void attn_fwd_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                const int32_t* doc_start, int Tq, int Tk, int t0, int H, int KV, int D, float scale) {
  constexpr int BQ = kWarps * QPW;
  extern __shared__ float smem[];
  const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i0 = blockIdx.x * BQ;
  const int Dp = D + 1;
  float* Qs = smem;
  float* Ks = Qs + BQ * Dp;
  float* Vs = Ks + kTile * Dp;
  for (int idx = threadIdx.x; idx < BQ * D; idx += blockDim.x) {
    const int r = idx / D, d = idx % D, i = i0 + r;
    Qs[r * Dp + d] = i < Tq ? q[((size_t(b) * Tq + i) * H + h) * D + d] : 0.0f;
  }
  // This block's key range: from the lowest window start of its queries to its last query.
  int blo = 1 << 30, bhi = -1;
  for (int r = 0; r < BQ; ++r) {
    const int i = i0 + r;
    if (i >= Tq) break;
    blo = min(blo, doc_start ? int(doc_start[size_t(b) * Tq + i]) : 0);
    bhi = max(bhi, t0 + i);
  }
  float m[QPW], l[QPW], o[QPW][DP];
  int lo[QPW], hi[QPW];
#pragma unroll
  for (int r = 0; r < QPW; ++r) {
    const int i = i0 + warp * QPW + r;
    hi[r] = i < Tq ? t0 + i : -1;
    lo[r] = i < Tq && doc_start ? int(doc_start[size_t(b) * Tq + i]) : 0;
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int x = 0; x < DP; ++x) o[r][x] = 0.0f;
  }
  for (int s0 = (blo / kTile) * kTile; s0 <= bhi; s0 += kTile) {
    __syncthreads();  // the previous tile is consumed (and Qs written, the first time)
    for (int idx = threadIdx.x; idx < kTile * D; idx += blockDim.x) {
      const int j = idx / D, d = idx % D, s = s0 + j;
      const size_t at = ((size_t(b) * Tk + s) * KV + g) * D + d;
      Ks[j * Dp + d] = s < Tk ? k[at] : 0.0f;
      Vs[j * D + d] = s < Tk ? v[at] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < QPW; ++r) {
      if (hi[r] < s0 || lo[r] > s0 + kTile - 1 || hi[r] < lo[r]) continue;  // the same for the whole warp
      const float* qr = Qs + (warp * QPW + r) * Dp;
      const int s = s0 + lane;
      float sc = -INFINITY;
      if (s >= lo[r] && s <= hi[r]) {
        float acc = 0.0f;
        for (int d = 0; d < D; ++d) acc += qr[d] * Ks[lane * Dp + d];
        sc = acc * scale;
      }
      const float mnew = fmaxf(m[r], warp_max(sc));  // finite: the tile meets the window
      const float p = sc == -INFINITY ? 0.0f : expf(sc - mnew);
      const float corr = expf(m[r] - mnew);
      l[r] = l[r] * corr + warp_sum(p);
#pragma unroll
      for (int x = 0; x < DP; ++x) o[r][x] *= corr;
      for (int j = 0; j < kTile; ++j) {
        const float pj = __shfl_sync(kFullWarp, p, j);
#pragma unroll
        for (int x = 0; x < DP; ++x) {
          const int d = lane + 32 * x;
          if (d < D) o[r][x] += pj * Vs[j * D + d];
        }
      }
      m[r] = mnew;
    }
  }
#pragma unroll
  for (int r = 0; r < QPW; ++r) {
    const int i = i0 + warp * QPW + r;
    if (i >= Tq) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
    for (int x = 0; x < DP; ++x) {
      const int d = lane + 32 * x;
      if (d < D) out[((size_t(b) * Tq + i) * H + h) * D + d] = o[r][x] * inv;
    }
    if (lse && lane == 0) lse[(size_t(b) * H + h) * Tq + i] = m[r] + logf(l[r]);
  }
}

// delta[b,h,t] = sum_d dout * out: one warp per (token, head).
__global__ void attn_delta_kernel(float* delta, const float* dout, const float* out, int B, int T, int H, int D) {
  const size_t row = size_t(blockIdx.x) * kWarps + threadIdx.x / 32;  // (b*T + t)*H + h
  const int lane = threadIdx.x % 32;
  if (row >= size_t(B) * T * H) return;
  float acc = 0.0f;
  for (int d = lane; d < D; d += 32) acc += dout[row * D + d] * out[row * D + d];
  acc = warp_sum(acc);
  const size_t bt = row / H;
  const int h = int(row % H);
  const size_t b = bt / T, t = bt % T;
  if (lane == 0) delta[(b * H + h) * T + t] = acc;
}

// dq: blocks as the forward's. For each key tile, lane j recomputes p_j = exp(score - lse) and
// ds_j = p_j (dout . v_j - delta); dq += sum_j ds_j k_j (times the scale at the end).
// Shared: Qs, dOs [BQ][D+1], Ks, Vs [kTile][D+1].
template <int DP, int QPW>
__global__ void attn_dq_kernel(float* dq, const float* dout, const float* q, const float* k, const float* v,
                               const float* lse, const float* delta, const int32_t* doc_start, int T, int H, int KV,
                               int D, float scale) {
  constexpr int BQ = kWarps * QPW;
  extern __shared__ float smem[];
  const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i0 = blockIdx.x * BQ;
  const int Dp = D + 1;
  float* Qs = smem;
  float* dOs = Qs + BQ * Dp;
  float* Ks = dOs + BQ * Dp;
  float* Vs = Ks + kTile * Dp;
  for (int idx = threadIdx.x; idx < BQ * D; idx += blockDim.x) {
    const int r = idx / D, d = idx % D, i = i0 + r;
    const size_t at = ((size_t(b) * T + i) * H + h) * D + d;
    Qs[r * Dp + d] = i < T ? q[at] : 0.0f;
    dOs[r * Dp + d] = i < T ? dout[at] : 0.0f;
  }
  int blo = 1 << 30, bhi = -1;
  for (int r = 0; r < BQ; ++r) {
    const int i = i0 + r;
    if (i >= T) break;
    blo = min(blo, int(doc_start[size_t(b) * T + i]));
    bhi = i;
  }
  float acc[QPW][DP], L[QPW], Dl[QPW];
  int lo[QPW], hi[QPW];
#pragma unroll
  for (int r = 0; r < QPW; ++r) {
    const int i = i0 + warp * QPW + r;
    hi[r] = i < T ? i : -1;
    lo[r] = i < T ? int(doc_start[size_t(b) * T + i]) : 0;
    L[r] = i < T ? lse[(size_t(b) * H + h) * T + i] : 0.0f;
    Dl[r] = i < T ? delta[(size_t(b) * H + h) * T + i] : 0.0f;
#pragma unroll
    for (int x = 0; x < DP; ++x) acc[r][x] = 0.0f;
  }
  for (int s0 = (blo / kTile) * kTile; s0 <= bhi; s0 += kTile) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTile * D; idx += blockDim.x) {
      const int j = idx / D, d = idx % D, s = s0 + j;
      const size_t at = ((size_t(b) * T + s) * KV + g) * D + d;
      Ks[j * Dp + d] = s < T ? k[at] : 0.0f;
      Vs[j * Dp + d] = s < T ? v[at] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < QPW; ++r) {
      if (hi[r] < s0 || lo[r] > s0 + kTile - 1) continue;
      const float* qr = Qs + (warp * QPW + r) * Dp;
      const float* dor = dOs + (warp * QPW + r) * Dp;
      const int s = s0 + lane;
      float ds = 0.0f;
      if (s >= lo[r] && s <= hi[r]) {
        float sc = 0.0f, dp = 0.0f;
        for (int d = 0; d < D; ++d) {
          sc += qr[d] * Ks[lane * Dp + d];
          dp += dor[d] * Vs[lane * Dp + d];
        }
        const float p = expf(sc * scale - L[r]);
        ds = p * (dp - Dl[r]);
      }
      for (int j = 0; j < kTile; ++j) {
        const float dsj = __shfl_sync(kFullWarp, ds, j);
#pragma unroll
        for (int x = 0; x < DP; ++x) {
          const int d = lane + 32 * x;
          if (d < D) acc[r][x] += dsj * Ks[j * Dp + d];
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < QPW; ++r) {
    const int i = i0 + warp * QPW + r;
    if (i >= T) continue;
#pragma unroll
    for (int x = 0; x < DP; ++x) {
      const int d = lane + 32 * x;
      if (d < D) dq[((size_t(b) * T + i) * H + h) * D + d] = acc[r][x] * scale;
    }
  }
}

// dk, dv: block per (key tile of kWarps * KPW keys, kv head, batch row); warp w owns keys
// w*KPW.. of the tile. Over the query heads of the kv head and the query tiles from the first
// key on, lane j takes query j of the tile: p_j, ds_j as in dq; dv += sum_j p_j dout_j,
// dk += sum_j ds_j q_j (times the scale at the end).
// Shared: Ks, Vs [BK][D+1], Qs, dOs [kTile][D+1], then lse, delta [kTile] and doc_start [kTile].
template <int DP, int KPW>
__global__ void attn_dkdv_kernel(float* dk, float* dv, const float* dout, const float* q, const float* k,
                                 const float* v, const float* lse, const float* delta, const int32_t* doc_start, int T,
                                 int H, int KV, int D, float scale) {
  constexpr int BK = kWarps * KPW;
  extern __shared__ float smem[];
  const int b = blockIdx.z, g = blockIdx.y, group = H / KV;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int s0 = blockIdx.x * BK;
  const int Dp = D + 1;
  float* Ks = smem;
  float* Vs = Ks + BK * Dp;
  float* Qs = Vs + BK * Dp;
  float* dOs = Qs + kTile * Dp;
  float* Ls = dOs + kTile * Dp;
  float* Dls = Ls + kTile;
  int* DSs = reinterpret_cast<int*>(Dls + kTile);
  for (int idx = threadIdx.x; idx < BK * D; idx += blockDim.x) {
    const int j = idx / D, d = idx % D, s = s0 + j;
    const size_t at = ((size_t(b) * T + s) * KV + g) * D + d;
    Ks[j * Dp + d] = s < T ? k[at] : 0.0f;
    Vs[j * Dp + d] = s < T ? v[at] : 0.0f;
  }
  const int s_last = min(s0 + BK, T) - 1;
  float ak[KPW][DP], av[KPW][DP];
#pragma unroll
  for (int r = 0; r < KPW; ++r)
#pragma unroll
    for (int x = 0; x < DP; ++x) ak[r][x] = av[r][x] = 0.0f;
  for (int hh = 0; hh < group; ++hh) {
    const int h = g * group + hh;
    for (int q0 = s0; q0 < T; q0 += kTile) {
      __syncthreads();  // the previous query tile is consumed (and Ks, Vs written)
      if (threadIdx.x < kTile) {
        const int t = q0 + int(threadIdx.x);
        Ls[threadIdx.x] = t < T ? lse[(size_t(b) * H + h) * T + t] : 0.0f;
        Dls[threadIdx.x] = t < T ? delta[(size_t(b) * H + h) * T + t] : 0.0f;
        DSs[threadIdx.x] = t < T ? int(doc_start[size_t(b) * T + t]) : (1 << 30);
      }
      // Skip query tiles none of whose windows reach back to this block's keys (with packed
      // documents, most of a long row's) before loading them.
      const int needed = __syncthreads_or(threadIdx.x < kTile && DSs[threadIdx.x] <= s_last);
      if (!needed) continue;
      for (int idx = threadIdx.x; idx < kTile * D; idx += blockDim.x) {
        const int j = idx / D, d = idx % D, t = q0 + j;
        const size_t at = ((size_t(b) * T + t) * H + h) * D + d;
        Qs[j * Dp + d] = t < T ? q[at] : 0.0f;
        dOs[j * Dp + d] = t < T ? dout[at] : 0.0f;
      }
      __syncthreads();
      const int t = q0 + lane;
#pragma unroll
      for (int r = 0; r < KPW; ++r) {
        const int s = s0 + warp * KPW + r;
        if (s >= T) continue;  // the same for the whole warp
        const float* kr = Ks + (warp * KPW + r) * Dp;
        const float* vr = Vs + (warp * KPW + r) * Dp;
        float p = 0.0f, ds = 0.0f;
        if (t < T && t >= s && DSs[lane] <= s) {
          float sc = 0.0f, dp = 0.0f;
          for (int d = 0; d < D; ++d) {
            sc += Qs[lane * Dp + d] * kr[d];
            dp += dOs[lane * Dp + d] * vr[d];
          }
          p = expf(sc * scale - Ls[lane]);
          ds = p * (dp - Dls[lane]);
        }
        for (int j = 0; j < kTile; ++j) {
          const float pj = __shfl_sync(kFullWarp, p, j), dsj = __shfl_sync(kFullWarp, ds, j);
#pragma unroll
          for (int x = 0; x < DP; ++x) {
            const int d = lane + 32 * x;
            if (d < D) {
              av[r][x] += pj * dOs[j * Dp + d];
              ak[r][x] += dsj * Qs[j * Dp + d];
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < KPW; ++r) {
    const int s = s0 + warp * KPW + r;
    if (s >= T) continue;
#pragma unroll
    for (int x = 0; x < DP; ++x) {
      const int d = lane + 32 * x;
      if (d < D) {
        const size_t at = ((size_t(b) * T + s) * KV + g) * D + d;
        dk[at] = ak[r][x] * scale;
        dv[at] = av[r][x];
      }
    }
  }
}

constexpr int kFwdQPW = 4, kDqQPW = 4, kKPW = 8;

template <int DP>
void forward_dp(cudaStream_t st, float* out, float* lse, const float* q, const float* k, const float* v,
                const int32_t* ds, int B, int Tq, int Tk, int t0, int H, int KV, int D) {
  constexpr int BQ = kWarps * kFwdQPW;
  const size_t smem = sizeof(float) * size_t(BQ * (D + 1) + kTile * (D + 1) + kTile * D);
  auto kern = attn_fwd_kernel<DP, kFwdQPW>;
  static bool opted = false;
  allow_smem(kern, sizeof(float) * size_t(BQ * (32 * DP + 1) + kTile * (32 * DP + 1) + kTile * 32 * DP), opted);
  const dim3 grid(unsigned((Tq + BQ - 1) / BQ), unsigned(H), unsigned(B));
  kern<<<grid, kWarps * 32, smem, st>>>(out, lse, q, k, v, ds, Tq, Tk, t0, H, KV, D, 1.0f / sqrtf(float(D)));
  check_launch("attention forward");
}

template <int DP>
void backward_dp(cudaStream_t st, float* dq, float* dk, float* dv, const float* delta, const float* dout,
                 const float* q, const float* k, const float* v, const float* lse, const int32_t* ds, int B, int T,
                 int H, int KV, int D) {
  const float scale = 1.0f / sqrtf(float(D));
  {
    constexpr int BQ = kWarps * kDqQPW;
    const size_t smem = sizeof(float) * size_t(2 * BQ * (D + 1) + 2 * kTile * (D + 1));
    auto kern = attn_dq_kernel<DP, kDqQPW>;
    static bool opted = false;
    allow_smem(kern, sizeof(float) * size_t(2 * BQ * (32 * DP + 1) + 2 * kTile * (32 * DP + 1)), opted);
    const dim3 grid(unsigned((T + BQ - 1) / BQ), unsigned(H), unsigned(B));
    kern<<<grid, kWarps * 32, smem, st>>>(dq, dout, q, k, v, lse, delta, ds, T, H, KV, D, scale);
    check_launch("attention backward (dq)");
  }
  {
    constexpr int BK = kWarps * kKPW;
    const size_t smem = sizeof(float) * size_t(2 * BK * (D + 1) + 2 * kTile * (D + 1) + 3 * kTile);
    auto kern = attn_dkdv_kernel<DP, kKPW>;
    static bool opted = false;
    allow_smem(kern, sizeof(float) * size_t(2 * BK * (32 * DP + 1) + 2 * kTile * (32 * DP + 1) + 3 * kTile), opted);
    const dim3 grid(unsigned((T + BK - 1) / BK), unsigned(KV), unsigned(B));
    kern<<<grid, kWarps * 32, smem, st>>>(dk, dv, dout, q, k, v, lse, delta, ds, T, H, KV, D, scale);
    check_launch("attention backward (dk, dv)");
  }
}

void check_head_dim(int D) {
  if (D < 1 || D > kMaxAttentionHeadDim)
    throw RuntimeError("CUDA attention supports head dimensions up to " + std::to_string(kMaxAttentionHeadDim) +
                       " (this model's is " + std::to_string(D) + ")");
}

}  // namespace

void attention_forward(cudaStream_t s, float* out, float* lse, const float* q, const float* k, const float* v,
                       const int32_t* doc_start, int B, int Tq, int Tk, int t0, int H, int KV, int D) {
  check_head_dim(D);
  if (B == 0 || Tq == 0) return;
  // Two register layouts only (head dims up to 64: Llama 3.2 1B/3B, SmolLM; up to 128: Llama 3
  // 8B/70B): each instantiation costs build time on every machine.
  if (D <= 64)
    forward_dp<2>(s, out, lse, q, k, v, doc_start, B, Tq, Tk, t0, H, KV, D);
  else
    forward_dp<4>(s, out, lse, q, k, v, doc_start, B, Tq, Tk, t0, H, KV, D);
}

void attention_backward(cudaStream_t s, float* dq, float* dk, float* dv, float* delta, const float* dout,
                        const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const int32_t* doc_start, int B, int T, int H, int KV, int D) {
  check_head_dim(D);
  if (B == 0 || T == 0) return;
  const size_t rows = size_t(B) * T * H;
  attn_delta_kernel<<<unsigned((rows + kWarps - 1) / kWarps), kWarps * 32, 0, s>>>(delta, dout, out, B, T, H, D);
  check_launch("attention backward (delta)");
  if (D <= 64)
    backward_dp<2>(s, dq, dk, dv, delta, dout, q, k, v, lse, doc_start, B, T, H, KV, D);
  else
    backward_dp<4>(s, dq, dk, dv, delta, dout, q, k, v, lse, doc_start, B, T, H, KV, D);
}

}  // namespace bellows::cuda
