"""--start-time and --clock-rate of the virtual meter, read back through COSEM (Clock attr 2)
over the TCP wrapper with raw APDUs; and a restart continues the clock like a
battery-backed RTC."""

import datetime
import struct
import sys
import os
import time

import running_meter as vm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import bench  # noqa: E402  (raw wrapper client of the benchmarks)


def read_clock(port):
    c = bench.Wrapper(port)
    try:
        assert c.request(bench.AARQ_PUBLIC)[0] == 0x61
        r = c.request(bench.GET_CLOCK)
        assert r[:6] == bytes.fromhex("C401C100090C"), r.hex()
        y, mo, d, _wd, hh, mi, ss = struct.unpack(">HBBBBBB", r[6:14])
        assert r[15:17] == b"\x00\x00"  # deviation 0: UTC, as the contract says
        return datetime.datetime(y, mo, d, hh, mi, ss)
    finally:
        c.close()


def test_start_time_for_a_fresh_state_and_clock_rate(tmp_path):
    m = vm.start_meter(tmp_path, serial_link="off",
                       extra_args=["--start-time", "2024-01-15T12:00:00Z",
                                   "--clock-rate", "600"])
    try:
        t1 = read_clock(m.tcp)
        time.sleep(1.0)
        t2 = read_clock(m.tcp)
    finally:
        m.stop()
    start = datetime.datetime(2024, 1, 15, 12, 0, 0)
    assert start <= t1 < start + datetime.timedelta(minutes=60)
    # one real second is about ten virtual minutes
    assert datetime.timedelta(minutes=7) <= t2 - t1 <= datetime.timedelta(minutes=14)


def test_restart_continues_the_clock_and_ignores_start_time(tmp_path):
    args = ["--start-time", "2030-06-01T00:00:00Z"]
    m = vm.start_meter(tmp_path, serial_link="off", extra_args=args)
    t1 = read_clock(m.tcp)
    m.stop()
    time.sleep(1.5)
    m = vm.start_meter(tmp_path, serial_link="off", state=m.state,
                       extra_args=["--start-time", "2020-01-01T00:00:00Z"])
    try:
        t2 = read_clock(m.tcp)
    finally:
        m.stop()
    assert t1.year == 2030
    assert datetime.timedelta(seconds=1) <= t2 - t1 <= datetime.timedelta(seconds=30)
