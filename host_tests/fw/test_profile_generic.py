"""cosem.profile_generic.ProfileGeneric (interface class 7 v1) on a real ProfileLog in a
temporary directory, read through the association (GET normal and with datablocks) with
and without selective access. Runs under CPython and MicroPython (RAM: mp_test_profile_ram.py).

The selective-access requests of dlms-vectors.md section 5 are used byte for byte."""

import binascii
import os
import struct

from cosem import objects
from cosem import profile_generic as pg
from dlms import acse
from dlms import association
from dlms import axdr
from dlms import xdlms
from meter import clock as mclock
from meter.profile_log import ProfileLog
from tmpdirs import rmtree, tmpdir


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def utc(y, mo, d, hh=0, mi=0, ss=0):
    return mclock.to_seconds(y, mo, d, hh, mi, ss)


class RTC:
    def datetime(self, t=None):
        return (2024, 1, 15, 0, 12, 0, 0, 0)


AARQ_PUBLIC = h("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
CONF = (acse.CONF_GET | acse.CONF_SET | acse.CONF_ACTION | acse.CONF_SELECTIVE_ACCESS
        | acse.CONF_BLOCK_TRANSFER_WITH_GET)
LP = h("0100630100FF")  # 1.0.99.1.0.255
CLOCK_LN = h("0000010000FF")
STATUS_LN = h("0000600A01FF")
ENERGY_LN = h("0100010800FF")
VOLT_LN = h("0100200700FF")
DEF_CLOCK = h("0204 120008 0906 0000010000FF 0F02 120000")
DEF_STATUS = h("0204 120001 0906 0000600A01FF 0F02 120000")
DEF_ENERGY = h("0204 120003 0906 0100010800FF 0F02 120000")
DEF_VOLT = h("0204 120003 0906 0100200700FF 0F02 120000")
GET_LP2 = h("C001C1 0007 0100630100FF 02")  # buffer; then 00 or 01 selector parameters

# dlms-vectors.md section 5, verbatim
V51 = h("C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E20601FF"
        "000300FFFF8880090C07E50106FF000300FFFFC4000100")
V52 = h("C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E10A0107"
        "00000000FFC480090C07E10A010701000000FFC4800100")
V53 = h("C001C100070100630100FF020102020406000000020600000004120001120000")
# 5.4: the dates as gurux sends them (deviation 0) and as dlms-cosem does (8000), after
# the restricting object of 5.1
V54_HEAD = h("C001C100070100630100FF0201010204020412000809060000010000FF0F02120000")
V54_GURUX = V54_HEAD + h("090C07E8010FFF001E0000000000 090C07E8010FFF01000000000000 0100")
V54_DLMS_COSEM = V54_HEAD + h("090C07E8010FFF001E0000800000 090C07E8010FFF01000000800000 0100")


class Source:
    """What the capture objects read: the row number i gives every value."""

    def __init__(self):
        self.i = 0

    def status(self):
        return self.i & 0xFF

    def energy(self):
        return 1000 * self.i + 7

    def volt(self):
        return (23000 + self.i) & 0xFFFF


def columns(src):
    return (pg.column(8, CLOCK_LN, 2, pg.CLOCK),
            pg.column(1, STATUS_LN, 2, pg.U8, src.status),
            pg.column(3, ENERGY_LN, 2, pg.U32, src.energy),
            pg.column(3, VOLT_LN, 2, pg.U16, src.volt))


class Fixture:
    """A load-profile-like ProfileGeneric on a ProfileLog in its own directory."""

    def __init__(self, entries=100, seg_rows=None, deviation=0, increasing=True, period=900):
        self.dir = tmpdir("pg")
        self.src = Source()
        self.clock = mclock.Clock(RTC(), deviation)
        try:
            self.log = ProfileLog(self.dir, "lp", 12, entries, seg_rows)
        except Exception:
            rmtree(self.dir)
            raise
        self.prof = pg.ProfileGeneric("1.0.99.1.0.255", self.log, columns(self.src), self.clock,
                                      period, increasing)
        self.times = []  # the capture time of row i (absolute row number)

    def fill(self, times, status=0):
        for t in times:
            self.src.i = len(self.times)
            assert self.prof.capture(t, status)
            self.times.append(t)

    def row(self, i, cols=(0, 1, 2, 3)):
        """The typed value row i must read as."""
        self.src.i = i
        v = [(axdr.OCTET_STRING, bytes(self.clock.encode(self.times[i]))),
             (axdr.UNSIGNED, self.src.status()), (axdr.DOUBLE_LONG_UNSIGNED, self.src.energy()),
             (axdr.LONG_UNSIGNED, self.src.volt())]
        return (axdr.STRUCTURE, [v[c] for c in cols])

    def rows(self, numbers, cols=(0, 1, 2, 3)):
        return (axdr.ARRAY, [self.row(i, cols) for i in numbers])

    def close(self):
        self.log.close()
        rmtree(self.dir)


class Client:
    """A public client associated with a device holding the profile (reads, writes attribute
    4, calls both methods) at a given client max PDU."""

    def __init__(self, prof, pdu=1024):
        dev = objects.LogicalDevice(b"MMM0000012345678")
        dev.policies[objects.PUBLIC] = acse.Policy(mechanism=0, conformance=CONF)
        dev.add(prof, pub=("rrrbrrrr", "xx"))
        dev.done()
        self.assoc = association.Association(dev)
        self.pdu = pdu
        self.out = bytearray(4096)
        self.blocks = 0
        aare = self.ask(AARQ_PUBLIC[:-2] + bytes([pdu >> 8, pdu & 0xFF]))
        assert aare[0] == 0x61 and self.assoc.associated, aare

    def ask(self, apdu):
        n = self.assoc.handle(16, apdu, len(apdu), memoryview(self.out))
        r = bytes(self.out[:n])
        assert len(r) <= self.pdu, (len(r), self.pdu)
        return r

    def get(self, apdu, between=None):
        """(0, the data's bytes) or (Data-Access-Result, None), following GET-Next blocks.
        between(block number) is called before each GET-Request-Next."""
        r = self.ask(apdu)
        if r[:4] == h("C401C100"):
            return 0, r[4:]
        if r[:4] == h("C401C101"):
            assert len(r) == 5
            return r[4], None
        data = bytearray()
        block = 1
        while True:
            assert r[:3] == h("C402C1"), r
            assert struct.unpack(">I", r[4:8])[0] == block
            if r[8] == 1:
                return r[9], None
            assert r[8] == 0
            rd = axdr.Reader(r, 9)
            n = rd.length()
            assert rd.pos + n == len(r)
            data += r[rd.pos:]
            if r[3]:
                return 0, bytes(data)
            if between is not None:
                between(block)
            r = self.ask(h("C002C1") + r[4:8])
            self.blocks += 1
            block += 1

    def read(self, attr):
        return self.get(h("C001C1 0007") + LP + bytes([attr, 0]))

    def value(self, apdu):
        dar, data = self.get(apdu)
        assert dar == 0, dar
        r = axdr.Reader(data)
        v = r.data()
        assert r.remaining() == 0
        return v

    def set(self, attr, data):
        r = self.ask(h("C101C1 0007") + LP + bytes([attr, 0]) + data)
        assert r[:3] == h("C501C1") and len(r) == 4, r
        return r[3]

    def action(self, method, param=h("01 0F00")):
        r = self.ask(h("C301C1 0007") + LP + bytes([method]) + param)
        assert r[:3] == h("C701C1") and r[4:] == b"\x00", r
        return r[3]


def sel(selector, data):
    """GET-Request-Normal of the buffer with selective access."""
    return GET_LP2 + bytes([1, selector]) + data


def date(y, mo, d, hh, mi, ss, dev=0, status=0, wd=0xFF, cs=0):
    dev &= 0xFFFF
    return bytes([y >> 8, y & 0xFF, mo, d, wd, hh, mi, ss, cs, dev >> 8, dev & 0xFF, status])


def range_desc(t0, t1, selected=None, restrict=DEF_CLOCK, tag=0x09):
    """range_descriptor; selected None: the 3-element form without selected_values;
    tag 0x19: the dates as date-time (no length) instead of octet-string(12)."""
    head = b"\x19" if tag == 0x19 else bytes([tag, 12])
    b = h("0204" if selected is not None else "0203") + restrict + head + t0 + head + t1
    if selected is not None:
        b += bytes([1, len(selected)]) + b"".join(selected)
    return b


def entry_desc(e0, e1, c0, c1):
    return h("0204") + b"\x06" + struct.pack(">I", e0) + b"\x06" + struct.pack(">I", e1) + (
        b"\x12" + struct.pack(">H", c0) + b"\x12" + struct.pack(">H", c1))


# ------------------------------------------------------------------ attributes
def test_every_attribute_encodes_as_the_blue_book_says():
    f = Fixture(entries=50, seg_rows=8)
    try:
        f.fill([utc(2024, 1, 15, 0, 15), utc(2024, 1, 15, 0, 30)])
        c = Client(f.prof)
        assert c.read(1) == (0, h("0906 0100630100FF"))
        assert c.read(3) == (0, h("0104") + DEF_CLOCK + DEF_STATUS + DEF_ENERGY + DEF_VOLT)
        assert c.read(4) == (0, h("06 00000384"))  # 900 s
        assert c.read(5) == (0, h("16 01"))  # fifo
        assert c.read(6) == (0, DEF_CLOCK)  # the clock column
        assert c.read(7) == (0, h("06 00000002"))
        assert c.read(8) == (0, h("06 00000032"))  # 50
        # 2024-01-15 was a Monday; UTC clock: deviation 0, status 0
        assert c.read(2) == (0, h(
            "0102"
            "0204 090C 07E8010F01000F0000000000 1100 0600000007 1259D8"
            "0204 090C 07E8010F01001E0000000000 1101 06000003EF 1259D9"))
        assert c.read(9) == (11, None)
        for a in (1, 2, 3, 5, 6, 7, 8):
            assert c.set(a, h("06 00000384")) == 3, a  # read-only
    finally:
        f.close()


def test_types_match_the_class_declaration():
    f = Fixture()
    try:
        f.fill([utc(2024, 1, 15, 0, 15)])
        c = Client(f.prof)
        for a in range(1, 9):
            v = c.value(h("C001C1 0007") + LP + bytes([a, 0]))
            assert v[0] == pg.ProfileGeneric.ATTRS[a - 1][1], (a, v[0])
        assert (pg.ProfileGeneric.CLASS_ID, pg.ProfileGeneric.VERSION) == (7, 1)
    finally:
        f.close()


def test_clock_column_carries_the_stored_status_and_the_dst_bit_of_its_instant():
    f = Fixture(deviation=-60)
    try:
        f.clock.set_dst(enabled=True)
        f.fill([utc(2024, 1, 15, 11, 0)], status=mclock.STATUS_INVALID)
        f.fill([utc(2024, 7, 15, 11, 0)], status=mclock.STATUS_DOUBTFUL)
        f.fill([utc(2024, 1, 15, 11, 15)], status=0x80)  # DST is the instant's, not stored
        f.clock.status = mclock.STATUS_INVALID  # the clock now: not what the rows say
        c = Client(f.prof)
        v = c.value(GET_LP2 + b"\x00")
        stamps = [row[1][0][1] for row in v[1]]
        assert stamps[0] == date(2024, 1, 15, 12, 0, 0, -60, 0x01, 1)
        assert stamps[1] == date(2024, 7, 15, 13, 0, 0, -120, 0x82, 1)
        assert stamps[2] == date(2024, 1, 15, 12, 15, 0, -60, 0x00, 1)
    finally:
        f.close()


def test_a_profile_without_a_log_is_empty_and_cannot_capture():
    src = Source()
    prof = pg.ProfileGeneric("1.0.99.1.0.255", None, columns(src), mclock.Clock(RTC()), 900)
    c = Client(prof)
    assert c.read(2) == (0, h("0100"))
    assert c.read(7) == (0, h("06 00000000"))
    assert c.read(8) == (0, h("06 00000000"))
    assert not prof.capture(utc(2024, 1, 1))
    assert prof.last_time() is None
    assert c.get(sel(1, range_desc(date(2024, 1, 1, 0, 0, 0), date(2024, 2, 1, 0, 0, 0),
                                   ()))) == (0, h("0100"))


def test_sort_object_without_a_clock_column_is_an_empty_definition():
    d = tmpdir("pg-noclk")
    try:
        src = Source()
        log = ProfileLog(d, "x", 4, 10)
        prof = pg.ProfileGeneric("1.0.99.1.0.255", log,
                                 (pg.column(3, ENERGY_LN, 2, pg.U32, src.energy),),
                                 mclock.Clock(RTC()), 0)
        c = Client(prof)
        assert c.read(6) == (0, h("0204 120000 0906 000000000000 0F00 120000"))
        src.i = 3
        assert prof.capture(utc(2024, 1, 1))
        assert prof.last_time() is None
        assert c.read(2) == (0, h("0101 0201 06 00000BBF"))
        # no clock column to restrict on
        dar, _ = c.get(sel(1, range_desc(date(2024, 1, 1, 0, 0, 0), date(2024, 2, 1, 0, 0, 0),
                                         ())))
        assert dar == 250
        log.close()
    finally:
        rmtree(d)


def test_capture_period_write():
    f = Fixture()
    try:
        seen = []
        f.prof.on_period_change.append(lambda p: seen.append(p.capture_period))
        c = Client(f.prof)
        assert c.set(4, h("06 00000E10")) == 0  # 3600
        assert c.read(4) == (0, h("06 00000E10")) and seen == [3600]
        assert c.set(4, h("06 00000000")) == 0  # 0: no automatic capture
        assert f.prof.capture_period == 0 and seen == [3600, 0]
        assert c.set(4, h("06 00015180")) == 0  # 86400: a day
        for v in (7, 901, 86401, 172800, 0xFFFFFFFF):  # does not divide a day evenly
            assert c.set(4, b"\x06" + struct.pack(">I", v)) == 250, v
        for data in (h("12 0384"), h("11 3C"), h("05 00000384"), h("0904 00000384"), h("00")):
            assert c.set(4, data) == 12, data  # type-unmatched
        assert f.prof.capture_period == 86400 and seen == [3600, 0, 86400]
        for v in (1, 60, 300, 900, 1800, 43200):
            assert c.set(4, b"\x06" + struct.pack(">I", v)) == 0
            assert f.prof.capture_period == v
    finally:
        f.close()


def test_method_reset_empties_the_buffer():
    f = Fixture(entries=10, seg_rows=4)
    try:
        f.fill([utc(2024, 1, 15, 0, 15 * i) for i in range(4)])
        resets = []
        f.prof.on_reset.append(lambda p: resets.append(p))
        c = Client(f.prof)
        assert c.read(7) == (0, h("06 00000004"))
        assert c.action(1) == 0
        assert resets == [f.prof]
        assert c.read(7) == (0, h("06 00000000"))
        assert c.read(2) == (0, h("0100"))
        assert f.prof.last_time() is None
        assert c.action(1, h("01 1200 00")) == 12  # parameter of the wrong type
        assert c.action(1, h("00")) == 0  # no parameter at all is accepted too
        assert len(resets) == 2
    finally:
        f.close()


def test_method_capture_stores_one_row_now():
    f = Fixture(entries=10, seg_rows=4)
    try:
        captured = []
        f.prof.on_capture.append(lambda p, t: captured.append(t))
        c = Client(f.prof)
        assert c.action(2) == 11  # nobody said what "now" is: object-unavailable
        now = utc(2024, 1, 15, 10, 7, 3)
        f.prof.now = lambda: (now, mclock.STATUS_DOUBTFUL)
        f.src.i = 5
        assert c.action(2) == 0
        assert captured == [now] and f.prof.last_time() == now
        assert c.value(GET_LP2 + b"\x00") == (axdr.ARRAY, [(axdr.STRUCTURE, [
            (axdr.OCTET_STRING, date(2024, 1, 15, 10, 7, 3, 0, 0x02, 1)),
            (axdr.UNSIGNED, 5), (axdr.DOUBLE_LONG_UNSIGNED, 5007),
            (axdr.LONG_UNSIGNED, 23005)])])
        assert c.action(2, h("01 0906 000000000000")) == 12
        assert c.action(3) == 11
        assert f.log.in_use() == 1
        # the flash refuses: hardware-fault, nothing captured
        f.log.root = f.dir + "/gone"
        assert c.action(2) == 1
        assert captured == [now]
    finally:
        f.log.root = f.dir
        f.close()


def test_capture_clamps_source_values():
    f = Fixture()
    try:
        vals = {"s": 0x1FF, "e": -5, "v": None}
        cols = (pg.column(8, CLOCK_LN, 2, pg.CLOCK),
                pg.column(1, STATUS_LN, 2, pg.U8, lambda: vals["s"]),
                pg.column(3, ENERGY_LN, 2, pg.U32, lambda: vals["e"]),
                pg.column(3, VOLT_LN, 2, pg.U16, lambda: vals["v"]))
        prof = pg.ProfileGeneric("1.0.99.1.0.255", f.log, cols, f.clock, 900)
        assert prof.capture(utc(2024, 1, 15))
        assert Client(prof).read(2) == (0, h(
            "0101 0204 090C 07E8010F0100000000000000 11FF 0600000000 120000"))
    finally:
        f.close()


# ------------------------------------------------------------------ the buffer, no selection
def test_buffer_without_selective_access_is_the_shown_window():
    f = Fixture(entries=10, seg_rows=4)
    try:
        t0 = utc(2024, 1, 15)
        c = Client(f.prof)
        assert c.read(2) == (0, h("0100"))
        f.fill([t0 + 900 * i for i in range(23)])
        assert c.value(GET_LP2 + b"\x00") == f.rows(range(13, 23))
        assert c.read(7) == (0, h("06 0000000A"))
        assert f.prof.last_time() == t0 + 900 * 22
    finally:
        f.close()


def test_a_row_lost_to_flash_corruption_keeps_its_place_as_nulls():
    f = Fixture(entries=10, seg_rows=4)
    try:
        f.fill([utc(2024, 1, 15, 0, 15 * i) for i in range(3)])
        f.log.close()
        with open(f.dir + "/lp.0", "r+b") as fh:
            fh.seek(16 + 5)  # row 1, the status byte
            fh.write(b"\xee")
        v = Client(f.prof).value(GET_LP2 + b"\x00")
        assert v[1][0] == f.row(0) and v[1][2] == f.row(2)
        assert v[1][1] == (axdr.STRUCTURE, [(axdr.NULL, None)] * 4)
    finally:
        f.close()


# ------------------------------------------------------------------ range_descriptor
def test_vector_5_1_range_with_deviations_minus_120_and_minus_60():
    f = Fixture(entries=20)
    try:
        # from 2018-06-01 00:03 at UTC+2 = 2018-05-31 22:03 UTC;
        # to 2021-01-06 00:03 at UTC+1 = 2021-01-05 23:03 UTC
        f.fill([utc(2018, 5, 31, 22, 2, 59), utc(2018, 5, 31, 22, 3, 0),
                utc(2019, 12, 31, 23, 59, 59), utc(2021, 1, 5, 23, 3, 0),
                utc(2021, 1, 5, 23, 3, 1), utc(2021, 1, 6, 0, 3, 0)])
        c = Client(f.prof)
        assert c.value(V51) == f.rows([1, 2, 3])
    finally:
        f.close()


def test_vector_5_2_one_hour_of_load_profile():
    f = Fixture(entries=20)
    try:
        # 2017-10-01 00:00 .. 01:00 at deviation -60 (status 0x80 is not trusted):
        # 2017-09-30 23:00 .. 2017-10-01 00:00 UTC
        t = utc(2017, 9, 30, 22, 0)
        f.fill([t + 900 * i for i in range(13)])
        assert Client(f.prof).value(V52) == f.rows([4, 5, 6, 7, 8])
    finally:
        f.close()


def test_vector_5_4_gurux_deviation_0_and_dlms_cosem_deviation_8000():
    for dev in (0, -60):
        f = Fixture(entries=20, deviation=dev)
        try:
            t = utc(2024, 1, 14, 23, 0)
            f.fill([t + 900 * i for i in range(12)])  # 23:00 .. 01:45 UTC
            c = Client(f.prof)
            # gurux: deviation 0, so 00:30 .. 01:00 UTC whatever the meter's time zone
            assert c.value(V54_GURUX) == f.rows([6, 7, 8]), dev
            # dlms-cosem: 8000, the meter's local time: UTC+1 -> 23:30 .. 00:00 UTC
            want = [6, 7, 8] if dev == 0 else [2, 3, 4]
            assert c.value(V54_DLMS_COSEM) == f.rows(want), dev
            # the date-time type (tag 0x19) is accepted as well as octet-string(12)
            body = range_desc(date(2024, 1, 15, 0, 30, 0), date(2024, 1, 15, 1, 0, 0), (),
                              tag=0x19)
            assert c.value(sel(1, body)) == f.rows([6, 7, 8]), dev
        finally:
            f.close()


def test_range_local_time_in_summer_with_dst():
    f = Fixture(entries=20, deviation=-60)
    try:
        f.clock.set_dst(enabled=True)
        t = utc(2024, 7, 14, 21, 0)
        f.fill([t + 900 * i for i in range(12)])  # 23:00 .. 01:45 CEST
        # 8000 = the meter's local time, which is UTC+2 in July
        body = range_desc(date(2024, 7, 15, 0, 0, 0, 0x8000), date(2024, 7, 15, 0, 30, 0, 0x8000),
                          ())
        assert Client(f.prof).value(sel(1, body)) == f.rows([4, 5, 6])
    finally:
        f.close()


def test_range_selected_values_subsets():
    f = Fixture(entries=20)
    try:
        t = utc(2024, 1, 15)
        f.fill([t + 900 * i for i in range(8)])
        c = Client(f.prof)
        t0, t1 = date(2024, 1, 15, 0, 30, 0), date(2024, 1, 15, 1, 0, 0)
        assert c.value(sel(1, range_desc(t0, t1, ()))) == f.rows([2, 3, 4])
        assert c.value(sel(1, range_desc(t0, t1))) == f.rows([2, 3, 4])  # 3 elements
        assert c.value(sel(1, range_desc(t0, t1, (DEF_ENERGY,)))) == f.rows([2, 3, 4], (2,))
        # shown in the buffer's column order, whatever the order asked
        assert c.value(sel(1, range_desc(t0, t1, (DEF_VOLT, DEF_CLOCK)))) == f.rows(
            [2, 3, 4], (0, 3))
        assert c.value(sel(1, range_desc(t0, t1, (DEF_STATUS, DEF_VOLT, DEF_ENERGY,
                                                  DEF_CLOCK)))) == f.rows([2, 3, 4])
        # a capture object that is not a column; a data index; another attribute
        for bad in (h("0204 120003 0906 0100020800FF 0F02 120000"),
                    h("0204 120003 0906 0100010800FF 0F02 120001"),
                    h("0204 120003 0906 0100010800FF 0F03 120000")):
            assert c.get(sel(1, range_desc(t0, t1, (DEF_CLOCK, bad)))) == (250, None), bad
    finally:
        f.close()


def test_range_bounds_from_after_to_and_rows_outside():
    f = Fixture(entries=20)
    try:
        t = utc(2024, 1, 15)
        f.fill([t + 900 * i for i in range(8)])  # 00:00 .. 01:45
        c = Client(f.prof)

        def rng(a, b):
            return c.value(sel(1, range_desc(date(2024, 1, 15, a // 60, a % 60, 0),
                                             date(2024, 1, 15, b // 60, b % 60, 0), ())))

        assert rng(60, 30) == (axdr.ARRAY, [])  # from > to
        assert rng(120, 180) == (axdr.ARRAY, [])  # after the newest row
        assert c.value(sel(1, range_desc(date(2023, 1, 1, 0, 0, 0), date(2024, 1, 14, 23, 59, 59),
                                         ()))) == (axdr.ARRAY, [])  # before the oldest
        assert rng(16, 29) == (axdr.ARRAY, [])  # between two rows
        assert rng(30, 30) == f.rows([2])  # both bounds included
        assert rng(0, 105) == f.rows(range(8))
        assert c.value(sel(1, range_desc(date(2000, 1, 1, 0, 0, 0), date(2099, 12, 31, 23, 59, 59),
                                         ()))) == f.rows(range(8))
        # to the second (hundredths are not compared): 00:29:59.99 .. 00:30:00 is row 2
        assert c.value(sel(1, range_desc(date(2024, 1, 15, 0, 29, 59, cs=99),
                                         date(2024, 1, 15, 0, 30, 0), ()))) == f.rows([2])
        assert c.value(sel(1, range_desc(date(2024, 1, 15, 0, 30, 1),
                                         date(2024, 1, 15, 0, 44, 59), ()))) == (axdr.ARRAY, [])
    finally:
        f.close()


def test_range_only_sees_the_shown_window():
    f = Fixture(entries=5, seg_rows=4)
    try:
        t = utc(2024, 1, 15)
        f.fill([t + 900 * i for i in range(14)])  # rows 0..8 are no longer shown
        assert f.log.first < 9  # though some are still on flash
        body = range_desc(date(2024, 1, 15, 0, 0, 0), date(2024, 1, 16, 0, 0, 0), ())
        assert Client(f.prof).value(sel(1, body)) == f.rows(range(9, 14))
    finally:
        f.close()


def test_range_refusals():
    f = Fixture(entries=20)
    try:
        f.fill([utc(2024, 1, 15, 0, 15 * i) for i in range(4)])
        c = Client(f.prof)
        t0, t1 = date(2024, 1, 15, 0, 0, 0), date(2024, 1, 15, 1, 0, 0)
        # the restricting object must be the clock column: other-reason
        assert c.get(sel(1, range_desc(t0, t1, (), restrict=DEF_ENERGY))) == (250, None)
        assert c.get(sel(1, range_desc(t0, t1, (), restrict=DEF_STATUS))) == (250, None)
        for restrict in (h("0204 120008 0906 0000010000FF 0F03 120000"),  # clock attr 3
                         h("0204 120008 0906 0000010001FF 0F02 120000"),  # another clock
                         h("0204 120008 0906 0000010000FF 0F02 120001")):  # data index 1
            assert c.get(sel(1, range_desc(t0, t1, (), restrict=restrict))) == (250, None)
        # not a date: month 13, day 31 of February, hour 24, deviation beyond 720 minutes
        for bad in (date(2024, 13, 1, 0, 0, 0), date(2024, 2, 31, 0, 0, 0),
                    date(2024, 1, 15, 24, 0, 0), date(2024, 1, 15, 0, 0, 0, 800)):
            assert c.get(sel(1, range_desc(bad, t1, ()))) == (250, None), bad
            assert c.get(sel(1, range_desc(t0, bad, ()))) == (250, None), bad
        # a selector this class does not have
        assert c.get(sel(3, range_desc(t0, t1, ()))) == (250, None)
        # access parameters of the wrong type: type-unmatched
        for body in (h("0F01"),  # not a structure
                     h("0204") + DEF_CLOCK + h("0F00 0F00 0100"),  # dates as integers
                     h("0204") + DEF_CLOCK + h("0904") + t0[:4] + h("090C") + t1 + h("0100"),
                     h("0204 0F00") + h("090C") + t0 + h("090C") + t1 + h("0100"),
                     h("0204") + DEF_CLOCK + h("090C") + t0 + h("090C") + t1 + h("0F00"),
                     h("0202") + DEF_CLOCK + h("090C") + t0):  # too few elements
            assert c.get(sel(1, body)) == (12, None), body
    finally:
        f.close()


# ------------------------------------------------------------------ entry_descriptor
def test_vector_5_3_entries_2_to_4():
    f = Fixture(entries=20)
    try:
        t = utc(2024, 1, 15)
        f.fill([t + 900 * i for i in range(7)])
        assert Client(f.prof).value(V53) == f.rows([1, 2, 3])
    finally:
        f.close()


def test_entry_descriptor_edge_cases():
    f = Fixture(entries=6, seg_rows=2)
    try:
        t = utc(2024, 1, 15)
        c = Client(f.prof)
        assert c.value(sel(2, entry_desc(1, 0, 1, 0))) == (axdr.ARRAY, [])  # empty profile
        f.fill([t + 900 * i for i in range(10)])  # shown: rows 4..9 = entries 1..6

        def ent(e0, e1, c0=0, c1=0):
            return c.value(sel(2, entry_desc(e0, e1, c0, c1)))

        assert ent(1, 0) == f.rows(range(4, 10))  # to 0 = the last
        assert ent(0, 0) == f.rows(range(4, 10))
        assert ent(6, 0) == f.rows([9])
        assert ent(6, 6) == f.rows([9])
        assert ent(2, 3) == f.rows([5, 6])
        assert ent(3, 100) == f.rows(range(6, 10))  # to past the end: up to the last
        assert ent(7, 0) == (axdr.ARRAY, [])  # from past the end: empty
        assert ent(7, 9) == (axdr.ARRAY, [])
        assert ent(4, 2) == (axdr.ARRAY, [])  # from > to
        # column subsets, counted from 1; to 0 = the last column
        assert ent(1, 2, 2, 3) == f.rows([4, 5], (1, 2))
        assert ent(1, 2, 1, 1) == f.rows([4, 5], (0,))
        assert ent(1, 2, 4, 0) == f.rows([4, 5], (3,))
        assert ent(1, 2, 3, 9) == f.rows([4, 5], (2, 3))
        assert ent(1, 2, 0, 2) == f.rows([4, 5], (0, 1))
        assert c.get(sel(2, entry_desc(1, 2, 3, 2))) == (250, None)  # from > to
        assert c.get(sel(2, entry_desc(1, 2, 5, 0))) == (250, None)  # past the last column
        # negative or non-integer values
        assert c.get(sel(2, h("0204 0FFF 0600000002 120000 120000"))) == (250, None)
        assert c.get(sel(2, h("0204 0904 00000001 0600000002 120000 120000"))) == (12, None)
        assert c.get(sel(2, h("0203 0600000001 0600000002 120000"))) == (12, None)
        assert c.get(sel(2, h("0600000001"))) == (12, None)
        # other integer types are accepted for the numbers
        assert c.value(sel(2, h("0204 1102 120003 1100 120000"))) == f.rows([5, 6])
    finally:
        f.close()


# ------------------------------------------------------------------ event log: times go back
def test_event_log_range_scans_rows_whose_times_go_backwards():
    f = Fixture(entries=20, increasing=False, period=0)
    try:
        t = utc(2024, 1, 15, 12, 0)
        m = 60
        # a clock set back 2.5 minutes after the third event
        f.fill([t + 1 * m, t + 2 * m, t + 3 * m, t + 30, t + 150, t + 4 * m, t + 90])
        c = Client(f.prof)

        def rng(a, b, selected=()):
            return c.value(sel(1, range_desc(date(2024, 1, 15, 12, a // 60, a % 60),
                                             date(2024, 1, 15, 12, b // 60, b % 60), selected)))

        assert rng(80, 160) == f.rows([1, 4, 6])  # storage order, every match
        assert rng(0, 59) == f.rows([3])
        assert rng(0, 600) == f.rows(range(7))
        assert rng(181, 239) == (axdr.ARRAY, [])
        assert rng(160, 80) == (axdr.ARRAY, [])
        assert rng(30, 90, (DEF_STATUS,)) == f.rows([0, 3, 6], (1,))
        # the same rows in an "increasing" profile would be searched, not scanned: this is
        # why the event log is not one
        inc = pg.ProfileGeneric("1.0.99.1.0.255", f.log, columns(f.src), f.clock, 0)
        v = Client(inc).value(sel(1, range_desc(date(2024, 1, 15, 12, 1, 20),
                                                date(2024, 1, 15, 12, 2, 40), ())))
        assert v != f.rows([1, 4, 6])
    finally:
        f.close()


# ------------------------------------------------------------------ long downloads
def _download(n, pdu):
    f = Fixture(entries=n + 100)
    try:
        t = utc(2024, 1, 1)
        f.fill([t + 900 * i for i in range(n)])
        c = Client(f.prof, pdu)
        dar, data = c.get(GET_LP2 + b"\x00")
        assert dar == 0
        blocks = c.blocks
        r = axdr.Reader(data)
        r.expect(axdr.ARRAY)
        assert r.length() == n
        for i in range(n):  # row by row: the whole reply is not held decoded
            assert r.data() == f.row(i), i
        assert r.remaining() == 0
        return f, c, blocks, len(data)
    except Exception:
        f.close()
        raise


def test_download_of_thousands_of_rows_in_blocks_at_pdu_128_and_1024():
    n = 2500
    for pdu in (128, 1024):
        f, c, blocks, size = _download(n, pdu)
        try:
            assert size == 4 + n * 26  # 01 82 09C4, then 26 octets per row
            assert blocks >= size // pdu, (pdu, blocks)  # GET-Next per block
            # a range in the middle, at the same PDU, in the same association
            body = range_desc(date(2024, 1, 11, 10, 0, 0), date(2024, 1, 21, 9, 45, 0), ())
            dar, data = c.get(sel(1, body))
            assert dar == 0
            r = axdr.Reader(data)
            r.expect(axdr.ARRAY)
            assert r.length() == 960
            for i in range(1000, 1960):
                assert r.data() == f.row(i), i
            # entries 2001 .. 2500
            dar, data = c.get(sel(2, entry_desc(2001, 0, 0, 0)))
            r = axdr.Reader(data)
            r.expect(axdr.ARRAY)
            assert r.length() == 500
            for i in range(2000, 2500):
                assert r.data() == f.row(i), i
        finally:
            f.close()


def test_rows_of_a_reply_are_fixed_when_it_starts():
    f = Fixture(entries=200, seg_rows=16)
    try:
        t = utc(2024, 1, 1)
        f.fill([t + 900 * i for i in range(60)])
        c = Client(f.prof, 128)

        def capture_more(block):
            if block in (2, 5):
                f.fill([t + 900 * len(f.times)])

        dar, data = c.get(GET_LP2 + b"\x00", capture_more)
        assert dar == 0 and len(f.times) == 62
        r = axdr.Reader(data)
        assert r.data() == f.rows(range(60))
        # a new request sees them
        assert c.value(GET_LP2 + b"\x00") == f.rows(range(62))
    finally:
        f.close()


def test_a_new_request_abandons_a_download():
    f = Fixture(entries=200)
    try:
        f.fill([utc(2024, 1, 1) + 900 * i for i in range(50)])
        c = Client(f.prof, 128)
        r = c.ask(GET_LP2 + b"\x00")
        assert r[:4] == h("C402C100")
        assert c.read(7) == (0, h("06 00000032"))
        r = c.ask(h("C002C1 00000001"))
        assert r == h("C402C1 01 00000001 01 10")  # no long GET in progress
    finally:
        f.close()


def test_the_pump_streams_the_generator_without_the_association():
    f = Fixture(entries=400)
    try:
        f.fill([utc(2024, 1, 1) + 900 * i for i in range(300)])
        pump = xdlms.Pump()
        w = pump.reset()

        class Ref:
            selector = 2
            selection = (axdr.STRUCTURE, [(axdr.DOUBLE_LONG_UNSIGNED, 11),
                                          (axdr.DOUBLE_LONG_UNSIGNED, 290),
                                          (axdr.LONG_UNSIGNED, 1), (axdr.LONG_UNSIGNED, 3)])

        gen = f.prof.get(2, w, None, Ref())
        assert not isinstance(gen, int)
        pump.start(gen)
        out = bytearray(37)  # an odd block size: items are split across blocks
        data = bytearray()
        steps = 0
        while not pump.done:
            pos = pump.fill(out, 0, len(out))
            data += out[:pos]
            steps += 1
            assert steps < 100000 and not pump.failed
        r = axdr.Reader(bytes(data))
        assert r.data() == f.rows(range(10, 290), (0, 1, 2))
        assert r.remaining() == 0
    finally:
        f.close()
