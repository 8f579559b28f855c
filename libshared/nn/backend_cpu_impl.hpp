// The fast CPU backend, included by backend_cpu_base.cpp (baseline x86-64) and
// backend_cpu_v3.cpp (compiled with -march=x86-64-v3: AVX2 + FMA); make_cpu_backend picks the
// best the processor runs. BELLOWS_CPU_VARIANT names the factory each defines.
//
// The kernels: matmuls through OpenBLAS sgemm (its OpenMP build, so BLAS and our own
// loops share one pool of threads instead of two sets spinning against each other), everything
// else as OpenMP loops over rows whose inner loops the compiler vectorises. Reductions across
// rows (weight gradients of norms and embeddings, sums of squares) go through per-thread or
// per-chunk partials added in a fixed order: same thread count, same bits.
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "nn/arena.hpp"
#include "nn/backend.hpp"
#include "nn/rng.hpp"
#include "nn/fast_math.hpp"

extern "C" void openblas_set_num_threads(int);
#ifndef BELLOWS_CPU_VARIANT
#error "define BELLOWS_CPU_VARIANT to the factory's name before including this file"
#endif

namespace bellows::nn {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) {
    threads_ = threads > 0 ? threads : omp_get_num_procs();
    omp_set_num_threads(threads_);
    openblas_set_num_threads(threads_);
  }
  std::string name() const override { return "cpu"; }
  int threads() const override { return threads_; }

  float* alloc(size_t n) override { return static_cast<float*>(arena_.alloc_bytes(n * sizeof(float))); }
  int32_t* alloc_int(size_t n) override { return static_cast<int32_t*>(arena_.alloc_bytes(n * sizeof(int32_t))); }
  size_t bytes_allocated() const override { return arena_.bytes(); }
  void zero(float* p, size_t n) override {
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks(n); ++b) std::memset(p + b * kBlock, 0, block_len(n, b) * sizeof(float));
  }
  void copy(float* dst, const float* src, size_t n) override { std::memmove(dst, src, n * sizeof(float)); }
  void upload(float* dst, const float* host, size_t n) override { copy(dst, host, n); }
  void upload_int(int32_t* dst, const int32_t* host, size_t n) override { std::memmove(dst, host, n * sizeof(int32_t)); }
  void download(float* host, const float* src, size_t n) override { copy(host, src, n); }

  void embedding_fwd(float* out, const int32_t* ids, const float* wte, int N, int C) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      if (ids[n] < 0)
        std::memset(out + size_t(n) * C, 0, size_t(C) * sizeof(float));
      else
        std::memcpy(out + size_t(n) * C, wte + size_t(ids[n]) * C, size_t(C) * sizeof(float));
    }
  }
  void embedding_bwd(float* dwte, const float* dout, const int32_t* ids, int N, int C) override {
    // Threads own column ranges, so two rows with the same id never race and each column sums
    // its rows in order.
#pragma omp parallel
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int c0 = C * t / nt, c1 = C * (t + 1) / nt;
      for (int n = 0; n < N; ++n) {
        if (ids[n] < 0) continue;
        float* d = dwte + size_t(ids[n]) * C;
        const float* g = dout + size_t(n) * C;
#pragma omp simd
        for (int c = c0; c < c1; ++c) d[c] += g[c];
      }
    }
  }

  void rmsnorm_fwd(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* x = inp + size_t(n) * C;
      float* y = out + size_t(n) * C;
      float ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int c = 0; c < C; ++c) ss += x[c] * x[c];
      const float r = 1.0f / std::sqrt(ss / float(C) + eps);
      rstd[n] = r;
