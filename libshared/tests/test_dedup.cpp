#include <gtest/gtest.h>

#include <map>

#include "curate/dedup.hpp"
#include "curate/inputs.hpp"
#include "dist/comm.hpp"
#include "text/minhash.hpp"

using namespace bellows;
using namespace bellows::curate;

namespace {

struct Doc {
  uint64_t key;
  std::string text;
};

// Builds the table as curate-dedup does: exact hash of the text, band keys of its signature.
DedupTable table_of(const std::vector<Doc>& docs, const text::LshParams& lsh, const text::ShingleSpec& spec) {
  DedupTable t;
  t.bands = lsh.bands;
  text::Permutations p = text::make_permutations(lsh.bands * lsh.rows, 1);
  for (const auto& d : docs) {
    std::vector<uint32_t> h, sig;
    for (const auto& s : text::shingles(d.text, spec)) h.push_back(text::shingle_hash32(s));
    text::minhash_signature(h, p, sig);
    std::vector<uint64_t> bands;
    text::band_keys(sig, lsh, bands);
    uint64_t x = std::hash<std::string>{}(d.text);
    t.add(d.key, {x, x * 31}, "id" + std::to_string(d.key), &bands);
  }
  return t;
}

std::vector<uint64_t> shingle_set(const std::vector<Doc>& docs, uint64_t key, const text::ShingleSpec& spec) {
  for (const auto& d : docs)
    if (d.key == key) {
      std::vector<uint64_t> s;
      for (const auto& x : text::shingles(d.text, spec)) s.push_back(text::shingle_hash64(x));
      std::sort(s.begin(), s.end());
      s.erase(std::unique(s.begin(), s.end()), s.end());
      return s;
    }
  return {};
}

}  // namespace

TEST(Dedup, ExactDuplicatesKeepTheSmallestKey) {
  std::vector<Doc> docs = {{5, "alpha beta gamma delta"}, {7, "completely different words here"}, {9, "alpha beta gamma delta"},
                           {2, "alpha beta gamma delta"}};
  std::sort(docs.begin(), docs.end(), [](auto& a, auto& b) { return a.key < b.key; });
  text::ShingleSpec spec{text::ShingleSpec::Kind::word, 2};
  DedupTable t = table_of(docs, {4, 4}, spec);
  dist::SelfCommunicator self;
  DedupConfig cfg;
  cfg.fuzzy = false;
  DedupResult r = deduplicate(t, cfg, self, [](uint64_t) { return 0; }, nullptr);
  ASSERT_EQ(r.removals.size(), 2u);
  EXPECT_EQ(r.removals[0].key, 5u);
  EXPECT_EQ(r.removals[0].kept_key, 2u);
  EXPECT_EQ(r.removals[0].kept_id, "id2");
  EXPECT_TRUE(r.removals[0].exact);
  EXPECT_EQ(r.removals[1].key, 9u);
  EXPECT_EQ(r.stats["exact_groups"], 1);
}

TEST(Dedup, NearDuplicatesClusterAndVerificationRejectsWeakPairs) {
  std::string base;
  for (int i = 0; i < 200; ++i) base += "w" + std::to_string(i) + " ";
  std::string near = base;
  near.replace(0, 3, "zz ");  // one word changed: Jaccard ~0.98 on word:2 shingles
  std::string other;
  for (int i = 0; i < 200; ++i) other += "v" + std::to_string(i) + " ";
  std::vector<Doc> docs = {{1, base}, {2, other}, {3, near}};
  text::ShingleSpec spec{text::ShingleSpec::Kind::word, 2};
  DedupTable t = table_of(docs, {16, 8}, spec);
  dist::SelfCommunicator self;
  DedupConfig cfg;
  cfg.verify = true;
  cfg.threshold = 0.9;
  DedupResult r = deduplicate(t, cfg, self, [](uint64_t) { return 0; },
                              [&](uint64_t k) { return shingle_set(docs, k, spec); });
  ASSERT_EQ(r.removals.size(), 1u);
  EXPECT_EQ(r.removals[0].key, 3u);
  EXPECT_EQ(r.removals[0].kept_key, 1u);
  EXPECT_FALSE(r.removals[0].exact);
  EXPECT_EQ(r.clusters["clusters"], 1);
  EXPECT_EQ(r.clusters["largest_cluster"], 2);
  // The same pair at a threshold above its similarity is rejected by verification.
  cfg.threshold = 0.995;
  r = deduplicate(t, cfg, self, [](uint64_t) { return 0; }, [&](uint64_t k) { return shingle_set(docs, k, spec); });
  EXPECT_TRUE(r.removals.empty());
  EXPECT_EQ(r.stats["rejected_pairs"], 1);
}

TEST(Inputs, KeysOrderFilesThenRecords) {
  EXPECT_LT(make_key(0, 999999), make_key(1, 0));
  EXPECT_EQ(key_file(make_key(12, 34)), 12u);
  EXPECT_EQ(key_record(make_key(12, 34)), 34u);
}

TEST(Inputs, FilesAreSplitIntoContiguousBalancedBlocks) {
  std::vector<InputFile> files;
  for (int i = 0; i < 10; ++i) files.push_back({"f" + std::to_string(i), InputFormat::jsonl, 100});
  std::vector<int> owner = assign_files(files, 4);
  EXPECT_TRUE(std::is_sorted(owner.begin(), owner.end()));
  EXPECT_EQ(owner.front(), 0);
  EXPECT_EQ(owner.back(), 3);
  std::map<int, int> per;
  for (int o : owner) ++per[o];
  for (auto& [r, n] : per) EXPECT_GE(n, 2) << r;
  EXPECT_EQ(assign_files(files, 1), std::vector<int>(10, 0));
}

// A chain A~B~C where A and C are not alike: "covering" keeps A and C (nothing removed without a
// kept near-duplicate), "one" keeps A alone (one document per connected component).
TEST(Dedup, KeepPoliciesOnAChain) {
  auto words = [](int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) s += "w" + std::to_string(i) + " ";
    return s;
  };
  std::vector<Doc> docs = {{1, words(0, 200)}, {2, words(20, 220)}, {3, words(40, 240)}};
  text::ShingleSpec spec{text::ShingleSpec::Kind::word, 2};
  DedupTable t = table_of(docs, {32, 4}, spec);
  dist::SelfCommunicator self;
  DedupConfig cfg;
  cfg.verify = true;
  cfg.threshold = 0.75;
  auto sets = [&](uint64_t k) { return shingle_set(docs, k, spec); };
  DedupResult covering = deduplicate(t, cfg, self, [](uint64_t) { return 0; }, sets);
  ASSERT_EQ(covering.removals.size(), 1u);
  EXPECT_EQ(covering.removals[0].key, 2u);
  EXPECT_EQ(covering.removals[0].kept_key, 1u);
  EXPECT_EQ(covering.clusters["clusters"], 1);
  EXPECT_EQ(covering.clusters["kept_in_clusters"], 2);
  cfg.one_per_cluster = true;
  DedupResult one = deduplicate(t, cfg, self, [](uint64_t) { return 0; }, sets);
  ASSERT_EQ(one.removals.size(), 2u);
  EXPECT_EQ(one.removals[1].key, 3u);
  EXPECT_EQ(one.removals[1].kept_key, 1u);
  EXPECT_EQ(one.clusters["kept_in_clusters"], 1);
}
