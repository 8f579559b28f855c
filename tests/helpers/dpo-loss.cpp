// Test helper: dpo-align's preference loss on given log-probabilities, for the PyTorch check
// (tests/python/check_dpo_loss.py). Reads lines "LOSS BETA LABEL_SMOOTHING POLICY_CHOSEN
// POLICY_REJECTED REF_CHOSEN REF_REJECTED" on stdin; writes one JSON object per line: loss, the
// gradient with respect to the two policy log-probabilities, the rewards.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/error.hpp"
#include "train/dpo_loss.hpp"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string kind;
    double beta, e, pc, pr, rc, rr;
    if (!(in >> kind >> beta >> e >> pc >> pr >> rc >> rr)) {
      std::fprintf(stderr, "dpo-loss: bad line: %s\n", line.c_str());
      return 2;
    }
    try {
      const auto p = bellows::train::dpo_pair(bellows::train::parse_dpo_loss(kind), beta, e, pc, pr, rc, rr);
      std::cout << nlohmann::json{{"loss", p.loss},
                                  {"d_chosen", p.dloss_dchosen},
                                  {"d_rejected", p.dloss_drejected},
                                  {"reward_chosen", p.reward_chosen},
                                  {"reward_rejected", p.reward_rejected}}
                       .dump()
                << "\n";
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "dpo-loss: %s\n", ex.what());
      return 2;
    }
  }
  return 0;
}
