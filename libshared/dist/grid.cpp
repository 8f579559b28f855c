#include "dist/grid.hpp"

#include <algorithm>

#include <set>
#include <sstream>

#include "core/error.hpp"

namespace bellows::dist {

Grid Grid::make(int world, int tp, int pp, int dp) {
  if (world < 1) throw UsageError("the world size must be at least 1");
  if (tp < 1) throw UsageError("--tp must be at least 1");
  if (pp < 1) throw UsageError("--pp must be at least 1");
  if (dp < 0) throw UsageError("--dp must be at least 1 (or 0: the world size / (tp x pp))");
  if (world % (tp * pp) != 0)
    throw UsageError("--tp " + std::to_string(tp) + " x --pp " + std::to_string(pp) + " = " + std::to_string(tp * pp) +
                     " does not divide the " + std::to_string(world) + " ranks");
  const int inferred = world / (tp * pp);
  if (dp != 0 && dp != inferred)
    throw UsageError("--dp " + std::to_string(dp) + ": --tp " + std::to_string(tp) + " x --pp " + std::to_string(pp) +
                     " x --dp " + std::to_string(dp) + " = " + std::to_string(tp * pp * dp) + " is not the " +
                     std::to_string(world) + " ranks");
  return Grid(tp, inferred, pp);
}

GridCoord Grid::coord(int rank) const {
  BELLOWS_CHECK(rank >= 0 && rank < world(), "rank " + std::to_string(rank) + " outside the grid");
  return {rank % tp_, (rank / tp_) % dp_, rank / (tp_ * dp_)};
}

int Grid::rank(const GridCoord& c) const {
  BELLOWS_CHECK(c.tp >= 0 && c.tp < tp_ && c.dp >= 0 && c.dp < dp_ && c.pp >= 0 && c.pp < pp_, "coordinate outside the grid");
  return c.tp + tp_ * (c.dp + dp_ * c.pp);
}

// axis 0: tp, 1: dp, 2: pp. The group varies that coordinate and keeps the other two.
std::vector<int> Grid::group(int r, int axis) const {
  const GridCoord c = coord(r);
  const int n = axis == 0 ? tp_ : axis == 1 ? dp_ : pp_;
  std::vector<int> g;
  for (int i = 0; i < n; ++i) {
    GridCoord x = c;
    (axis == 0 ? x.tp : axis == 1 ? x.dp : x.pp) = i;
    g.push_back(rank(x));
  }
  return g;  // ascending: each axis's stride is positive
}

std::vector<std::vector<int>> Grid::groups(int axis) const {
  std::vector<std::vector<int>> out;
  std::set<int> seen;
  for (int r = 0; r < world(); ++r) {
    if (seen.count(r)) continue;
    out.push_back(group(r, axis));
    seen.insert(out.back().begin(), out.back().end());
  }
  return out;
}

std::vector<int> Grid::tp_group(int r) const { return group(r, 0); }
std::vector<int> Grid::dp_group(int r) const { return group(r, 1); }
std::vector<int> Grid::pp_group(int r) const { return group(r, 2); }
std::vector<std::vector<int>> Grid::tp_groups() const { return groups(0); }
std::vector<std::vector<int>> Grid::dp_groups() const { return groups(1); }
std::vector<std::vector<int>> Grid::pp_groups() const { return groups(2); }

std::vector<std::vector<int>> Grid::tp_groups_across_nodes(const std::vector<std::string>& node_of_rank) const {
  BELLOWS_CHECK(int(node_of_rank.size()) == world(), "a node for every rank");
  std::vector<std::vector<int>> out;
  for (const auto& g : tp_groups()) {
    std::set<std::string> nodes;
    for (int r : g) nodes.insert(node_of_rank[size_t(r)]);
    if (nodes.size() > 1) out.push_back(g);
  }
  return out;
}

std::string Grid::describe(const std::vector<std::string>& node_of_rank) const {
  BELLOWS_CHECK(int(node_of_rank.size()) == world(), "a node for every rank");
  std::ostringstream o;
  o << "grid: " << world() << " ranks = tp " << tp_ << " x dp " << dp_ << " x pp " << pp_ << " (rank = tp + " << tp_
    << " * (dp + " << dp_ << " * pp))";
  const char* names[3] = {"tp", "dp", "pp"};
  for (int axis = 0; axis < 3; ++axis) {
    o << "\n  " << names[axis] << " groups:";
    for (const auto& g : groups(axis)) {
      o << " [";
      for (size_t i = 0; i < g.size(); ++i) o << (i ? " " : "") << g[i] << "@" << node_of_rank[size_t(g[i])];
      o << "]";
    }
  }
  return o.str();
}

void check_tp_within_nodes(const Grid& g, const std::vector<std::string>& node_of_rank, bool allow_cross_node_tp) {
  const auto bad = g.tp_groups_across_nodes(node_of_rank);
  if (bad.empty() || allow_cross_node_tp) return;
  std::string ranks;
  for (size_t i = 0; i < bad.front().size(); ++i)
    ranks += (i ? " " : "") + std::to_string(bad.front()[i]) + "@" + node_of_rank[size_t(bad.front()[i])];
  // Ranks on the first bad group's first node (the launch may not spread ranks evenly).
  const int per_node = int(std::count(node_of_rank.begin(), node_of_rank.end(), node_of_rank[size_t(bad.front().front())]));
  throw UsageError("--tp " + std::to_string(g.tp()) + ": " + std::to_string(bad.size()) +
                   " tensor-parallel group(s) span nodes (e.g. [" + ranks +
                   "]), so every layer's all-reduces would cross the inter-node network; use a --tp that divides the "
                   "ranks per node (" + std::to_string(per_node) + ") so that each group fits in one node, put --pp and "
                   "data parallelism across nodes, or pass --allow-cross-node-tp");
}

}  // namespace bellows::dist
