#!/usr/bin/env python3
"""Collects the runs of bench/tokenize/run.sh into results.json and results.md (standard library only).

For each kind of run the best repeat (least wall time; for tiktoken and HF tokenizers, least in-process
encode time) is the headline; every repeat is kept in results.json. Per-core figures: single-core runs
are pinned to one core with taskset, so MB/s per core = MB / seconds; the 2-rank run is pinned to two
cores, so its MB/s per core = MB / seconds / 2. MB = 10^6 bytes of document text (the UTF-8 bytes of
the "text" fields: what a tokenizer reads); the JSONL file's size is given too. Ratios are peer seconds /
ours seconds on the same text.
"""

import argparse
import datetime
import json
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import lscpu_field, machine as machine_base, peer_versions as venv_versions, read_time_v, sh  # noqa: E402

def machine(core, cores, cores_used, load_start):
    m, lscpu = machine_base(load_start)
    m.update({"cpu_max_mhz": lscpu_field(lscpu, "CPU max MHz"),
              "pinned_to_core": core if cores_used else None, "two_rank_cores": cores if cores_used else None})
    return m


def peer_versions(venv):
    return venv_versions(venv, ['tiktoken', 'tokenizers', 'regex'])


def main():
    ap = argparse.ArgumentParser()
    for k in ("runs", "corpus", "parts", "vocab-dir", "venv", "bin", "command", "json", "md"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--compare", action="append", default=[], help="PEER=compare_ids.py result (repeatable)")
    ap.add_argument("--bin-sha256", default="")
    ap.add_argument("--core", default="0")
    ap.add_argument("--cores", default="0,1")
    ap.add_argument("--cores-used", type=int, default=1)
    ap.add_argument("--label", default="")
    ap.add_argument("--load-start", default="")
    ap.add_argument("--seq-len", type=int, default=None)
    a = ap.parse_args()

    runs = {}
    with open(a.runs) as f:
        for line in f:
            name, kind, rep, outdir, result, timef, wall, cpus, cmd = line.rstrip("\n").split("\t")
            r = {"name": name, "repeat": int(rep), "command": cmd, "cpus": cpus, "time": read_time_v(timef)}
            r["time"]["gnu_time_wall_s"] = r["time"].get("wall_s")
            r["time"]["wall_s"] = float(wall)  # measured around /usr/bin/time at ns resolution
            if result != "-":
                with open(result) as rf:
                    r["result"] = json.load(rf)
            runs.setdefault(kind, []).append(r)

    stats = json.load(open(a.corpus + ".stats.json"))
    jsonl_mb = os.path.getsize(a.corpus) / 1e6
    text_mb = stats["text_bytes"] / 1e6
    docs = stats["docs"]
    meta = json.load(open(os.path.join(a.vocab_dir, "meta.json")))
    cmps = {}
    for c in a.compare:
        name, path = c.split("=", 1)
        cmps[name] = json.load(open(path))
    ours_cmp = next(iter(cmps.values()), {})

    def ncores(r):
        return len(r["cpus"].split(",")) if a.cores_used else 1

    def secs(r):
        # Pinned, wall time is the time on the cores given; unpinned, CPU time is the per-core time.
        return r["time"]["wall_s"] if a.cores_used else r["time"]["cpu_s"]

    def rate(s, cores=1):
        return {"seconds": s, "mb_per_s_per_core": text_mb / s / cores if s else None,
                "jsonl_mb_per_s_per_core": jsonl_mb / s / cores if s else None,
                "docs_per_s": docs / s if s else None, "cores": cores}

    def best(kind):
        rs = runs.get(kind, [])
        if not rs:
            return None
        b = min(rs, key=secs)
        out = {**rate(secs(b), ncores(b)), "peak_rss_mb": b["time"]["peak_rss_mb"], "cpu_s": b["time"]["cpu_s"],
               "command": b["command"], "repeats_wall_s": [r["time"]["wall_s"] for r in rs]}
        if "result" in b and "seconds" in b["result"]:
            rep = b["result"]
            out["report"] = {k: rep.get(k) for k in ("seconds", "documents", "tokens", "samples", "ranks",
                                                     "waste_fraction", "bellows_version", "git_hash")}
            if isinstance(rep.get("seconds_by_phase"), dict):
                out["report"]["seconds_by_phase"] = rep["seconds_by_phase"]
        return out

    ver = sh([a.bin, "--version"]).splitlines()
    out = {"label": a.label, "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": a.command, "seq_len": a.seq_len,
           "machine": machine(a.core, a.cores, a.cores_used, a.load_start),
           "corpus": {"path": a.corpus, "parts_dir": a.parts, "parts": len([p for p in os.listdir(a.parts) if p.endswith(".jsonl")]),
                      "jsonl_mb": jsonl_mb, "text_mb": text_mb, "docs": docs, "chars": stats["chars"],
                      "non_ascii_chars": stats["non_ascii_chars"], "seed": stats["seed"], "source": stats["source"],
                      "source_files": stats["pool_files"], "text_bytes_by_kind_top": stats["text_bytes_by_kind_top"],
                      "generator": stats["generator"]},
           "vocabulary": {k: meta[k] for k in ("ranks", "eos", "eos_id", "pattern", "ignore_merges", "train_docs",
                                               "train_bytes", "train_seconds", "median_token_bytes", "max_token_bytes",
                                               "self_check")} | {"dir": a.vocab_dir},
           "software": {"tokenize_pack": {"version": ver[0] if ver else None,
                                          "git": ver[1] if len(ver) > 1 else None, "binary": a.bin,
                                          "binary_sha256_16": a.bin_sha256},
                        "peers": peer_versions(a.venv)}}

    # --- a. encode: ours vs tiktoken ---------------------------------------------------------------------
    ours = best("ours_encode")
    startup = best("ours_startup")
    enc = {"ours": ours, "ours_startup": startup,
           "ours_includes": "the whole tokenize-pack --encode process: start-up (load the rank file, build the "
                            "merge table, compile the regex), read + parse JSONL (simdjson), UTF-8 check, "
                            "pre-tokenize (PCRE2 JIT) + BPE, format and print the ids (stdout to a file)"}
    if ours and startup:
        enc["ours_excluding_startup"] = rate(ours["seconds"] - startup["seconds"])
    peers = {}
    for kind in ("tiktoken_shipped", "tiktoken_formats", "hf"):
        rs = runs.get(kind, [])
        if not rs:
            continue
        be = min(rs, key=lambda r: r["result"]["seconds"])
        bp = min(rs, key=secs)
        res = be["result"]
        peers[kind] = {"encode": rate(res["seconds"]), "encode_repeats_s": [r["result"]["seconds"] for r in rs],
                       "process": {**rate(secs(bp)), "peak_rss_mb": bp["time"]["peak_rss_mb"], "cpu_s": bp["time"]["cpu_s"]},
                       "process_repeats_s": [secs(r) for r in rs],
                       "parse_seconds": res["parse_seconds"], "load_seconds": res["load_seconds"],
                       "write_ids_seconds": res["write_ids_seconds"], "import_seconds": res["import_seconds"],
                       "tokens": res["tokens"], "version": res["version"], "pat_str": res.get("pat_str"),
                       "command": rs[0]["command"]}
        if ours:
            peers[kind]["ratio_encode_over_ours_process"] = res["seconds"] / ours["seconds"]
            peers[kind]["ratio_process_over_ours_process"] = secs(bp) / ours["seconds"]
            if "ours_excluding_startup" in enc:
                peers[kind]["ratio_encode_over_ours_excl_startup"] = res["seconds"] / enc["ours_excluding_startup"]["seconds"]
        cname = kind.replace("_", "-")
        if cname in cmps:
            peers[kind]["ids"] = {k: cmps[cname][k] for k in ("identical", "docs_compared", "identical_docs",
                                                              "differing_docs", "ours_tokens", "peer_tokens")}
    enc["peers"] = peers
    enc["peer_encode_includes"] = ("tiktoken: [enc.encode_ordinary(t) for t in texts]; HF: encode_batch(texts, "
                                   "add_special_tokens=False) + .ids; over texts already parsed; the peer's whole "
                                   "process (interpreter start-up, imports, json.loads of every record, loading the "
                                   "vocabulary, encoding, writing the ids) is timed as well")
    tks = [k for k in peers if k.startswith("tiktoken")]
    if ours and tks:
        strict = min(peers[k]["ratio_encode_over_ours_process"] for k in tks)
        ident = all(cmps.get(k.replace("_", "-"), {}).get("identical") for k in tks)
        enc["gate"] = {"target": ">= 3x tiktoken per core, identical ids", "strictest_ratio": strict,
                       "ratio_definition": "min over tiktoken's two cl100k pattern forms of tiktoken encode-only "
                                           "seconds / tokenize-pack --encode whole-process seconds",
                       "ids_identical": ident, "met": bool(strict >= 3 and ident)}
    out["encode"] = enc
    out["exactness"] = cmps

    # --- b. packing overhead -------------------------------------------------------------------------------
    pre = best("ours_pretrain")
    if pre and ours:
        pk = {"ours_pretrain": pre, "ours_encode": {k: ours[k] for k in ("seconds", "mb_per_s_per_core")},
              "overhead_pct_vs_encode": 100.0 * (pre["seconds"] / ours["seconds"] - 1),
              "includes": "--mode pretrain: read + parse JSONL, tokenize, append EOS, write the token stream, "
                          "shuffle seq-len+1 samples, write HDF5 shards with document starts + report; "
                          "--encode instead formats and prints decimal ids",
              "tokens_expected": ours_cmp.get("ours_tokens", 0) + ours_cmp.get("ours_lines", 0),
              "tokens_match_encode_plus_eos": pre.get("report", {}).get("tokens") == ours_cmp.get("ours_tokens", 0) + ours_cmp.get("ours_lines", 0)}
        # When tokenize-pack reports its phases (report.json seconds_by_phase with a "tokenize" phase:
        # read + parse + tokenize into the stream), packing overhead = the other phases / tokenize.
        ph = pre.get("report", {}).get("seconds_by_phase")
        if ph and ph.get("tokenize"):
            rest = sum(v for k, v in ph.items() if k != "tokenize" and isinstance(v, (int, float)))
            pk["overhead_pct_by_phase"] = 100.0 * rest / ph["tokenize"]
        if startup:
            pk["overhead_pct_vs_encode_excl_startup"] = 100.0 * ((pre["seconds"] - startup["seconds"]) /
                                                                 (ours["seconds"] - startup["seconds"]) - 1)
        out["packing"] = pk

    # --- c. scaling ------------------------------------------------------------------------------------
    n1, n2, n2one = best("ours_pretrain_np1"), best("ours_pretrain_np2"), best("ours_pretrain_np2_onefile")
    if n1 and n2:
        sc = {"np1": n1, "np2": n2, "speedup": n1["seconds"] / n2["seconds"],
              "efficiency": n1["seconds"] / n2["seconds"] / 2,
              # rank 0's report.json seconds: from the output's creation to the end (no mpirun or tokenizer start-up)
              "speedup_report_seconds": (n1["report"]["seconds"] / n2["report"]["seconds"]
                                         if n1.get("report", {}).get("seconds") and n2.get("report", {}).get("seconds") else None),
              "same_tokens_and_samples": (n1.get("report", {}).get("tokens"), n1.get("report", {}).get("samples")) ==
                                         (n2.get("report", {}).get("tokens"), n2.get("report", {}).get("samples")),
              "includes": "tests/mpirun.sh (mpirun --oversubscribe) start-up + tokenize-pack --mode pretrain over "
                          "the corpus as PARTS JSONL files (ranks share out whole files, by bytes)"}
        if n2one:
            sc["np2_one_file"] = n2one
        out["scaling"] = sc

    with open(a.json, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(out))
    return 0


def fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(o):
    m, c, v = o["machine"], o["corpus"], o["vocabulary"]
    L = [f"# tokenize-pack benchmark{' (' + o['label'] + ')' if o['label'] else ''}\n"]
    L.append(f"- Command: `{o['command']}` (from the repository root)")
    L.append(f"- Machine: {m['cpu_model']}, {m['cpus_available']} CPUs available ({m['threads_per_core']} thread(s) per core); "
             f"single-core runs pinned with taskset -c {m['pinned_to_core']}, the 2-rank run with taskset -c {m['two_rank_cores']}; "
             f"{m['os']}, kernel {m['kernel']}; {o['date_utc']}; load average at start {m['loadavg_at_start']}, "
             f"at the end {m['loadavg_at_summary']}")
    tp, pv = o["software"]["tokenize_pack"], o["software"]["peers"]
    L.append(f"- Software: {tp['version']} ({tp['git']}); tiktoken {pv.get('tiktoken')}, tokenizers {pv.get('tokenizers')}, "
             f"Python {pv.get('python')}")
    L.append(f"- Vocabulary: {v['ranks']} ranks + `{v['eos']}`={v['eos_id']}, byte-level BPE trained with HF tokenizers "
             f"(cl100k pre-tokenizer, ignore_merges) on {v['train_bytes'] / 1e6:.1f} MB / {v['train_docs']} documents "
             f"of the 'train' pool, converted to a tiktoken rank file; median token {v['median_token_bytes']} bytes; "
             f"self-check tiktoken vs tokenizer.json: {v['self_check']['hf_vs_tiktoken_mismatches']} of "
             f"{v['self_check']['texts']} texts differ")
    L.append(f"- Corpus: {c['text_mb']:.1f} MB of text ({c['jsonl_mb']:.1f} MB JSONL), {c['docs']} documents, "
             f"{c['non_ascii_chars']} of {c['chars']} characters non-ASCII, from {c['source_files']} files of "
             f"{c['source']} held out from training (bench/tokenize/make_corpus.py --split bench --seed {c['seed']}); "
             f"also as {c['parts']} JSONL parts for the MPI runs")
    L.append("- MB = 10^6 bytes of document text; MB/s per core = MB / seconds / cores pinned.\n")

    e = o["encode"]
    if e.get("ours") and e.get("peers"):
        L.append("## a. Tokenization, one core: tokenize-pack vs tiktoken (and HF tokenizers)\n")
        L.append("| what | seconds | MB/s per core | docs/s | peak RSS MB | ours is N x faster | ids = ours |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        ou = e["ours"]
        L.append(f"| **tokenize-pack --encode, whole process** (start-up, JSON parsing, tokenizing, printing ids) | "
                 f"{fmt(ou['seconds'], 3)} | **{fmt(ou['mb_per_s_per_core'])}** | {fmt(ou['docs_per_s'], 0)} | "
                 f"{fmt(ou['peak_rss_mb'], 0)} | | |")
        if "ours_excluding_startup" in e:
            L.append(f"| tokenize-pack --encode less its start-up ({fmt(e['ours_startup']['seconds'], 3)} s for a 1-record file) | "
                     f"{fmt(e['ours_excluding_startup']['seconds'], 3)} | {fmt(e['ours_excluding_startup']['mb_per_s_per_core'])} | | | | |")
        names = {"tiktoken_shipped": "tiktoken encode_ordinary, cl100k pattern as tiktoken ships it",
                 "tiktoken_formats": "tiktoken encode_ordinary, cl100k pattern of formats.md §5 (= ours)",
                 "hf": "HF tokenizers encode_batch (sequential), the same vocabulary's tokenizer.json"}

        def ids(d):
            i = d.get("ids")
            if not i:
                return "-"
            return "all identical" if i["identical"] else f"**{i['differing_docs']} of {i['docs_compared']} docs differ**"

        for k, d in e["peers"].items():
            en = d["encode"]
            L.append(f"| {names.get(k, k)}: encode only | {fmt(en['seconds'], 3)} | {fmt(en['mb_per_s_per_core'])} | "
                     f"{fmt(en['docs_per_s'], 0)} | | {fmt(d.get('ratio_encode_over_ours_process'))} | {ids(d)} |")
        for k, d in e["peers"].items():
            pr = d["process"]
            L.append(f"| {names.get(k, k)}: whole process (json.loads {fmt(d['parse_seconds'])} s, load "
                     f"{fmt(d['load_seconds'])} s, writing ids {fmt(d['write_ids_seconds'])} s) | {fmt(pr['seconds'], 3)} | "
                     f"{fmt(pr['mb_per_s_per_core'])} | {fmt(pr['docs_per_s'], 0)} | {fmt(pr['peak_rss_mb'], 0)} | "
                     f"{fmt(d.get('ratio_process_over_ours_process'))} | |")
        L.append("")
        g = e.get("gate")
        if g:
            L.append(f"Gate (issue 4): single-core throughput >= 3x tiktoken's with identical ids. Strictest ratio here "
                     f"(tiktoken's encode-only time with its faster pattern form over tokenize-pack's whole process): "
                     f"**{fmt(g['strictest_ratio'])}x**, ids identical to tiktoken's: **{'yes' if g['ids_identical'] else 'NO'}** "
                     f"-> **{'met' if g['met'] else 'NOT met'}**.\n")
        for name, x in o["exactness"].items():
            if x["differing_docs"]:
                L.append(f"First differences, ours vs {name}: `{json.dumps(x['first_differences'][:2], ensure_ascii=False)[:1500]}`\n")
        L.append(f"Commands: `{ou['command']}`; " + "; ".join(f"`{d['command']}`" for d in e["peers"].values()) + "\n")
    pk = o.get("packing")
    if pk:
        p = pk["ours_pretrain"]
        L.append("## b. Packing overhead, one core\n")
        L.append("| what | seconds | MB/s per core | peak RSS MB |")
        L.append("|---|---:|---:|---:|")
        L.append(f"| tokenize-pack --encode (whole process) | {fmt(e['ours']['seconds'], 3)} | "
                 f"{fmt(e['ours']['mb_per_s_per_core'])} | {fmt(e['ours']['peak_rss_mb'], 0)} |")
        rs = p.get("report", {})
        L.append(f"| tokenize-pack --mode pretrain --seq-len {o.get('seq_len')} (whole process; report.json "
                 f"seconds {fmt(rs.get('seconds'), 3)}; {rs.get('tokens')} tokens, {rs.get('samples')} samples) | "
                 f"{fmt(p['seconds'], 3)} | {fmt(p['mb_per_s_per_core'])} | {fmt(p['peak_rss_mb'], 0)} |")
        L.append("")
        L.append(f"--mode pretrain's whole process takes **{pk['overhead_pct_vs_encode']:+.1f}%** relative to --encode's "
                 + (f"({pk['overhead_pct_vs_encode_excl_startup']:+.1f}% with both less start-up) "
                    if "overhead_pct_vs_encode_excl_startup" in pk else "")
                 + "(issue 4: packing adds < 10% to tokenization time). Both read, parse and tokenize the same corpus; "
                 "--encode then formats and prints decimal ids, --mode pretrain instead appends EOS, writes the token "
                 "stream and the zstd-compressed HDF5 shards, so this compares packing with printing, not with nothing. "
                 + (f"By tokenize-pack's own phase times, packing adds **{pk['overhead_pct_by_phase']:.1f}%** to tokenizing "
                    f"({rs.get('seconds_by_phase')}). " if "overhead_pct_by_phase" in pk else
                    "tokenize-pack's report.json has no per-phase seconds yet, so packing alone cannot be isolated here. ")
                 + f"Token count = --encode's tokens + one EOS per document: {'yes' if pk['tokens_match_encode_plus_eos'] else 'NO'}.\n")
        L.append(f"Command: `{p['command']}`\n")
    sc = o.get("scaling")
    if sc:
        L.append("## c. Scaling with MPI ranks (--mode pretrain)\n")
        L.append("| what | cores | wall s | MB/s per core | CPU s | report.json s | speedup |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for k, label in (("np1", "tests/mpirun.sh -np 1, corpus as parts"), ("np2", "tests/mpirun.sh -np 2, corpus as parts")):
            d = sc[k]
            L.append(f"| {label} | {d['cores']} | {fmt(d['seconds'], 3)} | {fmt(d['mb_per_s_per_core'])} | {fmt(d['cpu_s'])} | "
                     f"{fmt(d.get('report', {}).get('seconds'), 3)} | {fmt(sc['speedup']) if k == 'np2' else ''} |")
        if "np2_one_file" in sc:
            d = sc["np2_one_file"]
            L.append(f"| tests/mpirun.sh -np 2, the single corpus file (for information) | {d['cores']} | {fmt(d['seconds'], 3)} | "
                     f"{fmt(d['mb_per_s_per_core'])} | {fmt(d['cpu_s'])} | {fmt(d.get('report', {}).get('seconds'), 3)} | "
                     f"{fmt(sc['np1']['seconds'] / d['seconds'])} |")
        L.append("")
        L.append(f"2 ranks on 2 cores: speedup {fmt(sc['speedup'])}x (wall, mpirun start-up included), parallel efficiency "
                 f"{fmt(100 * sc['efficiency'], 0)}%; on report.json seconds {fmt(sc['speedup_report_seconds'])}x; "
                 f"same tokens and samples as 1 rank: {'yes' if sc['same_tokens_and_samples'] else 'NO'}.\n")
        L.append(f"Commands: `{sc['np1']['command']}`; `{sc['np2']['command']}`\n")
    L.append("What each span includes: bench/tokenize/README.md.\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
