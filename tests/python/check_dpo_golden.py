#!/usr/bin/env python3
"""Checks dpo-align's objective (what tests/helpers/dpo-golden wrote to OUTDIR) against PyTorch.

    check_dpo_golden.py OUTDIR [--tol X] [--corrupt-grad CASE:NAME:FACTOR]

The model is check_llama_golden.py's PyTorch Llama (and its peft LoRA layer), imported, run in
float64 with autograd from the helper's float32 weights (norms and softmax in float64 too; only
RoPE's angles are float32, as HF and our model define them). The pairs are laid out as TRL's
DPOTrainer does, independently of PreferenceData: each row is prompt + response padded with the
pad token, labels the response tokens (the prompt and the padding -100), and the log-probability
of a side is the sum of log_softmax(logits[:, :-1]) at labels[:, 1:] (per-token mean for ipo:
TRL's concatenated_forward divides by the loss mask's sum). With
    h = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
each pair's loss is TRL's dpo_loss:
    sigmoid  -(1 - e) logsigmoid(beta h) - e logsigmoid(-beta h)   (e: label smoothing, cDPO)
    hinge    relu(1 - beta h)
    ipo      (h - 1 / (2 beta))^2
the step's objective their mean plus TRL's RPO term, rpo_alpha (our sft_weight) times the
cross-entropy over every chosen response token of the step, and the rewards beta (policy -
reference). The reference is run without gradients: the base alone (lora-base), the base with
the frozen reference adapter (lora-ref), or the frozen copy of the weights (full); the gradient
is taken with respect to the policy's trainable tensors (the adapters, or every weight).

For every case under OUTDIR/cases it requires, as relative errors within --tol (default 1e-5):
the objective; every trainable tensor's gradient (||ours - torch|| / ||torch||, and torch's not
all zeros); each row's log-probability under the policy and the reference; the rewards, relative
to beta times the log-probabilities they are differences of (a reward is a difference of two
close sums of about 20 float32 terms, so its own relative error is not a property of the
objective); the sums DpoStats reports (dpo_loss, sft_nll, logps, rewards, margin) likewise, and
the accuracy count, pairs and chosen tokens exactly. It also requires the rows PreferenceData
filled (batches.json) to be exactly TRL's rows (ids, and targets = the shifted labels, -1 for
-100), and for hinge cases every pair at least 1e-3 from the hinge's kink (1 - beta h = 0).

--corrupt-grad CASE:NAME:FACTOR scales our gradient of NAME (lora/model.layers.0.self_attn.q_proj/A,
params/model.norm.weight, ...) in CASE by FACTOR before comparing, to show what the check catches.

Prints one line per failure, one per case and a summary; exits 0 when all pass, 1 if not.
"""

import argparse
import json
import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import check_llama_golden as golden  # noqa: E402  the reference Llama and peft's LoRA layer

TOL = 1e-5


def load_dir(d):
    """Every NAME.npy under d as {NAME: float64 tensor}."""
    return {str(p.relative_to(d))[: -len(".npy")]: golden.load_npy(p).double() for p in sorted(d.rglob("*.npy"))}


def trl_rows(pairs):
    """TRL's concatenated batch of a step: rows 2i (chosen) and 2i + 1 (rejected), each prompt +
    response padded to T + 1 with the pad token; labels the response, -100 elsewhere."""
    T, pad = pairs["T"], pairs["pad_id"]
    ids, labels = [], []
    for prompt, chosen, rejected in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"]):
        for resp in (chosen, rejected):
            row = prompt + resp
            if len(row) > T + 1:
                raise SystemExit(f"pairs.json: a row of {len(row)} tokens does not fit T + 1 = {T + 1} (no truncation here)")
            lab = [-100] * len(prompt) + resp
            ids.append(row + [pad] * (T + 1 - len(row)))
            labels.append(lab + [-100] * (T + 1 - len(row)))
    return torch.tensor(ids), torch.tensor(labels)


