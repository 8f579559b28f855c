// The ops of both CPU backends: the fast one against the reference, the reference against finite
// differences; then the whole model: fast == reference, finite differences on parameters,
// recomputation modes bit-identical to keeping everything.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "cuda/backend_cuda.hpp"
#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/device.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "core/error.hpp"
#include "nn/rng.hpp"
#include "dist/comm.hpp"

using namespace bellows;
using namespace bellows::nn;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, double scale = 1.0) {
  Rng r(seed, "test");
  std::vector<float> v(n);
  for (auto& x : v) x = float(r.normal() * scale);
  return v;
}

// Relative distance ||a - b|| / max(||b||, tiny).
double rel(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-12);
}

// A host-side view of running one op on a backend: inputs are copied in, outputs copied out.
struct Dev {
  Backend& be;
  float* put(const std::vector<float>& h) {
    float* p = be.alloc(h.size());
    be.upload(p, h.data(), h.size());
    return p;
  }
  int32_t* put(const std::vector<int32_t>& h) {
    int32_t* p = be.alloc_int(h.size());
    be.upload_int(p, h.data(), h.size());
    return p;
  }
  std::vector<float> get(const float* p, size_t n) {
    std::vector<float> h(n);
    be.download(h.data(), p, n);
    return h;
  }
};

// Checks d(sum(f(x) * R))/dx from `analytic` against central differences at a sample of x's
// elements. `f` evaluates the op on the reference backend for the given x.
void fd_check(const char* what, std::vector<float> x, const std::vector<float>& analytic,
              const std::function<double(const std::vector<float>&)>& f, double h = 1e-2, double tol = 2e-2) {
  std::vector<float> fd, an;
  const size_t step = std::max<size_t>(1, x.size() / 40);
  for (size_t i = 0; i < x.size(); i += step) {
    const float keep = x[i];
    x[i] = keep + float(h);
    const double up = f(x);
    x[i] = keep - float(h);
    const double down = f(x);
    x[i] = keep;
    fd.push_back(float((up - down) / (2 * h)));
    an.push_back(analytic[i]);
  }
  EXPECT_LT(rel(an, fd), tol) << what;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

// The reference and one fast backend: the CPU one, or CUDA (fp32 GEMMs, so that the same
// tolerances hold). `cpu` names the fast one whichever it is.
std::unique_ptr<Backend> make_fast(const std::string& name) {
  return name == "cuda" ? cuda::make_cuda_backend(0, "fp32") : make_cpu_backend(2);
}
struct Backends {
  explicit Backends(const std::string& fast = "cpu") : cpu(make_fast(fast)) {}
  std::unique_ptr<Backend> ref = make_ref_backend();
  std::unique_ptr<Backend> cpu;
};

// One suite over the fast backends (ggml's way): every op and model test below that compares a
// fast backend with the reference runs once per backend, as Cpu/... and Cuda/...; the CUDA
// instances skip, saying why, where no GPU can be used (make test-gpu runs them on one).
class FastBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda") {
      const std::string why = cuda::backend_unavailable_reason();
      if (!why.empty()) GTEST_SKIP() << "CUDA: " << why;
    }
  }
};
class NnOpsFast : public FastBackend {};
class NnModelFast : public FastBackend {};
class NnLoraFast : public FastBackend {};

}  // namespace

TEST_P(NnOpsFast, MatmulFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const int N = 37, I = 29, O = 23;
  auto inp = randn(size_t(N) * I, 1), w = randn(size_t(O) * I, 2), R = randn(size_t(N) * O, 3);
  auto run = [&](Backend& be, const std::vector<float>& x, const std::vector<float>& wt, std::vector<float>* dinp,
                 std::vector<float>* dw) {
    Dev d{be};
    float* out = be.alloc(size_t(N) * O);
    float* xi = d.put(x);
    float* wi = d.put(wt);
    be.matmul_fwd(out, xi, wi, N, I, O);
    auto o = d.get(out, size_t(N) * O);
    if (dinp) {
      float* di = d.put(std::vector<float>(size_t(N) * I, 0.5f));  // accumulate onto 0.5
      float* dwi = d.put(std::vector<float>(size_t(O) * I, 0.25f));
      be.matmul_bwd(di, dwi, d.put(R), xi, wi, N, I, O, true);
      *dinp = d.get(di, size_t(N) * I);
      *dw = d.get(dwi, size_t(O) * I);
      for (auto& v : *dinp) v -= 0.5f;
      for (auto& v : *dw) v -= 0.25f;
    }
    return o;
  };
  std::vector<float> di_r, dw_r, di_c, dw_c;
  auto o_r = run(*b.ref, inp, w, &di_r, &dw_r);
  auto o_c = run(*b.cpu, inp, w, &di_c, &dw_c);
  EXPECT_LT(rel(o_c, o_r), 1e-5);
  EXPECT_LT(rel(di_c, di_r), 1e-5);
  EXPECT_LT(rel(dw_c, dw_r), 1e-5);
  fd_check("matmul dinp", inp, di_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, x, w, nullptr, nullptr), R); });
  fd_check("matmul dw", w, dw_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, inp, x, nullptr, nullptr), R); });
}

