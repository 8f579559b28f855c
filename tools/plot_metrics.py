#!/usr/bin/python3
"""Turns a pretrain run's metrics.jsonl into a PNG: training and validation loss, learning
rate, and throughput (tokens/s with MFU) by step. A resumed run logs the steps after its
checkpoint again; the last record of each step is drawn.

    tools/plot_metrics.py RUNDIR/metrics.jsonl [-o RUNDIR/metrics.png]
    make plot RUN=RUNDIR
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics", help="metrics.jsonl written by pretrain")
    ap.add_argument("-o", "--output", help="PNG to write (default: beside the metrics, metrics.png)")
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_metrics.py: matplotlib is missing (Debian: apt-get install python3-matplotlib)")
    steps, evals = {}, {}
    try:
        with open(a.metrics) as f:
            for n, line in enumerate(f, 1):
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    sys.exit(f"plot_metrics.py: {a.metrics}:{n}: not a JSON line")
                if r.get("event") == "step":
                    steps[r["step"]] = r
                elif r.get("event") == "eval":
                    evals[r["step"]] = r
    except OSError as e:
        sys.exit(f"plot_metrics.py: {a.metrics}: {e.strerror}")
    if not steps:
        sys.exit(f"plot_metrics.py: {a.metrics}: no step records")
    out = a.output or os.path.join(os.path.dirname(os.path.abspath(a.metrics)), "metrics.png")
    xs = sorted(steps)
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    ax1.plot(xs, [steps[s]["loss"] for s in xs], label="train loss", lw=1)
    if evals:
        es = sorted(evals)
        ax1.plot(es, [evals[s]["eval_loss"] for s in es], "o-", label="validation loss")
    ax1.set_ylabel("loss (nats/token)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(xs, [steps[s]["lr"] for s in xs], color="tab:green")
    ax2.set_ylabel("learning rate")
    ax2.grid(alpha=0.3)
    ax3.plot(xs, [steps[s]["tokens_per_s"] for s in xs], color="tab:purple", lw=1)
    ax3.set_ylabel("tokens/s")
    ax3.set_xlabel("step")
    ax3.grid(alpha=0.3)
    mfu = ax3.twinx()
    mfu.plot(xs, [100 * steps[s]["mfu"] for s in xs], color="tab:orange", lw=0.8, alpha=0.7)
    mfu.set_ylabel("MFU % (orange)")
    fig.suptitle(os.path.dirname(os.path.abspath(a.metrics)))
    fig.tight_layout()
    tmp = out + ".partial.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
