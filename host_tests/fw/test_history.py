"""meter.history: the capture schedule on local-time boundaries, the AMR profile status and
the event log, with the real profiles of cosem.objects.add_history on ProfileLogs in a
temporary directory and a real meter.clock.Clock over a settable fake RTC, wired as
app.App wires them. Runs under CPython and MicroPython."""

import os
import struct

from cosem import objects
from dlms import axdr
from dlms import xdlms
from meter import clock as mclock
from meter import history as mh
from meter.profile_log import ProfileLog
from tmpdirs import rmtree, tmpdir


def utc(y, mo, d, hh=0, mi=0, ss=0):
    return mclock.to_seconds(y, mo, d, hh, mi, ss)


class RTC:
    """A settable machine.RTC stand-in counting UTC seconds since 2000 in ``s``."""

    def __init__(self, s):
        self.s = s

    def datetime(self, t=None):
        if t is None:
            y, mo, d, hh, mi, ss, wd = mclock.from_seconds(self.s)
            return (y, mo, d, wd - 1, hh, mi, ss, 0)
        y, mo, d, _wd, hh, mi, ss, _us = t
        self.s = mclock.to_seconds(y, mo, d, hh, mi, ss)


class Meter:
    """The history part of app.App: clock, History, the three profiles of add_history on
    ProfileLogs in ``root``, the same hooks, and start() as at boot."""

    def __init__(self, root, rtc, alive_at=None, clean=True, deviation=-60, dst=False,
                 invalid=False, early=None):
        self.rtc = rtc
        self.clock = mclock.Clock(rtc, deviation)
        if dst:
            self.clock.set_dst(enabled=True)
        if invalid:
            self.clock.status |= mclock.STATUS_INVALID
        h = self.history = mh.History(self.clock)
        if early is not None:
            early(h)  # events while the rest of the meter is built (app.App: self-test)
        self.logs = {"load": ProfileLog(root, "lp", 22, 400),
                     "billing": ProfileLog(root, "bill", 21, 20),
                     "events": ProfileLog(root, "ev", 6, 100)}
        dev = objects.LogicalDevice(b"MMM0000012345678")
        self.load, self.billing, self.events = objects.add_history(dev, self.clock, h, self.logs)
        h.load, h.billing, h.events = self.load, self.billing, self.events
        for prof in (self.load, self.billing, self.events):
            prof.now = lambda: (self.clock.utc()[0], h.clock_status())
            prof.on_capture.append(lambda p, t: h.captured(p, t))
            prof.on_reset.append(lambda p: h.reset(p, self.clock.utc()[0]))
        self.clock.on_change.append(self._clock_changed)
        h.start(self.clock.utc()[0], alive_at, clean)

    def _clock_changed(self, clock, old_utc):
        if old_utc is not None:
            self.history.clock_set(old_utc, clock.utc()[0])

    def now(self):
        return self.rtc.s

    def run_to(self, end, step=7):
        """Poll every ``step`` seconds of RTC time until ``end`` (included)."""
        while self.rtc.s < end:
            self.rtc.s = min(self.rtc.s + step, end)
            self.history.poll(self.clock.utc()[0])

    def shutdown(self):
        """app.App.shutdown's part: the power-down event of a clean stop."""
        self.history.log_event(mh.EV_POWER_DOWN)
        self.close()

    def close(self):
        for log in self.logs.values():
            log.close()


def rows(prof):
    log = prof.log
    out = []
    for a in range(log.start(), log.next):
        r = log.read(a)
        assert r is not None, a
        out.append(bytes(r))
    return out


def times(prof):
    return [struct.unpack(">I", r[:4])[0] for r in rows(prof)]


def statuses(load):
    """(time, AMR profile status) of every load-profile row."""
    return [(struct.unpack(">I", r[:4])[0], r[5]) for r in rows(load)]


def events(m):
    """(time, event code) of every event-log row."""
    return [(struct.unpack(">I", r[:4])[0], r[5]) for r in rows(m.events)]


def codes(m):
    return [e[1] for e in events(m)]


def buffer(prof):
    """The profile's buffer as a client reads it (typed values), through the pump."""
    pump = xdlms.Pump()
    w = pump.reset()
    pump.start(prof.get(2, w, None, None))
    out = bytearray(200)
    data = bytearray()
    while not pump.done:
        pos = pump.fill(out, 0, len(out))
        data += out[:pos]
    assert not pump.failed
    return axdr.Reader(bytes(data)).data()[1]


