"""A short coverage-guided fuzzing campaign (atheris) over every decoder that sees wire bytes
(host_tests/fuzz/targets.py), as part of ``make test``: the committed corpus is replayed
first (a regression check of every input it holds), then each target is fuzzed for a few
seconds. ``make fuzz [FUZZ_TIME=seconds per target]`` runs the long version; the figures
are in docs/robustness.md."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CAMPAIGN = os.path.join(HERE, "fuzz", "campaign.py")
SECONDS = int(os.environ.get("DLMS_FUZZ_SHORT", "4"))  # per target


def test_short_fuzz_campaign_finds_no_crash(tmp_path):
    pytest.importorskip("atheris")
    report = tmp_path / "report.json"
    p = subprocess.run([sys.executable, CAMPAIGN, "--time", str(SECONDS), "--jobs",
                        str(min(4, os.cpu_count() or 1)), "--work", str(tmp_path / "work"),
                        "--json", str(report)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    out = p.stdout + p.stderr
    assert report.exists(), out[-4000:]
    results = json.loads(report.read_text())
    crashes = [(r["target"], c) for r in results for c in r["crashes"]]
    detail = ""
    for _t, c in crashes:
        log = os.path.join(os.path.dirname(c), "fuzz.log") if os.path.isabs(c) else ""
        if log and os.path.exists(log):
            with open(log, errors="replace") as f:
                detail += f.read()[-3000:]
    assert not crashes, "fuzzing found crashes: %r\n%s\n%s" % (crashes, out[-3000:], detail)
    assert p.returncode == 0, out[-4000:]
    for r in results:
        assert r["execs"] > 0, "target %s did not run: %r" % (r["target"], r)