TEST_P(NnOpsFast, RmsnormFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const int N = 19, C = 48;
  auto inp = randn(size_t(N) * C, 4), w = randn(size_t(C), 5, 0.5), R = randn(size_t(N) * C, 6);
  for (auto& x : w) x += 1.0f;
  auto run = [&](Backend& be, const std::vector<float>& x, const std::vector<float>& wt, std::vector<float>* dinp,
                 std::vector<float>* dw) {
    Dev d{be};
    float* out = be.alloc(size_t(N) * C);
    float* rstd = be.alloc(size_t(N));
    float* xi = d.put(x);
    float* wi = d.put(wt);
    be.rmsnorm_fwd(out, rstd, xi, wi, N, C, 1e-5f);
    if (dinp) {
      float* di = be.alloc(size_t(N) * C);
      float* dwi = be.alloc(size_t(C));
      be.rmsnorm_bwd(di, dwi, d.put(R), xi, wi, rstd, N, C);
      *dinp = d.get(di, size_t(N) * C);
      *dw = d.get(dwi, size_t(C));
    }
    return d.get(out, size_t(N) * C);
  };
  std::vector<float> di_r, dw_r, di_c, dw_c;
  auto o_r = run(*b.ref, inp, w, &di_r, &dw_r);
  auto o_c = run(*b.cpu, inp, w, &di_c, &dw_c);
  EXPECT_LT(rel(o_c, o_r), 1e-5);
  EXPECT_LT(rel(di_c, di_r), 1e-5);
  EXPECT_LT(rel(dw_c, dw_r), 1e-5);
  fd_check("rmsnorm dinp", inp, di_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, x, w, nullptr, nullptr), R); });
  fd_check("rmsnorm dw", w, dw_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, inp, x, nullptr, nullptr), R); });
}

TEST_P(NnOpsFast, EmbeddingFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const int N = 30, C = 16, V = 11;
  std::vector<int32_t> ids(N);
  for (int i = 0; i < N; ++i) ids[size_t(i)] = (i * 7) % V;  // repeated ids accumulate
  auto wte = randn(size_t(V) * C, 7), R = randn(size_t(N) * C, 8);
  auto run = [&](Backend& be, const std::vector<float>& w, std::vector<float>* dw) {
    Dev d{be};
    float* out = be.alloc(size_t(N) * C);
    float* wi = d.put(w);
    int32_t* id = d.put(ids);
    be.embedding_fwd(out, id, wi, N, C);
    if (dw) {
      float* dwi = be.alloc(size_t(V) * C);
      be.embedding_bwd(dwi, d.put(R), id, N, C);
      *dw = d.get(dwi, size_t(V) * C);
    }
    return d.get(out, size_t(N) * C);
  };
  std::vector<float> dw_r, dw_c;
  EXPECT_EQ(run(*b.cpu, wte, &dw_c), run(*b.ref, wte, &dw_r));
  EXPECT_LT(rel(dw_c, dw_r), 1e-6);
  fd_check("embedding dwte", wte, dw_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, x, nullptr), R); });
}

TEST_P(NnOpsFast, RopeFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const int N = 12, nh = 3, D = 8;
  std::vector<float> cos, sin;
  RopeScaling s;  // Llama 3 scaling exercised too
  rope_tables(cos, sin, 64, D, 500000.0, &s);
  std::vector<int32_t> pos(N);
  for (int i = 0; i < N; ++i) pos[size_t(i)] = (i * 5) % 64;
  auto x = randn(size_t(N) * nh * D, 9), R = randn(size_t(N) * nh * D, 10);
  auto run = [&](Backend& be, const std::vector<float>& in, std::vector<float>* dx) {
    Dev d{be};
    float* xi = d.put(in);
    float* c = d.put(cos);
    float* sn = d.put(sin);
    int32_t* p = d.put(pos);
    be.rope_fwd(xi, p, c, sn, N, nh, D);
    if (dx) {
      float* g = d.put(R);
      be.rope_bwd(g, p, c, sn, N, nh, D);
      *dx = d.get(g, R.size());
    }
    return d.get(xi, in.size());
  };
  std::vector<float> g_r, g_c;
  auto o_r = run(*b.ref, x, &g_r);
  EXPECT_LT(rel(run(*b.cpu, x, &g_c), o_r), 1e-6);
  EXPECT_LT(rel(g_c, g_r), 1e-6);
  fd_check("rope dx", x, g_r, [&](const std::vector<float>& in) { return dot(run(*b.ref, in, nullptr), R); });
}

TEST_P(NnOpsFast, AttentionFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const int B = 2, T = 9, H = 4, KV = 2, D = 8, N = B * T;
  // Row 0: one document; row 1: documents starting at 0, 3 and 7.
  std::vector<int32_t> ds(static_cast<size_t>(N));
  for (int t = 0; t < T; ++t) {
    ds[size_t(t)] = 0;
    ds[size_t(T + t)] = t >= 7 ? 7 : t >= 3 ? 3 : 0;
  }
  auto q = randn(size_t(N) * H * D, 11), k = randn(size_t(N) * KV * D, 12), v = randn(size_t(N) * KV * D, 13),
       R = randn(size_t(N) * H * D, 14);
  struct Grads {
    std::vector<float> dq, dk, dv;
  };
  auto run = [&](Backend& be, const std::vector<float>& qq, const std::vector<float>& kk, const std::vector<float>& vv,
                 Grads* g) {
    Dev d{be};
    float* out = be.alloc(size_t(N) * H * D);
    float* att = be.alloc(size_t(B) * H * T * T);
    float* qi = d.put(qq);
    float* ki = d.put(kk);
    float* vi = d.put(vv);
    int32_t* dsi = d.put(ds);
    be.attention_fwd(out, att, qi, ki, vi, dsi, B, T, H, KV, D);
    if (g) {
      float* dq = be.alloc(qq.size());
      float* dk = be.alloc(kk.size());
      float* dv = be.alloc(vv.size());
      be.attention_bwd(dq, dk, dv, d.put(R), qi, ki, vi, out, att, dsi, B, T, H, KV, D);
      g->dq = d.get(dq, qq.size());
      g->dk = d.get(dk, kk.size());
      g->dv = d.get(dv, vv.size());
    }
    return d.get(out, size_t(N) * H * D);
  };
  Grads gr, gc;
  auto o_r = run(*b.ref, q, k, v, &gr);
  EXPECT_LT(rel(run(*b.cpu, q, k, v, &gc), o_r), 1e-5);
  EXPECT_LT(rel(gc.dq, gr.dq), 1e-5);
  EXPECT_LT(rel(gc.dk, gr.dk), 1e-5);
  EXPECT_LT(rel(gc.dv, gr.dv), 1e-5);
  fd_check("attention dq", q, gr.dq, [&](const std::vector<float>& x) { return dot(run(*b.ref, x, k, v, nullptr), R); });
  fd_check("attention dk", k, gr.dk, [&](const std::vector<float>& x) { return dot(run(*b.ref, q, x, v, nullptr), R); });
  fd_check("attention dv", v, gr.dv, [&](const std::vector<float>& x) { return dot(run(*b.ref, q, k, x, nullptr), R); });
  // Document masking: the first token of row 1's third document sees only itself, so its
  // output is its own value vector (of its kv head).
  auto o = o_r;
  for (int h = 0; h < H; ++h)
    for (int e = 0; e < D; ++e)
      EXPECT_NEAR(o[(size_t(T + 7) * H + h) * D + e], v[(size_t(T + 7) * KV + h / (H / KV)) * D + e], 1e-6);
}

