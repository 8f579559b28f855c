// The reference backend: each op written the way its definition reads, in double where it sums,
// single-threaded. Slow on purpose; the fast backend is tested against it.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "nn/arena.hpp"
#include "nn/backend.hpp"
#include "nn/rng.hpp"

namespace bellows::nn {
namespace {

class RefBackend final : public Backend {
 public:
  std::string name() const override { return "ref"; }
  int threads() const override { return 1; }

  float* alloc(size_t n) override { return static_cast<float*>(arena_.alloc_bytes(n * sizeof(float))); }
  int32_t* alloc_int(size_t n) override { return static_cast<int32_t*>(arena_.alloc_bytes(n * sizeof(int32_t))); }
  size_t bytes_allocated() const override { return arena_.bytes(); }
  void zero(float* p, size_t n) override { std::memset(p, 0, n * sizeof(float)); }
  void copy(float* dst, const float* src, size_t n) override { std::memmove(dst, src, n * sizeof(float)); }
  void upload(float* dst, const float* host, size_t n) override { copy(dst, host, n); }
  void upload_int(int32_t* dst, const int32_t* host, size_t n) override { std::memmove(dst, host, n * sizeof(int32_t)); }
  void download(float* host, const float* src, size_t n) override { copy(host, src, n); }

  void embedding_fwd(float* out, const int32_t* ids, const float* wte, int N, int C) override {
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) out[size_t(n) * C + c] = ids[n] < 0 ? 0.0f : wte[size_t(ids[n]) * C + c];
  }
  void embedding_bwd(float* dwte, const float* dout, const int32_t* ids, int N, int C) override {
    for (int n = 0; n < N; ++n)
      if (ids[n] >= 0)
        for (int c = 0; c < C; ++c) dwte[size_t(ids[n]) * C + c] += dout[size_t(n) * C + c];
  }

  void rmsnorm_fwd(float* out, float* rstd, const float* inp, const float* w, int N, int C, float eps) override {
    for (int n = 0; n < N; ++n) {
      const float* x = inp + size_t(n) * C;
      double ss = 0;
      for (int c = 0; c < C; ++c) ss += double(x[c]) * x[c];
      float r = float(1.0 / std::sqrt(ss / C + eps));
      rstd[n] = r;
      for (int c = 0; c < C; ++c) out[size_t(n) * C + c] = x[c] * r * w[c];
    }
  }
  void rmsnorm_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, const float* rstd,
                   int N, int C) override {
    for (int n = 0; n < N; ++n) {
      const float* x = inp + size_t(n) * C;
      const float* dy = dout + size_t(n) * C;
      const double r = rstd[n];
      // xhat = x r; y = w xhat; dxhat = dy w; dx = r (dxhat - xhat mean(dxhat xhat))
      double dot = 0;
      for (int c = 0; c < C; ++c) dot += double(dy[c]) * w[c] * x[c] * r;
      const double mean = dot / C;
      for (int c = 0; c < C; ++c) {
        const double xhat = x[c] * r;
        dinp[size_t(n) * C + c] += float(r * (double(dy[c]) * w[c] - xhat * mean));
        if (dw) dw[c] += float(double(dy[c]) * xhat);
      }
    }
  }

