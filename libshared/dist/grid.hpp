// The TP x DP x PP grid of ranks: the one place that knows parallel rank arithmetic (as
// Megatron-Core's parallel_state). Ranks are ordered TP fastest, then DP, then PP, so a tensor-
// parallel group is consecutive ranks and, with block placement (srun/mpirun fill a node before
// the next), sits on one node where its every-layer all-reduces belong. Layers receive the groups
// they talk in; nothing else derives them.
#pragma once

#include <string>
#include <vector>

namespace bellows::dist {

struct GridCoord {
  int tp = 0, dp = 0, pp = 0;
  bool operator==(const GridCoord&) const = default;
};

class Grid {
 public:
  // world = tp * dp * pp; dp = 0 infers it from the world size. UsageError naming --tp/--pp/--dp
  // when the sizes are not positive or do not multiply to the world size.
  static Grid make(int world, int tp, int pp, int dp = 0);

  int world() const { return tp_ * dp_ * pp_; }
  int tp() const { return tp_; }
  int dp() const { return dp_; }
  int pp() const { return pp_; }

  GridCoord coord(int rank) const;
  int rank(const GridCoord& c) const;
  // The ranks of each kind of group `rank` belongs to, ascending; a rank's index in its group is
  // its coordinate along that axis.
  std::vector<int> tp_group(int rank) const;
  std::vector<int> dp_group(int rank) const;
  std::vector<int> pp_group(int rank) const;
  // Every group of a kind, each ascending, groups in order of their lowest rank.
  std::vector<std::vector<int>> tp_groups() const;
  std::vector<std::vector<int>> dp_groups() const;
  std::vector<std::vector<int>> pp_groups() const;

  // Tensor-parallel groups whose ranks sit on more than one node (node_of_rank[r]: r's host),
  // the placement mistake that puts per-layer all-reduces on the inter-node network.
  std::vector<std::vector<int>> tp_groups_across_nodes(const std::vector<std::string>& node_of_rank) const;
  // The grid as rank 0 prints it at start-up: the sizes, then one line per group kind listing
  // its groups as ranks@node.
  std::string describe(const std::vector<std::string>& node_of_rank) const;

 private:
  Grid(int tp, int dp, int pp) : tp_(tp), dp_(dp), pp_(pp) {}
  std::vector<int> group(int rank, int axis) const;
  std::vector<std::vector<int>> groups(int axis) const;
  int tp_, dp_, pp_;
};

// Refuses (UsageError) a grid with a TP group across nodes unless allowed, explaining the fix:
// keep TP within a node (at most the GPUs/ranks per node), put PP and DP across nodes.
void check_tp_within_nodes(const Grid& g, const std::vector<std::string>& node_of_rank, bool allow_cross_node_tp);

}  // namespace bellows::dist