// Rows longer than one 32-key tile (CUDA) or 32-query block (CPU: rows of 77 are three blocks,
// the last one partial), heads wider than one warp (40: lanes partly idle; 128: the widest CUDA
// supports), documents that start mid-tile and mid-block (a block's queries then see keys from
// the earliest of their document starts on).
TEST_P(NnOpsFast, AttentionLongRowsAndWideHeads) {
  Backends b(GetParam());
  for (int D : {40, 128}) {
    const int B = 2, T = 77, H = 4, KV = 2, N = B * T;
    std::vector<int32_t> ds(static_cast<size_t>(N));
    for (int t = 0; t < T; ++t) {
      ds[size_t(t)] = 0;
      ds[size_t(T + t)] = t >= 61 ? 61 : t >= 30 ? 30 : 0;
    }
    auto q = randn(size_t(N) * H * D, 31), k = randn(size_t(N) * KV * D, 32), v = randn(size_t(N) * KV * D, 33),
         R = randn(size_t(N) * H * D, 34);
    auto run = [&](Backend& be, std::vector<float>* dq, std::vector<float>* dk, std::vector<float>* dv) {
      Dev d{be};
      float* out = be.alloc(size_t(N) * H * D);
      float* att = be.alloc(be.attention_state_floats(B, H, T));
      float *qi = d.put(q), *ki = d.put(k), *vi = d.put(v);
      int32_t* dsi = d.put(ds);
      be.attention_fwd(out, att, qi, ki, vi, dsi, B, T, H, KV, D);
      float* gq = be.alloc(q.size());
      float* gk = be.alloc(k.size());
      float* gv = be.alloc(v.size());
      be.attention_bwd(gq, gk, gv, d.put(R), qi, ki, vi, out, att, dsi, B, T, H, KV, D);
      *dq = d.get(gq, q.size());
      *dk = d.get(gk, k.size());
      *dv = d.get(gv, v.size());
      return d.get(out, size_t(N) * H * D);
    };
    std::vector<float> rq, rk, rv, fq, fk, fv;
    const auto o_r = run(*b.ref, &rq, &rk, &rv);
    EXPECT_LT(rel(run(*b.cpu, &fq, &fk, &fv), o_r), 1e-5) << "D " << D;
    EXPECT_LT(rel(fq, rq), 1e-5) << "D " << D;
    EXPECT_LT(rel(fk, rk), 1e-5) << "D " << D;
    EXPECT_LT(rel(fv, rv), 1e-5) << "D " << D;
  }
}

TEST_P(NnOpsFast, SwigluFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const size_t n = 333;
  auto g = randn(n, 15, 3.0), u = randn(n, 16), R = randn(n, 17);
  auto run = [&](Backend& be, const std::vector<float>& gg, const std::vector<float>& uu, std::vector<float>* dg,
                 std::vector<float>* du) {
    Dev d{be};
    float* h = be.alloc(n);
    float* gi = d.put(gg);
    float* ui = d.put(uu);
    be.swiglu_fwd(h, gi, ui, n);
    if (dg) {
      float* dgi = be.alloc(n);
      float* dui = be.alloc(n);
      be.swiglu_bwd(dgi, dui, d.put(R), gi, ui, n);
      *dg = d.get(dgi, n);
      *du = d.get(dui, n);
    }
    return d.get(h, n);
  };
  std::vector<float> dg_r, du_r, dg_c, du_c;
  auto o_r = run(*b.ref, g, u, &dg_r, &du_r);
  EXPECT_LT(rel(run(*b.cpu, g, u, &dg_c, &du_c), o_r), 1e-6);
  EXPECT_LT(rel(dg_c, dg_r), 1e-6);
  EXPECT_LT(rel(du_c, du_r), 1e-6);
  fd_check("swiglu dg", g, dg_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, x, u, nullptr, nullptr), R); });
  fd_check("swiglu du", u, du_r, [&](const std::vector<float>& x) { return dot(run(*b.ref, g, x, nullptr, nullptr), R); });
}

