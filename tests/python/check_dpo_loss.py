#!/usr/bin/env python3
"""dpo-align's preference losses against a PyTorch implementation of TRL's DPOTrainer formulas.

    check_dpo_loss.py HELPER            (HELPER: build/tests/dpo-loss)

For random log-probabilities (and a few edge cases: zero and large margins) and each loss type,
TRL's formulas (DPOTrainer.dpo_loss: logits = pi_logratios - ref_logratios; sigmoid with label
smoothing, hinge, ipo) are computed in float64 torch, their gradient with respect to the policy's
chosen and rejected log-probabilities by autograd, and compared with the helper's output within
1e-5 relative (plus 1e-9 absolute). Exits 1 naming the first disagreement.
"""
import json
import random
import subprocess
import sys

import torch
import torch.nn.functional as F


def trl_loss(kind, beta, eps, pc, pr, rc, rr):
    logits = (pc - pr) - (rc - rr)
    if kind == "sigmoid":
        return -F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps
    if kind == "hinge":
        return torch.relu(1 - beta * logits)
    if kind == "ipo":
        return (logits - 1 / (2 * beta)) ** 2
    raise ValueError(kind)


def main():
    random.seed(7)
    cases = []
    for kind in ("sigmoid", "hinge", "ipo"):
        for eps in (0.0, 0.1, 0.3) if kind == "sigmoid" else (0.0,):
            for beta in (0.05, 0.1, 0.5):
                for _ in range(20):
                    pc, pr = random.uniform(-80, -5), random.uniform(-80, -5)
                    rc, rr = pc + random.gauss(0, 3), pr + random.gauss(0, 3)
                    cases.append((kind, beta, eps, pc, pr, rc, rr))
                cases.append((kind, beta, eps, -10.0, -12.0, -11.0, -13.0))  # zero margin
                cases.append((kind, beta, eps, -5.0, -400.0, -20.0, -20.0))  # large margin
    text = "".join(c[0] + " " + " ".join(repr(x) for x in c[1:]) + "\n" for c in cases)
    out = subprocess.run([sys.argv[1]], input=text, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(cases), (len(out), len(cases))
    worst = 0.0
    for c, line in zip(cases, out):
        got = json.loads(line)
        kind, beta, eps, pc, pr, rc, rr = c
        tpc = torch.tensor(pc, dtype=torch.float64, requires_grad=True)
        tpr = torch.tensor(pr, dtype=torch.float64, requires_grad=True)
        loss = trl_loss(kind, beta, eps, tpc, tpr, torch.tensor(rc, dtype=torch.float64), torch.tensor(rr, dtype=torch.float64))
        loss.backward()
        want = {"loss": loss.item(), "d_chosen": tpc.grad.item(), "d_rejected": tpr.grad.item(),
                "reward_chosen": beta * (pc - rc), "reward_rejected": beta * (pr - rr)}
        for k, v in want.items():
            err = abs(got[k] - v)
            if err > 1e-5 * abs(v) + 1e-9:
                print(f"FAIL {kind} beta {beta} eps {eps} ({pc}, {pr}, {rc}, {rr}): {k} {got[k]} vs TRL {v}")
                sys.exit(1)
            worst = max(worst, err / max(abs(v), 1e-9))
    print(f"ok: {len(cases)} cases, largest relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
