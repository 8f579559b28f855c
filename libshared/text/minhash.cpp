#include "text/minhash.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace bellows::text {
namespace {

constexpr uint64_t kMersenne61 = (uint64_t{1} << 61) - 1;
constexpr uint32_t kMaxHash = 0xFFFFFFFFu;

bool is_word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Probability that a pair of Jaccard s becomes a candidate with b bands of r rows.
double candidate_probability(double s, size_t b, size_t r) {
  return 1.0 - std::pow(1.0 - std::pow(s, static_cast<double>(r)), static_cast<double>(b));
}

// Composite Simpson's rule: smooth integrands, 200 intervals give ~1e-10 accuracy here.
template <class F>
double integrate(F f, double lo, double hi) {
  const int n = 200;
  double h = (hi - lo) / n, sum = f(lo) + f(hi);
  for (int i = 1; i < n; ++i) sum += f(lo + i * h) * (i % 2 ? 4 : 2);
  return sum * h / 3;
}

}  // namespace

ShingleSpec parse_shingle_spec(const std::string& s) {
  auto colon = s.find(':');
  ShingleSpec spec;
  std::string kind = s.substr(0, colon);
  if (colon == std::string::npos || (kind != "word" && kind != "char"))
    throw UsageError("--shingle: invalid value '" + s + "' (expected word:N or char:N)");
  spec.kind = kind == "word" ? ShingleSpec::Kind::word : ShingleSpec::Kind::chr;
  try {
    size_t used = 0;
    long n = std::stol(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || n < 1 || n > 1000) throw std::invalid_argument("range");
    spec.n = static_cast<size_t>(n);
  } catch (const std::exception&) {
    throw UsageError("--shingle: invalid size in '" + s + "' (expected 1..1000)");
  }
  return spec;
}

std::string to_string(const ShingleSpec& s) {
  return std::string(s.kind == ShingleSpec::Kind::word ? "word:" : "char:") + std::to_string(s.n);
}

std::vector<std::string> shingles(std::string_view text, const ShingleSpec& spec) {
  std::vector<std::string> units;
  if (spec.kind == ShingleSpec::Kind::word) {
    for (size_t i = 0; i < text.size();) {
      if (!is_word_byte(static_cast<unsigned char>(text[i]))) {
        ++i;
        continue;
      }
      std::string w;
      while (i < text.size() && is_word_byte(static_cast<unsigned char>(text[i]))) {
        char c = text[i++];
        w += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
      units.push_back(std::move(w));
    }
  } else {
    bool in_space = false;
    for (size_t i = 0; i < text.size();) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
        if (!in_space && !units.empty()) units.emplace_back(" ");
        in_space = true;
        ++i;
        continue;
      }
      in_space = false;
      size_t len = std::min(utf8_len(c), text.size() - i);
      units.emplace_back(text.substr(i, len));
      i += len;
    }
    if (!units.empty() && units.back() == " ") units.pop_back();
  }
  std::vector<std::string> out;
  if (units.empty()) return out;
  const char* sep = spec.kind == ShingleSpec::Kind::word ? " " : "";
  size_t n = std::min(spec.n, units.size());
  out.reserve(units.size() - n + 1);
  for (size_t i = 0; i + n <= units.size(); ++i) {
    std::string s = units[i];
    for (size_t k = 1; k < n; ++k) (s += sep) += units[i + k];
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// Lays the shingling units of `text` out in `buf` (see shingle_hashes32) and calls
// emit(begin, end) for the byte range of every shingle, in order.
template <class Emit>
void for_each_shingle(std::string_view text, const ShingleSpec& spec, std::string& buf, std::vector<size_t>& starts,
                      Emit emit) {
  buf.clear();
  starts.clear();
  const bool word = spec.kind == ShingleSpec::Kind::word;
  if (word) {
    for (size_t i = 0; i < text.size();) {
      if (!is_word_byte(static_cast<unsigned char>(text[i]))) {
        ++i;
        continue;
      }
      if (!starts.empty()) buf += ' ';
      starts.push_back(buf.size());
      while (i < text.size() && is_word_byte(static_cast<unsigned char>(text[i]))) {
        char c = text[i++];
        buf += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
    }
  } else {
    bool in_space = false;
    for (size_t i = 0; i < text.size();) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
        in_space = true;
        ++i;
        continue;
      }
      if (in_space && !starts.empty()) {
        starts.push_back(buf.size());
        buf += ' ';
      }
      in_space = false;
      size_t len = std::min(utf8_len(c), text.size() - i);
      starts.push_back(buf.size());
      buf.append(text.data() + i, len);
      i += len;
    }
  }
  if (starts.empty()) return;
  // The end of unit k: the start of unit k+1 less the joining space for words.
  auto unit_end = [&](size_t k) { return k + 1 < starts.size() ? starts[k + 1] - (word ? 1 : 0) : buf.size(); };
  size_t n = std::min(spec.n, starts.size());
  for (size_t i = 0; i + n <= starts.size(); ++i) emit(starts[i], unit_end(i + n - 1));
}

}  // namespace

