"""A load-profile capture whose value source fails must not stop the meter (CPython and
MicroPython).

The energy columns of the load profile and of the billing profile read the metering
engine (app.Metering -> Engine.energy_wh), which persists the totals before it reveals
them (Store.save: a file open, so an allocation). On a heap near its limit that raises
MemoryError. The virtual meter showed what follows: the exception leaves
ProfileGeneric.capture (only OSError from the ring is caught there), History._capture,
History.poll, App.tick and App.run, and the meter exits with status 1 right after its
ready line, at the first boundary it captures:

    File "meter/history.py", line 167, in poll
    File "meter/history.py", line 173, in _capture
    File "cosem/profile_generic.py", line 125, in capture
    File "app.py", line 163, in <lambda>
    File "meter/engine.py", line 215, in energy_wh
    File "meter/engine.py", line 210, in reveal
    File "meter/engine.py", line 100, in persist
    File "meter/store.py", line 35, in save
    MemoryError: memory allocation failed, allocating 304 bytes

A Register whose source fails answers hardware-fault and the meter goes on
(cosem/register.py); a capture that does not reach flash is counted as missed and the
schedule goes on (History.missed). A capture whose source fails should end the same way:
missed (or stored without that value), the next boundary captured as usual. Here the
profiles of cosem.objects.add_history run on ProfileLogs in a temporary directory with a
metering stand-in whose energy raises MemoryError while ``fail`` is set.
"""

import os

from cosem import objects
from meter import clock as mclock
from meter import history as mh
from meter.profile_log import ProfileLog
from tmpdirs import rmtree, tmpdir


def utc(y, mo, d, hh=0, mi=0, ss=0):
    return mclock.to_seconds(y, mo, d, hh, mi, ss)


class RTC:
    def __init__(self, s):
        self.s = s

    def datetime(self, t=None):
        if t is None:
            y, mo, d, hh, mi, ss, wd = mclock.from_seconds(self.s)
            return (y, mo, d, wd - 1, hh, mi, ss, 0)
        y, mo, d, _wd, hh, mi, ss, _us = t
        self.s = mclock.to_seconds(y, mo, d, hh, mi, ss)


class Metering:
    """app.Metering's energy(q, p) interface: Wh that grow with the RTC; MemoryError (as
    Store.save raises it on a full heap) while ``fail`` is set."""

    phases = 1

    def __init__(self, rtc):
        self.rtc = rtc
        self.fail = False
        self.calls = 0

    def energy(self, q, p):
        def source():
            self.calls += 1
            if self.fail:
                raise MemoryError("memory allocation failed, allocating 304 bytes")
            return (1000, 0, 333, 0)[q] * (self.rtc.s % 86400) // 3600

        return source


def meter(root, rtc, metering):
    clock = mclock.Clock(rtc)
    h = mh.History(clock)
    logs = {"load": ProfileLog(root, "lp", 22, 400), "billing": ProfileLog(root, "bill", 21, 20),
            "events": ProfileLog(root, "ev", 6, 100)}
    dev = objects.LogicalDevice(b"MMM0000012345678")
    load, billing, events = objects.add_history(dev, clock, h, logs, metering)
    h.load, h.billing, h.events = load, billing, events
    h.start(clock.utc()[0])
    return h, load, logs


def rows(prof):
    log = prof.log
    out = []
    for a in range(log.start(), log.next):
        r = log.read(a)
        out.append(None if r is None else bytes(r))
    return out


def test_a_capture_whose_energy_source_runs_out_of_memory_does_not_stop_the_meter():
    d = tmpdir("cap-mem")
    try:
        rtc = RTC(utc(2026, 3, 1, 9, 58))
        metering = Metering(rtc)
        h, load, logs = meter(d, rtc, metering)
        metering.fail = True
        rtc.s = utc(2026, 3, 1, 10, 0)
        raised = None
        try:
            h.poll(rtc.s)  # the 10:00 boundary, the energy source failing
        except MemoryError as e:
            raised = e
        assert metering.calls > 0  # the failing source was asked
        assert raised is None, ("MemoryError from the energy source went up through "
                                "History.poll (App.tick: the meter exits): %r" % (raised,))
        # the source recovers: the schedule goes on with the next boundary
        metering.fail = False
        rtc.s = utc(2026, 3, 1, 10, 15)
        h.poll(rtc.s)
        got = rows(load)
        assert got and got[-1] is not None
        assert load.last_time() == utc(2026, 3, 1, 10, 15), load.last_time()
        assert len(got) <= 2, got
        for log in logs.values():
            log.close()
    finally:
        rmtree(d)
