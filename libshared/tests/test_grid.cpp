// The TP x DP x PP grid: Megatron's order (TP fastest, then DP, then PP), groups, and the
// placement check that refuses a TP group across nodes.
#include <gtest/gtest.h>

#include <set>

#include "core/error.hpp"
#include "dist/grid.hpp"

using bellows::UsageError;
using bellows::dist::Grid;
using bellows::dist::GridCoord;

TEST(Grid, RanksAreOrderedTpThenDpThenPp) {
  const Grid g = Grid::make(16, 2, 2);  // dp inferred: 4
  EXPECT_EQ(g.dp(), 4);
  EXPECT_EQ(g.coord(0), (GridCoord{0, 0, 0}));
  EXPECT_EQ(g.coord(1), (GridCoord{1, 0, 0}));
  EXPECT_EQ(g.coord(2), (GridCoord{0, 1, 0}));
  EXPECT_EQ(g.coord(8), (GridCoord{0, 0, 1}));
  EXPECT_EQ(g.coord(15), (GridCoord{1, 3, 1}));
  for (int r = 0; r < 16; ++r) EXPECT_EQ(g.rank(g.coord(r)), r);
  EXPECT_EQ(g.tp_group(5), (std::vector<int>{4, 5}));
  EXPECT_EQ(g.dp_group(5), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(g.pp_group(5), (std::vector<int>{5, 13}));
}

TEST(Grid, EachKindOfGroupPartitionsTheRanks) {
  for (auto [w, tp, pp] : {std::tuple{8, 2, 2}, {8, 1, 1}, {8, 8, 1}, {8, 1, 8}, {12, 2, 3}, {1, 1, 1}}) {
    const Grid g = Grid::make(w, tp, pp);
    for (const auto& groups : {g.tp_groups(), g.dp_groups(), g.pp_groups()}) {
      std::multiset<int> all;
      for (const auto& grp : groups) all.insert(grp.begin(), grp.end());
      EXPECT_EQ(all.size(), size_t(w));
      EXPECT_EQ(std::set<int>(all.begin(), all.end()).size(), size_t(w));
    }
    EXPECT_EQ(g.tp_groups().size(), size_t(w / tp));
    EXPECT_EQ(g.pp_groups().size(), size_t(w / pp));
  }
}

TEST(Grid, SizesThatDoNotFitAreRefusedNamingTheFlags) {
  EXPECT_THROW(Grid::make(6, 4, 1), UsageError);
  EXPECT_THROW(Grid::make(8, 2, 2, 3), UsageError);
  EXPECT_THROW(Grid::make(8, 0, 1), UsageError);
  EXPECT_NO_THROW(Grid::make(8, 2, 2, 2));
  try {
    Grid::make(6, 4, 1);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--tp 4"), std::string::npos) << e.what();
  }
}

TEST(Grid, TpAcrossNodesIsRefusedWithTheFixUnlessAllowed) {
  // The seed's mistake: TP = 8 on two 4-GPU nodes.
  std::vector<std::string> nodes = {"a", "a", "a", "a", "b", "b", "b", "b"};
  const Grid bad = Grid::make(8, 8, 1);
  EXPECT_EQ(bad.tp_groups_across_nodes(nodes).size(), 1u);
  try {
    bellows::dist::check_tp_within_nodes(bad, nodes, false);
    ADD_FAILURE() << "not refused";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("span nodes"), std::string::npos) << m;
    EXPECT_NE(m.find("a --tp that divides the ranks per node (4)"), std::string::npos) << m;
    EXPECT_NE(m.find("--allow-cross-node-tp"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(bellows::dist::check_tp_within_nodes(bad, nodes, true));
  // TP = 4 within each node, PP = 2 across them: fine, and the description names the nodes.
  const Grid good = Grid::make(8, 4, 2);
  EXPECT_TRUE(good.tp_groups_across_nodes(nodes).empty());
  EXPECT_NO_THROW(bellows::dist::check_tp_within_nodes(good, nodes, false));
  const std::string d = good.describe(nodes);
  EXPECT_NE(d.find("tp groups: [0@a 1@a 2@a 3@a] [4@b 5@b 6@b 7@b]"), std::string::npos) << d;
  EXPECT_NE(d.find("pp groups: [0@a 4@b]"), std::string::npos) << d;
}
