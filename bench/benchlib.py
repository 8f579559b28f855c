"""What the benchmarks' summarize.py scripts share: reading GNU time -v output, running a
command for its output, describing the machine, asking a venv for package versions."""
import json
import os
import platform
import re
import subprocess


def read_time_v(path):
    """Fields of GNU time -v output."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("Elapsed (wall clock) time"):
                s = 0.0
                for p in (float(x) for x in line.rsplit(": ", 1)[1].split(":")):
                    s = s * 60 + p
                out["wall_s"] = s
            elif line.startswith("Maximum resident set size (kbytes):"):
                out["peak_rss_mb"] = int(line.split(":")[1]) / 1024
            elif line.startswith("User time (seconds):"):
                out["user_s"] = float(line.split(":")[1])
            elif line.startswith("System time (seconds):"):
                out["sys_s"] = float(line.split(":")[1])
            elif line.startswith("Percent of CPU this job got:"):
                out["cpu_percent"] = line.split(":")[1].strip()
            elif line.startswith("Involuntary context switches:"):
                out["involuntary_ctx_switches"] = int(line.split(":")[1])
    out["cpu_s"] = out.get("user_s", 0.0) + out.get("sys_s", 0.0)
    return out


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def lscpu_field(lscpu, name):
    m = re.search(r"^" + re.escape(name) + r":\s*(.+)$", lscpu, re.M)
    return m.group(1).strip() if m else None


def machine(load_start=None):
    """(facts every benchmark reports, lscpu's output for the caller's own fields)."""
    lscpu = sh(["lscpu"])
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":")[1].strip()
    except OSError:
        pass
    m = {"cpu_model": lscpu_field(lscpu, "Model name") or platform.processor(),
         # not nproc: GNU nproc honours OMP_NUM_THREADS, which the run scripts set
         "logical_cpus": os.cpu_count(), "cpus_available": len(os.sched_getaffinity(0)),
         "threads_per_core": lscpu_field(lscpu, "Thread(s) per core"),
         "kernel": platform.release(), "mem_total": mem,
         "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
         "loadavg_at_summary": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None}
    if load_start is not None:
        m["loadavg_at_start"] = load_start.split()[:3] if load_start else None
    return m, lscpu


def peer_versions(venv, packages):
    """The Python version and the given packages' versions in a virtualenv."""
    py = os.path.join(venv, "bin", "python")
    code = ("import importlib.metadata as m, sys, json; print(json.dumps({'python': sys.version.split()[0], "
            "**{p: m.version(p) for p in " + repr(list(packages)) + "}}))")
    try:
        return json.loads(sh([py, "-c", code]))
    except ValueError:
        return {}