TEST_P(NnOpsFast, CrossEntropyFastEqualsReferenceAndGradients) {
  Backends b(GetParam());
  const int N = 7, V = 50;
  auto logits = randn(size_t(N) * V, 18, 3.0);
  std::vector<int32_t> targets = {3, 49, 0, -1, 17, 17, 2};
  auto run = [&](Backend& be, const std::vector<float>& l, float scale, std::vector<float>* grad) {
    Dev d{be};
    float* li = d.put(l);
    float* losses = be.alloc(size_t(N));
    be.cross_entropy(losses, li, d.put(targets), N, V, scale);
    if (grad) *grad = d.get(li, l.size());
    return d.get(losses, size_t(N));
  };
  std::vector<float> g_r, g_c;
  auto l_r = run(*b.ref, logits, 0.5f, &g_r);
  EXPECT_LT(rel(run(*b.cpu, logits, 0.5f, &g_c), l_r), 1e-6);
  EXPECT_LT(rel(g_c, g_r), 1e-6);
  EXPECT_EQ(l_r[3], 0.0f);  // ignored target
  EXPECT_LT(rel(run(*b.cpu, logits, 0.0f, nullptr), l_r), 1e-6);  // loss only: same values
  auto total = [&](const std::vector<float>& l) {
    double s = 0;
    for (float x : run(*b.ref, l, 0.0f, nullptr)) s += x;
    return 0.5 * s;
  };
  fd_check("cross-entropy dlogits", logits, g_r, total);
}

TEST_P(NnOpsFast, ReductionsAndAdamwFastEqualReference) {
  Backends b(GetParam());
  const size_t n = 100003;  // several blocks and a ragged tail
  auto x = randn(n, 19);
  Dev dr{*b.ref}, dc{*b.cpu};
  EXPECT_NEAR(b.cpu->sum_squares(dc.put(x), n) / b.ref->sum_squares(dr.put(x), n), 1.0, 1e-12);
  auto p = randn(n, 20), g = randn(n, 21), m = randn(n, 22, 0.1), v = randn(n, 23, 0.1);
  for (auto& e : v) e = std::fabs(e);
  auto step = [&](Backend& be) {
    Dev d{be};
    float *pp = d.put(p), *mm = d.put(m), *vv = d.put(v);
    be.adamw(pp, d.put(g), mm, vv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f);
    return std::vector<std::vector<float>>{d.get(pp, n), d.get(mm, n), d.get(vv, n)};
  };
  auto r = step(*b.ref), c = step(*b.cpu);
  for (int i = 0; i < 3; ++i) EXPECT_LT(rel(c[size_t(i)], r[size_t(i)]), 1e-6) << i;
}

TEST_P(NnOpsFast, ScaleRowsFastEqualsReference) {
  Backends b(GetParam());
  const int N = 37, V = 1031;  // rows of odd length, several per thread
  const auto x = randn(size_t(N) * V, 24), s = randn(size_t(N), 25);
  auto run = [&](Backend& be) {
    Dev d{be};
    float* xx = d.put(x);
    be.scale_rows(xx, d.put(s), N, V);
    return d.get(xx, x.size());
  };
  const auto r = run(*b.ref), c = run(*b.cpu);
  EXPECT_EQ(c, r);
  for (int n = 0; n < N; ++n) EXPECT_EQ(r[size_t(n) * V + 7], x[size_t(n) * V + 7] * s[size_t(n)]) << n;
}

namespace {

LlamaConfig tiny_config(bool tied) {
  LlamaConfig c = preset("tiny", 97);
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = tied;
  return c;
}

struct Batch {
  std::vector<int32_t> ids, targets, pos, doc_start;
};

// Two rows; the second holds two documents (the second starting at position 5).
Batch tiny_batch(int B, int T, int V) {
  Batch b;
  Rng r(5, "batch");
  for (int row = 0; row < B; ++row)
    for (int t = 0; t < T; ++t) {
      b.ids.push_back(int32_t(r.below(uint64_t(V))));
      b.targets.push_back(t == 2 && row == 0 ? -1 : int32_t(r.below(uint64_t(V))));
      const int start = row == 1 && t >= 5 ? 5 : 0;
      b.doc_start.push_back(start);
      b.pos.push_back(t - start);
    }
  return b;
}

struct ModelRun {
  double loss;
  std::vector<float> grads;
};

ModelRun run_model(Backend& be, const LlamaConfig& c, Recompute rc, const std::vector<float>* params = nullptr) {
  const int B = 2, T = 8;
  LlamaModel m(c, be, B, T, rc);
  m.init_weights(1);
  if (params) be.upload(m.param_data(), params->data(), params->size());
  Batch b = tiny_batch(B, T, int(c.vocab_size));
  m.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data());
  ModelRun r;
  r.loss = m.forward(1.0f);
  m.backward();
  r.grads.resize(m.num_params());
  be.download(r.grads.data(), m.grad_data(), r.grads.size());
  return r;
}

}  // namespace

TEST_P(NnModelFast, FastEqualsReferenceTiedAndUntied) {
  for (bool tied : {false, true}) {
    Backends b(GetParam());
    auto c = tiny_config(tied);
    ModelRun r = run_model(*b.ref, c, Recompute::none), f = run_model(*b.cpu, c, Recompute::none);
    EXPECT_NEAR(f.loss / r.loss, 1.0, 1e-5);
    EXPECT_LT(rel(f.grads, r.grads), 1e-4) << "tied " << tied;
  }
}

TEST_P(NnModelFast, RecomputeModesGiveBitIdenticalGradients) {
  Backends b(GetParam());
  auto c = tiny_config(false);
  ModelRun none = run_model(*b.cpu, c, Recompute::none);
  for (Recompute rc : {Recompute::selective, Recompute::full}) {
    ModelRun r = run_model(*b.cpu, c, rc);
    EXPECT_EQ(r.loss, none.loss) << to_string(rc);
    EXPECT_EQ(r.grads, none.grads) << to_string(rc);
  }
}

// No atomics, fixed reduction orders: a second run gives the same bits.
TEST_P(NnModelFast, RerunsAreBitIdentical) {
  auto c = tiny_config(false);
  Backends b1(GetParam()), b2(GetParam());
  const ModelRun r1 = run_model(*b1.cpu, c, Recompute::none), r2 = run_model(*b2.cpu, c, Recompute::none);
  EXPECT_EQ(r1.loss, r2.loss);
  EXPECT_EQ(r1.grads, r2.grads);
}