# ------------------------------------------------------------------ boundary()
def test_boundary_in_utc():
    t = utc(2024, 1, 15, 10, 7, 13)
    assert mh.boundary(t, 900, 0) == utc(2024, 1, 15, 10, 0)
    assert mh.boundary(utc(2024, 1, 15, 10, 15), 900, 0) == utc(2024, 1, 15, 10, 15)  # itself
    assert mh.boundary(utc(2024, 1, 15, 10, 14, 59), 900, 0) == utc(2024, 1, 15, 10, 0)
    assert mh.boundary(t, 86400, 0) == utc(2024, 1, 15)
    assert mh.boundary(t, 3600, 0) == utc(2024, 1, 15, 10)
    assert mh.boundary(t, 60, 0) == utc(2024, 1, 15, 10, 7)
    assert mh.boundary(utc(2000, 1, 1, 0, 5), 900, 0) == 0


def test_boundary_with_a_time_zone_and_dst():
    t = utc(2024, 1, 15, 10, 7, 13)
    # deviation -60 (UTC+1): local midnight is 23:00 UTC the day before
    assert mh.boundary(t, 86400, -60) == utc(2024, 1, 14, 23)
    assert mh.boundary(utc(2024, 1, 15, 22, 59, 59), 86400, -60) == utc(2024, 1, 14, 23)
    assert mh.boundary(utc(2024, 1, 15, 23), 86400, -60) == utc(2024, 1, 15, 23)
    assert mh.boundary(t, 900, -60) == utc(2024, 1, 15, 10, 0)  # whole hours: the same
    # summer time in force (deviation -120): local midnight is 22:00 UTC
    assert mh.boundary(utc(2024, 7, 15, 10), 86400, -120) == utc(2024, 7, 14, 22)
    # a time zone east of UTC with half an hour (UTC+5:30) and one west (UTC-5)
    assert mh.boundary(t, 3600, -330) == utc(2024, 1, 15, 9, 30)
    assert mh.boundary(t, 86400, -330) == utc(2024, 1, 14, 18, 30)
    assert mh.boundary(utc(2024, 1, 15, 3), 86400, 300) == utc(2024, 1, 14, 5)


# ------------------------------------------------------------------ the schedule
def test_a_fresh_meter_starts_with_the_next_boundary():
    d = tmpdir("hist-fresh")
    try:
        rtc = RTC(utc(2024, 1, 15, 10, 7, 13))
        m = Meter(d, rtc)
        m.history.poll(m.now())
        assert times(m.load) == [] and times(m.billing) == []
        m.run_to(utc(2024, 1, 15, 10, 14, 59), 1)
        assert times(m.load) == []
        m.run_to(utc(2024, 1, 15, 10, 15), 1)
        assert times(m.load) == [utc(2024, 1, 15, 10, 15)]
        assert statuses(m.load) == [(utc(2024, 1, 15, 10, 15), 0)]  # no power down here
        assert codes(m) == [mh.EV_FIRMWARE_START]
        m.close()
    finally:
        rmtree(d)


def test_every_boundary_is_captured_once_over_a_simulated_day():
    d = tmpdir("hist-day")
    try:
        start = utc(2024, 1, 14, 22, 50)  # 23:50 local (UTC+1)
        rtc = RTC(start)
        m = Meter(d, rtc)
        m.run_to(start + 86400 - 1, 7)
        lp = times(m.load)
        assert len(lp) == 96, len(lp)
        assert lp == [utc(2024, 1, 14, 23) + 900 * i for i in range(96)]
        # one billing row, at local midnight
        assert times(m.billing) == [utc(2024, 1, 14, 23)]
        enc = buffer(m.billing)[0][1][0][1]
        assert enc[5:8] == b"\x00\x00\x00" and enc[2:4] == b"\x01\x0f"  # 15 Jan 00:00
        # the load-profile rows as a client reads them: status 0, the energy columns 0
        for row in buffer(m.load):
            assert row[1][1] == (axdr.UNSIGNED, 0)
            assert row[1][2:] == [(axdr.DOUBLE_LONG_UNSIGNED, 0)] * 4
        assert codes(m) == [mh.EV_FIRMWARE_START]
        assert m.history.missed == 0
        m.close()
    finally:
        rmtree(d)


