#include "gen/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace bellows::gen {

uint32_t argmax(const float* logits, int V) {
  int best = 0;
  for (int i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return uint32_t(best);
}

std::vector<std::pair<uint32_t, double>> nucleus(const float* logits, int V, double temperature, double top_p) {
  BELLOWS_CHECK(temperature > 0 && V > 0, "nucleus needs a positive temperature");
  double mx = -INFINITY;
  for (int i = 0; i < V; ++i) mx = std::max(mx, double(logits[i]));
  std::vector<std::pair<uint32_t, double>> p(static_cast<size_t>(V));
  double sum = 0;
  for (int i = 0; i < V; ++i) {
    // A NaN logit gets no probability instead of poisoning every other.
    const double e = std::isnan(logits[i]) ? 0.0 : std::exp((double(logits[i]) - mx) / temperature);
    p[size_t(i)] = {uint32_t(i), e};
    sum += e;
  }
  for (auto& [id, q] : p) q /= sum;
  std::sort(p.begin(), p.end(), [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  double mass = 0;
  size_t keep = 0;
  while (keep < p.size() && (keep == 0 || mass < top_p)) mass += p[keep++].second;
  p.resize(keep);
  return p;
}

Sampler::Sampler(const SamplingOptions& opt, uint64_t seed) : opt_(opt), rng_(seed, "sample") {}

uint32_t Sampler::next(const float* logits, int V) {
  if (opt_.temperature <= 0) return argmax(logits, V);
  const auto cand = nucleus(logits, V, opt_.temperature, opt_.top_p);
  double mass = 0;
  for (const auto& c : cand) mass += c.second;
  // One uniform draw per token, walked along the nucleus renormalised to its mass.
  const double u = rng_.uniform() * mass;
  double acc = 0;
  for (const auto& [id, q] : cand) {
    acc += q;
    if (u < acc) return id;
  }
  return cand.back().first;  // u within rounding of the mass
}

}  // namespace bellows::gen