  void matmul_fwd(float* out, const float* inp, const float* w, int N, int I, int O) override {
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o) {
        double s = 0;
        for (int i = 0; i < I; ++i) s += double(inp[size_t(n) * I + i]) * w[size_t(o) * I + i];
        out[size_t(n) * O + o] = float(s);
      }
  }
  void matmul_fwd_acc(float* out, const float* inp, const float* w, int N, int I, int O) override {
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o) {
        double s = 0;
        for (int i = 0; i < I; ++i) s += double(inp[size_t(n) * I + i]) * w[size_t(o) * I + i];
        out[size_t(n) * O + o] = float(out[size_t(n) * O + o] + s);
      }
  }
  void matmul_bwd(float* dinp, float* dw, const float* dout, const float* inp, const float* w, int N, int I, int O,
                  bool accumulate_dinp) override {
    if (dinp)
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < I; ++i) {
        double s = accumulate_dinp ? dinp[size_t(n) * I + i] : 0.0;
        for (int o = 0; o < O; ++o) s += double(dout[size_t(n) * O + o]) * w[size_t(o) * I + i];
        dinp[size_t(n) * I + i] = float(s);
      }
    if (dw)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < I; ++i) {
        double s = dw[size_t(o) * I + i];
        for (int n = 0; n < N; ++n) s += double(dout[size_t(n) * O + o]) * inp[size_t(n) * I + i];
        dw[size_t(o) * I + i] = float(s);
      }
  }

  void rope_fwd(float* x, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) override {
    const int half = D / 2;
    for (int n = 0; n < N; ++n)
      for (int h = 0; h < nh; ++h) {
        float* v = x + (size_t(n) * nh + h) * D;
        const float* c = cos + size_t(pos[n]) * half;
        const float* s = sin + size_t(pos[n]) * half;
        for (int i = 0; i < half; ++i) {
          float x1 = v[i], x2 = v[i + half];
          v[i] = x1 * c[i] - x2 * s[i];
          v[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
  }
  void rope_bwd(float* dx, const int32_t* pos, const float* cos, const float* sin, int N, int nh, int D) override {
    const int half = D / 2;
    for (int n = 0; n < N; ++n)
      for (int h = 0; h < nh; ++h) {
        float* v = dx + (size_t(n) * nh + h) * D;
        const float* c = cos + size_t(pos[n]) * half;
        const float* s = sin + size_t(pos[n]) * half;
        for (int i = 0; i < half; ++i) {
          float d1 = v[i], d2 = v[i + half];
          v[i] = d1 * c[i] + d2 * s[i];
          v[i + half] = d2 * c[i] - d1 * s[i];
        }
      }
  }

  void attention_fwd(float* out, float* att, const float* q, const float* k, const float* v, const int32_t* doc_start,
                     int B, int T, int H, int KV, int D) override {
    const int group = H / KV;
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> p(static_cast<size_t>(T));
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const int g = h / group;
        for (int t = 0; t < T; ++t) {
          const size_t nt = size_t(b) * T + t;
          const float* qt = q + nt * H * D + size_t(h) * D;
          float* a = att + ((size_t(b) * H + h) * T + t) * T;
          for (int s = 0; s < T; ++s) a[s] = 0.0f;
          const int lo = doc_start[nt];
          double mx = -INFINITY;
          for (int s = lo; s <= t; ++s) {
            const float* ks = k + (size_t(b) * T + s) * KV * D + size_t(g) * D;
            double dot = 0;
            for (int d = 0; d < D; ++d) dot += double(qt[d]) * ks[d];
            p[size_t(s)] = dot * scale;
            mx = std::max(mx, p[size_t(s)]);
          }
          double sum = 0;
          for (int s = lo; s <= t; ++s) sum += (p[size_t(s)] = std::exp(p[size_t(s)] - mx));
          for (int s = lo; s <= t; ++s) a[s] = float(p[size_t(s)] / sum);
          float* ot = out + nt * H * D + size_t(h) * D;
          for (int d = 0; d < D; ++d) {
            double o = 0;
            for (int s = lo; s <= t; ++s) o += double(a[s]) * v[(size_t(b) * T + s) * KV * D + size_t(g) * D + d];
            ot[d] = float(o);
          }
        }
      }
  }
  void attention_bwd(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                     const float* /*out*/, const float* att, const int32_t* doc_start, int B, int T, int H, int KV, int D) override {
    const int group = H / KV;
    const double scale = 1.0 / std::sqrt(double(D));
    std::memset(dq, 0, size_t(B) * T * H * D * sizeof(float));
    std::memset(dk, 0, size_t(B) * T * KV * D * sizeof(float));
    std::memset(dv, 0, size_t(B) * T * KV * D * sizeof(float));
    std::vector<double> datt(static_cast<size_t>(T));
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        const int g = h / group;
        for (int t = 0; t < T; ++t) {
          const size_t nt = size_t(b) * T + t;
          const int lo = doc_start[nt];
          const float* a = att + ((size_t(b) * H + h) * T + t) * T;
          const float* dot_ = dout + nt * H * D + size_t(h) * D;
          double sum = 0;
          for (int s = lo; s <= t; ++s) {
            const float* vs = v + (size_t(b) * T + s) * KV * D + size_t(g) * D;
            float* dvs = dv + (size_t(b) * T + s) * KV * D + size_t(g) * D;
            double d = 0;
            for (int e = 0; e < D; ++e) {
              d += double(dot_[e]) * vs[e];
              dvs[e] += a[s] * dot_[e];
            }
            datt[size_t(s)] = d;
            sum += a[s] * d;
          }
          const float* qt = q + nt * H * D + size_t(h) * D;
          float* dqt = dq + nt * H * D + size_t(h) * D;
          for (int s = lo; s <= t; ++s) {
            const double ds = a[s] * (datt[size_t(s)] - sum) * scale;
            const float* ks = k + (size_t(b) * T + s) * KV * D + size_t(g) * D;
            float* dks = dk + (size_t(b) * T + s) * KV * D + size_t(g) * D;
            for (int e = 0; e < D; ++e) {
              dqt[e] += float(ds * ks[e]);
              dks[e] += float(ds * qt[e]);
            }
          }
        }
      }
  }

  void attention_cached_fwd(float* out, const float* q, const float* kc, const float* vc, int M, int t0, int H, int KV,
                            int D) override {
    const int group = H / KV;
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> p(static_cast<size_t>(t0 + M));
    for (int i = 0; i < M; ++i)
      for (int h = 0; h < H; ++h) {
        const int g = h / group, t = t0 + i;
        const float* qi = q + (size_t(i) * H + h) * D;
        double mx = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          const float* ks = kc + (size_t(s) * KV + g) * D;
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += double(qi[d]) * ks[d];
          p[size_t(s)] = dot * scale;
          mx = std::max(mx, p[size_t(s)]);
        }
        double sum = 0;
        for (int s = 0; s <= t; ++s) sum += (p[size_t(s)] = std::exp(p[size_t(s)] - mx));
        float* oi = out + (size_t(i) * H + h) * D;
        for (int d = 0; d < D; ++d) {
          double o = 0;
          for (int s = 0; s <= t; ++s) o += p[size_t(s)] / sum * vc[(size_t(s) * KV + g) * D + d];
          oi[d] = float(o);
        }
      }
  }

  void swiglu_fwd(float* h, const float* g, const float* u, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      const double sig = 1.0 / (1.0 + std::exp(-double(g[i])));
      h[i] = float(g[i] * sig * u[i]);
    }
  }
  void swiglu_bwd(float* dg, float* du, const float* dh, const float* g, const float* u, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      const double sig = 1.0 / (1.0 + std::exp(-double(g[i])));
      const double silu = g[i] * sig;
      dg[i] = float(dh[i] * u[i] * (sig + g[i] * sig * (1.0 - sig)));
      du[i] = float(dh[i] * silu);
    }
  }

  void add_inplace(float* a, const float* b, size_t n) override {
    for (size_t i = 0; i < n; ++i) a[i] += b[i];
  }

  void cross_entropy(float* losses, float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
    for (int n = 0; n < N; ++n) {
      float* l = logits + size_t(n) * V;
      if (targets[n] < 0) {
        losses[n] = 0.0f;
        if (grad_scale != 0.0f)
          for (int i = 0; i < V; ++i) l[i] = 0.0f;
        continue;
      }
      double mx = -INFINITY;
      for (int i = 0; i < V; ++i) mx = std::max(mx, double(l[i]));
      double sum = 0;
      for (int i = 0; i < V; ++i) sum += std::exp(double(l[i]) - mx);
      losses[n] = float(std::log(sum) + mx - l[targets[n]]);
      if (grad_scale != 0.0f)
        for (int i = 0; i < V; ++i) {
          const double p = std::exp(double(l[i]) - mx) / sum;
          l[i] = float((p - (i == targets[n] ? 1.0 : 0.0)) * grad_scale);
        }
    }
  }

  void dropout_fwd(float* u, float* mask, const float* x, int N, int I, int width, int col0, float p,
                   uint64_t seed) override {
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < I; ++i) {
        const size_t k = size_t(n) * I + i;
        const bool keep = hash_uniform(seed, uint64_t(n) * uint64_t(width) + uint64_t(col0 + i)) >= p;
        mask[k] = keep ? 1.0f / (1.0f - p) : 0.0f;
        u[k] = x[k] * mask[k];
      }
  }
  void scale_rows(float* x, const float* s, int N, int V) override {
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < V; ++i) x[size_t(n) * V + i] *= s[n];
  }
  void mul_acc(float* a, const float* b, const float* c, size_t n) override {
    for (size_t i = 0; i < n; ++i) a[i] += b[i] * c[i];
  }

  void vocab_ce_max(float* rowmax, const float* logits, int N, int V) override {
    for (int n = 0; n < N; ++n) {
      float mx = -INFINITY;
      for (int i = 0; i < V; ++i) mx = std::max(mx, logits[size_t(n) * V + i]);
      rowmax[n] = mx;
    }
  }
  void vocab_ce_sums(float* sums, const float* logits, const float* rowmax, const int32_t* targets, int N,
                     int V) override {
    for (int n = 0; n < N; ++n) {
      const float* l = logits + size_t(n) * V;
      double s = 0;
      for (int i = 0; i < V; ++i) s += std::exp(double(l[i]) - rowmax[n]);
      sums[n] = float(s);
      sums[N + n] = targets[n] >= 0 ? l[targets[n]] : 0.0f;
    }
  }
  void vocab_ce_finish(float* losses, float* logits, const int32_t* targets, const float* rowmax, const float* sums,
                       int N, int V, float grad_scale) override {
    for (int n = 0; n < N; ++n) {
      float* l = logits + size_t(n) * V;
      const bool ignored = targets[n] == -1;
      losses[n] = ignored ? 0.0f : float(std::log(double(sums[n])) + rowmax[n] - sums[N + n]);
      if (grad_scale == 0.0f) continue;
      for (int i = 0; i < V; ++i) {
        const double p = std::exp(double(l[i]) - rowmax[n]) / sums[n];
        l[i] = ignored ? 0.0f : float((p - (i == targets[n] ? 1.0 : 0.0)) * grad_scale);
      }
    }
  }

  double sum_squares(const float* x, size_t n) override {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
    return s;
  }
  void scale(float* x, size_t n, float s) override {
    for (size_t i = 0; i < n; ++i) x[i] *= s;
  }
  void adamw(float* p, const float* g, float* m, float* v, size_t n, float lr, float b1, float b2, float eps, float wd,
             float bc1, float bc2) override {
    for (size_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const float mhat = m[i] / bc1, vhat = v[i] / bc2;
      p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
    }
  }

 private:
  Arena arena_;
};

}  // namespace

std::unique_ptr<Backend> make_ref_backend() { return std::make_unique<RefBackend>(); }

}  // namespace bellows::nn
