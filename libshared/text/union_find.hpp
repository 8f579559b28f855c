// Disjoint sets over dense indices with path halving and union by "smaller index wins", so the
// root of every set is its smallest member: cluster representatives are deterministic.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

namespace bellows::text {

class UnionFind {
 public:
  explicit UnionFind(size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), size_t{0}); }
  size_t find(size_t x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  // Joins the sets of a and b; the smaller root becomes the root of both.
  void unite(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);
    parent_[b] = a;
  }
  size_t size() const { return parent_.size(); }

 private:
  std::vector<size_t> parent_;
};

}  // namespace bellows::text