def test_polling_late_captures_the_boundary_not_the_poll_time():
    d = tmpdir("hist-late")
    try:
        rtc = RTC(utc(2024, 1, 15, 10, 7))
        m = Meter(d, rtc)
        m.run_to(utc(2024, 1, 15, 10, 29, 30), 97)  # polls at odd times
        m.run_to(utc(2024, 1, 15, 10, 44, 59), 500)
        assert times(m.load) == [utc(2024, 1, 15, 10, 15), utc(2024, 1, 15, 10, 30)]
        m.close()
    finally:
        rmtree(d)


def test_restart_after_power_off_across_boundaries():
    d = tmpdir("hist-pdn")
    try:
        rtc = RTC(utc(2024, 1, 14, 22, 50))
        m = Meter(d, rtc)
        m.run_to(utc(2024, 1, 15, 10, 40))
        lp = times(m.load)
        assert lp == [utc(2024, 1, 14, 23) + 900 * i for i in range(47)]  # .. 10:30
        assert times(m.billing) == [utc(2024, 1, 14, 23)]
        alive = utc(2024, 1, 15, 10, 38, 20)  # the last state record written
        m.close()  # power cut: no shutdown
        # off across 10:45 .. 13:00 and across local midnight of three days
        rtc.s = utc(2024, 1, 18, 13, 7, 30)
        m2 = Meter(d, rtc, alive_at=alive, clean=False)
        m2.history.poll(m2.now())
        # exactly one row, for the most recent boundary, with the power-down bit
        assert statuses(m2.load)[47:] == [(utc(2024, 1, 18, 13), mh.PDN)]
        assert times(m2.load)[:47] == lp
        # the last local midnight only
        assert times(m2.billing) == [utc(2024, 1, 14, 23), utc(2024, 1, 17, 23)]
        # power-down (when last known alive), power-up, firmware start: in that order
        assert events(m2) == [(utc(2024, 1, 14, 22, 50), mh.EV_FIRMWARE_START),
                              (alive, mh.EV_POWER_DOWN),
                              (utc(2024, 1, 18, 13, 7, 30), mh.EV_POWER_UP),
                              (utc(2024, 1, 18, 13, 7, 30), mh.EV_FIRMWARE_START)]
        assert m2.history.last_code == mh.EV_FIRMWARE_START
        # and on as usual: the next rows without the bit
        m2.run_to(utc(2024, 1, 18, 13, 31))
        assert statuses(m2.load)[47:] == [(utc(2024, 1, 18, 13), mh.PDN),
                                         (utc(2024, 1, 18, 13, 15), 0),
                                         (utc(2024, 1, 18, 13, 30), 0)]
        m2.close()
    finally:
        rmtree(d)


def test_restart_within_one_interval_marks_the_next_row():
    d = tmpdir("hist-pdn2")
    try:
        rtc = RTC(utc(2024, 1, 15, 9, 50))
        m = Meter(d, rtc)
        m.run_to(utc(2024, 1, 15, 10, 2))
        m.shutdown()  # a clean stop logs its power-down itself
        rtc.s = utc(2024, 1, 15, 10, 9)
        m2 = Meter(d, rtc, alive_at=utc(2024, 1, 15, 10, 2), clean=True)
        m2.run_to(utc(2024, 1, 15, 10, 14, 59))
        assert times(m2.load) == [utc(2024, 1, 15, 10)]  # nothing new yet
        m2.run_to(utc(2024, 1, 15, 10, 30, 5))
        assert statuses(m2.load) == [(utc(2024, 1, 15, 10), 0),
                                     (utc(2024, 1, 15, 10, 15), mh.PDN),
                                     (utc(2024, 1, 15, 10, 30), 0)]
        # the power-down once (the clean stop's), then power-up
        assert events(m2) == [(utc(2024, 1, 15, 9, 50), mh.EV_FIRMWARE_START),
                              (utc(2024, 1, 15, 10, 2), mh.EV_POWER_DOWN),
                              (utc(2024, 1, 15, 10, 9), mh.EV_POWER_UP),
                              (utc(2024, 1, 15, 10, 9), mh.EV_FIRMWARE_START)]
        m2.close()
    finally:
        rmtree(d)


