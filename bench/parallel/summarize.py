#!/usr/bin/env python3
"""Collects the runs of bench/parallel/run.sh into results.json and results.md (standard library only).

Per run: step times after the first 2 steps (pretrain: time_s.step of each "step" record of rank 0's
RUNDIR/metrics.jsonl; PyTorch: rank 0's per-step perf_counter spans from torch_train.py), their median (the
headline) and mean; tokens/s = tokens per step / median step seconds. Communication (pretrain only): over the
same steps, sum of time_s.communication (and .tp, .pp, .dp) / sum of time_s.step for rank 0, and the same for
every rank from comm_s_by_rank (each rank's seconds in its TP, PP and DP groups; divided by rank 0's step time,
which every rank shares: the step ends in collectives over all ranks). Peak RSS: GNU time's maximum resident set
size of each rank's process (ranks.sh pin) and their sum. For each kind of run the repeat with the least median
step time is the headline; every repeat is in results.json.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import lscpu_field, machine as machine_base, read_time_v, sh  # noqa: E402

WARMUP_EXCLUDED = 2
GROUPS = ("tp", "pp", "dp")
NAMES = {
    "ours_1r1t": "pretrain, 1 rank x 1 thread",
    "ours_dp2": "pretrain, 2 ranks DP (`--dp 2`) x 1 thread",
    "ours_1r2t": "pretrain, 1 rank x 2 threads",
    "ours_tp2": "pretrain, 2 ranks TP (`--tp 2`)",
    "ours_pp2": "pretrain, 2 ranks PP (`--pp 2`)",
    "ours_dp2z1": "pretrain, 2 ranks DP + ZeRO-1 (`--dp 2 --zero 1`)",
    "ours_pp2b": "pretrain, 2 ranks PP, stages of 3 + 1 layers (`--pp 2 --pp-layers 3,1`; for information)",
    "torch_1r": "PyTorch, 1 process x 1 thread (2 accumulation steps)",
    "torch_ddp2": "PyTorch DDP (gloo), 2 processes x 1 thread",
}


def machine(cores, load_start):
    m, lscpu = machine_base(load_start)
    fl = set((lscpu_field(lscpu, "Flags") or "").split())
    m.update({"simd": [x for x in ("avx2", "fma", "avx512f", "avx512_bf16") if x in fl],
              "hypervisor": lscpu_field(lscpu, "Hypervisor vendor"), "pinned_to_cores": cores,
              "nproc": sh(["env", "-u", "OMP_NUM_THREADS", "nproc"])})
    return m


def dpkg_version(pkg):
    return sh(["dpkg-query", "-W", "-f=${Version}", pkg]) or None


def step_stats(secs, tokens_per_step, flops_per_step):
    timed = secs[WARMUP_EXCLUDED:] if len(secs) > WARMUP_EXCLUDED else secs
    med, mean = statistics.median(timed), statistics.mean(timed)
    return {"steps_timed": len(timed), "step_s_median": med, "step_s_mean": mean, "step_s_min": min(timed),
            "step_s_max": max(timed), "step_s_stdev": statistics.stdev(timed) if len(timed) > 1 else 0.0,
            "tokens_per_s": tokens_per_step / med, "tokens_per_s_mean": tokens_per_step / mean,
            "gflops": flops_per_step / med / 1e9, "step_s_all": secs}


def rank_times(r):
    """GNU time of each rank: ranks.sh pin's NAME.rankR.time, or the whole run's for one process."""
    if r["ranks"] == 1:
        return [r["time"]]
    base = r["timef"][: -len(".time")]
    return [read_time_v(f"{base}.rank{k}.time") for k in range(r["ranks"])]


def rel_diff(a, b):
    """Largest relative difference between two loss sequences (None if their lengths differ)."""
    if not a or len(a) != len(b):
        return None
    return max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(a, b))


def main():
    ap = argparse.ArgumentParser()
    for k in ("runs", "config", "tokens", "corpus", "bin", "py", "command", "json", "md"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--plan", action="append", default=[], help="KIND=plan.json (pretrain --dry-run), repeatable")
    ap.add_argument("--sgemm", action="append", default=[], help="before|after:CORE=sgemm_peak.json, repeatable")
    ap.add_argument("--bin-sha256", default="")
    ap.add_argument("--cores", default="0,1")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--load-start", default="")
    ap.add_argument("--blas-libs", default="")
    ap.add_argument("--mpirun", default="tests/mpirun.sh")
    ap.add_argument("--pack-command", default="")
    a = ap.parse_args()

    runs = {}
    with open(a.runs) as f:
        for line in f:
            name, kind, rep, nranks, result, timef, wall, cmd = line.rstrip("\n").split("\t")
            runs.setdefault(kind, []).append({"name": name, "repeat": int(rep), "ranks": int(nranks),
                                              "result": result, "command": cmd, "wall_s": float(wall),
                                              "timef": timef, "time": read_time_v(timef),
                                              "log": os.path.join(os.path.dirname(timef), name + ".log")})
    plans = {k: json.load(open(p)) for k, p in (x.split("=", 1) for x in a.plan)}
    sgemm = {}
    for x in a.sgemm:
        key, path = x.split("=", 1)
        when, core = key.split(":")
        sgemm.setdefault(when, {})[core] = json.load(open(path))
    cfg = json.load(open(a.config))
    plan1 = plans["ours_1r1t"]
    T, B, micro = plan1["seq_len"], plan1["global_batch"], plan1["micro_batch"]
    tokens_per_step = B * T
    flops_per_step = float(plan1["train_flops_per_step"])
    cores = a.cores.split(",")
    # the 1-thread sgemm peak of each core, both cores busy at once (the better of before and after)
    core_peak = {c: max(sgemm[w][c]["peak_gflops"] for w in sgemm if c in sgemm[w]) for c in cores}

    def per_rank(r):
        rt = rank_times(r)
        return {"peak_rss_mb_by_rank": [x.get("peak_rss_mb") for x in rt],
                "peak_rss_mb_sum": sum(x.get("peak_rss_mb", 0) for x in rt),
                "peak_rss_mb_max": max(x.get("peak_rss_mb", 0) for x in rt),
                "cpu_percent_by_rank": [x.get("cpu_percent") for x in rt],
                "involuntary_ctx_switches_by_rank": [x.get("involuntary_ctx_switches") for x in rt],
                "job_peak_rss_mb": r["time"].get("peak_rss_mb"), "job_cpu_percent": r["time"].get("cpu_percent"),
                "process_wall_s": r["wall_s"], "command": r["command"], "repeat": r["repeat"], "ranks": r["ranks"]}

    def ours_run(r):
        recs = [json.loads(x) for x in open(r["result"]) if x.strip()]
        steps = [x for x in recs if x.get("event") == "step"]
        st = step_stats([x["time_s"]["step"] for x in steps], tokens_per_step, flops_per_step)
        timed = steps[WARMUP_EXCLUDED:]
        step_sum = sum(x["time_s"]["step"] for x in timed)
        comm = {"rank0": {"communication": sum(x["time_s"]["communication"] for x in timed) / step_sum,
                          **{g: sum(x["time_s"].get(g, 0.0) for x in timed) / step_sum for g in GROUPS}}}
        by_rank = []
        if r["ranks"] > 1:
            for k in range(r["ranks"]):
                d = {g: sum(x["comm_s_by_rank"][k][g] for x in timed) / step_sum for g in GROUPS}
                d["communication"] = sum(d[g] for g in GROUPS)
                by_rank.append(d)
            worst = max(range(len(by_rank)), key=lambda k: by_rank[k]["communication"])
            comm["by_rank"] = by_rank
            comm["max_over_ranks"] = {"rank": worst, **by_rank[worst]}
        comm["seconds_per_step_rank0"] = sum(x["time_s"]["communication"] for x in timed) / len(timed)
        logged_peak = None
        try:
            m = re.search(r"sgemm peak (\d+) GFLOP/s", open(r["log"]).read())
            logged_peak = int(m.group(1)) if m else None
        except OSError:
            pass
        return {**st, **per_rank(r), "final_loss": steps[-1]["loss"], "losses": [x["loss"] for x in steps],
                "communication_fraction": comm,
                "data_fraction": sum(x["time_s"]["data"] for x in timed) / step_sum,
                "compute_fraction_rank0": sum(x["time_s"]["compute"] for x in timed) / step_sum,
                "pretrain_logged_sgemm_peak": logged_peak}

    def torch_run(r):
        res = json.load(open(r["result"]))
        st = step_stats([x["seconds"] for x in res["steps_detail"]], tokens_per_step, flops_per_step)
        if res["tokens_per_step"] != tokens_per_step:
            print(f"summarize: {r['name']}: torch's {res['tokens_per_step']} tokens per step, ours {tokens_per_step}",
                  file=sys.stderr)
        timed = res["steps_detail"][WARMUP_EXCLUDED:]
        out = {**st, **per_rank(r), "final_loss": res["final_loss"], "losses": [x["loss"] for x in res["steps_detail"]],
               "data_fraction": sum(x["data_seconds"] for x in timed) / sum(x["seconds"] for x in timed),
               "parameters": res["parameters"], "in_process_seconds": res["seconds"],
               "versions": {k: res.get(k) for k in ("python", "torch", "numpy", "torch_threads",
                                                    "torch_interop_threads", "torch_blas", "cpu_capability")}}
        base, ext = os.path.splitext(r["result"])
        others = [f"{base}.rank{k}{ext}" for k in range(1, r["ranks"])]
        out["other_ranks_step_s_median"] = [statistics.median(
            [x["seconds"] for x in json.load(open(p))["steps_detail"]][WARMUP_EXCLUDED:]) for p in others
            if os.path.exists(p)]
        return out

    res = {}
    for kind, rs in runs.items():
        res[kind] = [(ours_run if kind.startswith("ours") else torch_run)(r) for r in rs]
    need = ("ours_1r1t", "ours_dp2", "torch_1r", "torch_ddp2")
    missing = [k for k in need if not res.get(k)]
    if missing:
        raise SystemExit("summarize: no runs of " + ", ".join(missing) + " in " + a.runs)
    best = {k: min(v, key=lambda x: x["step_s_median"]) for k, v in res.items()}
    for k, v in res.items():
        ncores = 1 if k in ("ours_1r1t", "torch_1r") else 2
        peak = core_peak[cores[0]] if ncores == 1 else sum(core_peak.values())
        for x in v:
            x["cores"] = ncores
            x["fraction_of_sgemm_peak"] = x["gflops"] / peak
    tps = {k: b["tokens_per_s"] for k, b in best.items()}

    def per_repeat(num, den):
        d = {x["repeat"]: x["tokens_per_s"] for x in res.get(den, [])}
        return [x["tokens_per_s"] / d[x["repeat"]] for x in res.get(num, []) if x["repeat"] in d]

    scaling = {
        "ours": {"tokens_per_s_1": tps["ours_1r1t"], "tokens_per_s_2": tps["ours_dp2"],
                 "scaling": tps["ours_dp2"] / tps["ours_1r1t"], "efficiency": tps["ours_dp2"] / tps["ours_1r1t"] / 2,
                 "scaling_by_repeat": per_repeat("ours_dp2", "ours_1r1t")},
        "torch": {"tokens_per_s_1": tps["torch_1r"], "tokens_per_s_2": tps["torch_ddp2"],
                  "scaling": tps["torch_ddp2"] / tps["torch_1r"], "efficiency": tps["torch_ddp2"] / tps["torch_1r"] / 2,
                  "scaling_by_repeat": per_repeat("torch_ddp2", "torch_1r")},
        "ours_over_torch": {"1_rank": tps["ours_1r1t"] / tps["torch_1r"], "2_ranks": tps["ours_dp2"] / tps["torch_ddp2"]},
        "definition": "best repeat of each: tokens per step / median step seconds over steps "
                      f"{WARMUP_EXCLUDED + 1}..{a.steps}; scaling = tokens/s on 2 ranks / tokens/s on 1, "
                      "efficiency = scaling / 2",
    }
    if "ours_1r2t" in tps:
        scaling["threads_vs_ranks"] = {"tokens_per_s_1r2t": tps["ours_1r2t"],
                                       "scaling_1r2t": tps["ours_1r2t"] / tps["ours_1r1t"],
                                       "dp2_over_1r2t": tps["ours_dp2"] / tps["ours_1r2t"]}

    # losses: every layout of ours against the single process (the same batches, so the same losses within
    # float summation order), torch DDP against torch's single process
    ref = next(x for x in res["ours_1r1t"] if x["repeat"] == 1) if any(
        x["repeat"] == 1 for x in res["ours_1r1t"]) else res["ours_1r1t"][0]
    tref = res["torch_1r"][0]
    loss_check = {k: rel_diff(v[0]["losses"], (ref if k.startswith("ours") else tref)["losses"])
                  for k, v in res.items() if k not in ("ours_1r1t", "torch_1r")}

    layouts = {}
    for k in ("ours_dp2", "ours_dp2z1", "ours_tp2", "ours_pp2", "ours_pp2b"):
        if k not in best:
            continue
        b, pl = best[k], plans.get(k, {})
        traffic = {g: (pl.get("communication", {}).get(n) or {}).get("bytes_per_step")
                   for g, n in (("tp", "tp_allreduce"), ("pp", "pp_p2p"), ("dp", "dp_allreduce"))}
        tb = sum(v for v in traffic.values() if v)
        layouts[k] = {"tokens_per_s": b["tokens_per_s"], "over_1_rank": b["tokens_per_s"] / tps["ours_1r1t"],
                      "step_s_median": b["step_s_median"], "communication_fraction": b["communication_fraction"],
                      "data_fraction": b["data_fraction"], "compute_fraction_rank0": b["compute_fraction_rank0"],
                      "planner_traffic_bytes_per_rank_per_step": traffic,
                      "planner_step_estimate_s": (pl.get("time_s") or {}),
                      "bytes_over_comm_seconds_gb_s": (tb / b["communication_fraction"]["seconds_per_step_rank0"] / 1e9
                                                       if tb and b["communication_fraction"]["seconds_per_step_rank0"]
                                                       else None),
                      "comm_fraction_by_repeat": [x["communication_fraction"]["rank0"]["communication"]
                                                  for x in res[k]]}

    ver = sh([a.bin, "--version"]).splitlines()
    corpus_stats = json.load(open(a.corpus + ".stats.json")) if os.path.exists(a.corpus + ".stats.json") else {}
    rp = os.path.join(a.tokens, "report.json")
    pack_report = json.load(open(rp)) if os.path.exists(rp) else {}
    sg0 = next(iter(next(iter(sgemm.values())).values())) if sgemm else {}
    bt = best["torch_1r"]
    out = {
        "label": a.label,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": a.command,
        "machine": machine(a.cores, a.load_start),
        "software": {
            "pretrain": {"version": ver[0] if ver else None, "git": ver[1] if len(ver) > 1 else None,
                         "binary": a.bin, "binary_sha256_16": a.bin_sha256,
                         "blas": "OpenBLAS, OpenMP build (Makefile BLAS_LIBS: " + a.blas_libs + ")",
                         "openblas_config": sg0.get("openblas_config"),
                         "libopenblas0_openmp": dpkg_version("libopenblas0-openmp")},
            "mpi": {"launcher": a.mpirun, "mpirun_version": (sh(["mpirun", "--version"]).splitlines() or [None])[0],
                    "openmpi_bin": dpkg_version("openmpi-bin")},
            "torch": {**bt["versions"], "python3_torch_deb": dpkg_version("python3-torch"), "interpreter": a.py}},
        "config": cfg, "parameters": plan1["parameters"], "seq_len": T, "micro_batch": micro, "global_batch": B,
        "steps": a.steps, "steps_excluded_from_rates": WARMUP_EXCLUDED, "tokens_per_step": tokens_per_step,
        "train_flops_per_step": flops_per_step,
        "data": {"tokens_dir": a.tokens, "pack_command": a.pack_command, "corpus": a.corpus,
                 "corpus_stats": {k: corpus_stats.get(k) for k in ("docs", "text_bytes", "source", "seed")},
                 "pack_report": {k: pack_report.get(k) for k in ("documents", "tokens", "samples", "seq_len",
                                                                 "vocab_size")}},
        "sgemm_1_thread_per_core": {w: {c: {"peak_gflops": v["peak_gflops"], "square": v["square"]}
                                        for c, v in d.items()} for w, d in sgemm.items()},
        "sgemm_1_thread_peak_by_core": core_peak,
        "scaling": scaling,
        "layouts_2_ranks": layouts,
        "not_timed": ["tp 2 x pp 2 (4 ranks)", "tp 2 x dp 2 (4 ranks)", "pp 2 x dp 2 (4 ranks)",
                      "tp 2 x pp 2 x dp 2 (8 ranks)"],
        "loss_max_relative_difference": {"against": {"ours": "ours_1r1t repeat 1", "torch": "torch_1r repeat 1"},
                                         **loss_check},
        "runs": {k: {"name": NAMES.get(k, k), "best": best[k], "repeats": v} for k, v in res.items()},
        "planner": plans,
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(out))
    return 0


def fmt(x, nd=2):
    return "-" if x is None else f"{x:,.{nd}f}"


def pct(x, nd=1):
    return "-" if x is None else f"{100 * x:.{nd}f}%"


def markdown(o):
    m, sw, cfg, sc, R = o["machine"], o["software"], o["config"], o["scaling"], o["runs"]
    L = [f"# pretrain on 1 and 2 ranks: scaling and communication{' (' + o['label'] + ')' if o['label'] else ''}\n"]
    L.append(f"- Command: `{o['command']}` (from the repository root)")
    L.append(f"- Machine: `nproc` {m['nproc']}, {m['cpu_model']} ({', '.join(m['simd'])}; "
             f"{m['hypervisor'] or 'bare metal'} guest, {m['threads_per_core']} thread(s) per core), {m['mem_total']}; "
             f"{m['os']}, kernel {m['kernel']}; {o['date_utc']}; load average at start {m['loadavg_at_start']}, "
             f"at the end {m['loadavg_at_summary']}")
    p, t, mpi = sw["pretrain"], sw["torch"], sw["mpi"]
    L.append(f"- Ours: {p['version']} ({p['git']}), {p['openblas_config']} (libopenblas0-openmp "
             f"{p['libopenblas0_openmp']}); MPI: {mpi['mpirun_version']} (openmpi-bin {mpi['openmpi_bin']}) through "
             f"`{mpi['launcher']}` (`--oversubscribe`, root allowed, `btl_vader_single_copy_mechanism=none`) with "
             "`--bind-to none`, each rank pinned by `bench/parallel/ranks.sh pin` (taskset to its own core)")
    L.append(f"- Peer: PyTorch {t['torch']} (Debian python3-torch {t['python3_torch_deb']}), Python {t['python']}: "
             "bench/pretrain/torch_train.py, `--accum 2` on 1 process, `--ddp` (DistributedDataParallel, gloo "
             "backend, `broadcast_buffers=False`, default 25 MB buckets) on 2 processes started by hand "
             "(`bench/parallel/ranks.sh spawn`: RANK, WORLD_SIZE, MASTER_ADDR/PORT), each pinned to its own core; "
             "`OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE`, `torch.set_num_threads(1)`")
    L.append(f"- Model: Llama, hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, "
             f"{cfg['num_attention_heads']} heads / {cfg['num_key_value_heads']} kv heads, ffn "
             f"{cfg['intermediate_size']}, vocab {cfg['vocab_size']}, untied lm_head, float32: {o['parameters']:,} "
             f"parameters; seq {o['seq_len']}, **global batch {o['global_batch']} = micro-batch {o['micro_batch']} x 2** "
             f"(2 accumulation steps on one rank, 1 micro-batch per rank on two; {o['tokens_per_step']} tokens per "
             f"step); AdamW, clip 1.0, lr 1e-3 with 10 warmup steps then cosine to 1e-4, `--doc-masking off`; "
             f"{o['steps']} steps per run, steps {o['steps_excluded_from_rates'] + 1}..{o['steps']} timed; "
             f"{o['train_flops_per_step'] / 1e9:.1f} GFLOP per step")
    d = o["data"]
    L.append(f"- Data: bench/pretrain's cached shards `{d['tokens_dir']}` ({d['pack_report'].get('samples')} samples "
             f"of {o['seq_len']}+1 tokens from {fmt((d['corpus_stats'].get('text_bytes') or 0) / 1e6, 1)} MB of "
             "/usr/share/doc text); every run reads the same samples in the same order")
    cp = o["sgemm_1_thread_peak_by_core"]
    sgb = o["sgemm_1_thread_per_core"]
    L.append("- OpenBLAS sgemm, 1 thread on each core at once (both cores busy, as in a 2-rank run): "
             + "; ".join(f"core {c}: {fmt(sgb.get('before', {}).get(c, {}).get('peak_gflops'), 1)} before the runs, "
                         f"{fmt(sgb.get('after', {}).get(c, {}).get('peak_gflops'), 1)} after" for c in cp)
             + " GFLOP/s (bench/pretrain/sgemm_peak.cpp, n = 1024, 1536)\n")

    L.append(f"## Scaling, 1 -> 2 ranks (best of {len(R['ours_1r1t']['repeats'])} interleaved repeats each)\n")
    L.append("| run | cores | tokens/s | step s (median) | step s (mean) | GFLOP/s | of sgemm peak | peak RSS MB "
             f"(per rank) | CPU per rank | loss after {o['steps']} steps |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in ("ours_1r1t", "ours_dp2", "ours_1r2t", "torch_1r", "torch_ddp2"):
        if k not in R:
            continue
        b = R[k]["best"]
        L.append(f"| {R[k]['name']} | {b['cores']} | **{fmt(b['tokens_per_s'], 0)}** | {fmt(b['step_s_median'], 3)} | "
                 f"{fmt(b['step_s_mean'], 3)} | {fmt(b['gflops'], 1)} | {pct(b['fraction_of_sgemm_peak'])} | "
                 f"{' + '.join(fmt(x, 0) for x in b['peak_rss_mb_by_rank'])} | {', '.join(b['cpu_percent_by_rank'])} | "
                 f"{fmt(b['final_loss'], 3)} |")
    L.append("")
    so, st = sc["ours"], sc["torch"]
    L.append(f"- **Ours, 1 -> 2 ranks (DP): {fmt(so['scaling'])}x, efficiency {pct(so['efficiency'])}** "
             f"({fmt(so['tokens_per_s_1'], 0)} -> {fmt(so['tokens_per_s_2'], 0)} tokens/s; repeat by repeat: "
             + ", ".join(f"{fmt(x)}x" for x in so["scaling_by_repeat"]) + ")")
    L.append(f"- **PyTorch DDP, 1 -> 2 ranks: {fmt(st['scaling'])}x, efficiency {pct(st['efficiency'])}** "
             f"({fmt(st['tokens_per_s_1'], 0)} -> {fmt(st['tokens_per_s_2'], 0)} tokens/s; repeat by repeat: "
             + ", ".join(f"{fmt(x)}x" for x in st["scaling_by_repeat"]) + ")")
    oo = sc["ours_over_torch"]
    L.append(f"- **Ours / PyTorch: {fmt(oo['1_rank'])}x on 1 rank, {fmt(oo['2_ranks'])}x on 2 ranks**")
    if "threads_vs_ranks" in sc:
        tv = sc["threads_vs_ranks"]
        L.append(f"- Threads against ranks (ours): 1 rank x 2 threads {fmt(tv['tokens_per_s_1r2t'], 0)} tokens/s = "
                 f"{fmt(tv['scaling_1r2t'])}x 1 thread; 2 ranks x 1 thread are {fmt(tv['dp2_over_1r2t'])}x that")
    L.append("")

    L.append("## Where the step goes on 2 ranks (ours; best repeat of each layout)\n")
    L.append("Fractions of the step time over the timed steps, from rank 0's metrics.jsonl: `time_s.communication` "
             "(split `tp` / `pp` / `dp`: seconds inside the collectives and point-to-point calls of each group, "
             "waiting for the peer included) / `time_s.step`; the max over ranks from `comm_s_by_rank`.\n")
    L.append("| layout | tokens/s | vs 1 rank | comm, rank 0 | tp / pp / dp, rank 0 | comm, max over ranks (rank) | "
             "data | compute, rank 0 | planner's traffic per rank per step | traffic / comm time |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, v in o["layouts_2_ranks"].items():
        c = v["communication_fraction"]
        r0, mx = c["rank0"], c.get("max_over_ranks", {})
        tr = v["planner_traffic_bytes_per_rank_per_step"]
        trs = ", ".join(f"{g} {fmt(tr[g] / 1e6, 1)} MB" for g in GROUPS if tr.get(g)) or "-"
        L.append(f"| {R[k]['name']} | **{fmt(v['tokens_per_s'], 0)}** | {fmt(v['over_1_rank'])}x | "
                 f"**{pct(r0['communication'])}** | {' / '.join(pct(r0[g]) for g in GROUPS)} | "
                 f"{pct(mx.get('communication'))} ({mx.get('rank')}) | {pct(v['data_fraction'], 2)} | "
                 f"{pct(v['compute_fraction_rank0'])} | {trs} | "
                 f"{fmt(v['bytes_over_comm_seconds_gb_s'], 3) + ' GB/s' if v['bytes_over_comm_seconds_gb_s'] else '-'} |")
    L.append("")
    L.append("Every repeat's communication share (rank 0): "
             + "; ".join(f"{k.replace('ours_', '')} " + ", ".join(pct(x) for x in v["comm_fraction_by_repeat"])
                         for k, v in o["layouts_2_ranks"].items()) + ". Per rank (tp / pp / dp): "
             + "; ".join(f"{k.replace('ours_', '')} " + ", ".join(
                 f"rank {i} " + " / ".join(pct(x[g]) for g in GROUPS)
                 for i, x in enumerate(v["communication_fraction"].get("by_rank", [])))
                 for k, v in o["layouts_2_ranks"].items()) + ".\n")
    L.append("Not timed: the 4- and 8-rank layouts (" + ", ".join(o["not_timed"]) + ") would put 2 or 4 ranks on "
             "each of the 2 cores; their times would measure the oversubscription, not the layout. (They are run for "
             "correctness by tests/bats/parallel.bats.)\n")

    lc = o["loss_max_relative_difference"]
    L.append("Same job check: largest relative difference of the per-step losses against the single process (ours: "
             "1 rank x 1 thread; torch: 1 process): "
             + ", ".join(f"{k} {'-' if v is None else f'{v:.1e}'}" for k, v in lc.items() if k != "against") + ".\n")
    L.append("Quiet-machine check: CPU use of each rank (100% = one core) in every repeat: "
             + "; ".join(f"{k} " + ", ".join("/".join(x["cpu_percent_by_rank"]) for x in R[k]["repeats"]) for k in R)
             + ".\n")
    L.append("Commands (each under `/usr/bin/time -v`):\n")
    for k in R:
        L.append(f"- {k}: `{R[k]['best']['command']}`")
    L.append("\nWhat each number includes: bench/parallel/README.md.\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
