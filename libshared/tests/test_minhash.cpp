#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/error.hpp"
#include "text/minhash.hpp"
#include "text/union_find.hpp"

using namespace bellows::text;

namespace {

// Reference MinHash exactly as the header defines it, with the plain '%' (no folding trick).
std::vector<uint32_t> reference_signature(const std::vector<uint32_t>& hashes, const Permutations& p) {
  const uint64_t prime = (uint64_t{1} << 61) - 1;
  std::vector<uint32_t> sig(p.a.size(), 0xFFFFFFFFu);
  for (uint32_t h : hashes)
    for (size_t i = 0; i < sig.size(); ++i)
      sig[i] = std::min(sig[i], static_cast<uint32_t>(((p.a[i] * h + p.b[i]) % prime) & 0xFFFFFFFFu));
  return sig;
}

}  // namespace

TEST(Shingles, WordAndCharShingles) {
  ShingleSpec w3 = parse_shingle_spec("word:3");
  EXPECT_EQ(shingles("The cat, the HAT!", w3), (std::vector<std::string>{"the cat the", "cat the hat"}));
  EXPECT_EQ(shingles("one two", w3), std::vector<std::string>{"one two"});  // shorter than n: one shingle
  EXPECT_TRUE(shingles("  ,,, ", w3).empty());
  EXPECT_EQ(shingles("Grüße aus 数据", parse_shingle_spec("word:2")),
            (std::vector<std::string>{"grüße aus", "aus 数据"}));
  ShingleSpec c3 = parse_shingle_spec("char:3");
  EXPECT_EQ(shingles("ab  c\nd", c3), (std::vector<std::string>{"ab ", "b c", " c ", "c d"}));
  EXPECT_EQ(shingles("数据库", parse_shingle_spec("char:2")), (std::vector<std::string>{"数据", "据库"}));
  EXPECT_EQ(to_string(c3), "char:3");
}

// The allocation-free hashing path gives the hashes of exactly the shingles above.
TEST(Shingles, HashesWithoutStringsEqualHashesOfStrings) {
  std::mt19937 rng(11);
  const std::vector<std::string> pieces = {"Alpha", "beta", " ", "  ", "\n", "\t", ",", "...", "Grüße", "数据", "🙂", "x1", "A-B", "\r\n"};
  std::vector<uint32_t> fast;
  std::string buf;
  std::vector<size_t> starts;
  for (int t = 0; t < 2000; ++t) {
    std::string text;
    for (size_t i = 0, n = rng() % 40; i < n; ++i) text += pieces[rng() % pieces.size()];
    for (const char* spec : {"word:1", "word:3", "word:5", "char:1", "char:4", "char:9"}) {
      ShingleSpec s = parse_shingle_spec(spec);
      std::vector<uint32_t> slow;
      for (const auto& x : shingles(text, s)) slow.push_back(shingle_hash32(x));
      shingle_hashes32(text, s, fast, buf, starts);
      ASSERT_EQ(fast, slow) << spec << " on '" << text << "'";
    }
  }
}

TEST(Shingles, SetOf64BitHashesIsSortedUniqueOverAllShingles) {
  ShingleSpec w2 = parse_shingle_spec("word:2");
  std::vector<uint64_t> want;
  for (const auto& s : shingles("a b a b a b c", w2)) want.push_back(shingle_hash64(s));
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  EXPECT_EQ(want.size(), 3u);  // "a b", "b a", "b c"
  EXPECT_EQ(shingle_set64("a b a b a b c", w2), want);
}

TEST(Shingles, BadSpecsAreUsageErrors) {
  for (const char* bad : {"word", "word:", "word:0", "bytes:3", "char:x", "word:5x", "word:-1"})
    EXPECT_THROW(parse_shingle_spec(bad), bellows::UsageError) << bad;
}

TEST(MinHash, FastSignatureEqualsReference) {
  Permutations p = make_permutations(256, 99);
  std::mt19937 rng(1);
  for (int t = 0; t < 50; ++t) {
    std::vector<uint32_t> h(1 + rng() % 300);
    for (auto& x : h) x = static_cast<uint32_t>(rng());
    if (t == 0) h = {0xFFFFFFFFu, 0u};  // extremes
    std::vector<uint32_t> sig;
    minhash_signature(h, p, sig);
    ASSERT_EQ(sig, reference_signature(h, p));
  }
}

