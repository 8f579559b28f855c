// MinHash signatures and LSH banding, bit-compatible with datasketch's MinHash given the same
// shingle hash function and permutations (tests compare the two directly):
//   h(s)      = low 32 bits of XXH3-64(shingle bytes)
//   perm_i(h) = (((a_i * h + b_i) mod 2^64) mod (2^61 - 1)) & (2^32 - 1)
//   sig_i     = min over shingles of perm_i(h)
// The mod-2^64 wrap is datasketch's numpy uint64 arithmetic, reproduced on purpose.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bellows::text {

struct ShingleSpec {
  enum class Kind { word, chr } kind = Kind::word;
  size_t n = 5;
};
// "word:5" or "char:24"; throws UsageError naming --shingle otherwise.
ShingleSpec parse_shingle_spec(const std::string& s);
std::string to_string(const ShingleSpec& s);

// The shingles of `text` (valid UTF-8), in order of appearance, duplicates kept.
//   word:n  words are maximal runs of letters/digits (any non-ASCII byte counts as a letter, so
//           every script works), lowercased (ASCII); a shingle is n words joined by one space.
//   char:n  n consecutive code points of the text with whitespace runs collapsed to one space.
// A text with fewer than n units yields one shingle of all of them (empty text: none).
std::vector<std::string> shingles(std::string_view text, const ShingleSpec& spec);

// The same shingles, hashed without building strings: the units are laid out once in a buffer
// (words joined by single spaces, or the whitespace-collapsed text), so every shingle is a
// contiguous slice of it. Appends one hash per shingle to `out` (cleared first). `buf` and
// `starts` are scratch space the caller keeps between documents.
void shingle_hashes32(std::string_view text, const ShingleSpec& spec, std::vector<uint32_t>& out, std::string& buf,
                      std::vector<size_t>& starts);

// The sorted, de-duplicated 64-bit hashes of the shingles (for exact Jaccard verification).
std::vector<uint64_t> shingle_set64(std::string_view text, const ShingleSpec& spec);

uint32_t shingle_hash32(std::string_view shingle);
uint64_t shingle_hash64(std::string_view shingle);

struct Permutations {
  std::vector<uint64_t> a, b;  // num_perm each; a in [1, p), b in [0, p), p = 2^61 - 1
};
// Deterministic from `seed` (same seed, same permutations on every machine and rank).
Permutations make_permutations(size_t num_perm, uint64_t seed);

// Signature of a set of 32-bit shingle hashes: num_perm values (all 2^32-1 for an empty set).
void minhash_signature(const std::vector<uint32_t>& hashes, const Permutations& p, std::vector<uint32_t>& sig);

// LSH banding parameters: b bands of r rows (b*r <= num_perm).
struct LshParams {
  size_t bands = 0, rows = 0;
};
// The (b, r) minimising fp_weight*false-positive area + fn_weight*false-negative area of the
// S-curve around `threshold`. With the default 0.5/0.5 this is datasketch's MinHashLSH choice.
LshParams optimal_lsh_params(double threshold, size_t num_perm, double fp_weight = 0.5, double fn_weight = 0.5);
// The Jaccard similarity at which a pair becomes a candidate with probability 1/2: (1/b)^(1/r).
double lsh_threshold(const LshParams& p);

// One 64-bit key per band: hash of the band's r values, seeded with the band index so equal
// values in different bands never share a bucket.
void band_keys(const std::vector<uint32_t>& sig, const LshParams& p, std::vector<uint64_t>& keys);

// Exact Jaccard similarity of two sorted, de-duplicated hash sets.
double jaccard_sorted(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

}  // namespace bellows::text
