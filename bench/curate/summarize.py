#!/usr/bin/env python3
"""Collects the runs of bench/curate/run.sh into results.json and results.md (standard library only).

For each kind of run the best repeat (least wall time; for the MinHash stage, least stage time) is the
headline; every repeat is kept in results.json. Per-core figures: the runs are pinned to one core with
taskset, so MB/s per core = input MB / seconds. Ratios are peer seconds / ours seconds (same input).
"""

import argparse
import datetime
import json
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import lscpu_field, machine as machine_base, peer_versions as venv_versions, read_time_v  # noqa: E402

def machine(core, cores_used):
    m, lscpu = machine_base()
    m.update({"cpu_max_mhz": lscpu_field(lscpu, "CPU max MHz"),
              "pinned_to_core": core if cores_used else None, "cores_per_run": 1})
    return m


def peer_versions(venv):
    return venv_versions(venv, ['datatrove', 'datasketch', 'numpy', 'spacy', 'xxhash', 'scipy', 'orjson'])


def rate(mb, docs, s):
    return {"seconds": s, "mb_per_s_per_core": mb / s if s else None, "docs_per_s": docs / s if s else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bin-sha256", default="")
    ap.add_argument("--core", default="0")
    ap.add_argument("--cores-used", type=int, default=1)
    ap.add_argument("--label", default="")
    ap.add_argument("--command", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()

    runs = {}
    with open(a.runs) as f:
        for line in f:
            name, kind, rep, outdir, result, timef, wall, cmd = line.rstrip("\n").split("\t")
            r = {"name": name, "repeat": int(rep), "command": cmd, "time": read_time_v(timef)}
            r["time"]["gnu_time_wall_s"] = r["time"].get("wall_s")
            r["time"]["wall_s"] = float(wall)  # measured around /usr/bin/time at ns resolution
            with open(result) as rf:
                r["result"] = json.load(rf)
            runs.setdefault(kind, []).append(r)

    corpus_bytes = os.path.getsize(a.corpus)
    mb = corpus_bytes / 1e6
    stats = json.load(open(a.corpus + ".stats.json"))
    docs = stats["docs"]

    def per_run(r):
        t = r["time"]
        # Pinned to one core, wall time is the per-core time; unpinned, CPU time is.
        s = t["wall_s"] if a.cores_used else t["cpu_s"]
        return s

    out = {"label": a.label, "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": a.command, "machine": machine(a.core, a.cores_used),
           "corpus": {"path": a.corpus, "bytes": corpus_bytes, "mb": mb, "docs": docs, "seed": stats["seed"],
                      "words": stats["words"], "kinds": stats["kinds"], "generator": "bench/curate/make_corpus.py"},
           "software": {"peers": peer_versions(a.venv)}}

    # --- MinHash stage -----------------------------------------------------------------------------
    om = runs.get("ours_minhash", [])
    ds = runs.get("datasketch", [])
    if om:
        rep0 = om[0]["result"]
        out["software"]["curate_dedup"] = {"version": rep0.get("bellows_version"), "git_hash": rep0.get("git_hash"),
                                           "binary": a.bin, "binary_sha256_16": a.bin_sha256}
        out["parameters"] = {"num_perm": rep0["lsh"]["num_perm"], "bands": rep0["lsh"]["bands"],
                             "rows": rep0["lsh"]["rows"], "threshold": rep0["lsh"]["verify_threshold"],
                             "s_curve_midpoint": rep0["lsh"]["s_curve_midpoint"], "shingle": rep0["lsh"]["shingle"],
                             "seed": 1}
        stage = [r["result"]["seconds_by_phase"]["minhash_all_ranks"] for r in om]
        lsh = [r["result"]["seconds_by_phase"]["dedup_all_ranks"] for r in om]
        best = min(range(len(om)), key=lambda i: stage[i])
        bw = min(om, key=per_run)
        ours_m = {
            "stage": rate(mb, docs, stage[best]),
            "stage_includes": "seconds_by_phase.minhash_all_ranks: shingling, 32-bit shingle hashes, 128-permutation "
                              "signature, band keys; not reading/parsing JSON, not writing shards",
            "lsh_seconds": lsh[best],
            "lsh_includes": "seconds_by_phase.dedup_all_ranks with exact dedup off: band-key buckets -> candidate "
                            "pairs -> union-find -> removals",
            "stage_plus_lsh": rate(mb, docs, stage[best] + lsh[best]),
            "process": {**rate(mb, docs, per_run(bw)), "peak_rss_mb": bw["time"]["peak_rss_mb"],
                        "cpu_s": bw["time"]["cpu_s"]},
            "process_includes": "the whole curate-dedup run with only fuzzy dedup on: read+parse JSONL, MinHash, "
                                "write work shard, dedup, write output shards + audit trail + report",
            "fuzzy": {k: rep0["fuzzy_dedup"].get(k) for k in ("candidate_pairs", "removed", "clusters")},
            "repeats": [{"stage_s": s, "lsh_s": l, "wall_s": r["time"]["wall_s"], "command": r["command"]}
                        for s, l, r in zip(stage, lsh, om)],
        }
        out["minhash_stage"] = {"ours": ours_m}
    if ds:
        variants = {}
        for v in ds[0]["result"]["variants"]:
            secs = [r["result"]["variants"][v]["seconds"] for r in ds]
            i = min(range(len(ds)), key=lambda k: secs[k])
            info = ds[i]["result"]["variants"][v]
            variants[v] = {**rate(mb, docs, secs[i]), "scheme": info["scheme"], "hashfunc": info["hashfunc"],
                           "repeats_s": secs}
        lsh_s = [r["result"]["lsh"]["seconds"] for r in ds if "lsh" in r["result"]]
        bw = min(ds, key=per_run)
        out["minhash_stage"]["datasketch"] = {
            "variants": variants,
            "stage_includes": "shingling (same rule as ours, in Python) + hashfunc per shingle + MinHash "
                              "(MinHash.generator: one permutation set, copy + update_batch per document); "
                              "JSON parsing excluded",
            "lsh_seconds": min(lsh_s) if lsh_s else None,
            "lsh_includes": "MinHashLSH(num_perm, params=(bands, rows)): insert all, query all, union-find",
            "lsh_result": {k: ds[0]["result"]["lsh"][k] for k in ("candidate_pairs", "removed")} if lsh_s else None,
            "process_peak_rss_mb": bw["time"]["peak_rss_mb"],
            "command": ds[0]["command"],
        }
        if om:
            o = out["minhash_stage"]["ours"]
            ratios = {}
            for v, d in variants.items():
                ratios[f"stage_vs_{v}"] = d["seconds"] / o["stage"]["seconds"]
                if lsh_s:
                    ratios[f"stage_plus_lsh_vs_{v}"] = (d["seconds"] + min(lsh_s)) / o["stage_plus_lsh"]["seconds"]
            out["minhash_stage"]["ratios_ours_over_peer"] = ratios
            out["minhash_stage"]["gate"] = {"target": ">= 10x datasketch per core",
                                            "strictest_ratio": min(v for k, v in ratios.items()
                                                                   if k.startswith("stage_vs_"))}

    # --- whole pipeline ----------------------------------------------------------------------------
    def ours_pipeline(kind):
        rs = runs.get(kind, [])
        if not rs:
            return None
        b = min(rs, key=per_run)
        rep = b["result"]
        st = rep["stages"]
        return {**rate(mb, docs, per_run(b)), "peak_rss_mb": b["time"]["peak_rss_mb"], "cpu_s": b["time"]["cpu_s"],
                "report_seconds": rep["seconds"], "seconds_by_phase": rep["seconds_by_phase"],
                "stage_seconds": {k: st[k].get("seconds") for k in st},
                "docs": {"in": rep["documents"]["in"], "after_quality": st["quality"]["docs_out"],
                         "after_exact": st["exact"]["docs_out"], "out": rep["documents"]["out"]},
                "quality_removed": st["quality"]["removed"], "pii": rep["pii"],
                "exact_removed": rep["exact_dedup"]["removed"], "fuzzy_removed": rep["fuzzy_dedup"]["removed"],
                "command": b["command"], "repeats_wall_s": [r["time"]["wall_s"] for r in rs]}

    pipe = {}
    for kind in ("ours_pipeline", "ours_pipeline_allpii"):
        p = ours_pipeline(kind)
        if p:
            pipe[kind.replace("_pipeline", "")] = p
    dt = runs.get("datatrove", [])
    if dt:
        b = min(dt, key=per_run)
        res = b["result"]
        quality_removed, step_seconds = {}, {}

        def clean(name):  # "🔻 - FILTER: 👯 Gopher Repetition" -> "Gopher Repetition"
            return name.rsplit(": ", 1)[-1].encode("ascii", "ignore").decode().strip()

        for ph in res["phases"]:
            if not isinstance(ph["stats"], list):
                continue
            for step in ph["stats"]:
                if not isinstance(step, dict):
                    continue
                step_seconds[f"{ph['name']}/{clean(step.get('name', '?'))}"] = step.get("time_stats", {}).get("total")
                if ph["name"] != "filter_pii_exactsig":
                    continue
                for k, v in step.get("stats", {}).items():
                    if k.startswith("dropped_"):
                        quality_removed[f"{clean(step.get('name', '?'))}:{k[8:]}"] = v
        pipe["datatrove"] = {
            **rate(mb, docs, per_run(b)), "peak_rss_mb": b["time"]["peak_rss_mb"], "cpu_s": b["time"]["cpu_s"],
            "seconds_pipeline_excl_startup": res["seconds_pipeline"],
            "phase_seconds": {p["name"]: p["seconds"] for p in res["phases"]},
            "docs": {"in": res["docs_in"], "after_quality": res["docs_after_filters"],
                     "after_exact": res["docs_after_exact"], "out": res["docs_out"]},
            "step_seconds": step_seconds, "quality_removed": quality_removed, "command": b["command"],
            "repeats_wall_s": [r["time"]["wall_s"] for r in dt]}
        if "ours" in pipe:
            pipe["ratio_ours_over_datatrove"] = pipe["datatrove"]["seconds"] / pipe["ours"]["seconds"]
            if "ours_allpii" in pipe:
                pipe["ratio_ours_allpii_over_datatrove"] = pipe["datatrove"]["seconds"] / pipe["ours_allpii"]["seconds"]
            pipe["gate"] = {"target": ">= 5x datatrove per core", "ratio": pipe["ratio_ours_over_datatrove"]}
    out["pipeline"] = pipe

    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(out))
    return 0


def fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(o):
    m, c = o["machine"], o["corpus"]
    L = []
    L.append(f"# curate-dedup benchmark{' (' + o['label'] + ')' if o['label'] else ''}\n")
    L.append(f"- Command: `{o['command']}` (from the repository root; `make bench-curate` runs the same)")
    L.append(f"- Machine: {m['cpu_model']}, {m['cpus_available']} CPUs available ({m['threads_per_core']} thread(s) per core), every run pinned to one core "
             f"(taskset -c {m['pinned_to_core']}); {m['os']}, kernel {m['kernel']}; {o['date_utc']}")
    cd = o["software"].get("curate_dedup", {})
    pv = o["software"].get("peers", {})
    L.append(f"- Software: curate-dedup {cd.get('version')} ({cd.get('git_hash')}); datasketch {pv.get('datasketch')}, "
             f"datatrove {pv.get('datatrove')}, numpy {pv.get('numpy')}, spaCy {pv.get('spacy')}, "
             f"xxhash {pv.get('xxhash')}, Python {pv.get('python')}")
    L.append(f"- Corpus: {c['mb']:.1f} MB, {c['docs']} JSONL documents, {c['words']} words "
             f"(bench/curate/make_corpus.py --seed {c['seed']}; kinds {c['kinds']})")
    p = o.get("parameters", {})
    L.append(f"- MinHash: {p.get('shingle')} shingles, {p.get('num_perm')} permutations, LSH {p.get('bands')} bands x "
             f"{p.get('rows')} rows (threshold {p.get('threshold')}, S-curve midpoint {fmt(p.get('s_curve_midpoint'), 3)}), seed 1")
    L.append("")
    ms = o.get("minhash_stage")
    if ms and "datasketch" in ms:
        om, dsk = ms["ours"], ms["datasketch"]
        L.append("## MinHash stage (one core)\n")
        L.append("| what | seconds | MB/s per core | docs/s | ours is N x faster |")
        L.append("|---|---:|---:|---:|---:|")
        L.append(f"| curate-dedup MinHash stage (shingles + hashes + signatures + band keys) | {fmt(om['stage']['seconds'], 3)} | "
                 f"{fmt(om['stage']['mb_per_s_per_core'])} | {fmt(om['stage']['docs_per_s'], 0)} | |")
        for v, d in dsk["variants"].items():
            label = {"default": "datasketch default (sha1_hash32, affine32)",
                     "xxh32": "datasketch hashfunc=xxhash.xxh32_intdigest (affine32)",
                     "legacy": "datasketch legacy scheme + XXH3 low 32 bits"}.get(v, v)
            L.append(f"| {label} | {fmt(d['seconds'], 3)} | {fmt(d['mb_per_s_per_core'])} | {fmt(d['docs_per_s'], 0)} | "
                     f"{fmt(ms['ratios_ours_over_peer'].get('stage_vs_' + v))} |")
        L.append(f"| curate-dedup MinHash + LSH/clusters | {fmt(om['stage_plus_lsh']['seconds'], 3)} | "
                 f"{fmt(om['stage_plus_lsh']['mb_per_s_per_core'])} | {fmt(om['stage_plus_lsh']['docs_per_s'], 0)} | |")
        if dsk.get("lsh_seconds") is not None:
            for v, d in dsk["variants"].items():
                s = d["seconds"] + dsk["lsh_seconds"]
                L.append(f"| datasketch {v} MinHash + MinHashLSH insert/query + union-find | {fmt(s, 3)} | "
                         f"{fmt(c['mb'] / s)} | {fmt(c['docs'] / s, 0)} | "
                         f"{fmt(ms['ratios_ours_over_peer'].get('stage_plus_lsh_vs_' + v))} |")
        L.append(f"| curate-dedup whole process, fuzzy dedup only (read, MinHash, dedup, write shards) | "
                 f"{fmt(om['process']['seconds'], 3)} | {fmt(om['process']['mb_per_s_per_core'])} | "
                 f"{fmt(om['process']['docs_per_s'], 0)} | |")
        L.append("")
        L.append(f"Gate (issue 3): MinHash stage >= 10x datasketch per core; strictest ratio here "
                 f"**{fmt(ms['gate']['strictest_ratio'])}x**. Peak RSS: curate-dedup {fmt(om['process']['peak_rss_mb'], 0)} MB, "
                 f"datasketch script {fmt(dsk['process_peak_rss_mb'], 0)} MB (it holds all texts and MinHashes). "
                 f"Duplicates found: curate-dedup {om['fuzzy']['removed']} removed ({om['fuzzy']['candidate_pairs']} "
                 f"candidate pairs); datasketch {dsk['lsh_result']['removed'] if dsk.get('lsh_result') else '-'} "
                 f"({dsk['lsh_result']['candidate_pairs'] if dsk.get('lsh_result') else '-'} pairs; other permutations, so not identical).\n")
        L.append(f"Commands: `{om['repeats'][0]['command']}`; `{dsk['command']}`\n")
    pipe = o.get("pipeline", {})
    if pipe:
        L.append("## Whole pipeline (one core)\n")
        L.append("| what | wall s | MB/s per core | docs/s | peak RSS MB | docs in -> quality -> exact -> out | ours is N x faster |")
        L.append("|---|---:|---:|---:|---:|---|---:|")
        names = {"ours": "curate-dedup --disable langid --pii-types email,ipv4",
                 "ours_allpii": "curate-dedup --disable langid (all 7 PII types)",
                 "datatrove": "datatrove equivalent pipeline (6 LocalPipelineExecutor phases)"}
        for k in ("ours", "ours_allpii", "datatrove"):
            if k not in pipe:
                continue
            d = pipe[k]
            ratio = ""
            if k == "ours" and "ratio_ours_over_datatrove" in pipe:
                ratio = fmt(pipe["ratio_ours_over_datatrove"])
            if k == "ours_allpii" and "ratio_ours_allpii_over_datatrove" in pipe:
                ratio = fmt(pipe["ratio_ours_allpii_over_datatrove"])
            dd = d["docs"]
            L.append(f"| {names[k]} | {fmt(d['seconds'])} | {fmt(d['mb_per_s_per_core'], 3)} | {fmt(d['docs_per_s'], 1)} | "
                     f"{fmt(d['peak_rss_mb'], 0)} | {dd['in']} -> {dd['after_quality']} -> {dd['after_exact']} -> {dd['out']} | {ratio} |")
        L.append("")
        if "gate" in pipe:
            L.append(f"Gate (issue 3): whole pipeline >= 5x datatrove per core; here **{fmt(pipe['gate']['ratio'])}x**.\n")
        if "datatrove" in pipe:
            L.append("datatrove phases (s): " + ", ".join(f"{k} {fmt(v)}" for k, v in pipe["datatrove"]["phase_seconds"].items()) + "\n")
            L.append("datatrove steps (s, datatrove's own time_stats): " + ", ".join(
                f"{k} {fmt(v)}" for k, v in pipe["datatrove"]["step_seconds"].items() if v) + "\n")
        if "ours" in pipe:
            L.append("curate-dedup stages (s): " + ", ".join(f"{k} {fmt(v, 3)}" for k, v in pipe["ours"]["stage_seconds"].items() if v)
                     + "; phases (s): " + ", ".join(f"{k} {fmt(v, 3)}" for k, v in pipe["ours"]["seconds_by_phase"].items()) + "\n")
            L.append(f"Commands: `{pipe['ours']['command']}`" + (f"; `{pipe['datatrove']['command']}`" if "datatrove" in pipe else "") + "\n")
    if "ours" in pipe and "datatrove" in pipe:
        qo = {k: v for k, v in pipe["ours"]["quality_removed"].items() if v}
        L.append(f"Removed by quality rule: curate-dedup {qo}; datatrove {pipe['datatrove']['quality_removed']}. "
                 f"PII redacted by curate-dedup: { {k: v for k, v in pipe['ours']['pii'].items() if v} } "
                 f"(datatrove does not count its replacements).\n")
    L.append("What each span includes and every difference in semantics: bench/curate/README.md.\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