void shingle_hashes32(std::string_view text, const ShingleSpec& spec, std::vector<uint32_t>& out, std::string& buf,
                      std::vector<size_t>& starts) {
  out.clear();
  for_each_shingle(text, spec, buf, starts, [&](size_t b, size_t e) {
    out.push_back(static_cast<uint32_t>(XXH3_64bits(buf.data() + b, e - b)));
  });
}

std::vector<uint64_t> shingle_set64(std::string_view text, const ShingleSpec& spec) {
  std::string buf;
  std::vector<size_t> starts;
  std::vector<uint64_t> out;
  for_each_shingle(text, spec, buf, starts,
                   [&](size_t b, size_t e) { out.push_back(shingle_hash64(std::string_view(buf).substr(b, e - b))); });
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

uint32_t shingle_hash32(std::string_view s) { return static_cast<uint32_t>(XXH3_64bits(s.data(), s.size())); }
uint64_t shingle_hash64(std::string_view s) { return XXH3_64bits_withSeed(s.data(), s.size(), 0x5348494e474c45ull); }

Permutations make_permutations(size_t num_perm, uint64_t seed) {
  Permutations p;
  uint64_t state = seed;
  for (size_t i = 0; i < num_perm; ++i) {
    p.a.push_back(1 + splitmix64(state) % (kMersenne61 - 1));
    p.b.push_back(splitmix64(state) % kMersenne61);
  }
  return p;
}

namespace {

// The hot loop of fuzzy dedup. Built three times (AVX-512, AVX2, baseline x86-64) and picked at
// load time; at -O3 GCC vectorises the 64-bit multiply-add and the Mersenne fold (~6x faster
// than scalar on AVX-512). Unsigned overflow of a*h+b is the intended mod-2^64 wrap (see
// header); x mod (2^61-1) without a division: fold the top 3 bits onto the low 61, subtract p
// at most once.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3"))) void signature_kernel(
    const uint32_t* __restrict hashes, size_t n, const uint64_t* __restrict a, const uint64_t* __restrict b, size_t k,
    uint32_t* __restrict out) {
  for (size_t j = 0; j < n; ++j) {
    const uint64_t h = hashes[j];
    for (size_t i = 0; i < k; ++i) {
      uint64_t x = a[i] * h + b[i];
      uint64_t m = (x & kMersenne61) + (x >> 61);
      m = m >= kMersenne61 ? m - kMersenne61 : m;
      uint32_t v = static_cast<uint32_t>(m & kMaxHash);
      out[i] = v < out[i] ? v : out[i];
    }
  }
}

}  // namespace

void minhash_signature(const std::vector<uint32_t>& hashes, const Permutations& p, std::vector<uint32_t>& sig) {
  sig.assign(p.a.size(), kMaxHash);
  signature_kernel(hashes.data(), hashes.size(), p.a.data(), p.b.data(), p.a.size(), sig.data());
}

LshParams optimal_lsh_params(double threshold, size_t num_perm, double fp_weight, double fn_weight) {
  double best = std::numeric_limits<double>::infinity();
  LshParams opt;
  for (size_t b = 1; b <= num_perm; ++b) {
    for (size_t r = 1; r <= num_perm / b; ++r) {
      double fp = integrate([&](double s) { return candidate_probability(s, b, r); }, 0.0, threshold);
      double fn = integrate([&](double s) { return 1.0 - candidate_probability(s, b, r); }, threshold, 1.0);
      double err = fp_weight * fp + fn_weight * fn;
      if (err < best) {
        best = err;
        opt = {b, r};
      }
    }
  }
  return opt;
}

double lsh_threshold(const LshParams& p) {
  return std::pow(1.0 / static_cast<double>(p.bands), 1.0 / static_cast<double>(p.rows));
}

void band_keys(const std::vector<uint32_t>& sig, const LshParams& p, std::vector<uint64_t>& keys) {
  BELLOWS_CHECK(p.bands * p.rows <= sig.size(), "bands*rows exceeds the signature length");
  keys.resize(p.bands);
  for (size_t i = 0; i < p.bands; ++i)
    keys[i] = XXH3_64bits_withSeed(sig.data() + i * p.rows, p.rows * sizeof(uint32_t), i);
}

double jaccard_sorted(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) ++i;
    else if (b[j] < a[i]) ++j;
    else {
      ++inter;
      ++i;
      ++j;
    }
  }
  return static_cast<double>(inter) / static_cast<double>(a.size() + b.size() - inter);
}

}  // namespace bellows::text
