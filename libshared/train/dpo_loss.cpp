#include "train/dpo_loss.hpp"

#include <cmath>

#include "core/error.hpp"

namespace bellows::train {

DpoLoss parse_dpo_loss(const std::string& s) {
  if (s == "sigmoid") return DpoLoss::sigmoid;
  if (s == "hinge") return DpoLoss::hinge;
  if (s == "ipo") return DpoLoss::ipo;
  throw UsageError("--loss: '" + s + "' is not one of sigmoid, hinge, ipo");
}

const char* to_string(DpoLoss l) {
  switch (l) {
    case DpoLoss::sigmoid: return "sigmoid";
    case DpoLoss::hinge: return "hinge";
    case DpoLoss::ipo: return "ipo";
  }
  return "?";
}

namespace {
// log sigmoid(x) without overflow for large |x|.
double log_sigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }
double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
}  // namespace

DpoPair dpo_pair(DpoLoss kind, double beta, double e, double pc, double pr, double rc, double rr) {
  if (!(beta > 0)) throw UsageError("--beta must be positive (got " + std::to_string(beta) + ")");
  if (!(e >= 0 && e < 0.5)) throw UsageError("--label-smoothing must be in [0, 0.5) (got " + std::to_string(e) + ")");
  if (e > 0 && kind != DpoLoss::sigmoid) throw UsageError("--label-smoothing goes with --loss sigmoid only");
  DpoPair p;
  const double h = (pc - pr) - (rc - rr);
  double dh = 0;  // d loss / d h
  switch (kind) {
    case DpoLoss::sigmoid:
      p.loss = -(1 - e) * log_sigmoid(beta * h) - e * log_sigmoid(-beta * h);
      dh = -(1 - e) * beta * sigmoid(-beta * h) + e * beta * sigmoid(beta * h);
      break;
    case DpoLoss::hinge:
      p.loss = std::max(0.0, 1 - beta * h);
      dh = 1 - beta * h > 0 ? -beta : 0.0;
      break;
    case DpoLoss::ipo:
      p.loss = (h - 1 / (2 * beta)) * (h - 1 / (2 * beta));
      dh = 2 * (h - 1 / (2 * beta));
      break;
  }
  p.dloss_dchosen = dh;
  p.dloss_drejected = -dh;
  p.reward_chosen = beta * (pc - rc);
  p.reward_rejected = beta * (pr - rr);
  return p;
}

}  // namespace bellows::train