TEST(NnModel, ParameterGradientsMatchFiniteDifferences) {
  Backends b;
  auto c = tiny_config(false);
  ModelRun base = run_model(*b.ref, c, Recompute::none);
  LlamaModel probe(c, *b.ref, 2, 8);
  probe.init_weights(1);
  std::vector<float> p(probe.num_params());
  b.ref->download(p.data(), probe.param_data(), p.size());
  // A few elements of every tensor, judged tensor by tensor (small gradients, such as q/k's at
  // initialisation, must not hide behind the embedding's).
  for (const auto& s : probe.params()) {
    std::vector<float> fd, an;
    const size_t samples = std::min<size_t>(8, s.numel), stride = s.numel / samples;
    for (size_t j = 0; j < samples; ++j) {  // spread over rows and columns
      const size_t i = s.offset + j * stride + (j * 13) % stride;
      const float keep = p[i];
      const double h = 1e-2;
      p[i] = keep + float(h);
      const double up = run_model(*b.ref, c, Recompute::none, &p).loss;
      p[i] = keep - float(h);
      const double down = run_model(*b.ref, c, Recompute::none, &p).loss;
      p[i] = keep;
      fd.push_back(float((up - down) / (2 * h)));
      an.push_back(base.grads[i]);
    }
    EXPECT_LT(rel(an, fd), 5e-2) << s.name;
  }
}

TEST(NnConfig, PresetsAndHfJson) {
  auto c = preset("llama3-8b", 0);
  EXPECT_NEAR(double(c.num_params()) / 1e9, 8.03, 0.01);  // Meta's model card: 8.03B
  EXPECT_NEAR(double(preset("smollm2-135m", 0).num_params()) / 1e6, 134.5, 0.5);
  auto back = LlamaConfig::from_hf_json(preset("llama3.2-1b", 0).to_hf_json(), "x");
  EXPECT_TRUE(back.rope_scaling.has_value());
  EXPECT_EQ(back.num_key_value_heads, 8);
  EXPECT_THROW(preset("gpt-5", 100), UsageError);
  nlohmann::json bad = preset("tiny", 10).to_hf_json();
  bad["num_key_value_heads"] = 3;
  EXPECT_THROW(LlamaConfig::from_hf_json(bad, "bad.json"), UsageError);
}

// --- the pieces of tensor and pipeline parallelism that need no second process ----------------

// The three vocabulary-parallel passes over two slices, with the all-reduces done by hand, give
// the losses and gradients of the plain cross-entropy over the whole vocabulary.
TEST_P(NnOpsFast, VocabParallelCrossEntropyEqualsWhole) {
  Backends b(GetParam());
  const int N = 6, V = 23, split = 9;  // slices [0, 9) and [9, 23): uneven, as vocab_range allows
  auto logits = randn(size_t(N) * V, 21, 3.0);
  const std::vector<int32_t> targets = {3, 22, 9, -1, 8, 15};
  for (Backend* be : {b.ref.get(), b.cpu.get()}) {
    Dev d{*be};
    float* whole = d.put(logits);
    float* losses = be->alloc(size_t(N));
    be->cross_entropy(losses, whole, d.put(targets), N, V, 0.25f);
    const auto want_loss = d.get(losses, size_t(N)), want_grad = d.get(whole, logits.size());

    struct Slice {
      int v0, n;
      float *logits, *max, *sums;
      int32_t* targets;
    };
    std::vector<Slice> slices;
    for (auto [v0, v1] : {std::pair{0, split}, std::pair{split, V}}) {
      std::vector<float> part;
      std::vector<int32_t> local;
      for (int n = 0; n < N; ++n) {
        part.insert(part.end(), logits.begin() + n * V + v0, logits.begin() + n * V + v1);
        const int t = targets[size_t(n)];
        local.push_back(t < 0 ? -1 : (t >= v0 && t < v1 ? t - v0 : -2));
      }
      slices.push_back({v0, v1 - v0, d.put(part), be->alloc(size_t(N)), be->alloc(2 * size_t(N)), d.put(local)});
    }
    for (auto& s : slices) be->vocab_ce_max(s.max, s.logits, N, s.n);
    std::vector<float> mx(size_t(N), -INFINITY), sums(2 * size_t(N), 0.0f);
    for (auto& s : slices) {
      auto m = d.get(s.max, size_t(N));
      for (int n = 0; n < N; ++n) mx[size_t(n)] = std::max(mx[size_t(n)], m[size_t(n)]);
    }
    for (auto& s : slices) {
      be->upload(s.max, mx.data(), size_t(N));
      be->vocab_ce_sums(s.sums, s.logits, s.max, s.targets, N, s.n);
      auto p = d.get(s.sums, 2 * size_t(N));
      for (size_t i = 0; i < p.size(); ++i) sums[i] += p[i];
    }
    std::vector<float> got_grad(logits.size());
    for (auto& s : slices) {
      be->upload(s.sums, sums.data(), sums.size());
      be->vocab_ce_finish(losses, s.logits, s.targets, s.max, s.sums, N, s.n, 0.25f);
      auto g = d.get(s.logits, size_t(N) * s.n);
      for (int n = 0; n < N; ++n)
        std::copy(g.begin() + n * s.n, g.begin() + (n + 1) * s.n, got_grad.begin() + n * V + s.v0);
      EXPECT_LT(rel(d.get(losses, size_t(N)), want_loss), 1e-6) << be->name();
    }
    EXPECT_LT(rel(got_grad, want_grad), 1e-6) << be->name();
  }
}

