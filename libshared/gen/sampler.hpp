// The next token from a row of logits: greedy (temperature 0) or drawn from softmax(logits / T)
// restricted to the nucleus (the most probable tokens whose probabilities first add up to
// top_p). Draws come from nn::Rng(seed, "sample"), so a seed gives the same text on any machine.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "nn/rng.hpp"

namespace bellows::gen {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  double top_p = 1.0;        // (0, 1]; 1: the whole vocabulary
};

// argmax; the smallest id among equal maxima, so greedy decoding is deterministic.
uint32_t argmax(const float* logits, int V);

// The nucleus of softmax(logits / temperature): (id, probability) by probability descending
// (ties by id), the shortest prefix whose probabilities add up to >= top_p (at least one token).
// Probabilities are those of the full softmax, not renormalised. temperature > 0.
std::vector<std::pair<uint32_t, double>> nucleus(const float* logits, int V, double temperature, double top_p);

class Sampler {
 public:
  Sampler(const SamplingOptions& opt, uint64_t seed);
  uint32_t next(const float* logits, int V);

 private:
  SamplingOptions opt_;
  nn::Rng rng_;
};

}  // namespace bellows::gen