def logps(logits, labels):
    """Per row: the sum of the response tokens' log-probabilities, and their count (TRL's
    get_batch_logps after the shift)."""
    lg, lab = logits[:, :-1], labels[:, 1:]
    mask = lab != -100
    tok = torch.gather(lg.log_softmax(-1), 2, lab.clamp(min=0).unsqueeze(2)).squeeze(2)
    return (tok * mask).sum(-1), mask.sum(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=pathlib.Path)
    ap.add_argument("--tol", type=float, default=TOL)
    ap.add_argument("--corrupt-grad", metavar="CASE:NAME:FACTOR")
    args = ap.parse_args()
    out, tol = args.outdir, args.tol
    torch.set_num_threads(1)

    cfg = json.loads((out / "config.json").read_text())
    pairs = json.loads((out / "pairs.json").read_text())
    pol = json.loads((out / "policy.json").read_text())
    kind = pol["policy"]
    failures = []

    T, micro = pairs["T"], pairs["micro"]
    ids, labels = trl_rows(pairs)
    R = ids.shape[0]
    pos = torch.arange(T + 1).expand(R, T + 1)
    doc_start = torch.zeros(R, T + 1, dtype=torch.int64)

    # PreferenceData's rows are TRL's: the same ids on the T input positions, targets the labels
    # shifted by one (-1 for -100).
    batches = json.loads((out / "batches.json").read_text())
    ours_ids = torch.cat([torch.tensor(b["ids"]).view(-1, T) for b in batches])
    ours_targets = torch.cat([torch.tensor(b["targets"]).view(-1, T) for b in batches])
    trl_targets = torch.where(labels[:, 1:] == -100, torch.tensor(-1), labels[:, 1:])
    if ours_ids.shape != (R, T) or not torch.equal(ours_ids, ids[:, :T]):
        failures.append("batch: PreferenceData's ids are not TRL's rows")
    if ours_targets.shape != (R, T) or not torch.equal(ours_targets, trl_targets):
        bad = sorted({int(r) for r in torch.nonzero(ours_targets != trl_targets)[:, 0]}) if ours_targets.shape == (R, T) else []
        failures.append(f"batch: PreferenceData's targets are not TRL's shifted labels (rows {bad})")
    counts = (labels[:, 1:] != -100).sum(-1)
    ours_counts = torch.tensor([c for b in batches for c in b["row_targets"]])
    if not torch.equal(ours_counts, counts):
        failures.append(f"batch: PairRow.targets {ours_counts.tolist()}, TRL's loss mask counts {counts.tolist()}")

    for f in failures:
        print(f"FAIL {f}")

    base = load_dir(out / "params")
    if kind in ("lora-base", "lora-ref"):
        adapters0 = load_dir(out / "lora")
        ref_lora = None
        if kind == "lora-ref":
            ref_lora = golden.PeftLora(pol, load_dir(out / "ref_lora"))
            if ref_lora.factors.keys() != adapters0.keys():
                raise SystemExit("ref_lora/ and lora/ hold different tensors")
        scale = golden.PeftLora(pol, {}).scaling
        if abs(pol["scale"] - scale) > 1e-12 * scale:
            failures.append(f"lora: our scale {pol['scale']!r}, peft's {scale!r}")
            print(f"FAIL {failures[-1]}")
        if pol["dropout"] != 0:
            raise SystemExit("policy.json: dropout must be 0 here (TRL's DPO disables it)")
    elif kind == "full":
        policy0 = load_dir(out / "policy_params")
        if policy0.keys() != base.keys():
            raise SystemExit("policy_params/ and params/ hold different tensors")
    else:
        raise SystemExit(f"policy.json: unknown policy {kind}")

    def forward(P, lora=None):
        return golden.forward(cfg, P, ids, pos, doc_start, lora)

    # The reference's log-probabilities: the same in every case.
    with torch.no_grad():
        ref_sum, _ = logps(forward(base, ref_lora if kind == "lora-ref" else None), labels)

    corrupt = None
    if args.corrupt_grad:
        c, name, factor = args.corrupt_grad.rsplit(":", 2)
        corrupt = (c, name, float(factor))

    case_dirs = sorted(p for p in (out / "cases").iterdir() if p.is_dir())
    if not case_dirs:
        raise SystemExit(f"{out}/cases: no cases")
    worst = {"loss": (0.0, ""), "grad": (0.0, ""), "logp": (0.0, ""), "reward": (0.0, ""), "stats": (0.0, "")}

    def note(what, err, where):
        if err > worst[what][0] or not worst[what][1]:
            worst[what] = (err, where)

    for cdir in case_dirs:
        case = cdir.name
        res = json.loads((cdir / "result.json").read_text())
        loss_type, beta, e, w = res["loss_type"], res["beta"], res["label_smoothing"], res["sft_weight"]
        case_fail = []

        def check(what, err, t=tol):
            if not err <= t:  # catches NaN too
                case_fail.append(f"{case}: {what}: relative error {err:.3e} > {t:g}")
            return err

        # The policy, with gradients on what trains.
        if kind == "full":
            P = {n: t.clone().requires_grad_() for n, t in policy0.items()}
            trainable = {"params/" + n: t for n, t in P.items()}
            logits = forward(P)
        else:
            lora = golden.PeftLora(pol, {n: t.clone().requires_grad_() for n, t in adapters0.items()})
            trainable = {"lora/" + n: t for n, t in lora.factors.items()}
            logits = forward(base, lora)
        pol_sum, n_tok = logps(logits, labels)
        mean = loss_type == "ipo"  # TRL's IPO: per-token means
        pol_lp = pol_sum / n_tok if mean else pol_sum
        ref_lp = ref_sum / n_tok if mean else ref_sum
        pc, pr, rc, rr = pol_lp[0::2], pol_lp[1::2], ref_lp[0::2], ref_lp[1::2]
        h = (pc - pr) - (rc - rr)
        if loss_type == "sigmoid":
            losses = -(1 - e) * F.logsigmoid(beta * h) - e * F.logsigmoid(-beta * h)
        elif loss_type == "hinge":
            losses = torch.relu(1 - beta * h)
            kink = (1 - beta * h).abs().min().item()
            if not kink > 1e-3:
                case_fail.append(f"{case}: a pair is {kink:.2e} from the hinge's kink: its gradient is ill-defined")
        elif loss_type == "ipo":
            losses = (h - 1 / (2 * beta)) ** 2
        else:
            raise SystemExit(f"{cdir}/result.json: unknown loss {loss_type}")
        loss = losses.mean()
        if w > 0:
            # TRL's rpo_alpha: the mean cross-entropy over the chosen rows' response tokens.
            lg, lab = logits[0::2, :-1], labels[0::2, 1:]
            loss = loss + w * F.cross_entropy(lg.reshape(-1, lg.shape[-1]), lab.reshape(-1), ignore_index=-100)
        loss.backward()
        rew_c, rew_r = (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()

        err_loss = check("loss", abs(res["loss"] - loss.item()) / abs(loss.item()))
        note("loss", err_loss, case)

        # Per row: the log-probabilities (summed), and the rewards against beta x their logps.
        ps = res["pairs"]
        if len(ps) != R // 2:
            case_fail.append(f"{case}: {len(ps)} pairs in result.json, {R // 2} expected")
            ps = []
        for i, p in enumerate(ps):
            for key, ours, ref in (("policy_chosen", p["policy_chosen"], pol_sum[2 * i]),
                                   ("policy_rejected", p["policy_rejected"], pol_sum[2 * i + 1]),
                                   ("reference_chosen", p["reference_chosen"], ref_sum[2 * i]),
                                   ("reference_rejected", p["reference_rejected"], ref_sum[2 * i + 1])):
                err = check(f"pair {i} {key} logp (ours {ours:.8g}, torch {ref.item():.8g})",
                            abs(ours - ref.item()) / abs(ref.item()))
                note("logp", err, f"{case} pair {i} {key}")
            for key, ours, ref, scale_ in (("reward_chosen", p["reward_chosen"], rew_c[i], beta * max(abs(pc[i].item()), abs(rc[i].item()))),
                                           ("reward_rejected", p["reward_rejected"], rew_r[i], beta * max(abs(pr[i].item()), abs(rr[i].item())))):
                err = check(f"pair {i} {key} (ours {ours:.8g}, torch {ref.item():.8g}; relative to beta logp {scale_:.4g})",
                            abs(ours - ref.item()) / scale_)
                note("reward", err, f"{case} pair {i} {key}")

        # DpoStats' sums over the step.
        st = res["stats"]
        chosen_tokens = int(n_tok[0::2].sum())
        sft_nll = -pol_sum[0::2].sum().item()
        exact = {"pairs": R // 2, "chosen_tokens": chosen_tokens, "correct": int((rew_c > rew_r).sum())}
        for key, want in exact.items():
            if st[key] != want:
                case_fail.append(f"{case}: stats {key} {st[key]}, expected {want}")
        sums = {"dpo_loss": (losses.sum().item(), losses.sum().item()),
                "sft_nll": (sft_nll, sft_nll),
                # TRL's logps/chosen|rejected: the log-probabilities the loss compares (per-token
                # means for ipo, sums otherwise).
                "logp_chosen": (pc.detach().sum().item(), pc.detach().abs().sum().item()),
                "logp_rejected": (pr.detach().sum().item(), pr.detach().abs().sum().item()),
                "reward_chosen": (rew_c.sum().item(), beta * (pc.abs() + rc.abs()).sum().item()),
                "reward_rejected": (rew_r.sum().item(), beta * (pr.abs() + rr.abs()).sum().item()),
                "margin": ((rew_c - rew_r).sum().item(), beta * (pc.abs() + rc.abs() + pr.abs() + rr.abs()).sum().item())}
        for key, (want, scale_) in sums.items():
            err = check(f"stats {key} (ours {st[key]:.8g}, torch {want:.8g})", abs(st[key] - want) / abs(scale_))
            note("stats", err, f"{case} {key}")

        # Every trainable tensor's gradient.
        gdir = cdir / "grads"
        files = {str(p.relative_to(gdir))[: -len(".npy")] for p in gdir.rglob("*.npy")}
        if files != trainable.keys():
            case_fail.append(f"{case}: grads/ holds {sorted(files ^ trainable.keys())[:4]}... against the trainable tensors")
        grad_worst = (0.0, "")
        for name, t in trainable.items():
            if name not in files:
                continue
            ours = golden.load_npy(gdir / f"{name}.npy")
            if corrupt and corrupt[0] == case and corrupt[1] == name:
                ours = ours * corrupt[2]
            if tuple(ours.shape) != tuple(t.shape):
                case_fail.append(f"{case}: grad {name}: shape {tuple(ours.shape)}, expected {tuple(t.shape)}")
                continue
            if not t.grad.abs().max().item() > 0:
                case_fail.append(f"{case}: grad {name}: torch's gradient is all zeros (the test would not see an error)")
            err = check(f"grad {name}", golden.rel_err(ours, t.grad))
            if err > grad_worst[0] or not grad_worst[1]:
                grad_worst = (err, name)
            note("grad", err, f"{case} {name}")
        if corrupt and corrupt[0] == case and corrupt[1] not in trainable:
            raise SystemExit(f"--corrupt-grad: {case} has no trainable tensor {corrupt[1]}")

        extra = ""
        if loss_type == "hinge":
            extra = f", {int((1 - beta * h > 0).sum())} of {R // 2} pairs inside the margin"
        for f in case_fail:
            print(f"FAIL {f}")
        failures += case_fail
        print(f"{'FAILED' if case_fail else 'ok'} {case}: {loss_type}, beta {beta:g}, label smoothing {e:g}, sft weight {w:g}"
              f"{extra}; loss {loss.item():.8g}; relative errors: loss {err_loss:.2e}, grads {grad_worst[0]:.2e} "
              f"({grad_worst[1]}, of {len(trainable)} tensors)")

    print(f"{'FAILED' if failures else 'ok'}: {kind}, {len(case_dirs)} cases, {R // 2} pairs in {R // (2 * micro)} micro-batches; "
          f"worst relative errors: loss {worst['loss'][0]:.2e} ({worst['loss'][1]}), grads {worst['grad'][0]:.2e} "
          f"({worst['grad'][1]}), logps {worst['logp'][0]:.2e}, rewards {worst['reward'][0]:.2e} (of beta logp), "
          f"stats {worst['stats'][0]:.2e} (tolerance {tol:g})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