// Id -1 (held by another vocabulary slice): a zero row forward, nothing scattered backward.
TEST_P(NnOpsFast, EmbeddingSkipsIdsOfOtherSlices) {
  Backends b(GetParam());
  const int N = 4, C = 5, V = 3;
  auto wte = randn(size_t(V) * C, 30);
  const std::vector<int32_t> ids = {2, -1, 0, -1};
  auto dout = randn(size_t(N) * C, 31);
  for (Backend* be : {b.ref.get(), b.cpu.get()}) {
    Dev d{*be};
    float* out = be->alloc(size_t(N) * C);
    be->embedding_fwd(out, d.put(ids), d.put(wte), N, C);
    auto o = d.get(out, size_t(N) * C);
    for (int c = 0; c < C; ++c) {
      EXPECT_EQ(o[size_t(C + c)], 0.0f);
      EXPECT_EQ(o[size_t(c)], wte[size_t(2 * C + c)]);
    }
    std::vector<float> zeros(size_t(V) * C, 0.0f);
    float* dw = d.put(zeros);
    be->embedding_bwd(dw, d.put(dout), d.put(ids), N, C);
    auto g = d.get(dw, zeros.size());
    for (int c = 0; c < C; ++c) {
      EXPECT_EQ(g[size_t(C + c)], 0.0f);  // id 1 never appears
      EXPECT_EQ(g[size_t(c)], dout[size_t(2 * C + c)]);
    }
  }
}

namespace {

// A group of t ranks in name only, for building a tensor-parallel shard in one process: only
// what needs no peers (initialisation, parameter lists) may run on it.
class NamedGroup final : public dist::Communicator {
 public:
  NamedGroup(int r, int t) : r_(r), t_(t) {}
  int rank() const override { return r_; }
  int size() const override { return t_; }
  [[noreturn]] static void no() { throw InternalError("NamedGroup cannot communicate"); }
  void barrier() override { no(); }
  void broadcast(void*, size_t, int) override { no(); }
  void allreduce(int64_t*, size_t, dist::ReduceOp) override { no(); }
  void allreduce(double*, size_t, dist::ReduceOp) override { no(); }
  std::vector<std::string> gather(const std::string&, int) override { no(); }
  std::vector<std::string> allgather(const std::string&) override { no(); }
  std::vector<std::string> alltoallv(const std::vector<std::string>&) override { no(); }
  void allreduce(float*, size_t, dist::ReduceOp) override { no(); }
  void reduce_scatter(float*, const std::vector<size_t>&) override { no(); }
  void allgather(float*, const std::vector<size_t>&) override { no(); }
  void send(const float*, size_t, int) override { no(); }
  void recv(float*, size_t, int) override { no(); }
  void sendrecv(const float*, size_t, int, float*, size_t, int) override { no(); }
  std::unique_ptr<dist::Communicator> split(int, int) override { no(); }

 private:
  int r_, t_;
};

}  // namespace

// A shard initialises to exactly its slice of the whole model's initial weights, whatever the
// cut (values do not depend on the layout).
TEST_P(NnModelFast, ShardInitialisationIsTheSliceOfTheWhole) {
  Backends b(GetParam());
  LlamaConfig c = tiny_config(false);
  c.vocab_size = 97;  // odd: uneven vocabulary slices
  LlamaModel whole(c, *b.cpu, 1, 4);
  whole.init_weights(7);
  std::vector<float> w(whole.num_params());
  b.cpu->download(w.data(), whole.param_data(), w.size());
  std::map<std::string, const ParamSpec*> by_name;
  for (const auto& p : whole.params()) by_name[p.name] = &p;
  for (int t : {2, 4})
    for (int r = 0; r < t; ++r) {
      if (c.num_key_value_heads % t) continue;
      NamedGroup g(r, t);
      ModelParallel mp;
      mp.shard.tp_rank = r;
      mp.shard.tp_size = t;
      mp.shard.layer_begin = 1;
      mp.shard.has_embedding = false;
      mp.tp = &g;
      LlamaModel shard(c, *b.cpu, 1, 4, Recompute::none, mp);
      shard.init_weights(7);
      std::vector<float> s(shard.num_params());
      b.cpu->download(s.data(), shard.param_data(), s.size());
      for (const auto& p : shard.params()) {
        const ParamSpec& q = *by_name.at(p.name);
        for (size_t i = 0; i < p.numel; ++i)
          ASSERT_EQ(s[p.offset + i], w[q.offset + logical_index(p, i)]) << p.name << " tp " << r << "/" << t;
      }
    }
  EXPECT_THROW(check_tensor_parallel(c, 4), UsageError);  // 2 kv heads do not split 4 ways
  try {
    check_tensor_parallel(c, 4);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("key/value heads (2)"), std::string::npos) << e.what();
  }
}