TEST(MinHash, PermutationsAreDeterministicAndInRange) {
  Permutations a = make_permutations(128, 1), b = make_permutations(128, 1), c = make_permutations(128, 2);
  EXPECT_EQ(a.a, b.a);
  EXPECT_EQ(a.b, b.b);
  EXPECT_NE(a.a, c.a);
  const uint64_t prime = (uint64_t{1} << 61) - 1;
  for (size_t i = 0; i < 128; ++i) {
    EXPECT_GE(a.a[i], 1u);
    EXPECT_LT(a.a[i], prime);
    EXPECT_LT(a.b[i], prime);
  }
}

// The share of equal signature entries estimates the Jaccard similarity of the sets.
TEST(MinHash, SignatureAgreementEstimatesJaccard) {
  Permutations p = make_permutations(512, 3);
  std::mt19937 rng(5);
  for (double target : {0.2, 0.5, 0.8, 0.95}) {
    std::vector<uint32_t> common, a, b;
    size_t total = 2000, shared = static_cast<size_t>(target * total);
    for (size_t i = 0; i < total; ++i) {
      uint32_t x = static_cast<uint32_t>(rng());
      if (i < shared) {
        a.push_back(x);
        b.push_back(x);
      } else if (i % 2) {
        a.push_back(x);
      } else {
        b.push_back(x);
      }
    }
    std::vector<uint32_t> sa, sb;
    minhash_signature(a, p, sa);
    minhash_signature(b, p, sb);
    size_t eq = 0;
    for (size_t i = 0; i < sa.size(); ++i) eq += sa[i] == sb[i];
    double est = static_cast<double>(eq) / static_cast<double>(sa.size());
    // 512 permutations: standard deviation <= sqrt(0.25/512) ~ 0.022; allow 4 sigma.
    EXPECT_NEAR(est, target, 0.09) << target;
  }
}

TEST(Lsh, ParamsFollowTheThreshold) {
  LshParams p = optimal_lsh_params(0.8, 128);
  EXPECT_LE(p.bands * p.rows, 128u);
  EXPECT_NEAR(lsh_threshold(p), 0.8, 0.08);
  LshParams hi = optimal_lsh_params(0.95, 128), lo = optimal_lsh_params(0.5, 128);
  EXPECT_GT(lsh_threshold(hi), lsh_threshold(p));
  EXPECT_LT(lsh_threshold(lo), lsh_threshold(p));
}

TEST(Lsh, EqualBandsEqualKeysAcrossDocumentsNotAcrossBands) {
  LshParams p{4, 2};
  std::vector<uint32_t> s1 = {1, 2, 3, 4, 5, 6, 7, 8}, s2 = {1, 2, 9, 9, 5, 6, 0, 0}, same = {7, 7, 7, 7, 7, 7, 7, 7};
  std::vector<uint64_t> k1, k2, k3;
  band_keys(s1, p, k1);
  band_keys(s2, p, k2);
  band_keys(same, p, k3);
  EXPECT_EQ(k1[0], k2[0]);
  EXPECT_NE(k1[1], k2[1]);
  EXPECT_EQ(k1[2], k2[2]);
  EXPECT_NE(k3[0], k3[1]);  // same values in two bands: different buckets
}

TEST(Jaccard, OfSortedSets) {
  EXPECT_DOUBLE_EQ(jaccard_sorted({1, 2, 3, 4}, {3, 4, 5, 6}), 2.0 / 6.0);
  EXPECT_DOUBLE_EQ(jaccard_sorted({1}, {1}), 1.0);
  EXPECT_DOUBLE_EQ(jaccard_sorted({}, {1}), 0.0);
}

TEST(UnionFind, RootIsTheSmallestMember) {
  UnionFind uf(6);
  uf.unite(5, 3);
  uf.unite(3, 4);
  uf.unite(1, 2);
  EXPECT_EQ(uf.find(5), 3u);
  EXPECT_EQ(uf.find(4), 3u);
  EXPECT_EQ(uf.find(2), 1u);
  uf.unite(4, 2);
  EXPECT_EQ(uf.find(5), 1u);
  EXPECT_EQ(uf.find(0), 0u);
}