#pragma omp simd
      for (int c = 0; c < C; ++c) y[c] = x[c] * r * w[c];
    }
  }
  void rmsnorm_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                   int N, int C) override {
    float* partial = scratch(size_t(threads_) * C);
    std::memset(partial, 0, size_t(threads_) * C * sizeof(float));
#pragma omp parallel
    {
      float* pdw = partial + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
      for (int n = 0; n < N; ++n) {
        const float* x = inp + size_t(n) * C;
        const float* dy = dout + size_t(n) * C;
        float* dx = dinp + size_t(n) * C;
        const float r = rstd[n];
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; ++c) dot += dy[c] * w[c] * x[c];
        const float mean = dot * r / float(C);
#pragma omp simd
        for (int c = 0; c < C; ++c) {
          const float xhat = x[c] * r;
          dx[c] += r * (dy[c] * w[c] - xhat * mean);
          pdw[c] += dy[c] * xhat;
        }
      }
    }
    if (dw)
      for (int t = 0; t < threads_; ++t) {
        const float* p = partial + size_t(t) * C;
        for (int c = 0; c < C; ++c) dw[c] += p[c];
      }
  }

  // A product with one side as thin as a LoRA rank: OpenBLAS's threads cost more than they bring
  // there (measured: LoRA on all projections ran 0.85x full SFT's speed on 2 threads, 1.17x on
  // one), so such products run on one BLAS thread.
  struct ThinProduct {
    ThinProduct(int threads, int a, int b, int c) : on(threads > 1 && std::min({a, b, c}) <= 64), n(threads) {
      if (on) openblas_set_num_threads(1);
    }
    ~ThinProduct() {
      if (on) openblas_set_num_threads(n);
    }
    ThinProduct(const ThinProduct&) = delete;
    ThinProduct& operator=(const ThinProduct&) = delete;
    bool on;
    int n;
  };
  void matmul_fwd(float* out, const float* inp, const float* w, int N, int I, int O) override {
    ThinProduct thin(threads_, N, I, O);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, inp, I, w, I, 0.0f, out, O);
  }
  void matmul_fwd_acc(float* out, const float* inp, const float* w, int N, int I, int O) override {
    ThinProduct thin(threads_, N, I, O);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, inp, I, w, I, 1.0f, out, O);
  }
  void matmul_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, int N, int I, int O,
                  bool accumulate_dinp) override {
    ThinProduct thin(threads_, N, I, O);
    if (dinp)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O, 1.0f, dout, O, w, I, accumulate_dinp ? 1.0f : 0.0f,
                  dinp, I);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dw, I);
  }

  void rope_fwd(float* x, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) override {
    rope(x, pos, cos, sin, N, nh, D, 1.0f);
  }
  void rope_bwd(float* dx, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) override {
    rope(dx, pos, cos, sin, N, nh, D, -1.0f);  // rotation by -angle
  }

  // Attention as small matrix products per (sequence, head), a block of kAttRows queries at a
  // time: S = scale Q K^T over the keys the block can see (up to its last query, from the
  // earliest document start among its queries), masked softmax in place (the probabilities are
  // what the backward needs), O = P V over the same keys. The blocks skip most of the products
  // above the diagonal that a whole T x T square computes and throws away: with nb blocks they
  // cover (nb + 1) / (2 nb) of it (9/16 at T = 256), and still run far faster than dot products
  // one key at a time. Tasks run in parallel; OpenBLAS runs single-threaded inside them (its
  // small-matrix kernels at these sizes). P is written whole: 0 outside each query's window.
  // 32 rows: on the benchmark's model (T = 256, D = 32) attention forward + backward took
  // 39 ms per step with 32, 41 with 64, 49 with 128 and 57 with the whole square.
  static constexpr int kAttRows = 32;
  // The first key any query of rows [r0, r1) of sequence b sees (document starts may be anywhere).
  static int first_key(const int32_t* doc_start, int b, int T, int r0, int r1) {
    int k0 = r1 - 1;
    for (int t = r0; t < r1; ++t) k0 = std::min(k0, int(doc_start[size_t(b) * T + t]));
    return k0;
  }
  void attention_fwd(float* out, float* att, const float* q, const float* k, const float* v, const int32_t* doc_start,
                     int B, int T, int H, int KV, int D) override {
    const int group = H / KV;
    const float scale = 1.0f / std::sqrt(float(D));
    const int qs = H * D, ks = KV * D;
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const int g = h / group;
        const float* Q = q + size_t(b) * T * qs + size_t(h) * D;  // [T,D], row stride qs
        const float* K = k + size_t(b) * T * ks + size_t(g) * D;  // [T,D], row stride ks
        const float* V = v + size_t(b) * T * ks + size_t(g) * D;  // [T,D], row stride ks
        float* P = att + (size_t(b) * H + h) * T * T;              // [T,T]
        float* O = out + size_t(b) * T * qs + size_t(h) * D;       // [T,D], row stride qs
        for (int r0 = 0; r0 < T; r0 += kAttRows) {
          const int r1 = std::min(T, r0 + kAttRows), m = r1 - r0, k0 = first_key(doc_start, b, T, r0, r1);
          float* Pb = P + size_t(r0) * T + k0;  // [m, r1-k0], row stride T
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, r1 - k0, D, scale, Q + size_t(r0) * qs, qs,
                      K + size_t(k0) * ks, ks, 0.0f, Pb, T);
          for (int t = r0; t < r1; ++t) {
            float* a = P + size_t(t) * T;
            const int lo = doc_start[size_t(b) * T + t];
            float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
            for (int s = lo; s <= t; ++s) mx = std::max(mx, a[s]);
            float sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int s = lo; s <= t; ++s) sum += (a[s] = fast_expf(a[s] - mx));
            const float inv = 1.0f / sum;
#pragma omp simd
            for (int s = lo; s <= t; ++s) a[s] *= inv;
            std::fill(a, a + lo, 0.0f);
            std::fill(a + t + 1, a + T, 0.0f);
          }
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, r1 - k0, 1.0f, Pb, T, V + size_t(k0) * ks, ks,
                      0.0f, O + size_t(r0) * qs, qs);
        }
      }
  }
  void attention_bwd(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                     const float* /*out*/, const float* att, const int32_t* doc_start, int B, int T, int H, int KV, int D) override {
    const int group = H / KV;
    const float scale = 1.0f / std::sqrt(float(D));
    const int qs = H * D, ks = KV * D;
    // A task per (sequence, kv head): the dK/dV rows it accumulates belong to it alone.
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
    for (int b = 0; b < B; ++b)
      for (int g = 0; g < KV; ++g) {
        float* dS = scratch_for_thread(size_t(T) * T);  // [T,T]
        const float* K = k + size_t(b) * T * ks + size_t(g) * D;
        const float* V = v + size_t(b) * T * ks + size_t(g) * D;
        float* dK = dk + size_t(b) * T * ks + size_t(g) * D;
        float* dV = dv + size_t(b) * T * ks + size_t(g) * D;
        for (int t = 0; t < T; ++t) {
          std::fill(dK + size_t(t) * ks, dK + size_t(t) * ks + D, 0.0f);
          std::fill(dV + size_t(t) * ks, dV + size_t(t) * ks + D, 0.0f);
        }
        for (int h = g * group; h < (g + 1) * group; ++h) {
          const float* P = att + (size_t(b) * H + h) * T * T;  // [T,T], 0 outside each query's window
          const float* dO = dout + size_t(b) * T * qs + size_t(h) * D;
          const float* Q = q + size_t(b) * T * qs + size_t(h) * D;
          // Query blocks, over the keys each saw in the forward: dP = dO V^T, then in place
          // dS = scale * P (dP - rowsum(P dP)), then dQ = dS K. dS is made 0 in every column
          // left of the block's diagonal end outside the window, for the key pass below.
          for (int r0 = 0; r0 < T; r0 += kAttRows) {
            const int r1 = std::min(T, r0 + kAttRows), m = r1 - r0, k0 = first_key(doc_start, b, T, r0, r1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, r1 - k0, D, 1.0f, dO + size_t(r0) * qs, qs,
                        V + size_t(k0) * ks, ks, 0.0f, dS + size_t(r0) * T + k0, T);
            for (int t = r0; t < r1; ++t) {
              const float* p = P + size_t(t) * T;
              float* d = dS + size_t(t) * T;
              const int lo = doc_start[size_t(b) * T + t];
              float dot = 0;
#pragma omp simd reduction(+ : dot)
              for (int s = lo; s <= t; ++s) dot += p[s] * d[s];
#pragma omp simd
              for (int s = lo; s <= t; ++s) d[s] = scale * p[s] * (d[s] - dot);
              std::fill(d, d + lo, 0.0f);
              std::fill(d + t + 1, d + r1, 0.0f);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, r1 - k0, 1.0f, dS + size_t(r0) * T + k0, T,
                        K + size_t(k0) * ks, ks, 0.0f, dq + size_t(b) * T * qs + size_t(h) * D + size_t(r0) * qs, qs);
          }
          // Key blocks, over the queries that can see them (t >= the block's first key; rows of
          // P and dS are 0 right of their query's diagonal): dV += P^T dO, dK += dS^T Q.
          for (int c0 = 0; c0 < T; c0 += kAttRows) {
            const int c1 = std::min(T, c0 + kAttRows);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, D, T - c0, 1.0f, P + size_t(c0) * T + c0, T,
                        dO + size_t(c0) * qs, qs, 1.0f, dV + size_t(c0) * ks, ks);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, D, T - c0, 1.0f, dS + size_t(c0) * T + c0, T,
                        Q + size_t(c0) * qs, qs, 1.0f, dK + size_t(c0) * ks, ks);
          }
        }
      }
  }
  void attention_cached_fwd(float* out, const float* q, const float* kc, const float* vc, int M, int t0, int H, int KV,
                            int D) override {
    const int group = H / KV;
    const float scale = 1.0f / std::sqrt(float(D));
    const size_t qs = size_t(H) * D, ks = size_t(KV) * D;
    // A task per (query, head); when decoding (M = 1) the heads are the parallelism.
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
    for (int i = 0; i < M; ++i)
      for (int h = 0; h < H; ++h) {
        const int g = h / group, t = t0 + i;
        float* a = scratch_for_thread(size_t(t) + 1);  // [t+1] scores, then probabilities
        const float* qi = q + size_t(i) * qs + size_t(h) * D;
        float mx = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          const float* kk = kc + size_t(s) * ks + size_t(g) * D;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int d = 0; d < D; ++d) dot += qi[d] * kk[d];
          a[s] = dot * scale;
          mx = std::max(mx, a[s]);
        }
        float sum = 0;
        for (int s = 0; s <= t; ++s) sum += (a[s] = fast_expf(a[s] - mx));
        const float inv = 1.0f / sum;
        float* oi = out + size_t(i) * qs + size_t(h) * D;
        std::fill(oi, oi + D, 0.0f);
        for (int s = 0; s <= t; ++s) {
          const float p = a[s] * inv;
          const float* vv = vc + size_t(s) * ks + size_t(g) * D;
#pragma omp simd
          for (int d = 0; d < D; ++d) oi[d] += p * vv[d];
        }
      }
  }

  void swiglu_fwd(float* h, const float* g, const float* u, size_t n) override {
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks(n); ++b) {
      const size_t i0 = b * kBlock, i1 = i0 + block_len(n, b);
#pragma omp simd
      for (size_t i = i0; i < i1; ++i) {
        const float sig = 1.0f / (1.0f + fast_expf(-g[i]));
        h[i] = g[i] * sig * u[i];
      }
    }
  }
  void swiglu_bwd(float* dg, float* du, const float* dh, const float* g, const float* u, size_t n) override {
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks(n); ++b) {
      const size_t i0 = b * kBlock, i1 = i0 + block_len(n, b);
#pragma omp simd
      for (size_t i = i0; i < i1; ++i) {
        const float sig = 1.0f / (1.0f + fast_expf(-g[i]));
        const float silu = g[i] * sig;
        const float d = dh[i];
        dg[i] = d * u[i] * (sig + silu * (1.0f - sig));
        du[i] = d * silu;
      }
    }
  }

  void add_inplace(float* a, const float* b, size_t n) override {
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < blocks(n); ++blk) {
      const size_t i0 = blk * kBlock, i1 = i0 + block_len(n, blk);
#pragma omp simd
      for (size_t i = i0; i < i1; ++i) a[i] += b[i];
    }
  }

  void cross_entropy(float* losses, float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      float* l = logits + size_t(n) * V;
      const int y = targets[n];
      if (y < 0) {
        losses[n] = 0.0f;
        if (grad_scale != 0.0f) std::fill(l, l + V, 0.0f);
        continue;
      }
      float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
      for (int i = 0; i < V; ++i) mx = std::max(mx, l[i]);
      const float ly = l[y];
      double sum = 0;
      if (grad_scale != 0.0f) {
        // exp written over the logits, then scaled into the gradient: one pass fewer.
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < V; ++i) s += (l[i] = fast_expf(l[i] - mx));
        sum = s;
        const float k = grad_scale / s;
#pragma omp simd
        for (int i = 0; i < V; ++i) l[i] *= k;
        l[y] -= grad_scale;
      } else {
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < V; ++i) s += fast_expf(l[i] - mx);
        sum = s;
      }
      losses[n] = float(std::log(sum) + double(mx) - double(ly));
    }
  }

  void dropout_fwd(float* u, float* mask, const float* x, int N, int I, int width, int col0, float p,
                   uint64_t seed) override {
    const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < I; ++i) {
        const size_t k = size_t(n) * I + i;
        mask[k] = hash_uniform(seed, uint64_t(n) * uint64_t(width) + uint64_t(col0 + i)) >= p ? keep_scale : 0.0f;
        u[k] = x[k] * mask[k];
      }
  }
  void scale_rows(float* x, const float* s, int N, int V) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      float* r = x + size_t(n) * V;
      const float f = s[n];