// Pipeline stages run one after the other, the activation handed forward and the gradient back
// by hand, give the whole model's loss and gradients, bit for bit (the same ops in the same
// order), with tied embeddings whose head copy's gradient is added to the embedding's.
TEST_P(NnModelFast, PipelineStagesChainedEqualTheWholeModel) {
  for (bool tied : {false, true}) {
    Backends b(GetParam());
    LlamaConfig c = tiny_config(tied);
    c.num_hidden_layers = 3;
    const int B = 2, T = 8;
    Batch batch = tiny_batch(B, T, int(c.vocab_size));
    LlamaModel whole(c, *b.cpu, B, T);
    whole.init_weights(3);
    whole.set_batch(batch.ids.data(), batch.targets.data(), batch.pos.data(), batch.doc_start.data());
    const double loss = whole.forward(0.5f);
    whole.backward();
    std::vector<float> gw(whole.num_params());
    b.cpu->download(gw.data(), whole.grad_data(), gw.size());

    auto stage = [&](int l0, int l1, bool first, bool last) {
      ModelParallel mp;
      mp.shard.layer_begin = l0;
      mp.shard.layer_end = l1;
      mp.shard.has_embedding = first;
      mp.shard.has_head = last;
      mp.slots = 2;
      return std::make_unique<LlamaModel>(c, *b.cpu, B, T, Recompute::none, mp);
    };
    auto s0 = stage(0, 1, true, false), s1 = stage(1, 3, false, true);
    for (auto* s : {s0.get(), s1.get()}) {
      s->init_weights(3);
      s->set_batch(batch.ids.data(), batch.targets.data(), batch.pos.data(), batch.doc_start.data(), 1);
      b.cpu->zero(s->grad_data(), s->num_params());
    }
    const size_t H = s0->hidden_floats();
    EXPECT_EQ(s0->forward(0.5f, 1), 0.0);
    b.cpu->copy(s1->stage_input(1), s0->stage_output(1), H);
    EXPECT_EQ(s1->forward(0.5f, 1), loss);
    s1->backward(1);
    b.cpu->copy(s0->residual_grad(), s1->residual_grad(), H);
    s0->backward(1);

    std::map<std::string, std::vector<float>> got;
    for (auto* s : {s0.get(), s1.get()}) {
      std::vector<float> g(s->num_params());
      b.cpu->download(g.data(), s->grad_data(), g.size());
      for (const auto& p : s->params()) {
        auto& dst = got[p.name];
        dst.resize(p.numel, 0.0f);
        for (size_t i = 0; i < p.numel; ++i) dst[i] += g[p.offset + i];  // the tied copy adds its share
      }
    }
    ASSERT_EQ(got.size(), whole.params().size());
    for (const auto& p : whole.params()) {
      const std::vector<float> want(gw.begin() + std::ptrdiff_t(p.offset), gw.begin() + std::ptrdiff_t(p.offset + p.numel));
      if (tied && p.name == "model.embed_tokens.weight")
        EXPECT_LT(rel(got[p.name], want), 1e-6) << p.name;  // a sum in another order
      else
        EXPECT_EQ(got[p.name], want) << p.name << " tied " << tied;
    }
  }
}

// --- LoRA ---------------------------------------------------------------------------------------

namespace {

LoraConfig tiny_lora(double dropout) {
  LoraConfig l;
  l.rank = 3;
  l.alpha = 6;
  l.dropout = dropout;
  l.targets = parse_lora_targets("all");
  return l;
}

struct LoraRun {
  double loss;
  std::vector<float> grads;  // the adapters'
};

// One forward/backward of a LoRA model on the tiny batch, with the adapters set to `lora_params`
// when given (B is zero after init_lora: the tests give it values).
LoraRun run_lora(Backend& be, const LlamaConfig& c, const LoraConfig& l, const std::vector<float>& lora_params,
                 Recompute rc = Recompute::none) {
  const int B = 2, T = 8;
  LlamaModel m(c, be, B, T, rc, {}, &l);
  m.init_weights(1);
  be.upload(m.trainable_data(), lora_params.data(), lora_params.size());
  be.zero(m.trainable_grad(), m.num_trainable());
  Batch b = tiny_batch(B, T, int(c.vocab_size));
  m.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data());
  m.set_dropout_seed(77);
  LoraRun r;
  r.loss = m.forward(1.0f);
  m.backward();
  r.grads.resize(m.num_trainable());
  be.download(r.grads.data(), m.trainable_grad(), r.grads.size());
  return r;
}

std::vector<float> random_lora(const LlamaConfig& c, const LoraConfig& l) {
  const auto specs = lora_param_specs(c, l);
  return randn(specs.back().offset + specs.back().numel, 41, 0.3);
}

}  // namespace

// Freshly initialised adapters (B = 0) leave the base's loss exactly as it is, and the base gets
// no gradient buffer.
TEST_P(NnLoraFast, FreshAdaptersChangeNothingAndTheBaseIsFrozen) {
  Backends b(GetParam());
  auto c = tiny_config(false);
  const LoraConfig l = tiny_lora(0.0);
  LlamaModel base(c, *b.cpu, 2, 8), tuned(c, *b.cpu, 2, 8, Recompute::none, {}, &l);
  base.init_weights(1);
  tuned.init_weights(1);
  tuned.init_lora(3);
  EXPECT_EQ(tuned.grad_data(), nullptr);
  Batch batch = tiny_batch(2, 8, int(c.vocab_size));
  for (LlamaModel* m : {&base, &tuned}) m->set_batch(batch.ids.data(), batch.targets.data(), batch.pos.data(), batch.doc_start.data());
  EXPECT_EQ(base.forward(0.0f), tuned.forward(0.0f));
  // A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0
  std::vector<float> p(tuned.num_trainable());
  b.cpu->download(p.data(), tuned.trainable_data(), p.size());
  for (const auto& s : tuned.trainable_specs()) {
    const double bound = 1.0 / std::sqrt(double(s.shape[1]));
    for (size_t i = 0; i < s.numel; ++i) {
      if (s.name.back() == 'B') ASSERT_EQ(p[s.offset + i], 0.0f) << s.name;
      else ASSERT_LE(std::abs(p[s.offset + i]), bound) << s.name;
    }
  }
}

