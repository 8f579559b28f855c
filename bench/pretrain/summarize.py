#!/usr/bin/env python3
"""Collects the runs of bench/pretrain/run.sh into results.json and results.md (standard library only).

Per run: step times after the first 2 steps (pretrain: time_s.step of each "step" record of
RUNDIR/metrics.jsonl; PyTorch: torch_train.py's per-step perf_counter spans), their median (the
headline) and mean; tokens/s = tokens per step / median step seconds; GFLOP/s = training FLOPs per step
/ median step seconds, with the same FLOP count on both sides (pretrain --dry-run's train_flops_per_step:
(6 x matmul parameters + 12 L C T) per token, as nn::LlamaConfig::train_flops_per_token); fraction of
peak = GFLOP/s / the OpenBLAS sgemm peak measured on this machine in the same run (the better of the
measurements before and after the runs). Peak RSS: GNU time's maximum resident set size of the whole
process. For each side the repeat with the least median step time is the headline; every repeat is in
results.json. Ratios are ours / torch.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import sys

WARMUP_EXCLUDED = 2


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import lscpu_field, machine as machine_base, read_time_v, sh  # noqa: E402

def machine(cores, load_start):
    m, lscpu = machine_base(load_start)
    fl = set((lscpu_field(lscpu, "Flags") or "").split())
    m.update({"simd": [x for x in ("avx2", "fma", "avx512f", "avx512_bf16") if x in fl],
              "hypervisor": lscpu_field(lscpu, "Hypervisor vendor"), "pinned_to_cores": cores})
    return m


def read_perf(path):
    """The rows of `perf report --stdio -g none`: share, and the rest of the line (command, object, symbol)."""
    rows = []
    for line in open(path, errors="replace"):
        m = re.match(r"^\s*([0-9.]+)%\s+(.*\S)\s*$", line)
        if m:
            rows.append({"percent": float(m.group(1)), "what": re.sub(r"\s{2,}", "  ", m.group(2))})
    return rows


def dpkg_version(pkg):
    return sh(["dpkg-query", "-W", "-f=${Version}", pkg]) or None


def step_stats(secs, tokens_per_step, flops_per_step):
    timed = secs[WARMUP_EXCLUDED:] if len(secs) > WARMUP_EXCLUDED else secs
    med, mean = statistics.median(timed), statistics.mean(timed)
    return {"steps_timed": len(timed), "step_s_median": med, "step_s_mean": mean, "step_s_min": min(timed),
            "step_s_max": max(timed), "step_s_stdev": statistics.stdev(timed) if len(timed) > 1 else 0.0,
            "tokens_per_s": tokens_per_step / med, "tokens_per_s_mean": tokens_per_step / mean,
            "gflops": flops_per_step / med / 1e9, "gflops_mean": flops_per_step / mean / 1e9,
            "step_s_all": secs}


def main():
    ap = argparse.ArgumentParser()
    for k in ("runs", "plan", "config", "tokens", "corpus", "bin", "py", "command", "json", "md"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--bin-sha256", default="")
    ap.add_argument("--cores", default="0,1")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--load-start", default="")
    ap.add_argument("--blas-libs", default="")
    ap.add_argument("--pack-command", default="")
    ap.add_argument("--perf", action="append", default=[], help="NAME=perf report --stdio output (repeatable)")
    a = ap.parse_args()

    runs = {}
    with open(a.runs) as f:
        for line in f:
            name, kind, rep, result, timef, wall, cmd = line.rstrip("\n").split("\t")
            runs.setdefault(kind, []).append({"name": name, "repeat": int(rep), "result": result, "command": cmd,
                                              "wall_s": float(wall), "time": read_time_v(timef),
                                              "log": os.path.join(os.path.dirname(timef), name + ".log")})

    plan = json.load(open(a.plan))
    cfg = json.load(open(a.config))
    C, L, F_, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    T, B = plan["seq_len"], plan["global_batch"]
    D = C // H
    n_params = plan["parameters"]
    per_layer = 2 * C + C * H * D + 2 * KV * D * C + H * D * C + 3 * C * F_
    n_check = L * per_layer + C + 2 * V * C
    n_matmul = n_params - V * C  # all but the embedding lookup (norm weights included, as pretrain counts)
    flops_per_token = 6 * n_matmul + 12 * L * C * T
    tokens_per_step = B * T
    flops_per_step = float(plan["train_flops_per_step"])
    if abs(flops_per_step - flops_per_token * tokens_per_step) > 1e-6 * flops_per_step:
        print(f"summarize: pretrain's train_flops_per_step {flops_per_step} != {flops_per_token * tokens_per_step}",
              file=sys.stderr)

    # --- peaks ----------------------------------------------------------------------------------------
    sg = {}
    for r in runs.get("sgemm", []):
        sg["before" if r["repeat"] == 1 else "after"] = json.load(open(r["result"]))
    peak = max(v["peak_gflops"] for v in sg.values())
    torch_mm = json.load(open(runs["torch_mm"][0]["result"])) if runs.get("torch_mm") else None

    # --- ours ---------------------------------------------------------------------------------------------
    def ours_run(r):
        recs = [json.loads(x) for x in open(r["result"]) if x.strip()]
        steps = [x for x in recs if x.get("event") == "step"]
        secs = [x["time_s"]["step"] for x in steps]
        st = step_stats(secs, tokens_per_step, flops_per_step)
        timed = steps[WARMUP_EXCLUDED:]
        logged_peak = None
        try:
            m = re.search(r"sgemm peak (\d+) GFLOP/s", open(r["log"]).read())
            logged_peak = int(m.group(1)) if m else None
        except OSError:
            pass
        return {**st, "repeat": r["repeat"], "final_loss": steps[-1]["loss"], "losses": [x["loss"] for x in steps],
                "metrics_flops_per_s_median": statistics.median(x["flops_per_s"] for x in timed) if timed else None,
                "metrics_tokens_per_s_median": statistics.median(x["tokens_per_s"] for x in timed) if timed else None,
                "data_fraction": sum(x["time_s"]["data"] for x in timed) / sum(x["time_s"]["step"] for x in timed),
                "pretrain_logged_sgemm_peak": logged_peak,
                "peak_rss_mb": r["time"]["peak_rss_mb"], "process_wall_s": r["wall_s"], "cpu_s": r["time"]["cpu_s"],
                "cpu_percent": r["time"].get("cpu_percent"), "command": r["command"]}

    def torch_run(r):
        res = json.load(open(r["result"]))
        secs = [x["seconds"] for x in res["steps_detail"]]
        st = step_stats(secs, tokens_per_step, flops_per_step)
        timed = res["steps_detail"][WARMUP_EXCLUDED:]
        return {**st, "repeat": r["repeat"], "final_loss": res["final_loss"],
                "losses": [x["loss"] for x in res["steps_detail"]],
                "data_fraction": sum(x["data_seconds"] for x in timed) / sum(x["seconds"] for x in timed),
                "peak_rss_mb": r["time"]["peak_rss_mb"], "peak_rss_mb_getrusage": res["peak_rss_mb_getrusage"],
                "peak_rss_mb_getrusage_before_save": res["peak_rss_mb_getrusage_before_save"],
                "process_wall_s": r["wall_s"], "cpu_s": r["time"]["cpu_s"], "cpu_percent": r["time"].get("cpu_percent"),
                "in_process_seconds": res["seconds"], "parameters": res["parameters"], "command": r["command"],
                "versions": {k: res.get(k) for k in ("python", "torch", "numpy", "torch_threads",
                                                     "torch_interop_threads", "torch_blas", "mkldnn", "cpu_capability",
                                                     "parallel_info")}}

    ours = [ours_run(r) for r in runs.get("ours", [])]
    tv_names = {"default": "the same environment as ours (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = 2)",
                "passive": "the same plus OMP_WAIT_POLICY=PASSIVE (libgomp's idle threads sleep instead of spinning)"}
    torch_ = {tv: [torch_run(r) for r in runs.get("torch_" + tv, [])] for tv in tv_names}
    torch_ = {tv: rs for tv, rs in torch_.items() if rs}
    if not ours or not torch_:
        raise SystemExit("summarize: no runs of ours or torch in " + a.runs)
    all_torch = [x for rs in torch_.values() for x in rs]
    bo = min(ours, key=lambda x: x["step_s_median"])
    bts = {tv: min(rs, key=lambda x: x["step_s_median"]) for tv, rs in torch_.items()}
    strict_tv = max(bts, key=lambda tv: bts[tv]["tokens_per_s"])  # the faster torch configuration
    bt = bts[strict_tv]
    for x in ours + all_torch:
        x["fraction_of_sgemm_peak"] = x["gflops"] / peak
    if all_torch[0]["parameters"] != n_params:
        print(f"summarize: torch has {all_torch[0]['parameters']} parameters, pretrain {n_params}", file=sys.stderr)

    rss_ours_max = max(x["peak_rss_mb"] for x in ours)
    rss_torch_min = min(x["peak_rss_mb"] for x in all_torch)
    ratio = bo["tokens_per_s"] / bt["tokens_per_s"]
    ver = sh([a.bin, "--version"]).splitlines()
    corpus_stats = {}
    if os.path.exists(a.corpus + ".stats.json"):
        corpus_stats = json.load(open(a.corpus + ".stats.json"))
    pack_report = {}
    if os.path.exists(os.path.join(a.tokens, "report.json")):
        pack_report = json.load(open(os.path.join(a.tokens, "report.json")))
    libblas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")

    def ratios(t):
        return {"tokens_per_s": bo["tokens_per_s"] / t["tokens_per_s"],
                "tokens_per_s_mean": bo["tokens_per_s_mean"] / t["tokens_per_s_mean"],
                "gflops": bo["gflops"] / t["gflops"], "peak_rss": bo["peak_rss_mb"] / t["peak_rss_mb"],
                "process_wall_s": bo["process_wall_s"] / t["process_wall_s"]}

    out = {
        "label": a.label,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": a.command,
        "machine": machine(a.cores, a.load_start),
        "software": {
            "pretrain": {"version": ver[0] if ver else None, "git": ver[1] if len(ver) > 1 else None, "binary": a.bin,
                         "binary_sha256_16": a.bin_sha256, "blas": "OpenBLAS, OpenMP build (Makefile BLAS_LIBS: "
                                                                   + a.blas_libs + ")",
                         "openblas_config": sg.get("before", {}).get("openblas_config"),
                         "openblas_corename": sg.get("before", {}).get("openblas_corename"),
                         "libopenblas0_openmp": dpkg_version("libopenblas0-openmp")},
            "torch": {**bt["versions"], "python3_torch_deb": dpkg_version("python3-torch"), "interpreter": a.py,
                      "blas_library": libblas, "libopenblas0_pthread": dpkg_version("libopenblas0-pthread"),
                      "h5py_hdf5plugin": sh([a.py, "-c", "import h5py, hdf5plugin; print(h5py.__version__, "
                                                          "hdf5plugin.version)"])}},
        "config": cfg,
        "parameters": n_params, "parameters_check": n_check, "matmul_parameters": n_matmul,
        "seq_len": T, "micro_batch": plan["micro_batch"], "global_batch": B, "steps": a.steps,
        "steps_excluded_from_rates": WARMUP_EXCLUDED, "tokens_per_step": tokens_per_step,
        "train_flops_per_token": flops_per_token, "train_flops_per_step": flops_per_step,
        "data": {"tokens_dir": a.tokens, "pack_command": a.pack_command, "corpus": a.corpus,
                 "corpus_stats": {k: corpus_stats.get(k) for k in ("docs", "text_bytes", "jsonl_bytes", "pool_files",
                                                                   "source", "seed")},
                 "pack_report": {k: pack_report.get(k) for k in ("documents", "tokens", "samples", "seq_len",
                                                                 "vocab_size", "waste_fraction")}},
        "sgemm": {"peak_gflops": peak, "before": sg.get("before"), "after": sg.get("after"),
                  "program": "bench/pretrain/sgemm_peak.cpp"},
        "torch_mm": torch_mm,
        "ours": {"best": bo, "repeats": ours},
        "torch": {tv: {"environment": tv_names[tv], "best": bts[tv], "repeats": torch_[tv]} for tv in torch_},
        "torch_strictest": strict_tv,
        "ratios_ours_over_torch": {tv: ratios(bts[tv]) for tv in bts},
        "profiles": {name: read_perf(path) for name, path in (x.split("=", 1) for x in a.perf)},
        "gates": {
            "tokens_per_s": {"target": ">= 1.5x PyTorch eager", "ratio": ratio, "against": strict_tv, "met": ratio >= 1.5,
                             "ratio_worst_ours_vs_best_torch": min(x["tokens_per_s"] for x in ours) / bt["tokens_per_s"],
                             "ratios_by_torch_environment": {tv: ratios(bts[tv])["tokens_per_s"] for tv in bts},
                             "definition": "best repeat of each: tokens per step / median step seconds over steps "
                                           f"{WARMUP_EXCLUDED + 1}..{a.steps}; against the faster torch environment"},
            "peak_rss": {"target": "ours <= PyTorch's", "ours_max_mb": rss_ours_max, "torch_min_mb": rss_torch_min,
                         "met": rss_ours_max <= rss_torch_min,
                         "definition": "GNU time maximum RSS of the whole process; ours' largest repeat against "
                                       "torch's smallest (either environment)"}},
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(out))
    return 0


def fmt(x, nd=2):
    return "-" if x is None else f"{x:,.{nd}f}"


def markdown(o):
    m, sw, cfg = o["machine"], o["software"], o["config"]
    bo, g, sg = o["ours"]["best"], o["gates"], o["sgemm"]
    tor = o["torch"]
    st = o["torch_strictest"]
    bt = tor[st]["best"]
    label = {"default": "PyTorch eager, same environment as ours",
             "passive": "PyTorch eager, + OMP_WAIT_POLICY=PASSIVE"}
    L = [f"# pretrain benchmark: pretrain vs PyTorch eager{' (' + o['label'] + ')' if o['label'] else ''}\n"]
    L.append(f"- Command: `{o['command']}` (from the repository root)")
    L.append(f"- Machine: {m['cpu_model']} ({', '.join(m['simd'])}; {m['hypervisor'] or 'bare metal'} guest), "
             f"{m['cpus_available']} CPUs available ({m['threads_per_core']} thread(s) per core), {m['mem_total']}; "
             f"every process pinned with taskset -c {m['pinned_to_cores']}, 2 threads; {m['os']}, kernel "
             f"{m['kernel']}; {o['date_utc']}; load average at start {m['loadavg_at_start']}, at the end "
             f"{m['loadavg_at_summary']}")
    p, t = sw["pretrain"], sw["torch"]
    L.append(f"- Ours: {p['version']} ({p['git']}), {p['openblas_config']} (Debian libopenblas0-openmp "
             f"{p['libopenblas0_openmp']}, as the Makefile links it)")
    L.append(f"- Peer: PyTorch {t['torch']} (Debian python3-torch {t['python3_torch_deb']}), Python {t['python']}, "
             f"numpy {t['numpy']}, h5py + hdf5plugin {t['h5py_hdf5plugin']}; torch's BLAS: {t['blas_library']} "
             f"(the pthread build of OpenBLAS, libopenblas0-pthread {t['libopenblas0_pthread']}, through Debian's "
             f"libblas.so.3 alternative); torch.set_num_threads(2) (OpenMP), CPU capability {t['cpu_capability']}")
    L.append(f"- Model: Llama, hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, "
             f"{cfg['num_attention_heads']} heads / {cfg['num_key_value_heads']} kv heads, ffn "
             f"{cfg['intermediate_size']}, vocab {cfg['vocab_size']}, untied lm_head, rope_theta {cfg['rope_theta']}, "
             f"float32: {o['parameters']:,} parameters ({o['matmul_parameters']:,} in matmuls); seq {o['seq_len']}, "
             f"micro-batch {o['micro_batch']} = global batch {o['global_batch']} ({o['tokens_per_step']} tokens per "
             f"step); AdamW (0.9, 0.95), eps 1e-8, weight decay 0.1 on 2-D weights, clip 1.0, lr 1e-3 with 10 warmup "
             f"steps then cosine to 1e-4; {o['steps']} steps per run")
    d = o["data"]
    pr, cs = d["pack_report"], d["corpus_stats"]
    L.append(f"- Data: {fmt((cs.get('text_bytes') or 0) / 1e6, 1)} MB of /usr/share/doc text "
             f"({cs.get('docs')} documents, bench/tokenize/make_corpus.py --split bench), packed by "
             f"`{d['pack_command']}` into {pr.get('samples')} samples of {o['seq_len']}+1 tokens "
             f"({pr.get('tokens')} tokens; a byte-level BPE of {cfg['vocab_size']} trained on the same text); both "
             f"sides read the same samples in the same order; **`--doc-masking off`**, so both run plain causal "
             f"attention over each 256-token row (positions 0..255)")
    L.append(f"- FLOPs per step (both sides): {o['train_flops_per_step'] / 1e9:.2f} GFLOP = {o['tokens_per_step']} "
             f"tokens x (6 x {o['matmul_parameters']:,} + 12 x L x C x T) = {o['train_flops_per_token'] / 1e6:.2f} "
             f"MFLOP per token (nn::LlamaConfig::train_flops_per_token; causal masking not discounted)")
    sq = {s["n"]: s["gflops"] for s in (sg["before"] or {}).get("square", [])}
    sqa = {s["n"]: s["gflops"] for s in (sg["after"] or {}).get("square", [])}
    L.append(f"- OpenBLAS sgemm peak on this machine, 2 threads: **{fmt(sg['peak_gflops'], 1)} GFLOP/s** (best of "
             f"square n = {', '.join(str(n) for n in sq)}, measured before the runs: "
             f"{', '.join(fmt(v, 1) for v in sq.values())}, and after: {', '.join(fmt(v, 1) for v in sqa.values())} "
             f"GFLOP/s; bench/pretrain/sgemm_peak.cpp)"
             + (f"; torch.mm peak {fmt(o['torch_mm']['peak_gflops'], 1)} GFLOP/s (n = {o['torch_mm']['peak_n']}), "
                "for information" if o.get("torch_mm") else "") + "\n")

    L.append(f"## Training throughput and memory (best of {len(o['ours']['repeats'])} repeats each; steps "
             f"{o['steps_excluded_from_rates'] + 1}..{o['steps']} timed)\n")
    L.append("| | tokens/s | step s (median) | step s (mean) | peak RSS MB | GFLOP/s | fraction of sgemm peak | "
             f"loss after {o['steps']} steps | whole process s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("**pretrain** (ours)", bo)] + [(label[tv], tor[tv]["best"]) for tv in tor]
    for name, b in rows:
        L.append(f"| {name} | **{fmt(b['tokens_per_s'], 0)}** | {fmt(b['step_s_median'], 3)} | "
                 f"{fmt(b['step_s_mean'], 3)} | {fmt(b['peak_rss_mb'], 0)} | {fmt(b['gflops'], 1)} | "
                 f"{fmt(100 * b['fraction_of_sgemm_peak'], 1)}% | {fmt(b['final_loss'], 3)} | "
                 f"{fmt(b['process_wall_s'], 1)} |")
    for tv in tor:
        rt = o["ratios_ours_over_torch"][tv]
        L.append(f"| ours / torch ({tv}) | **{fmt(rt['tokens_per_s'])}x** | {fmt(1 / rt['tokens_per_s'])} | "
                 f"{fmt(1 / rt['tokens_per_s_mean'])} | {fmt(rt['peak_rss'])} | {fmt(rt['gflops'])}x | | | "
                 f"{fmt(rt['process_wall_s'])} |")
    L.append("")
    L.append("Every repeat (tokens/s / peak RSS MB): ours "
             + ", ".join(f"{fmt(x['tokens_per_s'], 0)} / {fmt(x['peak_rss_mb'], 0)}" for x in o["ours"]["repeats"])
             + "".join(f"; torch {tv} " + ", ".join(f"{fmt(x['tokens_per_s'], 0)} / {fmt(x['peak_rss_mb'], 0)}"
                                                     for x in tor[tv]["repeats"]) for tv in tor)
             + f". Share of the step spent reading the batch: ours {fmt(100 * bo['data_fraction'], 2)}%, torch "
             f"{fmt(100 * bt['data_fraction'], 2)}%. Torch's in-process peak RSS (getrusage, {st}) "
             f"{fmt(bt['peak_rss_mb_getrusage_before_save'], 0)} MB after training, "
             f"{fmt(bt['peak_rss_mb_getrusage'], 0)} MB after its checkpoint.\n")
    if "default" in tor and "passive" in tor:
        L.append("Torch runs twice per repeat. With `OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2` alone (the environment "
                 "ours runs in), torch's OpenMP threads busy-wait after each parallel region while its matmuls run on "
                 "the pthread OpenBLAS's own workers, so the two pools fight for the two cores; "
                 "`OMP_WAIT_POLICY=PASSIVE` makes the OpenMP threads sleep instead. The gate is read against the "
                 f"faster of the two ({st}).\n")

    b4, af = (sg.get("before") or {}).get("peak_gflops"), (sg.get("after") or {}).get("peak_gflops")
    quiet = ("" if not (b4 and af) else
             f"sgemm peak before the runs {fmt(b4, 1)} GFLOP/s, after {fmt(af, 1)} ({fmt(100 * (af / b4 - 1), 1)}%); ")
    L.append("Quiet-machine check (other processes on these 2 cores slow both sides, ours most: its OpenMP threads "
             "wait for each other at every parallel region): " + quiet + "CPU use of each run (2 cores = 200%): ours "
             + ", ".join(str(x["cpu_percent"]) for x in o["ours"]["repeats"])
             + "".join(f"; torch {tv} " + ", ".join(str(x["cpu_percent"]) for x in tor[tv]["repeats"]) for tv in tor)
             + ".\n")

    L.append("## Gates (the issue)\n")
    gt, gr = g["tokens_per_s"], g["peak_rss"]
    others = ", ".join(f"{fmt(v)}x against torch {tv}" for tv, v in gt["ratios_by_torch_environment"].items() if tv != st)
    L.append(f"- tokens/s >= 1.5x PyTorch eager: **{fmt(gt['ratio'])}x** against torch {st} (the faster) -> "
             f"**{'met' if gt['met'] else 'NOT met'}**" + (f" ({others})" if others else "")
             + f"; ours' slowest repeat vs torch's fastest: {fmt(gt['ratio_worst_ours_vs_best_torch'])}x")
    L.append(f"- peak RSS ours <= PyTorch's: ours {fmt(gr['ours_max_mb'], 0)} MB (largest repeat) vs torch "
             f"{fmt(gr['torch_min_mb'], 0)} MB (smallest run) -> **{'met' if gr['met'] else 'NOT met'}**")
    L.append(f"- achieved GFLOP/s as a fraction of the OpenBLAS sgemm peak ({fmt(sg['peak_gflops'], 1)} GFLOP/s): "
             f"ours **{fmt(100 * bo['fraction_of_sgemm_peak'], 1)}%**, PyTorch "
             + ", ".join(f"{fmt(100 * tor[tv]['best']['fraction_of_sgemm_peak'], 1)}% ({tv})" for tv in tor)
             + f". (pretrain's own MFU field divides by the sgemm peak it measures at start-up, "
             f"nn::measure_matmul_peak_gflops: {bo['pretrain_logged_sgemm_peak']} GFLOP/s in the best run.)\n")

    L.append(f"Loss after {o['steps']} steps: ours {fmt(bo['final_loss'], 3)}, torch "
             + ", ".join(f"{fmt(tor[tv]['best']['final_loss'], 3)} ({tv})" for tv in tor)
             + ". The two start from different random initialisations (the same distribution, N(0, 0.02), "
             "different generators), so the losses are only roughly comparable; they see the same batches with the "
             "same learning-rate schedule.\n")
    L.append("Commands (in run.sh's environment `OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2`):\n")
    L.append(f"- ours: `{bo['command']}`")
    for tv in tor:
        L.append(f"- torch {tv}: `{tor[tv]['best']['command']}`")
    L.append(f"- peak: `{sg['program']}` compiled with `g++ -O2 -fopenmp` + the Makefile's BLAS_CFLAGS/BLAS_LIBS, run "
             "as `taskset -c " + str(m['pinned_to_cores']) + " sgemm_peak --threads 2`\n")
    if o.get("profiles"):
        L.append("## Where the time goes (`--perf`: 10 untimed steps each, `perf record -F 999 -g`, "
                 "`perf report --no-children`)\n")
        for name, rows in o["profiles"].items():
            who = name.replace("-dso", "")
            by = "by shared object" if name.endswith("-dso") else "by symbol, >= 1%"
            L.append(f"{'pretrain' if who == 'ours' else 'torch (passive)'}, {by}: "
                     + "; ".join(f"{r['percent']:.1f}% {r['what'].split('  ')[-1]}" for r in rows[:14]) + "\n")
    L.append("What each number includes: bench/pretrain/README.md.\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
