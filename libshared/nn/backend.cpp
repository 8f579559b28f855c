#include "nn/backend.hpp"

#include <chrono>
#include <cmath>

#include "core/error.hpp"
#include "nn/backend_cpu_variants.hpp"
#include "nn/config.hpp"

namespace bellows::nn {

std::unique_ptr<Backend> make_cpu_backend(int threads) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return make_cpu_backend_v3(threads);
#endif
  return make_cpu_backend_base(threads);
}

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (name == "cpu") return make_cpu_backend(threads);
  if (name == "ref") return make_ref_backend();
  throw UsageError("--backend: '" + name + "' is not a backend of this build (cpu, ref)");
}

double measure_matmul_peak_gflops(Backend& be) {
  double best_gflops = 0;
  // The reference backend's loops would take minutes on these sizes; its peak is measured small.
  // A GPU reaches its peak only on large products.
  const std::vector<int> sizes = be.name() == "ref"                 ? std::vector<int>{128}
                                 : be.name().rfind("cuda", 0) == 0 ? std::vector<int>{4096, 8192}
                                                                   : std::vector<int>{1024, 2048};
  for (int n : sizes) {
    float* a = be.alloc(size_t(n) * n);
    float* b = be.alloc(size_t(n) * n);
    float* c = be.alloc(size_t(n) * n);
    std::vector<float> init(size_t(n) * n);
    for (size_t i = 0; i < init.size(); ++i) init[i] = float((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    be.upload(a, init.data(), init.size());
    be.upload(b, init.data(), init.size());
    for (int rep = 0; rep < 4; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      be.matmul_fwd(c, a, b, n, n, n);
      float probe;
      be.download(&probe, c, 1);  // waits for the backend (asynchronous ones)
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best_gflops = std::max(best_gflops, 2.0 * double(n) * n * n / s / 1e9);
    }
  }
  return best_gflops;
}

void rope_tables(std::vector<float>& cos, std::vector<float>& sin, int max_pos, int D, double theta,
                 const RopeScaling* scaling) {
  const int half = D / 2;
  // As HF computes them, in float32: inv_freq = 1 / theta^(2i/D), angle = pos * inv_freq.
  std::vector<float> inv(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) inv[size_t(i)] = 1.0f / float(std::pow(theta, double(float(2 * i) / float(D))));
  if (scaling) {
    // Llama 3: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
    const double old_len = double(scaling->original_max_position_embeddings);
    const double low_wavelen = old_len / scaling->low_freq_factor, high_wavelen = old_len / scaling->high_freq_factor;
    for (int i = 0; i < half; ++i) {
      const double f = inv[size_t(i)];
      const double wavelen = 2.0 * M_PI / f;
      double out = wavelen > low_wavelen ? f / scaling->factor : f;
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        const double smooth = (old_len / wavelen - scaling->low_freq_factor) /
                              (scaling->high_freq_factor - scaling->low_freq_factor);
        out = (1.0 - smooth) * out / scaling->factor + smooth * out;
      }
      inv[size_t(i)] = float(out);
    }
  }
  cos.assign(size_t(max_pos) * half, 0.0f);
  sin.assign(size_t(max_pos) * half, 0.0f);
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const float angle = float(p) * inv[size_t(i)];
      cos[size_t(p) * half + i] = float(std::cos(double(angle)));
      sin[size_t(p) * half + i] = float(std::sin(double(angle)));
    }
}

}  // namespace bellows::nn
