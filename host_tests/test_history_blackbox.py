"""Time and history against the virtual meter, read with dlms-cosem (raw A-XDR decoded by
dlms-cosem's own parser) and written with gurux: the clock's validity without an RTC
battery, the event log across clean and unclean stops, clock setting, and the load
profile's capture rule across restarts and clock adjustments (meter/history.py)."""

import datetime

import pytest

import clients as cl
import running_meter as vm

LOAD = "1.0.99.1.0.255"
EVENTS = "0.0.99.98.0.255"
CLOCK = "0.0.1.0.0.255"
IC_LN = "0.0.43.1.0.255"
START = "2026-01-01T00:00:00"
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

EV_POWER_DOWN, EV_POWER_UP, EV_CLOCK_OLD, EV_CLOCK_NEW, EV_CLOCK_INVALID = 1, 2, 4, 5, 6
EV_FIRMWARE_START, EV_AUTH_FAILURE = 230, 231
PDN, CAD = 0x80, 0x20


def parse(raw):
    from dlms_cosem import utils

    return utils.parse_as_dlms_data(raw)


def when(b):
    return cl.decode_cosem_datetime(b)["utc"]


def reader(m):
    return cl.CosemClient("tcp", m.tcp, cl.READER, password=cl.LLS_PASSWORD)


def rows(m, ln):
    with reader(m) as c:
        return parse(c.get(ln, 7, 2))


def events(m):
    return [(when(r[0]), r[1]) for r in rows(m, EVENTS)]


def clock(m):
    with reader(m) as c:
        raw = c.get(CLOCK, 8, 2)
    assert raw[:2] == bytes.fromhex("090C"), raw.hex()
    return cl.decode_cosem_datetime(raw[2:])


def set_clock(m, t):
    from gurux_dlms import GXDateTime

    with cl.GuruxClient("tcp", m.tcp, cl.PUBLIC) as g:
        ic = g.read(IC_LN, 1, 2)
    with cl.GuruxClient("tcp", m.tcp, cl.MANAGEMENT, invocation_counter=ic + 1) as g:
        clk = g.make_object(CLOCK, 8)
        clk.time = GXDateTime(t)
        g.write_object(clk, 2)


@pytest.fixture
def meters(tmp_path):
    started = []

    def start(**kw):
        m = vm.start_meter(tmp_path / ("m%d" % len(started)), serial_link="off",
                           state=str(tmp_path / "state"), **kw)
        started.append(m)
        return m

    yield start
    for m in started:
        if m.alive():
            m.kill()


