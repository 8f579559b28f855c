// The compute backend the model is written against: memory and the ops of a Llama layer, each
// with its forward and backward. The model code only calls these, so another backend (CUDA)
// plugs in without touching it.
//
// Two implementations live side by side: RefBackend, plain loops that follow the definition
// (the reference the tests trust, llm.c style), and CpuBackend, the fast one (OpenBLAS sgemm,
// OpenMP threads, vectorisable loops). Tests compare every op of the fast one with the
// reference, and the reference with finite differences.
//
// Conventions: row-major fp32; N = B * T token rows; a Linear weight is [out, in] as in PyTorch
// (y = x W^T); "+=" in a comment means the op accumulates into that output, "=" that it
// overwrites it. Reductions run in a fixed order for a fixed thread count, so results are
// bit-identical from run to run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bellows::nn {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Threads the ops use (1 for the reference).
  virtual int threads() const = 0;

  // --- memory: buffers come zeroed and live until the backend is destroyed (nothing is
  // allocated inside a training step) ---
  virtual float* alloc(size_t n) = 0;
  virtual int32_t* alloc_int(size_t n) = 0;
  virtual size_t bytes_allocated() const = 0;
  virtual void zero(float* p, size_t n) = 0;
  virtual void copy(float* dst, const float* src, size_t n) = 0;
  // Host <-> backend memory (plain memcpy on the CPU).
  virtual void upload(float* dst, const float* host, size_t n) = 0;
  virtual void upload_int(int32_t* dst, const int32_t* host, size_t n) = 0;
  virtual void download(float* host, const float* src, size_t n) = 0;

  // --- ops ---
  // out[N,C] = wte[ids[n], :], a row of zeros where ids[n] is -1 (a vocabulary-parallel rank's
  // embedding slice does not hold that id; the all-reduce across slices fills it in)
  virtual void embedding_fwd(float* out, const int32_t* ids, const float* wte, int N, int C) = 0;
  // dwte[V,C] += scatter of dout[N,C] by ids (rows with id -1 skipped)
  virtual void embedding_bwd(float* dwte, const float* dout, const int32_t* ids, int N, int C) = 0;

  // out[N,C] = inp / rms(inp) * w; rstd[N] = 1 / sqrt(mean(inp^2) + eps)
  virtual void rmsnorm_fwd(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) = 0;
  // dinp[N,C] +=, dw[C] += (dw null: skipped, a frozen norm)
  virtual void rmsnorm_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w,
                           const float* rstd, int N, int C) = 0;

  // out[N,O] = inp[N,I] w[O,I]^T
  virtual void matmul_fwd(float* out, const float* inp, const float* w, int N, int I, int O) = 0;
  // out[N,O] += inp[N,I] w[O,I]^T (a LoRA update added to its base's output)
  virtual void matmul_fwd_acc(float* out, const float* inp, const float* w, int N, int I, int O) = 0;
  // dinp[N,I] = (accumulate ? dinp : 0) + dout w; dw[O,I] += dout^T inp. dinp or dw null: that
  // half is skipped (a frozen base weight has no gradient).
  virtual void matmul_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, int N, int I,
                          int O, bool accumulate_dinp) = 0;

  // RoPE in place on x[N, nh, D] in HF's rotate_half layout (pairs (i, i + D/2)), at positions
  // pos[N], with cos/sin tables [max_pos, D/2].
  virtual void rope_fwd(float* x, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) = 0;
  // Its backward, in place on dx (the inverse rotation).
  virtual void rope_bwd(float* dx, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) = 0;

  // Causal grouped-query attention within documents: query t of sequence b attends to keys
  // s in [doc_start[b*T+t], t] of the same sequence. q[N,H*D], k,v[N,KV*D] -> out[N,H*D];
  // att[attention_state_floats(B,H,T)] keeps what the backward needs: on the CPU backends the
  // softmax probabilities [B,H,T,T] (entries outside the window are 0), on CUDA (flash-style,
  // never materialising T x T) the log-sum-exp of each query's scores [B,H,T].
  virtual void attention_fwd(float* out, float* att, const float* q, const float* k, const float* v,
                             const int32_t* doc_start, int B, int T, int H, int KV, int D) = 0;
  virtual size_t attention_state_floats(int B, int H, int T) const { return size_t(B) * H * T * T; }
  // dq[N,H*D] =, dk,dv[N,KV*D] =; out is the forward's output (flash's backward needs
  // rowsum(dout * out); the CPU backends, which keep the probabilities, do not read it)
  virtual void attention_bwd(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                             const float* v, const float* out, const float* att, const int32_t* doc_start, int B,
                             int T, int H, int KV, int D) = 0;

  // Inference: attention of M new queries of one sequence against its KV cache. q[M,H*D] holds
  // the queries of positions t0..t0+M-1; kc, vc [t0+M, KV*D] the keys (after RoPE) and values
  // of positions 0..t0+M-1, the new ones included. Query i attends to positions [0, t0+i] (no
  // document windows: generation runs one document). out[M,H*D] =. Keeps no probabilities:
  // nothing is differentiated at inference.
  virtual void attention_cached_fwd(float* out, const float* q, const float* kc, const float* vc, int M, int t0,
                                    int H, int KV, int D) = 0;

  // h[n] = silu(g[n]) * u[n]
  virtual void swiglu_fwd(float* h, const float* g, const float* u, size_t n) = 0;
  // dg[n] =, du[n] =
  virtual void swiglu_bwd(float* dg, float* du, const float* dh, const float* g, const float* u, size_t n) = 0;

  // a[n] += b[n]
  virtual void add_inplace(float* a, const float* b, size_t n) = 0;

  // Inverted dropout on x[N, I], a slice of columns [col0, col0 + I) of a logical [N, width]
  // input: mask = keep / (1 - p), kept with probability 1 - p by a hash of (seed, n * width +
  // col0 + i), so the same element gets the same mask whatever the tensor-parallel cut and thread
  // count. mask[N,I] =, u[N,I] = x * mask.
  virtual void dropout_fwd(float* u, float* mask, const float* x, int N, int I, int width, int col0, float p,
                           uint64_t seed) = 0;
  // a[n] += b[n] * c[n]
  virtual void mul_acc(float* a, const float* b, const float* c, size_t n) = 0;
  // x[n, :] *= s[n] for the rows of x[N, V] (DPO: each sequence's share of the loss gradient).
  virtual void scale_rows(float* x, const float* s, int N, int V) = 0;

  // Softmax cross-entropy over logits[N,V] with targets[N] (-1: no loss at that row):
  // losses[N] = -log softmax(logits)[target] (0 where ignored). With grad_scale != 0 the
  // logits are overwritten by their gradient, (softmax - onehot) * grad_scale (0 rows where
  // ignored): the [N,V] buffer is the largest activation and is not needed twice.
  virtual void cross_entropy(float* losses, float* logits, const int32_t* targets, int N, int V, float grad_scale) = 0;

  // Vocabulary-parallel softmax cross-entropy (Megatron's VocabParallelCrossEntropy), for a rank
  // whose logits[N,V] are its slice of the vocabulary: targets[N] index the slice, or are -1 (no
  // loss at that row) or -2 (the target is in another slice). Three passes around all-reduces of
  // [N] vectors across the slices, so the logits are never gathered:
  //   rowmax[N] = max over the slice                                   -> all-reduce max
  //   sums[2N] = sum of exp(logit - rowmax) over the slice, then the target's logit (0 when
  //              it is elsewhere)                                       -> all-reduce sum
  //   losses[N] = log(sum) + rowmax - target logit (0 where -1); with grad_scale != 0 the logits
  //              become (softmax - onehot) * grad_scale, rows where -1 zeroed.
  virtual void vocab_ce_max(float* rowmax, const float* logits, int N, int V) = 0;
  virtual void vocab_ce_sums(float* sums, const float* logits, const float* rowmax, const int32_t* targets, int N,
                             int V) = 0;
  virtual void vocab_ce_finish(float* losses, float* logits, const int32_t* targets, const float* rowmax,
                               const float* sums, int N, int V, float grad_scale) = 0;

  // Sum of squares of x[n] (for the global gradient norm), in double.
  virtual double sum_squares(const float* x, size_t n) = 0;
  virtual void scale(float* x, size_t n, float s) = 0;
  // One AdamW step on n parameters (decoupled weight decay, bias-corrected moments):
  // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (m/bc1 / (sqrt(v/bc2) + eps) + wd p).
  virtual void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float b1, float b2, float eps,
                     float wd, float bc1, float bc2) = 0;
};

// The plain reference: single-threaded loops that follow the definitions above.
std::unique_ptr<Backend> make_ref_backend();
// The fast CPU backend: OpenBLAS sgemm and OpenMP with `threads` threads (0: all cores).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);
// "cpu" | "ref" -> backend; UsageError naming --backend otherwise.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0);

// Measured peak of the backend's matmul (GFLOP/s): square products of n = 1024 and 2048 (128 for
// the reference backend), the best of a few runs each. For MFU. Its buffers stay allocated in `be`: give it a backend of its
// own (make_backend) that goes away afterwards.
double measure_matmul_peak_gflops(Backend& be);

// The RoPE tables of a config: cos/sin [max_pos, D/2], with Llama 3 frequency scaling when set.
struct RopeScaling;
void rope_tables(std::vector<float>& cos, std::vector<float>& sin, int max_pos, int D, double theta,
                 const RopeScaling* scaling);

}  // namespace bellows::nn