def test_clock_set_forward():
    d = tmpdir("hist-fwd")
    try:
        rtc = RTC(utc(2024, 1, 15, 9, 58))
        m = Meter(d, rtc)
        m.run_to(utc(2024, 1, 15, 10, 5, 3))
        old = m.now()
        new = utc(2024, 1, 15, 12, 37, 10)
        m.clock.set_utc(new)
        m.run_to(utc(2024, 1, 15, 13, 1))
        # one row for the most recent boundary passed, with the clock-adjusted bit
        assert statuses(m.load) == [(utc(2024, 1, 15, 10), 0),
                                    (utc(2024, 1, 15, 12, 30), mh.CAD),
                                    (utc(2024, 1, 15, 12, 45), 0),
                                    (utc(2024, 1, 15, 13), 0)]
        assert events(m) == [(utc(2024, 1, 15, 9, 58), mh.EV_FIRMWARE_START),
                             (old, mh.EV_CLOCK_OLD), (new, mh.EV_CLOCK_NEW)]
        assert m.history.last_code == mh.EV_CLOCK_NEW
        m.close()
    finally:
        rmtree(d)


def test_clock_set_backwards_does_not_duplicate_rows():
    d = tmpdir("hist-back")
    try:
        rtc = RTC(utc(2024, 1, 15, 9, 58))
        m = Meter(d, rtc)
        m.run_to(utc(2024, 1, 15, 10, 40))
        old = m.now()
        new = utc(2024, 1, 15, 9, 20)
        m.clock.set_utc(new)
        m.run_to(utc(2024, 1, 15, 10, 44, 59))  # through 9:30 .. 10:30 again
        assert times(m.load) == [utc(2024, 1, 15, 10), utc(2024, 1, 15, 10, 15),
                                 utc(2024, 1, 15, 10, 30)]
        m.run_to(utc(2024, 1, 15, 11, 1))
        # resumes after the newest row; the first new row carries the clock-adjusted bit
        assert statuses(m.load) == [(utc(2024, 1, 15, 10), 0),
                                    (utc(2024, 1, 15, 10, 15), 0),
                                    (utc(2024, 1, 15, 10, 30), 0),
                                    (utc(2024, 1, 15, 10, 45), mh.CAD),
                                    (utc(2024, 1, 15, 11), 0)]
        # the event log's times go back: old, then new
        assert events(m)[1:] == [(old, mh.EV_CLOCK_OLD), (new, mh.EV_CLOCK_NEW)]
        m.close()
    finally:
        rmtree(d)


def _dst_run(start, end, step=13):
    d = tmpdir("hist-dst")
    try:
        m = Meter(d, RTC(start), deviation=-60, dst=True)
        m.run_to(end, step)
    except Exception:
        rmtree(d)
        raise
    return d, m


def _local(m, prof):
    """(local date-time without the day of week, deviation) of each row's clock column."""
    out = []
    for row in buffer(prof):
        b = row[1][0][1]
        out.append((b[:4] + b[5:8], struct.unpack(">h", b[9:11])[0], b[11] & 0x80))
    return out


def test_dst_autumn_no_doubled_and_no_extra_rows():
    # 2024-10-27: 03:00 CEST (01:00 UTC) becomes 02:00 CET
    d, m = _dst_run(utc(2024, 10, 26, 21, 5), utc(2024, 10, 28, 0, 5))
    try:
        lp = times(m.load)
        assert lp == [utc(2024, 10, 26, 21, 15) + 900 * i for i in range(108)]
        # the local day 27 October has 25 hours: 100 quarters, each once
        day = [t for t in lp if utc(2024, 10, 26, 22) <= t < utc(2024, 10, 27, 23)]
        assert len(day) == 100
        # local midnights only: 00:00 CEST on the 27th, 00:00 CET on the 28th
        assert times(m.billing) == [utc(2024, 10, 26, 22), utc(2024, 10, 27, 23)]
        loc = _local(m, m.billing)
        assert [x[0][4:] for x in loc] == [b"\x00\x00\x00"] * 2
        assert [x[1:] for x in loc] == [(-120, 0x80), (-60, 0)]
        # 02:00 .. 02:45 appear twice, told apart by deviation and the DST bit
        loc = _local(m, m.load)
        assert len(set(loc)) == len(loc)
        twice = [x for x in loc if x[0][:4] == b"\x07\xe8\x0a\x1b" and x[0][4] == 2]
        assert [x[1:] for x in twice] == [(-120, 0x80)] * 4 + [(-60, 0)] * 4
        # the AMR status has the DST bit exactly while it is in force
        for t, s in statuses(m.load):
            assert s == (mh.DST if t < utc(2024, 10, 27, 1) else 0), (t, s)
        m.close()
    finally:
        rmtree(d)