// The adapters' gradients against finite differences (reference backend), with and without
// dropout (its masks are a function of the seed, so the loss is a function of the parameters);
// the fast backend against the reference; recomputation bit-identical.
TEST_P(NnLoraFast, GradientsMatchFiniteDifferencesFastAndRecompute) {
  Backends b(GetParam());
  auto c = tiny_config(false);
  for (double dropout : {0.0, 0.3}) {
    const LoraConfig l = tiny_lora(dropout);
    std::vector<float> p = random_lora(c, l);
    const LoraRun base = run_lora(*b.ref, c, l, p);
    for (const auto& s : lora_param_specs(c, l)) {
      std::vector<float> fd, an;
      for (size_t j = 0; j < 3; ++j) {
        const size_t i = s.offset + (j * 7) % s.numel;
        const float keep = p[i];
        const double h = 2e-3;
        p[i] = keep + float(h);
        const double up = run_lora(*b.ref, c, l, p).loss;
        p[i] = keep - float(h);
        const double down = run_lora(*b.ref, c, l, p).loss;
        p[i] = keep;
        fd.push_back(float((up - down) / (2 * h)));
        an.push_back(base.grads[i]);
      }
      EXPECT_LT(rel(an, fd), 5e-2) << s.name << " dropout " << dropout << ": " << ::testing::PrintToString(an) << " vs " << ::testing::PrintToString(fd);
    }
    const LoraRun fast = run_lora(*b.cpu, c, l, p);
    EXPECT_NEAR(fast.loss / base.loss, 1.0, 1e-5);
    EXPECT_LT(rel(fast.grads, base.grads), 1e-4) << "dropout " << dropout;
    for (Recompute rc : {Recompute::selective, Recompute::full}) {
      const LoraRun r = run_lora(*b.cpu, c, l, p, rc);
      EXPECT_EQ(r.loss, fast.loss) << to_string(rc);
      EXPECT_EQ(r.grads, fast.grads) << to_string(rc);
    }
  }
}

// A dropout mask depends on the element's place in the logical input, not on how it is cut: the
// columns [3, 7) of a width-10 input get the masks those columns get in the whole.
TEST_P(NnLoraFast, DropoutMasksDoNotDependOnTheCut) {
  Backends b(GetParam());
  const int N = 5, W = 10;
  auto x = randn(size_t(N) * W, 50);
  for (Backend* be : {b.ref.get(), b.cpu.get()}) {
    Dev d{*be};
    float* u = be->alloc(size_t(N) * W);
    float* mask = be->alloc(size_t(N) * W);
    be->dropout_fwd(u, mask, d.put(x), N, W, W, 0, 0.4f, 9);
    const auto whole = d.get(mask, size_t(N) * W);
    std::vector<float> part;
    for (int n = 0; n < N; ++n) part.insert(part.end(), x.begin() + n * W + 3, x.begin() + n * W + 7);
    float* u2 = be->alloc(size_t(N) * 4);
    float* m2 = be->alloc(size_t(N) * 4);
    be->dropout_fwd(u2, m2, d.put(part), N, 4, W, 3, 0.4f, 9);
    const auto sliced = d.get(m2, size_t(N) * 4);
    size_t dropped = 0;
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(sliced[size_t(n * 4 + i)], whole[size_t(n * W + 3 + i)]);
        dropped += sliced[size_t(n * 4 + i)] == 0.0f;
      }
    EXPECT_GT(dropped, 0u);
    EXPECT_LT(dropped, 20u);
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, NnOpsFast, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Cuda, NnOpsFast, ::testing::Values("cuda"));
INSTANTIATE_TEST_SUITE_P(Cpu, NnModelFast, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Cuda, NnModelFast, ::testing::Values("cuda"));
INSTANTIATE_TEST_SUITE_P(Cpu, NnLoraFast, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Cuda, NnLoraFast, ::testing::Values("cuda"));

// The CUDA GEMMs in reduced precision: TF32 keeps 10 mantissa bits, bf16 8, both accumulate in
// fp32; on products of 384 terms the relative error stays near the rounding of one input.
TEST(NnOpsCuda, ReducedPrecisionMatmulsStayClose) {
  const std::string why = cuda::backend_unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << "CUDA: " << why;
  const int N = 256, I = 384, O = 320;
  const auto x = randn(size_t(N) * I, 41), w = randn(size_t(O) * I, 42);
  auto ref = make_ref_backend();
  auto product = [&](Backend& be) {
    Dev d{be};
    float* out = be.alloc(size_t(N) * O);
    be.matmul_fwd(out, d.put(x), d.put(w), N, I, O);
    return d.get(out, size_t(N) * O);
  };
  const auto exact = product(*ref);
  EXPECT_LT(rel(product(*cuda::make_cuda_backend(0, "fp32")), exact), 1e-5);
  const double e_tf32 = rel(product(*cuda::make_cuda_backend(0, "tf32")), exact);
  const double e_bf16 = rel(product(*cuda::make_cuda_backend(0, "bf16")), exact);
  EXPECT_LT(e_tf32, 2e-3);
  EXPECT_LT(e_bf16, 1e-2);
  EXPECT_GT(e_bf16, 1e-5);  // it did round (the precision setting reached cuBLAS)
}

TEST(NnDevice, FlagsResolveOrSayWhatIsWrong) {
  const bool gpu = cuda::backend_unavailable_reason().empty();
  EXPECT_EQ(resolve_device({"auto", "cpu", 0, "", 0}), gpu ? "cuda" : "cpu");
  EXPECT_EQ(resolve_device({"auto", "ref", 0, "", 0}), "cpu");  // the reference is a CPU backend
  EXPECT_EQ(resolve_device({"cpu", "cpu", 0, "fp32", 0}), "cpu");
  auto message = [](const DeviceOptions& o) {
    try {
      resolve_device(o);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message({"gpu", "cpu", 0, "", 0}).find("--device: 'gpu'"), std::string::npos);
  EXPECT_NE(message({"cpu", "cuda", 0, "", 0}).find("--backend: 'cuda'"), std::string::npos);
  EXPECT_NE(message({"cpu", "cpu", 0, "bf16", 0}).find("--matmul-precision bf16"), std::string::npos);
  EXPECT_NE(message({"cuda", "ref", 0, "", 0}).find("--backend ref"), std::string::npos);
  if (!gpu) {
    EXPECT_NE(message({"cuda", "cpu", 0, "", 0}).find("--device cuda: "), std::string::npos);
  }
}
