#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cub/device/device_radix_sort.cuh>
#include <fstream>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "cuda/attention.hpp"
#include "cuda/backend_cuda.hpp"
#include "cuda/blas_lt.hpp"
#include "cuda/reduce.cuh"
#include "nn/rng.hpp"

#define BELLOWS_CUDA(call)                                                                                      \
  do {                                                                                                          \
    const cudaError_t bellows_e_ = (call);                                                                      \
    if (bellows_e_ != cudaSuccess)                                                                              \
      throw ::bellows::RuntimeError(std::string("CUDA error at ") + __FILE__ + ":" + std::to_string(__LINE__) + \
                                    ": " + #call + ": " + cudaGetErrorString(bellows_e_));                      \
  } while (0)
#define BELLOWS_CUDA_LAUNCH() BELLOWS_CUDA(cudaGetLastError())

namespace bellows::cuda {
namespace {

constexpr int kThreads = 256;

// At least one block: a launch of zero blocks is an error, and the grid-stride loops do nothing
// for n = 0 (a ZeRO rank may own no elements of a tensor).
unsigned blocks_for(size_t n) {
  return unsigned(std::clamp<size_t>((n + kThreads - 1) / kThreads, 1, 65535u * 16u));
}

#define GRID_STRIDE(i, n) for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += size_t(gridDim.x) * blockDim.x)

// --- embedding ---------------------------------------------------------------------------------
__global__ void embedding_fwd_k(float* out, const int32_t* ids, const float* wte, int N, int C) {
  GRID_STRIDE(i, size_t(N) * C) {
    const size_t n = i / C, c = i % C;
    out[i] = ids[n] < 0 ? 0.0f : wte[size_t(ids[n]) * C + c];
  }
}
// After a stable sort of (id, row) by id: block n leads its run of equal ids when it is the
// first of them, and adds the run's rows in row order (so the sum's order is fixed).
__global__ void embedding_bwd_k(float* dwte, const float* dout, const int32_t* sorted_ids, const int32_t* rows, int N,
                                int C) {
  const int n = blockIdx.x;
  const int id = sorted_ids[n];
  if (id < 0 || (n > 0 && sorted_ids[n - 1] == id)) return;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = 0.0f;
    for (int m = n; m < N && sorted_ids[m] == id; ++m) acc += dout[size_t(rows[m]) * C + c];
    dwte[size_t(id) * C + c] += acc;
  }
}
__global__ void iota_k(int32_t* x, int n) {
  GRID_STRIDE(i, size_t(n)) x[i] = int32_t(i);
}

// --- RMSNorm -----------------------------------------------------------------------------------
__global__ void rmsnorm_fwd_k(float* out, float* rstd, const float* inp, const float* w, int C, float eps) {
  __shared__ float red[32];
  const size_t n = blockIdx.x;
  const float* x = inp + n * C;
  float ss = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
  ss = block_sum(ss, red);
  const float r = rsqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[n] = r;
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[n * C + c] = x[c] * r * w[c];
}
__global__ void rmsnorm_bwd_k(float* dinp, const float* dout, const float* inp, const float* w, const float* rstd,
                              int C) {
  __shared__ float red[32];
  const size_t n = blockIdx.x;
  const float* x = inp + n * C;
  const float* dy = dout + n * C;
  const float r = rstd[n];
  float dot = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dot += dy[c] * w[c] * x[c] * r;
  const float mean = block_sum(dot, red) / float(C);
  for (int c = threadIdx.x; c < C; c += blockDim.x) dinp[n * C + c] += r * (dy[c] * w[c] - x[c] * r * mean);
}
// dw[c] += sum_n dy[n,c] x[n,c] rstd[n]: partial sums over row chunks, then the chunks in order.
__global__ void rmsnorm_dw_partial_k(float* partial, const float* dout, const float* inp, const float* rstd, int N,
                                     int C, int rows_per_chunk) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  if (c >= C) return;
  const int n0 = chunk * rows_per_chunk, n1 = min(N, n0 + rows_per_chunk);
  float acc = 0.0f;
  for (int n = n0; n < n1; ++n) acc += dout[size_t(n) * C + c] * inp[size_t(n) * C + c] * rstd[n];
  partial[size_t(chunk) * C + c] = acc;
}
__global__ void sum_chunks_k(float* dst, const float* partial, int chunks, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int k = 0; k < chunks; ++k) acc += partial[size_t(k) * C + c];
  dst[c] += acc;
}

