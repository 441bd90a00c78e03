"""A Profile Generic download does not hold the buffer in RAM (MicroPython only).

The same download (attribute 2, no selective access, GET-Next blocks through the
association) of N and of 10 N rows: the live heap, measured after gc.collect() between
every two blocks, has the same peak and the same level afterwards.

The per-row path is NOT allocation-free, so heap_lock() cannot prove it: every row leaves
a few hundred bytes of short-lived garbage (tuples, memoryviews, slices) that the next
collection takes back. ``test_where_the_row_path_allocates`` names the places, piece by
piece under heap_lock():

* meter.profile_log.ProfileLog.read: ``memoryview(b)[:row_size]`` (two objects) and the
  tuple of ``struct.unpack_from`` for the CRC;
* cosem.profile_generic.ProfileGeneric._emit: the tuples of ``struct.unpack_from`` (clock
  and u32 columns) and meter.clock.Clock.encode (``offset`` and ``from_seconds`` /
  ``civil_from_days`` return tuples);
* dlms.xdlms.Pump.fill: ``scratch[off:off + n]`` copies each chunk through a new slice.

The writer calls, the file's seek/readinto and crc32 allocate nothing.
"""

try:
    import micropython
except ImportError:  # CPython: pytest imports this file when it is named on the command line
    import pytest

    pytest.skip("MicroPython only: runs as mp:: items through host_tests/mptest.py",
                allow_module_level=True)

import binascii
import gc
import struct

from dlms import axdr
from dlms import xdlms
from meter import clock as mclock

import test_profile_generic as tpg

N = 150


def _download(n, pdu):
    """(blocks, peak live heap above the start, live heap above the start afterwards)."""
    f = tpg.Fixture(entries=n + 10)
    try:
        t = tpg.utc(2024, 1, 1)
        f.fill([t + 900 * i for i in range(n)])
        c = tpg.Client(f.prof, pdu)
        c.read(7)  # the association's request state exists before the baseline
        gc.collect()
        base = gc.mem_alloc()
        peak = 0
        r = c.ask(tpg.GET_LP2 + b"\x00")
        blocks = 1
        while True:
            assert r[:3] == tpg.h("C402C1"), r
            gc.collect()
            m = gc.mem_alloc() - base
            if m > peak:
                peak = m
            if r[3]:
                break
            r = c.ask(tpg.h("C002C1") + r[4:8])
            blocks += 1
        r = None
        gc.collect()
        after = gc.mem_alloc() - base
        return blocks, peak, after
    finally:
        f.close()


def test_live_ram_does_not_grow_with_the_number_of_rows():
    for pdu in (128, 1024):
        b1, peak1, after1 = _download(N, pdu)
        b10, peak10, after10 = _download(10 * N, pdu)
        print("pdu", pdu, "rows", N, "blocks", b1, "peak", peak1, "after", after1,
              "| rows", 10 * N, "blocks", b10, "peak", peak10, "after", after10)
        assert b10 > 9 * b1  # the download really was ten times longer
        # 9 N more rows are 9 * 150 * 26 = 35100 octets of encoded data and far more
        # decoded: nothing of that may stay
        assert peak10 <= peak1 + 128, (pdu, peak1, peak10)
        assert after10 <= after1 + 128, (pdu, after1, after10)
        assert peak10 < 2048, peak10


def test_transient_garbage_per_row_is_bounded():
    f = tpg.Fixture(entries=1000)
    try:
        t = tpg.utc(2024, 1, 1)
        f.fill([t + 900 * i for i in range(400)])
        pump = xdlms.Pump()
        out = bytearray(1024)

        def run():
            w = pump.reset()
            pump.start(f.prof.get(2, w, None, None))
            while not pump.done:
                pump.fill(out, 0, len(out))
            assert not pump.failed

        run()
        gc.collect()
        gc.disable()
        try:
            a = gc.mem_alloc()
            run()
            per_row = (gc.mem_alloc() - a) // 400
        finally:
            gc.enable()
        print("garbage per row (collected, not kept):", per_row, "octets")
        assert per_row < 1024, per_row
    finally:
        f.close()


def _allocates(fn):
    fn()  # warm up unlocked
    micropython.heap_lock()
    try:
        fn()
        return False
    except MemoryError:
        return True
    finally:
        micropython.heap_unlock()


def test_where_the_row_path_allocates():
    f = tpg.Fixture(entries=100)
    try:
        t = tpg.utc(2024, 1, 1)
        f.fill([t + 900 * i for i in range(20)])
        log = f.log
        fh = open(f.dir + "/lp.0", "rb")
        buf = bytearray(16)
        stamp = bytearray(12)
        w = axdr.Writer(bytearray(256))
        row = bytes(log.read(5))
        pump = xdlms.Pump()
        pw = pump.reset()
        pw.octet_string(bytes(100))
        pump.start(None)
        out = bytearray(64)

        def emit():
            w.reset()
            f.prof._emit(w, row, 15)

        def write_row():
            w.reset()
            w.structure(4)
            w.octet_string(stamp)  # whole: a sliced string would allocate (axdr.Writer)
            w.unsigned(7)
            w.double_long_unsigned(123456789)
            w.long_unsigned(23000)

        pieces = (
            ("file seek", lambda: fh.seek(16)),
            ("file readinto", lambda: fh.readinto(buf)),
            ("crc32", lambda: binascii.crc32(buf)),
            ("writer", write_row),
            ("ProfileLog.read", lambda: log.read(6)),
            ("memoryview slice", lambda: memoryview(buf)[:12]),
            ("struct.unpack_from", lambda: struct.unpack_from(">I", buf, 12)),
            ("Clock.encode", lambda: f.clock.encode(t)),
            ("from_seconds", lambda: mclock.from_seconds(t)),
            ("ProfileGeneric._emit", emit),
            ("Pump.fill", lambda: pump.fill(out, 0, 10)),
        )
        found = []
        for name, fn in pieces:
            if _allocates(fn):
                found.append(name)
        fh.close()
        print("allocating:", found)
        # the report of the module docstring; update both if one of them stops allocating
        assert found == ["ProfileLog.read", "memoryview slice", "struct.unpack_from",
                         "Clock.encode", "from_seconds", "ProfileGeneric._emit",
                         "Pump.fill"], found
    finally:
        f.close()


def test_heap_lock_is_effective():
    assert _allocates(lambda: bytearray(8))
    assert not _allocates(lambda: 1 + 1)
