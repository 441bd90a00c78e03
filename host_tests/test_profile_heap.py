"""Acceptance: a full 40-day load profile (3,840 rows) downloads over HDLC at the smallest
--heap at which a 1-day download succeeds: RAM does not grow with the number of rows.

The smallest heap is searched in steps of 2wK (binary search in 90..140wK; the window's
ends are checked, so a window that no longer brackets the answer fails the test instead of
giving a wrong "smallest"). A probe at heap H: a fresh copy of a state seeded with 1 day of
history (tools/seed_history.py, 96 rows), the meter (default transports: HDLC and TCP)
started at the end of that day (it captures one row more: 97), one reader association
(gurux-dlms, LLS) over HDLC on the pty at max PDU 1024 reads capture_objects then the
whole buffer; success = the meter started, the rows are all there (count, consecutive
15-minute times, the seeded values), and the meter is still alive and stops cleanly.

* test_40_day_download_at_the_smallest_heap_for_one_day: the acceptance as stated; at that
  same heap a meter holding 40 days (3,840 + 1 rows) serves the whole buffer, twice (two
  associations: nothing is kept from one download to the next either).
* test_40_day_download_needs_no_more_heap_than_its_meter_needs_to_start: the download half
  on its own: at the smallest heap (from the 1-day one up) at which the 40-day meter
  starts, it serves the whole buffer twice.

The buffer is streamed row by row from flash (cosem/profile_generic.py); if a download
held its rows (or anything per row) in RAM, the 40-day download would need ~40x the
1-day one's memory and fail at that heap (checked by making _rows keep its rows: both
tests fail).

What decides these tests near the limit is the heap's layout, not only its size: whether
a meter starts at a given --heap is not monotonic and shifts with anything allocated
before (even the length of the state path or the pty name), so the smallest heap moves by
a wK or two between runs. Failures seen with the firmware of this commit (see its commit
message; fw/test_profile_capture_errors.py pins the second one):
* the 40-day meter does not start at the 1-day heap: MemoryError in objects.build
  (add_history -> LogicalDevice.add) before its ready line. The ProfileLog recovery at boot
  lists the flash directory once per ring (meter/profile_log.py _segments), leaving
  garbage that grows with the number of segment files (~4 KB with 1 day, ~19 KB with 40)
  in a heap the board's slab keeps small; with a gc.collect() after the rings are
  recovered the 40-day meter starts wherever the 1-day one does;
* a meter that has started dies in its first main-loop round (exit status 1) when the
  first load-profile capture's energy read persists (Store.save) and gets MemoryError:
  nothing between ProfileGeneric.capture and main.py catches it. On such a heap the
  1-day probe fails and the search moves one step up.
"""

import datetime
import os

import pytest

import history_seed
from clients import GuruxClient, LLS_PASSWORD, READER
from history_seed import END, END_ISO, UTC
from running_meter import MeterStartError, start_meter

PERIOD = datetime.timedelta(minutes=15)
LOAD = "1.0.99.1.0.255"
WINDOW = (90, 140)  # wK, even
STEP = 2


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """1-day and 40-day seeds (shared with other modules of the same pytest run)."""
    return {d: history_seed.seeded_state(tmp_path_factory, d) for d in (1, 40)}


class Probe:
    def __init__(self, heap_k, days):
        self.heap_k = heap_k
        self.days = days
        self.ok = False
        self.why = ""
        self.ready = None
        self.rows = []


def check_rows(rows, days):
    """'' if rows are the seeded days plus the meter's own first row, else why not."""
    n = days * 96 + 1
    if len(rows) != n:
        return "%d rows, expected %d" % (len(rows), n)
    first = END - datetime.timedelta(days=days)
    for i, row in enumerate(rows):
        t = row[0].value.astimezone(UTC)
        if t != first + i * PERIOD:
            return "row %d stamped %s, expected %s" % (i, t, first + i * PERIOD)
        if i < n - 1 and tuple(row[1:]) != history_seed.seeded_load_row(i, days)[1:]:
            return "row %d is %r" % (i, row)
    return ""


def download(meter, days):
    with GuruxClient("hdlc", meter.serial, client=READER, password=LLS_PASSWORD,
                     max_pdu=1024) as g:
        o = g.make_object(LOAD, 7)
        g.read_object(o, 3)
        g.read_object(o, 2)
    return list(o.buffer)


def _trace(text, frames=3):
    """The error and the innermost frames of the last traceback in a meter's output."""
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    i = max([j for j, x in enumerate(lines) if x.startswith("Traceback")] or [0])
    calls = [x for x in lines[i:] if x.startswith("File ")][-frames:]
    err = [x for x in lines[i:] if not x.startswith(("File ", "Traceback"))]
    return "%s (%s)" % (err[-1][:200] if err else "?", " <- ".join(reversed(calls)))


