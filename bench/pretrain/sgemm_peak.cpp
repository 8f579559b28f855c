// OpenBLAS single-precision GEMM throughput on this machine, linked exactly as the Makefile links
// the tools (BLAS_LIBS: Debian's OpenMP build of OpenBLAS), with the threads pretrain uses.
//
//   sgemm_peak [--threads 2] [--sizes 512,1024,1536,2048] [--reps 5] [--seconds 0.5]
//
// For each square size n: C = A * B (row-major, no transpose) is timed, best of --reps runs, each run
// repeating the product until --seconds have passed; GFLOP/s = 2 n^3 / seconds. The peak is the best
// over the sizes. The same is then done, for information, for the shapes the benchmark's model
// multiplies (N = B*T = 2048 rows; C = 256, KV*D = 128, F = 688, V = 8192), in pretrain's layouts
// (forward: out = inp * W^T; backward: dinp = dout * W and dW += dout^T * inp). Prints one JSON object.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  std::string name;
  bool ta, tb;  // A^T, B^T (row-major)
  int m, n, k;
};

std::vector<float> filled(size_t n, unsigned salt) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float((i * 2654435761u + salt) % 1000) / 1000.0f - 0.5f;
  return v;
}

// Best seconds per product over `reps` runs of at least `min_s` seconds each.
double time_gemm(const Shape& s, int reps, double min_s) {
  const size_t sa = size_t(s.m) * size_t(s.k), sb = size_t(s.k) * size_t(s.n), sc = size_t(s.m) * size_t(s.n);
  std::vector<float> a = filled(sa, 1), b = filled(sb, 7), c(sc, 0.0f);
  const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  auto once = [&] {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0f,
                a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
  };
  once();  // warm up: thread pool, pages, caches
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    int iters = 0;
    const auto t0 = Clock::now();
    double el = 0;
    do {
      once();
      ++iters;
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < min_s);
    best = std::min(best, el / iters);
  }
  volatile float sink = c[0];
  (void)sink;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 5;
  double min_s = 0.5;
  std::vector<int> sizes = {512, 1024, 1536, 2048};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sgemm_peak: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") {
      threads = std::atoi(val().c_str());
    } else if (a == "--reps") {
      reps = std::atoi(val().c_str());
    } else if (a == "--seconds") {
      min_s = std::atof(val().c_str());
    } else if (a == "--sizes") {
      sizes.clear();
      std::string s = val();
      for (size_t p = 0; p < s.size();) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        sizes.push_back(std::atoi(s.substr(p, q - p).c_str()));
        p = q + 1;
      }
    } else {
      std::fprintf(stderr, "usage: sgemm_peak [--threads N] [--sizes a,b,...] [--reps R] [--seconds S]\n");
      return 2;
    }
  }
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);

  std::printf("{\"openblas_config\": \"%s\", \"openblas_corename\": \"%s\", \"threads\": %d, \"reps\": %d, "
              "\"min_seconds_per_rep\": %g,\n \"square\": [",
              openblas_get_config(), openblas_get_corename(), openblas_get_num_threads(), reps, min_s);
  double peak = 0;
  int peak_n = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int n = sizes[i];
    const double s = time_gemm({"square", false, false, n, n, n}, reps, min_s);
    const double gf = 2.0 * n * double(n) * n / s / 1e9;
    if (gf > peak) peak = gf, peak_n = n;
    std::printf("%s\n  {\"n\": %d, \"seconds\": %.6g, \"gflops\": %.3f}", i ? "," : "", n, s, gf);
    std::fflush(stdout);
  }
  std::printf("],\n \"peak_gflops\": %.3f, \"peak_n\": %d,\n \"model_shapes\": [", peak, peak_n);
  // pretrain's layouts (backend_cpu_impl.hpp): fwd out[N,O] = inp[N,I] W[O,I]^T; bwd dinp[N,I] = dout[N,O] W[O,I];
  // dW[O,I] += dout[N,O]^T inp[N,I].
  const int N = 2048;
  const std::vector<Shape> shapes = {
      {"q/o fwd (N x 256 x 256)", false, true, N, 256, 256},
      {"k/v fwd (N x 128 x 256)", false, true, N, 128, 256},
      {"gate/up fwd (N x 688 x 256)", false, true, N, 688, 256},
      {"down fwd (N x 256 x 688)", false, true, N, 256, 688},
      {"lm_head fwd (N x 8192 x 256)", false, true, N, 8192, 256},
      {"lm_head bwd dinp (N x 256 x 8192)", false, false, N, 256, 8192},
      {"lm_head bwd dW (8192 x 256 x N)", true, false, 8192, 256, N},
      {"gate/up bwd dW (688 x 256 x N)", true, false, 688, 256, N},
      {"attention scores, one head (256 x 256 x 32)", false, true, 256, 256, 32},
  };
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& sh = shapes[i];
    const double s = time_gemm(sh, std::max(1, reps / 2), min_s / 2);
    std::printf("%s\n  {\"shape\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"seconds\": %.6g, \"gflops\": %.3f}", i ? "," : "",
                sh.name.c_str(), sh.m, sh.n, sh.k, s, 2.0 * sh.m * double(sh.n) * sh.k / s / 1e9);
    std::fflush(stdout);
  }
  std::printf("]}\n");
  return 0;
}