def test_without_rtc_battery_the_clock_resumes_invalid_until_set(meters):
    args = ["--no-rtc-battery", "--start-time", START]
    m = meters(extra_args=args)
    c = clock(m)
    assert c["status"] & 0x01 == 0, c  # a fresh meter starts at the configured time: valid
    m.stop()
    m = meters(extra_args=args)  # host time has moved on; the board's clock has not
    c = clock(m)
    assert c["status"] & 0x01, c  # invalid
    assert abs((c["utc"] - T0).total_seconds()) < 30, c  # resumed from the persisted time
    ev = events(m)
    codes = [e[1] for e in ev]
    # first run: firmware start, clean power down; second: power up, start, clock invalid
    assert codes == [EV_FIRMWARE_START, EV_POWER_DOWN, EV_POWER_UP, EV_FIRMWARE_START,
                     EV_CLOCK_INVALID], ev
    # a clean stop stamps the power-down with the moment of the stop
    assert ev[1][0] <= ev[2][0], ev
    new = datetime.datetime(2026, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    set_clock(m, new)
    c = clock(m)
    assert c["status"] & 0x01 == 0, c
    assert abs((c["utc"] - new).total_seconds()) < 10, c
    ev = events(m)
    assert [e[1] for e in ev[-2:]] == [EV_CLOCK_OLD, EV_CLOCK_NEW], ev
    assert abs((ev[-2][0] - T0).total_seconds()) < 60, ev  # old time, new time
    assert abs((ev[-1][0] - new).total_seconds()) < 10, ev
    m.stop()
    m = meters(extra_args=args)  # every restart without a battery loses time again:
    c = clock(m)  # it resumes from the time set (persisted at the stop), invalid again
    assert c["status"] & 0x01 and abs((c["utc"] - new).total_seconds()) < 30, c
    m.stop()
    # a battery now does not make an invalid time valid: only setting it does
    m = meters(extra_args=["--start-time", START])
    assert clock(m)["status"] & 0x01
    m.stop()


def test_power_cut_is_logged_with_the_last_known_time(meters):
    m = meters(extra_args=["--start-time", START])
    m.kill()  # power cut: no shutdown
    m = meters(extra_args=["--start-time", START])
    ev = events(m)
    codes = [e[1] for e in ev]
    assert codes == [EV_FIRMWARE_START, EV_POWER_DOWN, EV_POWER_UP, EV_FIRMWARE_START], ev
    # the power-down carries the last time the meter wrote its state (at start here)
    assert ev[1][0] <= ev[2][0] and (ev[2][0] - ev[1][0]).total_seconds() < 400, ev
    assert clock(m)["status"] & 0x01 == 0  # with a battery the clock ran on: still valid
    m.stop()


def test_authentication_failure_is_logged(meters):
    m = meters()
    with pytest.raises(Exception):
        with cl.CosemClient("tcp", m.tcp, cl.READER, password=b"wrong!!!"):
            pass
    assert events(m)[-1][1] == EV_AUTH_FAILURE
    m.stop()


def test_load_profile_capture_rule_across_restart_and_clock_setting(meters):
    # 1000x: a 15-minute interval in 0.9 s
    args = ["--clock-rate", "1000", "--start-time", START]
    m = meters(extra_args=args)
    import time

    time.sleep(3.2)  # ~53 virtual minutes: rows at 00:15, 00:30, 00:45
    m.stop()
    time.sleep(2.0)  # off for ~33 virtual minutes (the virtual RTC runs on): 2 boundaries
    m = meters(extra_args=args)
    time.sleep(0.3)
    r = rows(m, LOAD)
    times = [when(x[0]) for x in r]
    status = [x[1] for x in r]
    assert all(t.minute % 15 == 0 and t.second == 0 for t in times), times
    assert all(b - a == datetime.timedelta(minutes=15) for a, b in zip(times, times[1:3])), times
    # exactly one row for the boundaries passed while off, with the power-down bit
    gaps = [(b - a, s) for a, b, s in zip(times, times[1:], status[1:])]
    big = [(g, s) for g, s in gaps if g > datetime.timedelta(minutes=15)]
    assert len(big) == 1 and big[0][1] & PDN, gaps
    # clock set forward by 5 hours: one row at once for the newest passed boundary (CAD),
    # none for the boundaries jumped over
    now = clock(m)["utc"]
    set_clock(m, now + datetime.timedelta(hours=5))
    time.sleep(0.3)
    r = rows(m, LOAD)
    after = [(when(x[0]), x[1]) for x in r if when(x[0]) > now + datetime.timedelta(minutes=30)]
    before = [when(x[0]) for x in r if when(x[0]) <= now + datetime.timedelta(minutes=30)]
    assert after and after[0][1] & CAD, after
    assert after[0][0] > now + datetime.timedelta(hours=4, minutes=44), (after, now)
    assert after[0][0] - before[-1] > datetime.timedelta(hours=4), (before[-1], after[0])
    # clock set back by 2 hours: no boundary again, times keep increasing
    set_clock(m, clock(m)["utc"] - datetime.timedelta(hours=2))
    n1 = len(rows(m, LOAD))
    time.sleep(2.0)  # ~33 virtual minutes: still before the newest row
    r = rows(m, LOAD)
    times = [when(x[0]) for x in r]
    assert all(a < b for a, b in zip(times, times[1:])), times
    assert len(r) == n1, times[-3:]  # nothing new
    m.stop()
