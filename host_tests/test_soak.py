"""The soak and load test (tools/soak.py, ``make soak``) in short, as part of ``make test``:
200 mixed sessions (public/reader/management, HDLC/TCP, mid-transfer aborts) against a
virtual meter at the default heap, none may fail and the heap after collection stays flat;
then 20 TCP clients at once for a few seconds: every session that got a connection is
served, no client starves, and every connection accepted at once is served while all are
open. docs/robustness.md has the long run's figures."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOAK = os.path.join(ROOT, "tools", "soak.py")


def test_short_soak_and_concurrency(tmp_path):
    report = tmp_path / "soak.json"
    p = subprocess.run([sys.executable, SOAK, "--sessions", "200", "--concurrent", "20",
                        "--concurrent-time", "5", "--dir", str(tmp_path / "work"), "--json",
                        str(report)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    assert report.exists(), out[-4000:]
    r = json.loads(report.read_text())
    assert not r["failures"], "failed sessions: %r\n%s" % (r["failures"][:5], out[-3000:])
    assert r["heap_spread_after_100"] <= 1024, "heap not flat: %r" % (r["heap"],)
    c = r["concurrency"]
    assert not c["failed"] and not c["starved"], (c, out[-3000:])
    cap = r["capacity"]
    assert cap["associated"] >= 4, cap  # the board's preallocated connections at least
    assert cap["served_while_all_open"] == cap["associated"], cap
    assert r["exit"] == 0 and r["ok"], out[-4000:]
