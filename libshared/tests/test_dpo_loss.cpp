// dpo-align's preference losses: closed forms at chosen points, gradients against finite
// differences, the label-smoothing limit, and the refusals. (Against TRL's formulas in PyTorch:
// tests/bats/dpo_loss_reference.bats.)
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "train/dpo_loss.hpp"

using namespace bellows::train;

TEST(DpoLoss, ClosedFormsAtZeroMargin) {
  // h = 0: sigmoid gives log 2, hinge 1, ipo 1/(4 beta^2); rewards as beta (policy - reference).
  const DpoPair s = dpo_pair(DpoLoss::sigmoid, 0.1, 0.0, -10, -12, -11, -13);
  EXPECT_NEAR(s.loss, std::log(2.0), 1e-12);
  EXPECT_NEAR(s.dloss_dchosen, -0.05, 1e-12);  // -beta sigmoid(0)
  EXPECT_NEAR(s.reward_chosen, 0.1, 1e-12);
  EXPECT_NEAR(s.reward_rejected, 0.1, 1e-12);
  EXPECT_FALSE(s.correct());
  EXPECT_NEAR(dpo_pair(DpoLoss::hinge, 0.1, 0.0, -10, -12, -11, -13).loss, 1.0, 1e-12);
  EXPECT_NEAR(dpo_pair(DpoLoss::ipo, 0.1, 0.0, -10, -12, -11, -13).loss, 25.0, 1e-9);
}

TEST(DpoLoss, GradientsMatchFiniteDifferences) {
  for (DpoLoss k : {DpoLoss::sigmoid, DpoLoss::hinge, DpoLoss::ipo})
    for (double e : {0.0, 0.2}) {
      if (e > 0 && k != DpoLoss::sigmoid) continue;
      for (double pc : {-20.0, -14.0, -9.5}) {
        const double pr = -13.0, rc = -12.0, rr = -12.5, beta = 0.3, h = 1e-6;
        const DpoPair p = dpo_pair(k, beta, e, pc, pr, rc, rr);
        const double fd_c = (dpo_pair(k, beta, e, pc + h, pr, rc, rr).loss - dpo_pair(k, beta, e, pc - h, pr, rc, rr).loss) / (2 * h);
        const double fd_r = (dpo_pair(k, beta, e, pc, pr + h, rc, rr).loss - dpo_pair(k, beta, e, pc, pr - h, rc, rr).loss) / (2 * h);
        EXPECT_NEAR(p.dloss_dchosen, fd_c, 1e-6) << to_string(k) << " e " << e << " pc " << pc;
        EXPECT_NEAR(p.dloss_drejected, fd_r, 1e-6) << to_string(k) << " e " << e << " pc " << pc;
      }
    }
}

TEST(DpoLoss, LargeMarginsStayFinite) {
  const DpoPair far = dpo_pair(DpoLoss::sigmoid, 1.0, 0.0, 0, -2000, 0, 0);
  EXPECT_NEAR(far.loss, 0.0, 1e-12);
  EXPECT_TRUE(far.correct());
  const DpoPair wrong = dpo_pair(DpoLoss::sigmoid, 1.0, 0.0, -2000, 0, 0, 0);
  EXPECT_NEAR(wrong.loss, 2000.0, 1e-9);
  EXPECT_NEAR(wrong.dloss_dchosen, -1.0, 1e-12);
}

TEST(DpoLoss, BadSettingsAreUsageErrors) {
  EXPECT_THROW(dpo_pair(DpoLoss::sigmoid, 0.0, 0.0, 0, 0, 0, 0), bellows::UsageError);
  EXPECT_THROW(dpo_pair(DpoLoss::sigmoid, -1.0, 0.0, 0, 0, 0, 0), bellows::UsageError);
  EXPECT_THROW(dpo_pair(DpoLoss::sigmoid, 0.1, 0.5, 0, 0, 0, 0), bellows::UsageError);
  EXPECT_THROW(dpo_pair(DpoLoss::hinge, 0.1, 0.1, 0, 0, 0, 0), bellows::UsageError);
  EXPECT_THROW(parse_dpo_loss("robust"), bellows::UsageError);
  EXPECT_EQ(parse_dpo_loss("ipo"), DpoLoss::ipo);
}
