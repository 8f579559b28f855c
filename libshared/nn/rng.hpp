// Deterministic random numbers for initialisation, shuffling and sampling: splitmix64, seeded by
// (seed, a name), so each tensor or purpose draws its own stream and results do not depend on
// the order things are created in. The state is one word (checkpoints store it).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace bellows::nn {

// Host and device (the CUDA backend's dropout calls this same function, so its masks are the CPU's).
#ifdef __CUDACC__
#define BELLOWS_HOST_DEVICE __host__ __device__
#else
#define BELLOWS_HOST_DEVICE
#endif

// A uniform [0, 1) value for element `i` of stream `seed`, without state (counter-based): what
// dropout masks use, so that any thread or rank computes any element's value.
BELLOWS_HOST_DEVICE inline double hash_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

// A 64-bit seed derived from two numbers (a run's seed and, e.g., a sample index).
inline uint64_t hash_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed, std::string_view stream = {}) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the stream name
    for (char c : stream) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    state_ = seed ^ h;
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {  // Box-Muller, one value per call
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  // Jumps over n calls of next() (normal() makes two), in O(1): a tensor's slice draws the same
  // values the whole tensor would.
  void skip(uint64_t n) { state_ += n * 0x9E3779B97F4A7C15ull; }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }  // bias < n / 2^64: negligible here
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace bellows::nn
