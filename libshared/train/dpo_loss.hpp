// The preference losses of dpo-align (issue 9), as TRL's DPOTrainer defines them, on the summed
// response log-probabilities of a pair under the policy and the reference: with
//   h = (logp_chosen - logp_rejected) - (ref_chosen - ref_rejected),
//   sigmoid (DPO; with label smoothing e, cDPO):  -(1 - e) log sigmoid(beta h) - e log sigmoid(-beta h)
//   hinge (SLiC):                                 max(0, 1 - beta h)
//   ipo:                                          (h - 1 / (2 beta))^2
// and the rewards beta (logp - ref) of each side. The gradient is taken with respect to the
// policy's two log-probabilities (the reference is constant), which is what the trainer feeds
// back through each side's tokens. (TRL's IPO averages log-probabilities over the response
// tokens before this; the trainer does that, not this function.)
#pragma once

#include <string>

namespace bellows::train {

enum class DpoLoss { sigmoid, hinge, ipo };
DpoLoss parse_dpo_loss(const std::string& s);  // UsageError naming --loss
const char* to_string(DpoLoss l);

struct DpoPair {
  double loss = 0;
  double dloss_dchosen = 0, dloss_drejected = 0;  // d loss / d policy logp of each side
  double reward_chosen = 0, reward_rejected = 0;  // beta * (policy - reference)
  double margin() const { return reward_chosen - reward_rejected; }
  bool correct() const { return reward_chosen > reward_rejected; }
};

// UsageError for beta <= 0 or label smoothing outside [0, 0.5) (only with sigmoid).
DpoPair dpo_pair(DpoLoss kind, double beta, double label_smoothing, double policy_chosen, double policy_rejected,
                 double ref_chosen, double ref_rejected);

}  // namespace bellows::train