// --- RoPE (rotate_half pairs (i, i + D/2)) -------------------------------------------------------
__global__ void rope_k(float* x, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D,
                       float dir) {
  const int half = D / 2;
  GRID_STRIDE(i, size_t(N) * nh * half) {
    const size_t n = i / (size_t(nh) * half);
    const int j = int(i % half);
    float* v = x + (i / half) * D;
    const float c = cos[size_t(pos[n]) * half + j], s = dir * sin[size_t(pos[n]) * half + j];
    const float x1 = v[j], x2 = v[j + half];
    v[j] = x1 * c - x2 * s;
    v[j + half] = x2 * c + x1 * s;
  }
}

// --- elementwise ---------------------------------------------------------------------------------
__global__ void swiglu_fwd_k(float* h, const float* g, const float* u, size_t n) {
  GRID_STRIDE(i, n) {
    const float sig = 1.0f / (1.0f + expf(-g[i]));
    h[i] = g[i] * sig * u[i];
  }
}
__global__ void swiglu_bwd_k(float* dg, float* du, const float* dh, const float* g, const float* u, size_t n) {
  GRID_STRIDE(i, n) {
    const float sig = 1.0f / (1.0f + expf(-g[i]));
    dg[i] = dh[i] * u[i] * (sig + g[i] * sig * (1.0f - sig));
    du[i] = dh[i] * g[i] * sig;
  }
}
__global__ void add_k(float* a, const float* b, size_t n) {
  GRID_STRIDE(i, n) a[i] += b[i];
}
__global__ void mul_acc_k(float* a, const float* b, const float* c, size_t n) {
  GRID_STRIDE(i, n) a[i] += b[i] * c[i];
}
__global__ void scale_k(float* x, size_t n, float s) {
  GRID_STRIDE(i, n) x[i] *= s;
}
__global__ void scale_rows_k(float* x, const float* s, int N, int V) {
  GRID_STRIDE(i, size_t(N) * V) x[i] *= s[i / V];
}
__global__ void dropout_k(float* u, float* mask, const float* x, int N, int I, int width, int col0, float p,
                          uint64_t seed) {
  GRID_STRIDE(k, size_t(N) * I) {
    const uint64_t n = k / I, i = k % I;
    const bool keep = nn::hash_uniform(seed, n * uint64_t(width) + uint64_t(col0) + i) >= double(p);
    mask[k] = keep ? 1.0f / (1.0f - p) : 0.0f;
    u[k] = x[k] * mask[k];
  }
}
__global__ void adamw_k(float* p, const float* g, float* m, float* v, size_t n, float lr, float b1, float b2, float eps,
                        float wd, float bc1, float bc2) {
  GRID_STRIDE(i, n) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const float mhat = m[i] / bc1, vhat = v[i] / bc2;
    p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
  }
}
// Partial sums of squares in double, one per block; the host adds them in order.
__global__ void sum_squares_k(double* partial, const float* x, size_t n) {
  __shared__ double red[32];
  double s = 0;
  GRID_STRIDE(i, n) s += double(x[i]) * x[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// --- softmax cross-entropy, a block per row ------------------------------------------------------
__global__ void cross_entropy_k(float* losses, float* logits, const int32_t* targets, int V, float grad_scale) {
  __shared__ float red[32];
  const size_t n = blockIdx.x;
  float* l = logits + n * V;
  const int tgt = targets[n];
  if (tgt < 0) {
    if (threadIdx.x == 0) losses[n] = 0.0f;
    if (grad_scale != 0.0f)
      for (int i = threadIdx.x; i < V; i += blockDim.x) l[i] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, l[i]);
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(l[i] - mx);
  sum = block_sum(sum, red);
  const float target_logit = l[tgt];
  __syncthreads();  // every thread has read l[tgt] before it is overwritten
  if (threadIdx.x == 0) losses[n] = logf(sum) + mx - target_logit;
  if (grad_scale != 0.0f)
    for (int i = threadIdx.x; i < V; i += blockDim.x)
      l[i] = (expf(l[i] - mx) / sum - (i == tgt ? 1.0f : 0.0f)) * grad_scale;
}
__global__ void vocab_ce_max_k(float* rowmax, const float* logits, int V) {
  __shared__ float red[32];
  const size_t n = blockIdx.x;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, logits[n * V + i]);
  mx = block_max(mx, red);
  if (threadIdx.x == 0) rowmax[n] = mx;
}
__global__ void vocab_ce_sums_k(float* sums, const float* logits, const float* rowmax, const int32_t* targets, int N,
                                int V) {
  __shared__ float red[32];
  const size_t n = blockIdx.x;
  float s = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(logits[n * V + i] - rowmax[n]);
  s = block_sum(s, red);
  if (threadIdx.x == 0) {
    sums[n] = s;
    sums[N + n] = targets[n] >= 0 ? logits[n * V + targets[n]] : 0.0f;
  }
}
__global__ void vocab_ce_finish_k(float* losses, float* logits, const int32_t* targets, const float* rowmax,
                                  const float* sums, int N, int V, float grad_scale) {
  const size_t n = blockIdx.x;
  const bool ignored = targets[n] == -1;
  if (threadIdx.x == 0) losses[n] = ignored ? 0.0f : logf(sums[n]) + rowmax[n] - sums[N + n];
  if (grad_scale == 0.0f) return;
  float* l = logits + n * V;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    l[i] = ignored ? 0.0f : (expf(l[i] - rowmax[n]) / sums[n] - (i == targets[n] ? 1.0f : 0.0f)) * grad_scale;
}

// BELLOWS_CUDA_PROFILE=FILE: every op is timed with CUDA events (which serialises the stream, so
// it is for finding slow kernels, not for measuring throughput) and, when the backend goes away,
// FILE gets one JSON line per op and shape, slowest first: calls, milliseconds, and the FLOPs and
// bytes the op must move at least (from its shapes), hence TFLOP/s and GB/s to hold against the
// card's compute and memory roofline.
class Profile {
 public:
  explicit Profile(cudaStream_t stream) : stream_(stream) {
    const char* p = std::getenv("BELLOWS_CUDA_PROFILE");
    if (p && *p) {
      path_ = p;
      BELLOWS_CUDA(cudaEventCreate(&start_));
      BELLOWS_CUDA(cudaEventCreate(&stop_));
    }
  }
  ~Profile() {
    if (path_.empty()) return;
    std::vector<std::pair<std::string, Entry>> all(ops_.begin(), ops_.end());
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double total = 0;
    for (const auto& [k, e] : all) total += e.ms;
    std::ofstream f(path_);
    for (const auto& [k, e] : all) {
      const double s = e.ms / 1e3;
      f << "{\"op\": \"" << k << "\", \"calls\": " << e.calls << ", \"ms\": " << e.ms << ", \"share\": "
        << (total > 0 ? e.ms / total : 0.0) << ", \"tflops\": " << (s > 0 ? e.flops / s / 1e12 : 0.0)
        << ", \"gb_per_s\": " << (s > 0 ? e.bytes / s / 1e9 : 0.0) << "}\n";
    }
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  Profile(const Profile&) = delete;
  Profile& operator=(const Profile&) = delete;

  class Scope {
   public:
    Scope(Profile& p, const char* op, std::initializer_list<long long> shape, double flops, double bytes)
        : p_(p.path_.empty() ? nullptr : &p), flops_(flops), bytes_(bytes) {
      if (!p_) return;
      key_ = op;
      const char* sep = " ";
      for (long long d : shape) {
        key_ += sep + std::to_string(d);
        sep = "x";
      }
      cudaEventRecord(p_->start_, p_->stream_);
    }
    ~Scope() {
      if (!p_) return;
      float ms = 0;
      cudaEventRecord(p_->stop_, p_->stream_);
      if (cudaEventSynchronize(p_->stop_) != cudaSuccess || cudaEventElapsedTime(&ms, p_->start_, p_->stop_) != cudaSuccess)
        return;
      Entry& e = p_->ops_[key_];
      e.calls += 1;
      e.ms += ms;
      e.flops += flops_;
      e.bytes += bytes_;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Profile* p_;
    double flops_, bytes_;
    std::string key_;
  };

 private:
  struct Entry {
    long long calls = 0;
    double ms = 0, flops = 0, bytes = 0;
  };
  cudaStream_t stream_;
  std::string path_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::map<std::string, Entry> ops_;
};

class CudaBackend final : public nn::Backend {
 public:
  CudaBackend(int device, GemmPrecision precision) : device_(device) {
    BELLOWS_CUDA(cudaSetDevice(device));
    BELLOWS_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    gemm_ = std::make_unique<LtGemm>(stream_, precision);
    prof_ = std::make_unique<Profile>(stream_);
    precision_ = precision;
  }
  ~CudaBackend() override {
    prof_.reset();
    gemm_.reset();
    for (void* p : buffers_) cudaFree(p);
    if (stream_) cudaStreamDestroy(stream_);
  }
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return std::string("cuda (matmul ") + to_string(precision_) + ")"; }
  int threads() const override { return 1; }

  float* alloc(size_t n) override { return static_cast<float*>(alloc_bytes(std::max<size_t>(n, 1) * sizeof(float))); }
  int32_t* alloc_int(size_t n) override {
    return static_cast<int32_t*>(alloc_bytes(std::max<size_t>(n, 1) * sizeof(int32_t)));
  }
  size_t bytes_allocated() const override { return bytes_; }
  void zero(float* p, size_t n) override { BELLOWS_CUDA(cudaMemsetAsync(p, 0, n * sizeof(float), stream_)); }
  void copy(float* dst, const float* src, size_t n) override {
    if (dst != src && n) BELLOWS_CUDA(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }
  // Host buffers are pageable and may be reused as soon as we return: both directions wait.
  void upload(float* dst, const float* host, size_t n) override { transfer(dst, host, n * sizeof(float), cudaMemcpyHostToDevice); }
  void upload_int(int32_t* dst, const int32_t* host, size_t n) override {
    transfer(dst, host, n * sizeof(int32_t), cudaMemcpyHostToDevice);
  }
  void download(float* host, const float* src, size_t n) override { transfer(host, src, n * sizeof(float), cudaMemcpyDeviceToHost); }

  void embedding_fwd(float* out, const int32_t* ids, const float* wte, int N, int C) override {
    Profile::Scope t(*prof_, "embedding_fwd", {N, C}, 0, 8.0 * N * C);
    embedding_fwd_k<<<blocks_for(size_t(N) * C), kThreads, 0, stream_>>>(out, ids, wte, N, C);
    BELLOWS_CUDA_LAUNCH();
  }
  void embedding_bwd(float* dwte, const float* dout, const int32_t* ids, int N, int C) override {
    Profile::Scope t(*prof_, "embedding_bwd", {N, C}, double(N) * C, 12.0 * N * C);
    if (N == 0) return;
    int32_t* rows_in = int_scratch(0, size_t(N));
    int32_t* rows_out = int_scratch(1, size_t(N));
    int32_t* ids_out = int_scratch(2, size_t(N));
    iota_k<<<blocks_for(size_t(N)), kThreads, 0, stream_>>>(rows_in, N);
    BELLOWS_CUDA_LAUNCH();
    size_t temp = 0;
    BELLOWS_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, temp, ids, ids_out, rows_in, rows_out, N, 0, 32, stream_));
    void* tmp = byte_scratch(temp);
    BELLOWS_CUDA(cub::DeviceRadixSort::SortPairs(tmp, temp, ids, ids_out, rows_in, rows_out, N, 0, 32, stream_));
    embedding_bwd_k<<<unsigned(N), kThreads, 0, stream_>>>(dwte, dout, ids_out, rows_out, N, C);
    BELLOWS_CUDA_LAUNCH();
  }

  void rmsnorm_fwd(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) override {
    Profile::Scope t(*prof_, "rmsnorm_fwd", {N, C}, 4.0 * N * C, 8.0 * N * C);
    if (N == 0) return;
    rmsnorm_fwd_k<<<unsigned(N), kThreads, 0, stream_>>>(out, rstd, inp, w, C, eps);
    BELLOWS_CUDA_LAUNCH();
  }
  void rmsnorm_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                   int N, int C) override {
    Profile::Scope t(*prof_, "rmsnorm_bwd", {N, C}, 8.0 * N * C, 16.0 * N * C);
    if (N == 0) return;
    rmsnorm_bwd_k<<<unsigned(N), kThreads, 0, stream_>>>(dinp, dout, inp, w, rstd, C);
    BELLOWS_CUDA_LAUNCH();
    if (!dw) return;
    const int chunks = std::min(N, 64), rows = (N + chunks - 1) / chunks;
    float* partial = float_scratch(size_t(chunks) * C);
    const dim3 grid(unsigned((C + kThreads - 1) / kThreads), unsigned(chunks));
    rmsnorm_dw_partial_k<<<grid, kThreads, 0, stream_>>>(partial, dout, inp, rstd, N, C, rows);
    BELLOWS_CUDA_LAUNCH();
    sum_chunks_k<<<unsigned((C + kThreads - 1) / kThreads), kThreads, 0, stream_>>>(dw, partial, chunks, C);
    BELLOWS_CUDA_LAUNCH();
  }

  // Row-major out[N,O] = inp[N,I] w[O,I]^T is column-major out^T[O,N] = W^T^T X^T.
  void matmul_fwd(float* out, const float* inp, const float* w, int N, int I, int O) override {
    Profile::Scope t(*prof_, "matmul_fwd", {N, I, O}, 2.0 * N * I * O, 4.0 * (double(N) * I + double(I) * O + double(N) * O));
    gemm_->gemm(true, false, O, N, I, 1.0f, w, I, inp, I, 0.0f, out, O);
  }
  void matmul_fwd_acc(float* out, const float* inp, const float* w, int N, int I, int O) override {
    Profile::Scope t(*prof_, "matmul_fwd_acc", {N, I, O}, 2.0 * N * I * O, 4.0 * (double(N) * I + double(I) * O + 2.0 * N * O));
    gemm_->gemm(true, false, O, N, I, 1.0f, w, I, inp, I, 1.0f, out, O);
  }
  void matmul_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, int N, int I, int O,
                  bool accumulate_dinp) override {
    Profile::Scope t(*prof_, "matmul_bwd", {N, I, O}, (dinp ? 2.0 : 0.0) * N * I * O + (dw ? 2.0 : 0.0) * N * I * O, 4.0 * (double(N) * I + double(I) * O + double(N) * O) * 2);
    // dinp^T[I,N] = W^T[I,O] dout^T[O,N]; dw^T[I,O] += X^T[I,N] (dout^T)^T[N,O]
    if (dinp) gemm_->gemm(false, false, I, N, O, 1.0f, w, I, dout, O, accumulate_dinp ? 1.0f : 0.0f, dinp, I);
    if (dw) gemm_->gemm(false, true, I, O, N, 1.0f, inp, I, dout, O, 1.0f, dw, I);
  }

  void rope_fwd(float* x, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) override {
    Profile::Scope t(*prof_, "rope", {N, nh, D}, 3.0 * N * nh * D, 8.0 * N * nh * D);
    rope_k<<<blocks_for(size_t(N) * nh * (D / 2)), kThreads, 0, stream_>>>(x, pos, cos, sin, N, nh, D, 1.0f);
    BELLOWS_CUDA_LAUNCH();
  }
  void rope_bwd(float* dx, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) override {
    Profile::Scope t(*prof_, "rope_bwd", {N, nh, D}, 3.0 * N * nh * D, 8.0 * N * nh * D);
    rope_k<<<blocks_for(size_t(N) * nh * (D / 2)), kThreads, 0, stream_>>>(dx, pos, cos, sin, N, nh, D, -1.0f);
    BELLOWS_CUDA_LAUNCH();
  }

  size_t attention_state_floats(int B, int H, int T) const override { return size_t(B) * H * T; }
  void attention_fwd(float* out, float* att, const float* q, const float* k, const float* v, const int32_t* doc_start,
                     int B, int T, int H, int KV, int D) override {
    Profile::Scope t(*prof_, "attention_fwd", {B, T, H, KV, D}, 2.0 * B * H * double(T) * T * D, 4.0 * B * T * (2.0 * H + 2.0 * KV) * D);
    attention_forward(stream_, out, att, q, k, v, doc_start, B, T, T, 0, H, KV, D);
  }
  void attention_bwd(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                     const float* out, const float* att, const int32_t* doc_start, int B, int T, int H, int KV,
                     int D) override {
    Profile::Scope t(*prof_, "attention_bwd", {B, T, H, KV, D}, 5.0 * B * H * double(T) * T * D, 4.0 * B * T * (5.0 * H + 4.0 * KV) * D);
    float* delta = float_scratch(size_t(B) * H * T);
    attention_backward(stream_, dq, dk, dv, delta, dout, q, k, v, out, att, doc_start, B, T, H, KV, D);
  }
  void attention_cached_fwd(float* out, const float* q, const float* kc, const float* vc, int M, int t0, int H, int KV,
                            int D) override {
    Profile::Scope t(*prof_, "attention_cached", {M, t0, H, KV, D}, 4.0 * M * H * double(t0 + M) * D, 4.0 * (2.0 * M * H + 2.0 * (t0 + M) * KV) * D);
    attention_forward(stream_, out, nullptr, q, kc, vc, nullptr, 1, M, t0 + M, t0, H, KV, D);
  }

  void swiglu_fwd(float* h, const float* g, const float* u, size_t n) override {
    Profile::Scope t(*prof_, "swiglu_fwd", {(long long)n}, 5.0 * n, 12.0 * n);
    swiglu_fwd_k<<<blocks_for(n), kThreads, 0, stream_>>>(h, g, u, n);
    BELLOWS_CUDA_LAUNCH();
  }
  void swiglu_bwd(float* dg, float* du, const float* dh, const float* g, const float* u, size_t n) override {
    Profile::Scope t(*prof_, "swiglu_bwd", {(long long)n}, 10.0 * n, 20.0 * n);
    swiglu_bwd_k<<<blocks_for(n), kThreads, 0, stream_>>>(dg, du, dh, g, u, n);
    BELLOWS_CUDA_LAUNCH();
  }
  void add_inplace(float* a, const float* b, size_t n) override {
    Profile::Scope t(*prof_, "add", {(long long)n}, double(n), 12.0 * n);
    add_k<<<blocks_for(n), kThreads, 0, stream_>>>(a, b, n);
    BELLOWS_CUDA_LAUNCH();
  }
  void dropout_fwd(float* u, float* mask, const float* x, int N, int I, int width, int col0, float p,
                   uint64_t seed) override {
    Profile::Scope t(*prof_, "dropout", {N, I}, 2.0 * N * I, 12.0 * N * I);
    dropout_k<<<blocks_for(size_t(N) * I), kThreads, 0, stream_>>>(u, mask, x, N, I, width, col0, p, seed);
    BELLOWS_CUDA_LAUNCH();
  }
  void mul_acc(float* a, const float* b, const float* c, size_t n) override {
    Profile::Scope t(*prof_, "mul_acc", {(long long)n}, 2.0 * n, 16.0 * n);
    mul_acc_k<<<blocks_for(n), kThreads, 0, stream_>>>(a, b, c, n);
    BELLOWS_CUDA_LAUNCH();
  }
  void scale_rows(float* x, const float* s, int N, int V) override {
    Profile::Scope t(*prof_, "scale_rows", {N, V}, double(N) * V, 8.0 * N * V);
    scale_rows_k<<<blocks_for(size_t(N) * V), kThreads, 0, stream_>>>(x, s, N, V);
    BELLOWS_CUDA_LAUNCH();
  }

  void cross_entropy(float* losses, float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
    Profile::Scope t(*prof_, "cross_entropy", {N, V}, 4.0 * N * V, 8.0 * N * V);
    if (N == 0) return;
    cross_entropy_k<<<unsigned(N), kThreads, 0, stream_>>>(losses, logits, targets, V, grad_scale);
    BELLOWS_CUDA_LAUNCH();
  }
  void vocab_ce_max(float* rowmax, const float* logits, int N, int V) override {
    Profile::Scope t(*prof_, "vocab_ce_max", {N, V}, double(N) * V, 4.0 * N * V);
    if (N == 0) return;
    vocab_ce_max_k<<<unsigned(N), kThreads, 0, stream_>>>(rowmax, logits, V);
    BELLOWS_CUDA_LAUNCH();
  }
  void vocab_ce_sums(float* sums, const float* logits, const float* rowmax, const int32_t* targets, int N,
                     int V) override {
    Profile::Scope t(*prof_, "vocab_ce_sums", {N, V}, 2.0 * N * V, 4.0 * N * V);
    if (N == 0) return;
    vocab_ce_sums_k<<<unsigned(N), kThreads, 0, stream_>>>(sums, logits, rowmax, targets, N, V);
    BELLOWS_CUDA_LAUNCH();
  }
  void vocab_ce_finish(float* losses, float* logits, const int32_t* targets, const float* rowmax, const float* sums,
                       int N, int V, float grad_scale) override {
    Profile::Scope t(*prof_, "vocab_ce_finish", {N, V}, 3.0 * N * V, 8.0 * N * V);
    if (N == 0) return;
    vocab_ce_finish_k<<<unsigned(N), kThreads, 0, stream_>>>(losses, logits, targets, rowmax, sums, N, V, grad_scale);
    BELLOWS_CUDA_LAUNCH();
  }

  double sum_squares(const float* x, size_t n) override {
    Profile::Scope t(*prof_, "sum_squares", {(long long)n}, 2.0 * n, 4.0 * n);
    constexpr unsigned kBlocks = 512;
    if (!partial_) partial_ = static_cast<double*>(alloc_bytes(kBlocks * sizeof(double)));
    sum_squares_k<<<kBlocks, kThreads, 0, stream_>>>(partial_, x, n);
    BELLOWS_CUDA_LAUNCH();
    double host[kBlocks];
    transfer(host, partial_, sizeof host, cudaMemcpyDeviceToHost);
    double s = 0;
    for (double p : host) s += p;
    return s;
  }
  void scale(float* x, size_t n, float s) override {
    Profile::Scope t(*prof_, "scale", {(long long)n}, double(n), 8.0 * n);
    scale_k<<<blocks_for(n), kThreads, 0, stream_>>>(x, n, s);
    BELLOWS_CUDA_LAUNCH();
  }
  void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float b1, float b2, float eps, float wd,
             float bc1, float bc2) override {
    Profile::Scope t(*prof_, "adamw", {(long long)n}, 12.0 * n, 28.0 * n);
    adamw_k<<<blocks_for(n), kThreads, 0, stream_>>>(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
    BELLOWS_CUDA_LAUNCH();
  }

 private:
  void* alloc_bytes(size_t bytes) {
    void* p = nullptr;
    BELLOWS_CUDA(cudaSetDevice(device_));
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess)
      throw RuntimeError("CUDA: out of device memory allocating " + std::to_string(bytes >> 20) + " MiB (" +
                         std::to_string(bytes_ >> 20) + " MiB already held by this process): " + cudaGetErrorString(e));
    buffers_.push_back(p);
    bytes_ += bytes;
    // Zeroed, as the CPU arena's (the model relies on it), on the backend's stream: a memset on the
    // default stream is not ordered with it and could land after a later upload.
    BELLOWS_CUDA(cudaMemsetAsync(p, 0, bytes, stream_));
    return p;
  }
  void transfer(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    if (!bytes) return;
    BELLOWS_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, stream_));
    BELLOWS_CUDA(cudaStreamSynchronize(stream_));
  }
  // Scratch that grows to the largest size asked for (the first step's calls), then stays.
  struct Scratch {
    void* p = nullptr;
    size_t bytes = 0;
  };
  void* grow(Scratch& s, size_t bytes) {
    if (s.bytes < bytes) {
      // Kernels already queued may still read the old buffer.
      BELLOWS_CUDA(cudaStreamSynchronize(stream_));
      if (s.p) {
        BELLOWS_CUDA(cudaFree(s.p));
        std::erase(buffers_, s.p);
        bytes_ -= s.bytes;
      }
      s.p = alloc_bytes(bytes);
      s.bytes = bytes;
    }
    return s.p;
  }
  float* float_scratch(size_t n) { return static_cast<float*>(grow(float_scratch_, n * sizeof(float))); }
  int32_t* int_scratch(int which, size_t n) { return static_cast<int32_t*>(grow(int_scratch_[which], n * sizeof(int32_t))); }
  void* byte_scratch(size_t bytes) { return grow(byte_scratch_, std::max<size_t>(bytes, 1)); }

  int device_;
  GemmPrecision precision_ = GemmPrecision::fp32;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<LtGemm> gemm_;
  std::unique_ptr<Profile> prof_;
  std::vector<void*> buffers_;
  size_t bytes_ = 0;
  double* partial_ = nullptr;  // [512] sum_squares' per-block sums
  Scratch float_scratch_, int_scratch_[3], byte_scratch_;
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string backend_unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  }
  if (n == 0) return "no CUDA device";
  return cublaslt_unavailable_reason();
}

std::unique_ptr<nn::Backend> make_cuda_backend(int device, const std::string& matmul_precision) {
  const GemmPrecision p = parse_gemm_precision(matmul_precision);
  const std::string why = backend_unavailable_reason();
  if (!why.empty()) throw UsageError("--device cuda: " + why);
  const int n = device_count();
  if (device < 0 || device >= n)
    throw UsageError("--device cuda: device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                     " visible)");
  return std::make_unique<CudaBackend>(device, p);
}

void use_device(int device) { BELLOWS_CUDA(cudaSetDevice(device)); }

std::string device_description(int device) {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return "device " + std::to_string(device) + " (unknown)";
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.totalGlobalMem >> 20) + " MiB)";
}

}  // namespace bellows::cuda
