#include "curate/dedup.hpp"

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "core/bytes.hpp"
#include "core/error.hpp"
#include "text/minhash.hpp"
#include "text/union_find.hpp"

namespace bellows::curate {
namespace {

using Edge = std::pair<uint64_t, uint64_t>;  // (kept candidate = smaller key, other)

std::vector<std::string> empty_buffers(int n) { return std::vector<std::string>(static_cast<size_t>(n)); }

int owner_of_hash(uint64_t h, int ranks) { return static_cast<int>(h % static_cast<uint64_t>(ranks)); }

}  // namespace

void DedupTable::add(uint64_t key, std::array<uint64_t, 2> hash, std::string id, const std::vector<uint64_t>* b) {
  BELLOWS_CHECK(keys.empty() || key > keys.back(), "dedup keys must be added in ascending order");
  keys.push_back(key);
  hashes.push_back(hash);
  ids.push_back(std::move(id));
  fuzzy.push_back(b != nullptr);
  if (b) {
    BELLOWS_CHECK(b->size() == bands, "band count mismatch");
    band_keys.insert(band_keys.end(), b->begin(), b->end());
  } else {
    band_keys.insert(band_keys.end(), bands, 0);
  }
}

size_t DedupTable::index_of(uint64_t key) const {
  auto it = std::lower_bound(keys.begin(), keys.end(), key);
  BELLOWS_CHECK(it != keys.end() && *it == key, "key not held by this rank");
  return static_cast<size_t>(it - keys.begin());
}

DedupResult deduplicate(const DedupTable& t, const DedupConfig& cfg, dist::Communicator& comm,
                        const std::function<int(uint64_t)>& key_owner, const ShingleSetFn& shingle_set) {
  const int n = comm.size();
  DedupResult res;
  res.stats = {{"exact_groups", 0}, {"exact_removed", 0}, {"candidate_pairs", 0}, {"verified_pairs", 0},
               {"rejected_pairs", 0}, {"fuzzy_removed", 0}};
  std::vector<uint8_t> removed(t.keys.size(), 0);
  std::map<uint64_t, Removal> removals;

  // ---- exact: one owner per 128-bit hash ------------------------------------------------------
  if (cfg.exact) {
    auto out = empty_buffers(n);
    for (size_t i = 0; i < t.keys.size(); ++i) {
      ByteWriter w(out[static_cast<size_t>(owner_of_hash(t.hashes[i][1], n))]);
      w.put(t.hashes[i][0]);
      w.put(t.hashes[i][1]);
      w.put(t.keys[i]);
      w.put_string(t.ids[i]);
    }
    std::vector<std::tuple<uint64_t, uint64_t, uint64_t, std::string>> recs;
    for (const auto& buf : comm.alltoallv(out)) {
      ByteReader r(buf);
      while (!r.done()) {
        auto hi = r.get<uint64_t>(), lo = r.get<uint64_t>(), key = r.get<uint64_t>();
        recs.emplace_back(hi, lo, key, r.get_string());
      }
    }
    std::sort(recs.begin(), recs.end());
    auto back = empty_buffers(n);
    int64_t groups = 0;
    for (size_t i = 0; i < recs.size();) {
      size_t j = i + 1;
      while (j < recs.size() && std::get<0>(recs[j]) == std::get<0>(recs[i]) && std::get<1>(recs[j]) == std::get<1>(recs[i])) ++j;
      if (j - i > 1) ++groups;
      for (size_t k = i + 1; k < j; ++k) {
        ByteWriter w(back[static_cast<size_t>(key_owner(std::get<2>(recs[k])))]);
        w.put(std::get<2>(recs[k]));
        w.put(std::get<2>(recs[i]));
        w.put_string(std::get<3>(recs[i]));
      }
      i = j;
    }
    res.stats["exact_groups"] = groups;
    for (const auto& buf : comm.alltoallv(back)) {
      ByteReader r(buf);
      while (!r.done()) {
        Removal rm;
        rm.key = r.get<uint64_t>();
        rm.kept_key = r.get<uint64_t>();
        rm.kept_id = r.get_string();
        rm.exact = true;
        removed[t.index_of(rm.key)] = 1;
        removals.emplace(rm.key, std::move(rm));
      }
    }
    res.stats["exact_removed"] = static_cast<int64_t>(removals.size());
  }

  // ---- fuzzy: LSH buckets -> edges to the bucket's smallest key -------------------------------
  if (cfg.fuzzy && t.bands > 0) {
    auto out = empty_buffers(n);
    for (size_t i = 0; i < t.keys.size(); ++i) {
      if (!t.fuzzy[i] || removed[i]) continue;
      for (size_t b = 0; b < t.bands; ++b) {
        uint64_t bk = t.band_keys[i * t.bands + b];
        ByteWriter w(out[static_cast<size_t>(owner_of_hash(bk, n))]);
        w.put(bk);
        w.put(t.keys[i]);
      }
    }
    std::vector<std::pair<uint64_t, uint64_t>> entries;  // (band key, doc key)
    for (const auto& buf : comm.alltoallv(out)) {
      ByteReader r(buf);
      while (!r.done()) {
        auto bk = r.get<uint64_t>();
        entries.emplace_back(bk, r.get<uint64_t>());
      }
    }
    std::sort(entries.begin(), entries.end());
    auto edge_out = empty_buffers(n);
    auto send_edge = [&](uint64_t a, uint64_t b) {
      ByteWriter w(edge_out[static_cast<size_t>(key_owner(b))]);
      w.put(a);
      w.put(b);
    };
    for (size_t i = 0; i < entries.size();) {
      size_t j = i + 1;
      while (j < entries.size() && entries[j].first == entries[i].first) ++j;
      // Star to the bucket's smallest member, plus a chain through the bucket: linear in the
      // bucket size, and a member unlike the smallest can still meet a neighbour it resembles.
      for (size_t k = i + 1; k < j; ++k) {
        if (entries[k].second == entries[k - 1].second) continue;
        send_edge(entries[i].second, entries[k].second);
        if (k - 1 > i) send_edge(entries[k - 1].second, entries[k].second);
      }
      i = j;
    }
    entries.clear();
    entries.shrink_to_fit();
    std::vector<Edge> edges;  // edges whose second document is ours
    for (const auto& buf : comm.alltoallv(edge_out)) {
      ByteReader r(buf);
      while (!r.done()) {
        auto a = r.get<uint64_t>();
        edges.emplace_back(a, r.get<uint64_t>());
      }
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
    res.stats["candidate_pairs"] = static_cast<int64_t>(edges.size());

    if (cfg.verify) {
      // Ask the owners of the anchors for their shingle sets, then compare locally.
      auto req = empty_buffers(n);
      std::vector<uint64_t> anchors;
      for (const auto& e : edges) anchors.push_back(e.first);
      std::sort(anchors.begin(), anchors.end());
      anchors.erase(std::unique(anchors.begin(), anchors.end()), anchors.end());
      for (uint64_t a : anchors) ByteWriter(req[static_cast<size_t>(key_owner(a))]).put(a);
      auto reply = empty_buffers(n);
      std::vector<std::string> asked = comm.alltoallv(req);
      for (size_t r = 0; r < asked.size(); ++r) {
        ByteReader rd(asked[r]);
        ByteWriter w(reply[r]);
        while (!rd.done()) {
          auto a = rd.get<uint64_t>();
          std::vector<uint64_t> set = shingle_set(a);
          w.put(a);
          w.put(static_cast<uint64_t>(set.size()));
          for (uint64_t h : set) w.put(h);
        }
      }
      std::unordered_map<uint64_t, std::vector<uint64_t>> anchor_sets;
      for (const auto& buf : comm.alltoallv(reply)) {
        ByteReader rd(buf);
        while (!rd.done()) {
          auto a = rd.get<uint64_t>();
          auto cnt = rd.get<uint64_t>();
          std::vector<uint64_t> set(cnt);
          for (auto& h : set) h = rd.get<uint64_t>();
          anchor_sets.emplace(a, std::move(set));
        }
      }
      std::vector<Edge> kept;
      int64_t rejected = 0;
      uint64_t cached_key = ~uint64_t{0};
      std::vector<uint64_t> mine;
      // Edges are sorted by anchor; regroup by our document to read each of its sets once.
      std::sort(edges.begin(), edges.end(), [](const Edge& x, const Edge& y) { return x.second < y.second || (x.second == y.second && x.first < y.first); });
      for (const auto& e : edges) {
        if (e.second != cached_key) {
          mine = shingle_set(e.second);
          cached_key = e.second;
        }
        if (text::jaccard_sorted(anchor_sets.at(e.first), mine) >= cfg.threshold) kept.push_back(e);
        else ++rejected;
      }
      res.stats["verified_pairs"] = static_cast<int64_t>(kept.size());
      res.stats["rejected_pairs"] = rejected;
      edges.swap(kept);
    }

    // Every rank gets every edge and builds the same union-find.
    std::string mine_edges;
    ByteWriter w(mine_edges);
    for (const auto& e : edges) {
      w.put(e.first);
      w.put(e.second);
    }
    std::vector<Edge> all;
    for (const auto& buf : comm.allgather(mine_edges)) {
      ByteReader r(buf);
      while (!r.done()) {
        auto a = r.get<uint64_t>();
        all.emplace_back(a, r.get<uint64_t>());
      }
    }
    std::vector<uint64_t> nodes;
    for (const auto& e : all) {
      nodes.push_back(e.first);
      nodes.push_back(e.second);
    }
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    auto idx = [&](uint64_t k) { return static_cast<size_t>(std::lower_bound(nodes.begin(), nodes.end(), k) - nodes.begin()); };
    text::UnionFind uf(nodes.size());
    for (const auto& e : all) uf.unite(idx(e.first), idx(e.second));
    std::vector<uint64_t> size_of(nodes.size(), 0);
    for (size_t i = 0; i < nodes.size(); ++i) ++size_of[uf.find(i)];

    // Cluster statistics, the same on every rank.
    uint64_t clusters = 0, largest = 0, in_clusters = 0;
    std::map<std::string, uint64_t> hist;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (uf.find(i) != i) continue;
      ++clusters;
      largest = std::max(largest, size_of[i]);
      in_clusters += size_of[i];
      uint64_t s = size_of[i];
      hist[s <= 2 ? "2" : s <= 5 ? "3-5" : s <= 10 ? "6-10" : s <= 100 ? "11-100" : ">100"]++;
    }
    res.clusters = {{"clusters", clusters}, {"documents_in_clusters", in_clusters}, {"largest_cluster", largest},
                    {"cluster_size_histogram", hist}};

    // Keep decisions, identical on every rank: kept_by[i] is the node index of the document kept
    // for node i (i itself when i is kept).
    std::vector<size_t> kept_by(nodes.size());
    if (cfg.one_per_cluster) {
      for (size_t i = 0; i < nodes.size(); ++i) kept_by[i] = uf.find(i);
    } else {
      std::vector<std::pair<size_t, size_t>> incoming;  // (node, smaller neighbour)
      for (const auto& e : all) incoming.emplace_back(idx(e.second), idx(e.first));
      std::sort(incoming.begin(), incoming.end());
      size_t pos = 0;
      for (size_t i = 0; i < nodes.size(); ++i) {
        kept_by[i] = i;
        for (; pos < incoming.size() && incoming[pos].first == i; ++pos) {
          size_t from = incoming[pos].second;
          if (kept_by[i] == i && kept_by[from] == from) kept_by[i] = from;  // smallest kept neighbour
        }
      }
    }
    uint64_t kept_in_clusters = 0;
    for (size_t i = 0; i < nodes.size(); ++i) kept_in_clusters += kept_by[i] == i;
    res.clusters["kept_in_clusters"] = kept_in_clusters;

    // Ids of the kept documents this rank holds that others name as kept_id.
    std::vector<uint8_t> is_target(nodes.size(), 0);
    for (size_t i = 0; i < nodes.size(); ++i)
      if (kept_by[i] != i) is_target[kept_by[i]] = 1;
    std::string target_ids;
    ByteWriter rw(target_ids);
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!is_target[i] || key_owner(nodes[i]) != comm.rank()) continue;
      rw.put(nodes[i]);
      rw.put_string(t.ids[t.index_of(nodes[i])]);
    }
    std::unordered_map<uint64_t, std::string> kept_id;
    for (const auto& buf : comm.allgather(target_ids)) {
      ByteReader r(buf);
      while (!r.done()) {
        auto k = r.get<uint64_t>();
        kept_id.emplace(k, r.get_string());
      }
    }
    int64_t fuzzy_removed = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (kept_by[i] == i || key_owner(nodes[i]) != comm.rank()) continue;
      Removal rm;
      rm.key = nodes[i];
      rm.kept_key = nodes[kept_by[i]];
      rm.kept_id = kept_id.at(rm.kept_key);
      removals.emplace(rm.key, std::move(rm));
      ++fuzzy_removed;
    }
    res.stats["fuzzy_removed"] = fuzzy_removed;
  }
  for (auto& [k, rm] : removals) res.removals.push_back(std::move(rm));
  return res;
}

}  // namespace bellows::curate