def probe(tmp_root, seeds, heap_k, days, downloads=1, where=None):
    """One meter at heap_k wK on a fresh copy of the `days` seed; `downloads` HDLC
    downloads of the whole load profile. where: the meter's directory (state, pty link)."""
    p = Probe(heap_k, days)
    d = where or os.path.join(str(tmp_root), "h%d-d%d" % (heap_k, days))
    state = history_seed.fresh_copy(seeds[days], os.path.join(d, "state"))
    try:
        m = start_meter(d, heap="%dwK" % heap_k, state=state,
                        extra_args=["--start-time", END_ISO], timeout=30)
    except MeterStartError as e:
        p.why = "did not start: " + _trace(str(e))
        return p
    p.ready = m.ready
    try:
        for k in range(downloads):
            try:
                p.rows = download(m, days)
            except Exception as e:
                if m.alive():
                    p.why = "download %d failed: %r" % (k + 1, e)
                else:
                    p.why = "the meter died during download %d (exit status %r): %s" % (
                        k + 1, m.proc.poll(), _trace(m.stderr(), 6))
                return p
            why = check_rows(p.rows, days)
            if why:
                p.why = "download %d: %s" % (k + 1, why)
                return p
        if not m.alive():
            p.why = "the meter died after the download: " + _trace(m.stderr(), 6)
            return p
    finally:
        rc = m.stop(check=False)
    if rc != 0 and not p.why:
        p.why = "the meter exited with %r after SIGTERM: %s" % (rc, _trace(m.stderr(), 6))
        return p
    p.ok = True
    return p


def smallest_heap(tmp_root, seeds, days, window=WINDOW):
    """(smallest heap in wK, {heap: Probe}) for one download of `days` over HDLC."""
    lo, hi = window
    probes = {}

    def works(k):
        probes[k] = probe(tmp_root, seeds, k, days)
        return probes[k].ok

    assert works(hi), "a %d-day download fails even at %dwK: %s" % (days, hi, probes[hi].why)
    assert not works(lo), ("a %d-day download works at %dwK, the bottom of the search window: "
                           "widen the window" % (days, lo))
    while hi - lo > STEP:
        mid = (lo + hi) // 2
        mid -= mid % STEP
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi, probes


@pytest.fixture(scope="module")
def one_day(tmp_path_factory, seeds):
    """(smallest heap for a 1-day download, its probes), searched once for the module."""
    return smallest_heap(tmp_path_factory.mktemp("search"), seeds, 1)


def _heap_note(p):
    r = p.ready or {}
    return "heap after boot: %s used, %s free" % (r.get("heap_used"), r.get("heap_free"))


def test_40_day_download_at_the_smallest_heap_for_one_day(tmp_path, seeds, one_day):
    """The acceptance, as stated."""
    k, probes = one_day
    below = probes.get(k - STEP)
    assert below is not None and not below.ok  # the search bracketed it
    p40 = probe(tmp_path, seeds, k, 40, downloads=2)
    assert p40.ok, ("a 1-day download works at %dwK (%s) but the 40-day one does not: %s"
                    % (k, _heap_note(probes[k]), p40.why))
    assert len(p40.rows) == 40 * 96 + 1
    print("\nsmallest heap for a 1-day HDLC download: %dwK (%s; at %dwK: %s); the 40-day "
          "download (3,841 rows) works twice at %dwK" % (k, _heap_note(probes[k]), k - STEP,
                                                         below.why[:160], k))


def test_40_day_download_needs_no_more_heap_than_its_meter_needs_to_start(tmp_path, seeds,
                                                                          one_day):
    """The download part of the acceptance on its own: at the smallest heap (from the
    1-day one up, steps of 2wK) at which a meter holding 40 days starts at all, it serves
    the whole 40-day buffer, twice. The row-by-row streaming is what this shows; whether
    the meter starts is the other test's business."""
    k, _ = one_day
    tried = []
    for h in range(k, k + 12, STEP):
        p = probe(tmp_path, seeds, h, 40, downloads=2)
        if p.ready is not None:
            assert p.ok, "the 40-day meter starts at %dwK (%s) but: %s" % (h, _heap_note(p),
                                                                          p.why)
            assert len(p.rows) == 40 * 96 + 1
            print("\n40-day meter: starts and serves 3,841 rows twice at %dwK (%s); did not "
                  "start at %s" % (h, _heap_note(p), tried or "-"))
            return
        tried.append(h)
    pytest.fail("a meter with 40 days of history does not start at %s wK" % tried)