def test_dst_spring_no_doubled_and_no_extra_rows():
    # 2024-03-31: 02:00 CET (01:00 UTC) becomes 03:00 CEST
    d, m = _dst_run(utc(2024, 3, 30, 22, 5), utc(2024, 4, 1, 0, 5))
    try:
        lp = times(m.load)
        assert lp == [utc(2024, 3, 30, 22, 15) + 900 * i for i in range(104)]
        day = [t for t in lp if utc(2024, 3, 30, 23) <= t < utc(2024, 3, 31, 22)]
        assert len(day) == 92  # 23 hours
        assert times(m.billing) == [utc(2024, 3, 30, 23), utc(2024, 3, 31, 22)]
        loc = _local(m, m.billing)
        assert [x[0][4:] for x in loc] == [b"\x00\x00\x00"] * 2
        assert [x[1:] for x in loc] == [(-60, 0), (-120, 0x80)]
        loc = _local(m, m.load)
        assert len(set(loc)) == len(loc)
        assert not [x for x in loc if x[0][:4] == b"\x07\xe8\x03\x1f" and x[0][4] == 2]
        m.close()
    finally:
        rmtree(d)


def test_restart_across_a_dst_change_captures_the_true_local_midnight():
    for off, on, want, status in (
            # autumn: off at 23:00 CEST, on at 02:30 CET -> midnight CEST, 22:00 UTC
            (utc(2024, 10, 26, 21), utc(2024, 10, 27, 1, 30), utc(2024, 10, 26, 22), mh.PDN),
            # spring: off at 23:30 CET, on at 03:30 CEST -> midnight CET, 23:00 UTC
            (utc(2024, 3, 30, 22, 30), utc(2024, 3, 31, 1, 30), utc(2024, 3, 30, 23),
             mh.PDN | mh.DST)):
        d = tmpdir("hist-dstpdn")
        try:
            rtc = RTC(off - 86400)
            m = Meter(d, rtc, deviation=-60, dst=True)
            m.run_to(off, 60)
            before = times(m.billing)
            assert len(before) == 1
            m.close()
            rtc.s = on
            m2 = Meter(d, rtc, alive_at=off, clean=False, deviation=-60, dst=True)
            m2.run_to(on + 600, 60)
            assert times(m2.billing) == before + [want], (times(m2.billing), want)
            assert statuses(m2.load)[-1] == (on, status)  # 01:30 UTC, a boundary itself
            m2.close()
        finally:
            rmtree(d)


def test_fresh_meter_just_after_a_dst_change_does_not_capture_a_midnight_that_was_not():
    # autumn, 00:30 UTC = 02:30 CEST, then 01:30 UTC = 02:30 CET: no billing row
    d = tmpdir("hist-dst2")
    try:
        rtc = RTC(utc(2024, 10, 27, 0, 30))
        m = Meter(d, rtc, deviation=-60, dst=True)
        m.run_to(utc(2024, 10, 27, 21, 0), 31)
        assert times(m.billing) == []
        m.close()
    finally:
        rmtree(d)


# ------------------------------------------------------------------ status bits and events
def test_amr_status_bits_and_events():
    d = tmpdir("hist-bits")
    try:
        rtc = RTC(utc(2024, 7, 15, 9, 50))  # summer: DST in force
        m = Meter(d, rtc, deviation=-60, dst=True, invalid=True)
        assert codes(m) == [mh.EV_FIRMWARE_START, mh.EV_CLOCK_INVALID]
        m.run_to(utc(2024, 7, 15, 10, 5))
        m.history.event("chip-fault")
        m.run_to(utc(2024, 7, 15, 10, 20))
        m.clock.set_utc(utc(2024, 7, 15, 10, 22))  # the time is set: valid again
        m.run_to(utc(2024, 7, 15, 10, 50))
        assert statuses(m.load) == [
            (utc(2024, 7, 15, 10), mh.DST | mh.CIV),
            (utc(2024, 7, 15, 10, 15), mh.DST | mh.CIV | mh.DNV),
            (utc(2024, 7, 15, 10, 30), mh.DST | mh.CAD),
            (utc(2024, 7, 15, 10, 45), mh.DST)]
        # the clock column keeps the clock's invalid bit of its time
        stamps = [row[1][0][1][11] for row in buffer(m.load)]
        assert stamps == [0x81, 0x81, 0x80, 0x80]
        # application events by name; unknown ones are not logged
        for kind in ("hls-failure", "auth-failure", "key-change", "chip-recovered",
                     "crypto-self-test-failed", "firmware-start", "no-such-event"):
            m.history.event(kind)
        assert codes(m) == [mh.EV_FIRMWARE_START, mh.EV_CLOCK_INVALID, mh.EV_CHIP_FAULT,
                            mh.EV_CLOCK_OLD, mh.EV_CLOCK_NEW, 231, 231, 232, 233, 234, 230]
        assert m.history.last_code == 230
        m.close()
    finally:
        rmtree(d)


