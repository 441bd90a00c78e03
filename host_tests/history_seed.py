"""Seeded history for host tests: state directories holding N days of load-profile and
billing rows written by ``tools/seed_history.py`` (flat model: 1000 W import, 333 W
reactive import), ending at END. Each (days, end) is seeded once per pytest process and
shared by every module that asks; a test that starts a meter copies it first
(``fresh_copy``): the seed itself is never started.

The tool flushes the flash image after every block write: 40 days take ~3 s on a tmpfs
and 10-25 s on a disk, so the seed is written in /dev/shm when there is one, then copied
next to the test's other files.
"""

import datetime
import os
import shutil
import subprocess
import tempfile

from running_meter import PYTHON, ROOT

UTC = datetime.timezone.utc
END = datetime.datetime(2026, 3, 1, tzinfo=UTC)
END_ISO = END.strftime("%Y-%m-%dT%H:%M:%S")
WATTS = 1000
PER_S = (WATTS, 0, WATTS // 3, 0)  # +A, -A, +R, -R of the flat model

_seeds = {}


def seeded_state(tmp_path_factory, days, end_iso=END_ISO):
    """Path of a state dir seeded with `days` days ending at end_iso (shared, read-only)."""
    key = (id(tmp_path_factory), days, end_iso)
    if key not in _seeds:
        d = str(tmp_path_factory.mktemp("seed%g" % days) / "state")
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        work = os.path.join(tempfile.mkdtemp(prefix="dlms-seed-", dir=shm), "state") if shm else d
        try:
            p = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "seed_history.py"),
                                "--state", work, "--days", str(days), "--end", end_iso],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, "seed_history failed:\n%s\n%s" % (p.stdout, p.stderr)
            rows = int(days * 96)
            assert "%d load-profile rows" % rows in p.stdout, p.stdout
            if work != d:
                shutil.copytree(work, d)
        finally:
            if work != d:
                shutil.rmtree(os.path.dirname(work), ignore_errors=True)
        _seeds[key] = d
    return _seeds[key]


def fresh_copy(seed, where):
    """A copy of a seeded state dir at `where` (replaced if it exists); returns it."""
    where = str(where)
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(seed, where)
    return where


def seeded_load_row(i, days):
    """Row i (0 = oldest) of a `days` seed ending at END: (time, AMR status, +A, -A, +R, -R),
    energies in Wh/varh as the registers count them."""
    first = END - datetime.timedelta(days=days)
    return (first + i * datetime.timedelta(minutes=15), 0) + tuple(
        p * 900 * i // 3600 for p in PER_S)


def seeded_billing_row(d, days):
    first = END - datetime.timedelta(days=days)
    return (first + datetime.timedelta(days=d),) + tuple(p * 86400 * d // 3600 for p in PER_S)
