#!/usr/bin/env python3
"""A bounded coverage-guided fuzzing campaign over every target (``targets.py``), with
atheris (libFuzzer) under CPython. ``make fuzz`` runs it; ``make test`` runs a short one
(``host_tests/test_fuzz_campaign.py``).

    .venv/bin/python host_tests/fuzz/campaign.py [--time S] [--runs N] [--jobs J]
        [--targets a,b,...] [--work DIR] [--minimise] [--coverage] [--json FILE]

--time S     seconds per target (default 60); --runs N: stop each target after N inputs
             instead (whichever comes first)
--jobs J     targets fuzzed at once (default: the number of CPUs)
--work DIR   where each target's growing corpus and crash artifacts go (default
             build/fuzz/<target>/); the committed corpus (host_tests/fuzz/corpus/<target>/)
             is read, never written, unless --minimise
--minimise   afterwards, merge the committed corpus, the seeds (seeds.py) and what the
             campaign found into a minimal corpus (libFuzzer -merge=1: the smallest set of
             inputs with the same coverage) and write it back to the committed corpus
--coverage   afterwards, replay each target's corpus under coverage.py and report line and
             branch coverage of the firmware modules the target exercises

A crash (an exception the target does not document, a broken invariant, or a hang:
``-timeout`` seconds for one input) leaves ``crash-*`` / ``timeout-*`` in the target's work
directory; the campaign carries on with the other targets, reports every crash with the
file that reproduces it (``run.py --replay TARGET FILE``) and exits 1.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(HERE, "run.py")
CORPUS = os.path.join(HERE, "corpus")
sys.path.insert(0, HERE)

TIMEOUT_S = 20  # one input taking longer is a hang (a few ms is normal; room for a loaded host)
# longest input per target: a single APDU fits 1200 bytes (max PDU 1024 + headers); a
# session (several frames or APDUs) 4096
MAX_LEN = {"axdr": 1200, "acse": 1200, "xdlms": 1200, "security": 1200, "profile": 1200,
           "iec21": 1024}

# the firmware modules each target exercises (for --coverage)
MODULES = {
    "hdlc": ["dlms/hdlc.py"],
    "wrapper": ["dlms/wrapper.py"],
    "axdr": ["dlms/axdr.py"],
    "acse": ["dlms/acse.py", "dlms/ber.py"],
    "xdlms": ["dlms/xdlms.py"],
    "security": ["dlms/security.py"],
    "assoc_public": ["dlms/association.py"],
    "assoc_reader": ["dlms/association.py"],
    "assoc_mgmt": ["dlms/association.py", "dlms/security.py", "cosem/security_setup.py",
                   "cosem/clock.py", "cosem/hdlc_setup.py", "cosem/local_port_setup.py"],
    "profile": ["cosem/profile_generic.py"],
    "stack_hdlc": ["dlms/hdlc.py", "dlms/association.py"],
    "iec21": ["dlms/iec21.py", "dlms/hdlc.py"],
}


def python():
    venv = os.path.join(ROOT, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


_STAT = re.compile(r"stat::(\w+):\s*(\d+)")
_COV = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)")


def fuzz_one(name, seconds, runs, work, log):
    """Fuzz one target; returns its figures."""
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus, exist_ok=True)
    committed = os.path.join(CORPUS, name)
    os.makedirs(committed, exist_ok=True)
    before = set(glob.glob(os.path.join(work, "crash-*")) + glob.glob(os.path.join(work, "timeout-*")))
    base = [python(), RUN, name, "-timeout=%d" % TIMEOUT_S, "-rss_limit_mb=4096",
            "-print_final_stats=1", "-artifact_prefix=" + work + "/",
            "-max_len=%d" % MAX_LEN.get(name, 4096)]
    t0 = time.monotonic()
    res = {"target": name, "execs": 0, "cov": 0, "ft": 0, "corpus": 0, "crashes": [],
           "seconds": 0.0, "exit": None}
    execs_total = 0
    deadline = t0 + seconds
    # restart after a crash, until the time (or the runs) are used (libFuzzer stops at the
    # first crash)
    while True:
        left = max(1, int(deadline - time.monotonic()))
        cmd = base + ["-max_total_time=%d" % left]
        if runs:
            cmd.append("-runs=%d" % max(1, runs - execs_total))
        cmd += [corpus, committed]
        with open(log, "ab") as lf:
            p = subprocess.run(cmd, cwd=ROOT, stdout=lf, stderr=subprocess.STDOUT)
        with open(log, "rb") as lf:
            text = lf.read().decode("utf-8", "replace")
        run_text = text.rsplit("INFO: Seed:", 1)[-1]
        stats = dict((k, int(v)) for k, v in _STAT.findall(run_text))
        execs_total += stats.get("number_of_executed_units", 0)
        cov = _COV.findall(run_text)
        if cov:
            res["cov"], res["ft"], res["corpus"] = [int(x) for x in cov[-1]]
        res["exit"] = p.returncode
        now = set(glob.glob(os.path.join(work, "crash-*")) + glob.glob(os.path.join(work, "timeout-*")))
        new = sorted(now - before)
        before = now
        res["crashes"] += new
        if (p.returncode == 0 or not new or time.monotonic() >= deadline - 1
                or (runs and execs_total >= runs)):
            break
    # A timeout that does not reproduce (the input runs in a few ms when replayed alone) was
    # the host, not the meter: starved of CPU. Reported apart, not counted as a crash.
    res["timeouts_not_reproduced"] = []
    for c in list(res["crashes"]):
        if os.path.basename(c).startswith("timeout-"):
            try:
                ok = subprocess.run([python(), RUN, "--replay", name, c], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    timeout=TIMEOUT_S).returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            if ok:
                res["crashes"].remove(c)
                res["timeouts_not_reproduced"].append(c)
    res["execs"] = execs_total
    res["seconds"] = round(time.monotonic() - t0, 1)
    res["execs_per_s"] = round(execs_total / res["seconds"]) if res["seconds"] else 0
    if p.returncode not in (0,) and not res["crashes"] and not res["timeouts_not_reproduced"]:
        res["crashes"].append("(exit %d, see %s)" % (p.returncode, log))
    return res


def minimise(name, work):
    """Merge committed corpus + seeds + the campaign's corpus into a minimal one, and make
    it the committed corpus."""
    import seeds

    tmp = tempfile.mkdtemp(prefix="dlms-fuzz-merge-")
    seed_dir = os.path.join(tmp, "seeds")
    seeds.build(seed_dir)
    out = os.path.join(tmp, "merged")
    os.makedirs(out)
    committed = os.path.join(CORPUS, name)
    os.makedirs(committed, exist_ok=True)
    dirs = [committed, os.path.join(seed_dir, name), os.path.join(work, "corpus")]
    cmd = [python(), RUN, name, "-merge=1", "-timeout=%d" % TIMEOUT_S,
           "-max_len=%d" % MAX_LEN.get(name, 4096), out] + [d for d in dirs if os.path.isdir(d)]
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    if not os.listdir(out):
        raise RuntimeError("merge of %s produced nothing: corpus left as it was" % name)
    shutil.rmtree(committed)
    shutil.copytree(out, committed)
    shutil.rmtree(tmp, ignore_errors=True)
    files = os.listdir(committed)
    size = sum(os.path.getsize(os.path.join(committed, f)) for f in files)
    return len(files), size


def coverage_of(name):
    """Line and branch coverage of the target's modules by its committed corpus."""
    tmp = tempfile.mkdtemp(prefix="dlms-fuzz-cov-")
    data = os.path.join(tmp, "cov")
    src = [os.path.join(ROOT, "firmware", m) for m in MODULES[name]]
    subprocess.run([python(), "-m", "coverage", "run", "--branch", "--data-file=" + data,
                    "--include=" + ",".join(src), RUN, "--replay", name,
                    os.path.join(CORPUS, name)], cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    out = subprocess.run([python(), "-m", "coverage", "json", "--data-file=" + data, "-o",
                          os.path.join(tmp, "c.json")], cwd=ROOT, capture_output=True)
    res = {}
    try:
        with open(os.path.join(tmp, "c.json")) as f:
            j = json.load(f)
        for path, info in j["files"].items():
            s = info["summary"]
            res[os.path.relpath(path, os.path.join(ROOT, "firmware"))] = {
                "lines": "%d/%d" % (s["covered_lines"], s["num_statements"]),
                "line_pct": round(100.0 * s["covered_lines"] / max(1, s["num_statements"]), 1),
                "branches": "%d/%d" % (s.get("covered_branches", 0), s.get("num_branches", 0)),
                "branch_pct": round(100.0 * s.get("covered_branches", 0)
                                    / max(1, s.get("num_branches", 0)), 1)}
    except (OSError, ValueError, KeyError):
        res["error"] = out.stderr.decode("utf-8", "replace")[-500:]
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def main(argv=None):
    import targets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=int, default=60)
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--targets", default=",".join(targets.TARGETS))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "fuzz"))
    ap.add_argument("--minimise", action="store_true")
    ap.add_argument("--coverage", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    names = [t for t in a.targets.split(",") if t]
    for n in names:
        if n not in targets.TARGETS:
            sys.exit("unknown target %r" % n)

    def job(n):
        work = os.path.join(a.work, n)
        os.makedirs(work, exist_ok=True)
        r = fuzz_one(n, a.time, a.runs, work, os.path.join(work, "fuzz.log"))
        print("%-13s %9d execs %6d/s  cov %5d ft %6d  corpus %5d  crashes %d%s"
              % (n, r["execs"], r["execs_per_s"], r["cov"], r["ft"], r["corpus"],
                 len(r["crashes"]), "  (%d timeout(s) not reproduced: host load)"
                 % len(r["timeouts_not_reproduced"]) if r["timeouts_not_reproduced"]
                 else ""), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        results = list(ex.map(job, names))
    for r in results:
        if a.minimise and not r["crashes"]:
            r["minimised"] = minimise(r["target"], os.path.join(a.work, r["target"]))
            print("%-13s minimised corpus: %d inputs, %d bytes" % ((r["target"],)
                                                                   + r["minimised"]))
        if a.coverage:
            r["coverage"] = coverage_of(r["target"])
            for mod, c in sorted(r["coverage"].items()):
                if isinstance(c, dict):
                    print("%-13s %-28s lines %s (%.1f%%) branches %s (%.1f%%)"
                          % (r["target"], mod, c["lines"], c["line_pct"], c["branches"],
                             c["branch_pct"]))
    crashes = [(r["target"], c) for r in results for c in r["crashes"]]
    total = sum(r["execs"] for r in results)
    print("campaign: %d targets, %d executions, %d crash(es)" % (len(results), total,
                                                                  len(crashes)))
    for t, c in crashes:
        print("CRASH %s: %s  (reproduce: .venv/bin/python host_tests/fuzz/run.py --replay %s %s)"
              % (t, c, t, c))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