def test_events_before_start_are_logged_after_power_up():
    d = tmpdir("hist-pend")
    try:
        rtc = RTC(utc(2024, 1, 15, 10))

        def early(h):
            h.event("crypto-self-test-failed")
            h.log_event(mh.EV_CHIP_FAULT, utc(2024, 1, 15, 9, 59, 59))

        m = Meter(d, rtc, alive_at=utc(2024, 1, 15, 9), clean=False, early=early)
        assert events(m) == [(utc(2024, 1, 15, 9), mh.EV_POWER_DOWN),
                             (utc(2024, 1, 15, 10), mh.EV_POWER_UP),
                             (utc(2024, 1, 15, 10), mh.EV_FIRMWARE_START),
                             (utc(2024, 1, 15, 10), mh.EV_SELF_TEST_FAILED),
                             (utc(2024, 1, 15, 9, 59, 59), mh.EV_CHIP_FAULT)]
        # the chip fault counts for the first interval's row
        m.run_to(utc(2024, 1, 15, 10, 15))
        assert statuses(m.load) == [(utc(2024, 1, 15, 10, 15), mh.PDN | mh.DNV)]
        m.close()
    finally:
        rmtree(d)


def test_method_capture_and_reset_keep_the_schedule_consistent():
    d = tmpdir("hist-meth")
    try:
        rtc = RTC(utc(2024, 1, 15, 9, 58))
        m = Meter(d, rtc)
        m.run_to(utc(2024, 1, 15, 10, 5))
        # a capture by method 2 at 10:20 moves the schedule on: 10:15 is not captured later;
        # its status is the one collected so far (the bits stay for the interval's row)
        m.history.event("chip-fault")
        rtc.s = utc(2024, 1, 15, 10, 20)
        assert m.load.action(2, None, None, None) == 0
        m.run_to(utc(2024, 1, 15, 10, 31))
        assert statuses(m.load) == [(utc(2024, 1, 15, 10), 0),
                                    (utc(2024, 1, 15, 10, 20), mh.DNV),
                                    (utc(2024, 1, 15, 10, 30), mh.DNV)]
        # reset: empty, and the next row is the next boundary
        assert m.load.action(1, (axdr.INTEGER, 0), None, None) == 0
        assert times(m.load) == []
        m.run_to(utc(2024, 1, 15, 10, 44, 59))
        assert times(m.load) == []
        m.run_to(utc(2024, 1, 15, 10, 45))
        assert times(m.load) == [utc(2024, 1, 15, 10, 45)]
        # capture_period 0: no automatic capture
        m.load.capture_period = 0
        m.run_to(utc(2024, 1, 15, 11, 30))
        assert times(m.load) == [utc(2024, 1, 15, 10, 45)]
        m.close()
    finally:
        rmtree(d)


def test_a_capture_the_flash_refuses_is_counted_and_not_retried():
    d = tmpdir("hist-miss")
    try:
        rtc = RTC(utc(2024, 1, 15, 9, 58))
        m = Meter(d, rtc)
        m.logs["load"].root = d + "/gone"
        m.run_to(utc(2024, 1, 15, 10, 14))
        assert m.history.missed == 1
        m.logs["load"].root = d
        m.run_to(utc(2024, 1, 15, 10, 15))
        assert times(m.load) == [utc(2024, 1, 15, 10, 15)] and m.history.missed == 1
        m.close()
    finally:
        rmtree(d)
