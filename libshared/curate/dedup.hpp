// Exact and fuzzy (MinHash-LSH) deduplication across ranks.
//
// Every rank holds the hashes of its own documents only (never texts). Exact hashes and LSH band
// keys are sent with all-to-all to the rank that owns that key (key mod ranks), so each key is
// decided in one place; removals travel back to the document's rank. In each LSH bucket (sorted
// by key) every member gets an edge from the bucket's smallest document and from its
// predecessor; with --verify-jaccard each edge is checked by exact Jaccard of the two shingle
// sets. The surviving edges go to every rank, which all build the same union-find (the
// clusters) and take the same keep decisions:
//   covering (default): documents are visited in key order; one is removed when an edge links
//     it to a document already kept, which becomes its kept_id. Every removed document thus has
//     a kept near-duplicate (verified at >= threshold with --verify-jaccard); a chain A~B~C
//     with A and C dissimilar keeps both A and C.
//   one: one document per connected component (its smallest key) is kept, as NeMo Curator and
//     text-dedup do; chains can remove a document dissimilar to the one kept.
// Keys order documents by input file, then line, so the result is the same for any number of
// ranks.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dist/comm.hpp"

namespace bellows::curate {

// The documents of this rank that reached the dedup stages, in ascending key order.
struct DedupTable {
  size_t bands = 0;
  std::vector<uint64_t> keys;
  std::vector<std::array<uint64_t, 2>> hashes;  // 128-bit hash of the final text
  std::vector<std::string> ids;
  std::vector<uint8_t> fuzzy;       // 1: has shingles and band keys (takes part in fuzzy dedup)
  std::vector<uint64_t> band_keys;  // keys.size() * bands (zeros for documents not in fuzzy)

  void add(uint64_t key, std::array<uint64_t, 2> hash, std::string id, const std::vector<uint64_t>* bands_of_doc);
  size_t index_of(uint64_t key) const;  // position of a key of this rank; InternalError if absent
};

struct DedupConfig {
  bool exact = true, fuzzy = true;
  bool verify = false;
  double threshold = 0.8;  // Jaccard threshold for verification
  bool one_per_cluster = false;  // keep policy "one" instead of "covering"
};

struct Removal {
  uint64_t key = 0;       // removed document
  uint64_t kept_key = 0;  // the document kept for its group/cluster
  std::string kept_id;
  bool exact = false;     // exact duplicate (else fuzzy)
};

struct DedupResult {
  std::vector<Removal> removals;  // this rank's removed documents, ascending key
  nlohmann::json stats;           // counters of this rank to be summed across ranks
  nlohmann::json clusters;        // global cluster statistics (identical on every rank)
};

// Sorted, de-duplicated 64-bit shingle hashes of one of this rank's documents (for
// verification).
using ShingleSetFn = std::function<std::vector<uint64_t>(uint64_t key)>;

// `key_owner(key)` tells which rank holds a document.
DedupResult deduplicate(const DedupTable& table, const DedupConfig& cfg, dist::Communicator& comm,
                        const std::function<int(uint64_t)>& key_owner, const ShingleSetFn& shingle_set);

}  // namespace bellows::curate