#pragma omp simd
      for (int i = 0; i < V; ++i) r[i] *= f;
    }
  }
  void mul_acc(float* a, const float* b, const float* c, size_t n) override {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; ++i) a[i] += b[i] * c[i];
  }

  void vocab_ce_max(float* rowmax, const float* logits, int N, int V) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* l = logits + size_t(n) * V;
      float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
      for (int i = 0; i < V; ++i) mx = std::max(mx, l[i]);
      rowmax[n] = mx;
    }
  }
  void vocab_ce_sums(float* sums, const float* logits, const float* rowmax, const int32_t* targets, int N,
                     int V) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* l = logits + size_t(n) * V;
      const float mx = rowmax[n];
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int i = 0; i < V; ++i) s += fast_expf(l[i] - mx);
      sums[n] = s;
      sums[N + n] = targets[n] >= 0 ? l[targets[n]] : 0.0f;
    }
  }
  void vocab_ce_finish(float* losses, float* logits, const int32_t* targets, const float* rowmax, const float* sums,
                       int N, int V, float grad_scale) override {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      float* l = logits + size_t(n) * V;
      const int y = targets[n];
      const float mx = rowmax[n];
      losses[n] = y == -1 ? 0.0f : float(std::log(double(sums[n])) + double(mx) - double(sums[N + n]));
      if (grad_scale == 0.0f) continue;
      if (y == -1) {
        std::fill(l, l + V, 0.0f);
        continue;
      }
      const float k = grad_scale / sums[n];
#pragma omp simd
      for (int i = 0; i < V; ++i) l[i] = fast_expf(l[i] - mx) * k;
      if (y >= 0) l[y] -= grad_scale;
    }
  }

  double sum_squares(const float* x, size_t n) override {
    // Fixed chunks summed in order: the result does not depend on the thread count.
    const size_t nb = blocks(n);
    double* partial = reinterpret_cast<double*>(scratch(2 * nb));
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; ++b) {
      const size_t i0 = b * kBlock, i1 = i0 + block_len(n, b);
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (size_t i = i0; i < i1; ++i) s += double(x[i]) * double(x[i]);
      partial[b] = s;
    }
    double total = 0;
    for (size_t b = 0; b < nb; ++b) total += partial[b];
    return total;
  }
  void scale(float* x, size_t n, float s) override {
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks(n); ++b) {
      const size_t i0 = b * kBlock, i1 = i0 + block_len(n, b);
#pragma omp simd
      for (size_t i = i0; i < i1; ++i) x[i] *= s;
    }
  }
  void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float b1, float b2, float eps, float wd,
             float bc1, float bc2) override {
    const float inv_bc1 = 1.0f / bc1, inv_bc2 = 1.0f / bc2;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks(n); ++b) {
      const size_t i0 = b * kBlock, i1 = i0 + block_len(n, b);
#pragma omp simd
      for (size_t i = i0; i < i1; ++i) {
        const float gi = g[i];
        const float mi = b1 * m[i] + (1 - b1) * gi;
        const float vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * ((mi * inv_bc1) / (std::sqrt(vi * inv_bc2) + eps) + wd * p[i]);
      }
    }
  }

 private:
  static constexpr size_t kBlock = 1 << 14;
  static size_t blocks(size_t n) { return (n + kBlock - 1) / kBlock; }
  static size_t block_len(size_t n, size_t b) { return std::min(kBlock, n - b * kBlock); }

  void rope(float* x, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D, float dir) {
    const int half = D / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* c = cos + size_t(pos[n]) * half;
      const float* s = sin + size_t(pos[n]) * half;
      for (int h = 0; h < nh; ++h) {
        float* v = x + (size_t(n) * nh + h) * D;
#pragma omp simd
        for (int i = 0; i < half; ++i) {
          const float x1 = v[i], x2 = v[i + half], si = dir * s[i];
          v[i] = x1 * c[i] - x2 * si;
          v[i + half] = x2 * c[i] + x1 * si;
        }
      }
    }
  }

  // Scratch that grows to the largest request and stays (first step only).
  float* scratch(size_t n) {
    if (scratch_.size() < n) scratch_.assign(n, 0.0f);
    return scratch_.data();
  }
  float* scratch_for_thread(size_t n) {
    thread_local std::vector<float> s;
    if (s.size() < n) s.assign(n, 0.0f);
    return s.data();
  }

  int threads_ = 1;
  Arena arena_;
  std::vector<float> scratch_;
};

}  // namespace

std::unique_ptr<Backend> BELLOWS_CPU_VARIANT(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace bellows::nn
