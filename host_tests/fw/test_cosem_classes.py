"""COSEM interface classes through the real association: Clock (8), Register (3), Extended
register (4), Association LN (15) secret and methods, SAP assignment (17), IEC HDLC setup
(23), IEC local port setup (19). Runs under CPython and MicroPython.

TEST-ONLY BYPASS: the management client (SAP 1) needs HLS-GMAC, which this build does not
have yet. ``session(MGMT)`` builds the real table with ``objects.build`` and then replaces
the management policy by mechanism 0 (no authentication) so that a plain LN AARQ from
client 1 is accepted. The firmware never does this.
"""

import binascii

from cosem import objects
from cosem.base import obis
from cosem.hdlc_setup import HdlcSettings
from cosem.local_port_setup import LocalPortSettings
from cosem.register import ExtendedRegister, Register
from dlms import acse
from dlms import association
from dlms import axdr
from dlms import hdlc
from meter import clock as mclock

PUB = objects.PUBLIC
READER = objects.READER
MGMT = objects.MANAGEMENT


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


AARQ_PUBLIC = h("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
AARQ_LLS = h("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
             "BE10040E01000000065F1F0400007E1F04B0")  # password 12345678
IDENTITY = {"name": b"MMM0000012345678", "serial": b"12345678", "firmware": b"fw 1"}

CLOCK = "0.0.1.0.0.255"
HDLC = "0.0.22.0.0.255"
PORT = "0.0.20.0.0.255"
ALN_READER = "0.0.40.0.2.255"
ALN_PUBLIC = "0.0.40.0.1.255"


def aarq_lls(password):
    """An LN AARQ with LLS and the given password (1..32 octets)."""
    auth = bytes([0xAC, len(password) + 2, 0x80, len(password)]) + password
    body = (h("A109060760857405080101 8A020780 8B0760857405080201") + auth
            + h("BE10040E01000000065F1F0400007E1F04B0"))
    return bytes([0x60, len(body)]) + body


class RTC:
    """A settable machine.RTC stand-in; time stands still (2024-01-15 12:30:45.67 UTC)."""

    def __init__(self, t=(2024, 1, 15, 0, 12, 30, 45, 670000)):
        self.t = t
        self.writes = 0

    def datetime(self, t=None):
        if t is None:
            return self.t
        self.t = tuple(t)
        self.writes += 1


class Session:
    def __init__(self, role, rtc=None, dev=None, **build_args):
        self.rtc = rtc or RTC()
        self.clock = mclock.Clock(self.rtc)
        if dev is None:
            dev = objects.build(self.clock, IDENTITY, **build_args)
        if role == MGMT:  # TEST-ONLY: management without HLS (see the module docstring)
            dev.policies[MGMT] = acse.Policy(mechanism=0, conformance=objects.CONFORMANCE)
        self.dev = dev
        self.role = role
        self.assoc = association.Association(dev)
        self.out = bytearray(1024)
        aare = self.ask(AARQ_LLS if role == READER else AARQ_PUBLIC)
        assert aare[0] == 0x61 and self.assoc.associated, aare

    def ask(self, apdu):
        n = self.assoc.handle(self.role, apdu, len(apdu), memoryview(self.out))
        return bytes(self.out[:n])

    def get(self, cid, ln, attr):
        """(0, A-XDR data bytes) or (Data-Access-Result, None); follows block transfer."""
        r = self.ask(h("C001C1") + desc(cid, ln, attr) + h("00"))
        if r[:4] == h("C401C100"):
            return 0, r[4:]
        if r[:4] == h("C401C101"):
            return r[4], None
        data = b""
        while True:
            assert r[:3] == h("C402C1"), r
            if r[8] == 1:
                return r[9], None
            rd = axdr.Reader(r, 9)
            n = rd.length()
            data += r[rd.pos:rd.pos + n]
            if r[3]:
                return 0, data
            r = self.ask(h("C002C1") + r[4:8])

    def value(self, cid, ln, attr):
        dar, data = self.get(cid, ln, attr)
        assert dar == 0, "GET %s/%d: %d" % (ln, attr, dar)
        rd = axdr.Reader(data)
        v = rd.data()
        assert rd.remaining() == 0
        return v

    def set(self, cid, ln, attr, enc):
        r = self.ask(h("C101C1") + desc(cid, ln, attr) + h("00") + enc)
        assert r[:3] == h("C501C1") and len(r) == 4, r
        return r[3]

    def action(self, cid, ln, method, enc=None):
        """(Action-Result, return data bytes or None)."""
        param = h("00") if enc is None else h("01") + enc
        r = self.ask(h("C301C1") + desc(cid, ln, method) + param)
        assert r[:3] == h("C701C1"), r
        if r[4] == 1:
            assert r[5] == 0
            return r[3], r[6:]
        return r[3], None


def desc(cid, ln, attr):
    return bytes([cid >> 8, cid & 0xFF]) + obis(ln) + bytes([attr])


def dt(y, mo, d, hh, mi, ss, cs=0, dev=0, status=0):
    """A fully specified COSEM date-time (day of week computed, 1 = Monday)."""
    wd = (mclock.days_from_civil(y, mo, d) + 5) % 7 + 1
    dev &= 0xFFFF
    return bytes([y >> 8, y & 0xFF, mo, d, wd, hh, mi, ss, cs, dev >> 8, dev & 0xFF, status])


def os_(b):
    """An octet-string, encoded."""
    return bytes([axdr.OCTET_STRING, len(b)]) + b


def utc_of(rtc):
    y, mo, d, _wd, hh, mi, ss, us = rtc.t
    return (y, mo, d, hh, mi, ss, us // 10000)


# ---------------------------------------------------------------------- Clock (IC 8)


def test_clock_attributes_and_types():
    s = Session(MGMT)
    assert s.value(8, CLOCK, 1) == (axdr.OCTET_STRING, obis(CLOCK))
    assert s.value(8, CLOCK, 2) == (axdr.OCTET_STRING, h("07E8010F010C1E2D43 0000 00"))
    assert s.value(8, CLOCK, 3) == (axdr.LONG, 0)
    assert s.value(8, CLOCK, 4) == (axdr.UNSIGNED, 0)
    assert s.value(8, CLOCK, 5) == (axdr.OCTET_STRING, mclock.DST_BEGIN_EU)
    assert s.value(8, CLOCK, 6) == (axdr.OCTET_STRING, mclock.DST_END_EU)
    assert s.value(8, CLOCK, 7) == (axdr.INTEGER, 60)
    assert s.value(8, CLOCK, 8) == (axdr.BOOLEAN, False)
    assert s.value(8, CLOCK, 9) == (axdr.ENUM, 1)


def test_clock_set_time_utc_and_with_deviation():
    s = Session(MGMT)
    changes = []
    s.clock.on_change.append(lambda c, old: changes.append(old))
    assert s.set(8, CLOCK, 2, os_(dt(2025, 6, 1, 8, 0, 0, 50))) == 0
    # RTC tuple: weekday 0 = Monday (2025-06-01 is a Sunday -> 6), microseconds
    assert s.rtc.t == (2025, 6, 1, 6, 8, 0, 0, 500000)
    assert changes == [mclock.to_seconds(2024, 1, 15, 12, 30, 45)]
    # a local time with deviation -60 (UTC+1): 09:00 local = 08:00 UTC
    assert s.set(8, CLOCK, 2, os_(dt(2025, 6, 1, 9, 0, 0, 0, -60))) == 0
    assert utc_of(s.rtc) == (2025, 6, 1, 8, 0, 0, 0)
    # the date-time tag (25) is accepted too
    enc = bytes([axdr.DATE_TIME]) + dt(2025, 6, 2, 0, 0, 0)
    assert s.set(8, CLOCK, 2, enc) == 0
    assert utc_of(s.rtc) == (2025, 6, 2, 0, 0, 0, 0)


def test_clock_set_time_unspecified_deviation_is_meter_local_time():
    s = Session(MGMT)
    assert s.set(8, CLOCK, 3, h("10 FFC4")) == 0  # time zone -60 (CET)
    b = bytearray(dt(2025, 1, 10, 13, 0, 0))
    b[9], b[10] = 0x80, 0x00  # deviation not specified
    assert s.set(8, CLOCK, 2, os_(bytes(b))) == 0
    assert utc_of(s.rtc) == (2025, 1, 10, 12, 0, 0, 0)
    # with DST on, a summer local time is CEST (UTC+2)
    assert s.set(8, CLOCK, 8, h("03 01")) == 0
    b = bytearray(dt(2025, 7, 10, 14, 0, 0))
    b[9], b[10] = 0x80, 0x00
    assert s.set(8, CLOCK, 2, os_(bytes(b))) == 0
    assert utc_of(s.rtc) == (2025, 7, 10, 12, 0, 0, 0)
    assert s.value(8, CLOCK, 2)[1] == dt(2025, 7, 10, 14, 0, 0, 0, -120, 0x80)


def test_clock_set_time_refusals():
    s = Session(MGMT)
    before = s.rtc.t
    assert s.set(8, CLOCK, 2, h("10 0000")) == 12  # long: type-unmatched
    assert s.set(8, CLOCK, 2, os_(dt(2025, 6, 1, 8, 0, 0)[:11])) == 12  # 11 octets
    bad = bytearray(dt(2025, 2, 28, 8, 0, 0))
    bad[3] = 30  # 30 February
    assert s.set(8, CLOCK, 2, os_(bytes(bad))) == 250
    for i, v in ((0, 0x09), (2, 13), (5, 24), (6, 60), (7, 0xFF), (8, 100),
                 (4, 9)):
        b = bytearray(dt(2025, 6, 1, 8, 0, 0))
        b[i] = v
        assert s.set(8, CLOCK, 2, os_(bytes(b))) == 250, (i, v)
    b = bytearray(dt(2025, 6, 1, 8, 0, 0))
    b[9], b[10] = 0x03, 0x00  # deviation +768: out of range
    assert s.set(8, CLOCK, 2, os_(bytes(b))) == 250
    assert s.set(8, CLOCK, 2, os_(dt(1999, 12, 31, 23, 0, 0))) == 250  # before the epoch
    assert s.rtc.t == before and s.rtc.writes == 0
    assert s.set(8, CLOCK, 4, h("11 00")) == 3  # status: read-only
    assert s.set(8, CLOCK, 9, h("16 02")) == 3  # clock_base: read-only
    assert s.set(8, CLOCK, 1, os_(b"\x00" * 6)) == 3


def test_clock_time_zone_and_dst_settings():
    s = Session(MGMT)
    assert s.set(8, CLOCK, 3, h("10 FFC4")) == 0
    assert s.value(8, CLOCK, 3) == (axdr.LONG, -60)
    assert s.value(8, CLOCK, 2)[1] == dt(2024, 1, 15, 13, 30, 45, 67, -60)
    assert s.set(8, CLOCK, 3, h("10 02D1")) == 250  # 721 minutes
    assert s.set(8, CLOCK, 3, h("0F C4")) == 12  # integer instead of long
    assert s.value(8, CLOCK, 3) == (axdr.LONG, -60)
    # DST begin/end: a pattern with wildcards; malformed ones are refused
    pattern = bytes([0xFF, 0xFF, 3, 25, 7, 2, 0, 0, 0, 0x80, 0, 0xFF])
    assert s.set(8, CLOCK, 5, os_(pattern)) == 0
    assert s.value(8, CLOCK, 5) == (axdr.OCTET_STRING, pattern)
    assert s.set(8, CLOCK, 6, os_(pattern[:5] + b"\x18" + pattern[6:])) == 250  # hour 24
    assert s.set(8, CLOCK, 6, h("11 05")) == 12
    assert s.set(8, CLOCK, 7, h("0F 78")) == 0  # 120
    assert s.set(8, CLOCK, 7, h("0F 79")) == 250  # 121
    assert s.set(8, CLOCK, 7, h("10 003C")) == 12
    assert s.value(8, CLOCK, 7) == (axdr.INTEGER, 120)
    assert s.set(8, CLOCK, 8, h("11 01")) == 12
    assert s.set(8, CLOCK, 8, h("03 01")) == 0
    assert s.value(8, CLOCK, 8) == (axdr.BOOLEAN, True)


def test_dst_transitions_eu_rule():
    rtc = RTC()
    c = mclock.Clock(rtc, deviation_min=-60)
    c.set_dst(enabled=True)
    t = mclock.to_seconds
    # 2024: begin Sunday 31 March 02:00 CET = 01:00 UTC; end Sunday 27 October 03:00 CEST
    assert not c.dst_active(t(2024, 3, 31, 0, 59, 59))
    assert c.dst_active(t(2024, 3, 31, 1, 0, 0))
    assert c.dst_active(t(2024, 10, 27, 0, 59, 59))
    assert not c.dst_active(t(2024, 10, 27, 1, 0, 0))
    # 2025: 30 March and 26 October
    assert c.dst_active(t(2025, 3, 30, 1, 0, 0)) and not c.dst_active(t(2025, 3, 29, 12, 0, 0))
    assert not c.dst_active(t(2025, 10, 26, 1, 0, 0))
    b = c.encode(t(2024, 7, 1, 10, 0, 0))
    assert bytes(b) == dt(2024, 7, 1, 12, 0, 0, 0, -120, mclock.STATUS_DST)
    assert c.clock_status(t(2024, 7, 1, 10, 0, 0)) == mclock.STATUS_DST
    assert bytes(c.encode(t(2024, 1, 1, 10, 0, 0))) == dt(2024, 1, 1, 11, 0, 0, 0, -60)
    # "Sunday on or after the 25th" is the same day as "last Sunday" in March
    c.set_dst(begin=bytes([0xFF, 0xFF, 3, 25, 7, 2, 0, 0, 0, 0x80, 0, 0xFF]))
    assert c.dst_active(t(2024, 3, 31, 1, 0, 0)) and not c.dst_active(t(2024, 3, 31, 0, 0, 0))
    # southern hemisphere: begin in October, end in April (spans New Year)
    s = mclock.Clock(rtc, deviation_min=-600)
    s.set_dst(begin=bytes([0xFF, 0xFF, 10, 1, 7, 2, 0, 0, 0, 0x80, 0, 0xFF]),
              end=bytes([0xFF, 0xFF, 4, 1, 7, 3, 0, 0, 0, 0x80, 0, 0xFF]), enabled=True)
    assert s.dst_active(t(2024, 1, 10, 0, 0, 0)) and not s.dst_active(t(2024, 7, 10, 0, 0, 0))


def test_clock_config_round_trip():
    c = mclock.Clock(RTC(), deviation_min=-60)
    c.set_dst(deviation=30, enabled=True)
    rec = c.config()
    d = mclock.Clock(RTC())
    d.load_config(rec)
    assert (d.deviation, d.dst_deviation, d.dst_enabled, d.dst_begin, d.dst_end) == (
        -60, 30, True, mclock.DST_BEGIN_EU, mclock.DST_END_EU)
    bad = bytearray(rec)
    bad[0], bad[1] = 0x7F, 0
    for r in (bytes(bad), rec[:-1]):
        try:
            d.load_config(r)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted a bad record")
    assert d.deviation == -60


def test_clock_adjust_methods():
    s = Session(MGMT)
    assert s.action(8, CLOCK, 3, h("0F00")) == (0, None)  # to the minute: 12:30:45 -> 12:31
    assert utc_of(s.rtc) == (2024, 1, 15, 12, 31, 0, 0)
    assert s.action(8, CLOCK, 1, h("0F00")) == (0, None)  # quarter: 12:31 -> 12:30
    assert utc_of(s.rtc) == (2024, 1, 15, 12, 30, 0, 0)
    s.rtc.t = (2024, 1, 15, 0, 12, 37, 30, 0)
    assert s.action(8, CLOCK, 2, h("0F00")) == (0, None)  # period 900 s, half up
    assert utc_of(s.rtc) == (2024, 1, 15, 12, 45, 0, 0)
    s.rtc.t = (2024, 1, 15, 0, 23, 59, 40, 0)
    assert s.action(8, CLOCK, 3) == (0, None)  # no parameter: accepted
    assert utc_of(s.rtc) == (2024, 1, 16, 0, 0, 0, 0)
    assert s.action(8, CLOCK, 1, h("1100")) == (12, None)  # unsigned: type-unmatched


def test_clock_shift_time():
    s = Session(MGMT)
    assert s.action(8, CLOCK, 6, h("10 0384")) == (0, None)  # +900 s
    assert utc_of(s.rtc) == (2024, 1, 15, 12, 45, 45, 67)
    assert s.action(8, CLOCK, 6, h("10 FC7C")) == (0, None)  # -900 s
    assert utc_of(s.rtc) == (2024, 1, 15, 12, 30, 45, 67)
    assert s.action(8, CLOCK, 6, h("10 0385")) == (250, None)  # 901
    assert s.action(8, CLOCK, 6, h("0F 05")) == (12, None)
    assert s.action(8, CLOCK, 6) == (12, None)
    assert utc_of(s.rtc) == (2024, 1, 15, 12, 30, 45, 67)


def test_clock_preset_adjusting_time():
    s = Session(MGMT)
    assert s.action(8, CLOCK, 4, h("0F00")) == (250, None)  # nothing preset
    preset = h("0203") + os_(dt(2024, 1, 15, 13, 0, 0)) + os_(dt(2024, 1, 15, 12, 0, 0))
    assert s.action(8, CLOCK, 5, preset + os_(dt(2024, 1, 15, 12, 59, 0))) == (0, None)
    assert s.action(8, CLOCK, 4, h("0F00")) == (0, None)
    assert utc_of(s.rtc) == (2024, 1, 15, 13, 0, 0, 0)
    assert s.action(8, CLOCK, 4, h("0F00")) == (250, None)  # used once
    # now (13:00) outside the validity interval 12:00..12:59
    assert s.action(8, CLOCK, 5, preset + os_(dt(2024, 1, 15, 12, 59, 0))) == (0, None)
    assert s.action(8, CLOCK, 4, h("0F00")) == (250, None)
    assert utc_of(s.rtc) == (2024, 1, 15, 13, 0, 0, 0)
    # refusals: interval ends before it starts, wrong shape, invalid date
    start_after_end = (h("0203") + os_(dt(2024, 1, 15, 13, 0, 0)) + os_(dt(2024, 1, 15, 14, 0, 0))
                       + os_(dt(2024, 1, 15, 12, 0, 0)))
    assert s.action(8, CLOCK, 5, start_after_end) == (250, None)
    assert s.action(8, CLOCK, 5, h("0202") + os_(dt(2024, 1, 15, 13, 0, 0)) * 2) == (12, None)
    assert s.action(8, CLOCK, 5, h("0F00")) == (12, None)
    bad = bytearray(dt(2024, 1, 15, 13, 0, 0))
    bad[2] = 0xFF
    assert s.action(8, CLOCK, 5, h("0203") + os_(bytes(bad)) * 3) == (250, None)


def test_clock_rights_per_role():
    for role in (PUB, READER):
        s = Session(role)
        assert s.set(8, CLOCK, 2, os_(dt(2025, 6, 1, 8, 0, 0))) == 3
        assert s.set(8, CLOCK, 3, h("10 0000")) == 3
        assert s.action(8, CLOCK, 6, h("10 0001")) == (3, None)
        assert s.rtc.writes == 0


# ---------------------------------------------------------------------- Register (IC 3, 4)

REG = "1.0.1.8.0.255"
REG2 = "1.0.32.7.0.255"
REG3 = "1.0.2.8.0.255"
XREG = "1.0.1.6.0.255"


class Source:
    def __init__(self, v):
        self.v = v
        self.resets = 0

    def __call__(self):
        if isinstance(self.v, Exception):
            raise self.v
        return self.v

    def reset(self):
        self.resets += 1
        self.v = 0


def register_session():
    """A small device: measured registers (sources), a stored one, an extended one."""
    rtc = RTC()
    clk = mclock.Clock(rtc)
    dev = objects.LogicalDevice(b"MMM0000012345678")
    dev.policies[PUB] = acse.Policy(mechanism=0, conformance=objects.CONFORMANCE)
    energy = Source(123456789)
    volts = Source(2301)
    r1 = dev.add(Register(REG, energy, 0, 30, reset=energy.reset), pub=("rbr", "x"))
    r2 = dev.add(Register(REG2, volts, -1, 35, axdr.LONG_UNSIGNED), pub=("rbr", "x"))
    r3 = dev.add(Register(REG3, 7, 3, 27, axdr.DOUBLE_LONG, default=-1), pub=("rbr", "x"))
    x = dev.add(ExtendedRegister(XREG, 0, clk, 1, 27, axdr.DOUBLE_LONG_UNSIGNED),
                pub=("rrrrr", "x"))
    dev.done()
    s = Session(PUB, rtc=rtc, dev=dev)
    return s, energy, volts, (r1, r2, r3, x)


def test_register_attributes_and_types():
    s, _e, _v, _r = register_session()
    assert s.value(3, REG, 1) == (axdr.OCTET_STRING, obis(REG))
    assert s.value(3, REG, 2) == (axdr.DOUBLE_LONG_UNSIGNED, 123456789)
    assert s.get(3, REG, 3) == (0, h("0202 0F00 161E"))  # scaler 0, Wh
    assert s.value(3, REG2, 2) == (axdr.LONG_UNSIGNED, 2301)
    assert s.get(3, REG2, 3) == (0, h("0202 0FFF 1623"))  # scaler -1, V
    assert s.value(3, REG3, 2) == (axdr.DOUBLE_LONG, 7)
    assert s.get(3, REG3, 4) == (11, None)  # no such attribute


def test_register_source_failures_answer_not_crash():
    s, energy, volts, _r = register_session()
    energy.v = None
    assert s.get(3, REG, 2) == (2, None)  # not available yet: temporary-failure
    energy.v = OSError(5)
    assert s.get(3, REG, 2) == (1, None)  # the source failed: hardware-fault
    volts.v = 70000  # does not fit long-unsigned
    assert s.get(3, REG2, 2) == (1, None)
    volts.v = 229.96  # a float source for an integer type is rounded
    assert s.value(3, REG2, 2) == (axdr.LONG_UNSIGNED, 230)
    assert s.get(3, REG, 3)[0] == 0  # other attributes are unaffected


def test_register_write_and_reset():
    s, energy, volts, (r1, r2, r3, _x) = register_session()
    assert s.set(3, REG, 2, h("06 00000001")) == 3  # measured: not settable
    assert s.set(3, REG3, 2, h("05 FFFFFF00")) == 0  # stored: same type accepted
    assert s.value(3, REG3, 2) == (axdr.DOUBLE_LONG, -256)
    assert s.set(3, REG3, 2, h("06 00000001")) == 12  # other type
    assert s.set(3, REG3, 3, h("0202 0F00 161E")) == 3  # scaler_unit: read-only
    assert s.action(3, REG3, 1, h("0F00")) == (0, None)
    assert s.value(3, REG3, 2) == (axdr.DOUBLE_LONG, -1)  # the default
    assert s.action(3, REG, 1, h("0F00")) == (0, None)
    assert energy.resets == 1 and s.value(3, REG, 2) == (axdr.DOUBLE_LONG_UNSIGNED, 0)
    assert s.action(3, REG2, 1, h("0F00")) == (11, None)  # no reset for this source
    assert s.action(3, REG, 1, h("1100")) == (12, None)
    assert energy.resets == 1


def test_extended_register_capture_and_reset():
    s, _e, _v, (_a, _b, _c, x) = register_session()
    assert s.value(4, XREG, 4) == (axdr.UNSIGNED, 0)
    assert s.value(4, XREG, 5) == (axdr.OCTET_STRING, h("FFFFFFFFFFFFFFFFFF8000FF"))
    x.capture(5400, (axdr.UNSIGNED, 2), mclock.to_seconds(2024, 1, 15, 12, 15, 0))
    assert s.value(4, XREG, 2) == (axdr.DOUBLE_LONG_UNSIGNED, 5400)
    assert s.get(4, XREG, 3) == (0, h("0202 0F01 161B"))
    assert s.value(4, XREG, 4) == (axdr.UNSIGNED, 2)
    assert s.value(4, XREG, 5) == (axdr.OCTET_STRING, dt(2024, 1, 15, 12, 15, 0, 0, 0))
    assert s.action(4, XREG, 1, h("0F00")) == (0, None)
    assert s.value(4, XREG, 2) == (axdr.DOUBLE_LONG_UNSIGNED, 0)
    assert s.value(4, XREG, 4) == (axdr.UNSIGNED, 0)
    assert s.value(4, XREG, 5) == (axdr.OCTET_STRING, dt(2024, 1, 15, 12, 30, 45, 0, 0))
    assert ExtendedRegister.ATTRS[3][0] == "status" and len(ExtendedRegister.METHODS) == 1


# ---------------------------------------------------------------------- Association LN


def test_management_changes_the_reader_secret():
    s = Session(MGMT)
    seen = []
    s.dev.on_secret_change.append(lambda role, secret: seen.append((role, secret)))
    assert s.set(15, ALN_READER, 7, os_(b"s3cret!")) == 0
    assert seen == [(READER, b"s3cret!")]
    assert s.dev.policies[READER].secret == b"s3cret!"
    assert s.get(15, ALN_READER, 7) == (3, None)  # never readable
    # the reader's next association needs the new password
    a = association.Association(s.dev)
    out = bytearray(512)
    n = a.handle(READER, AARQ_LLS, len(AARQ_LLS), memoryview(out))
    assert out[0] == 0x61 and not a.associated
    req = aarq_lls(b"s3cret!")
    a.handle(READER, req, len(req), memoryview(out))
    assert a.associated


def test_secret_write_refusals():
    s = Session(MGMT)
    assert s.set(15, ALN_READER, 7, os_(b"")) == 250
    assert s.set(15, ALN_READER, 7, os_(b"x" * 33)) == 250
    assert s.set(15, ALN_READER, 7, h("0A03 414243")) == 12  # visible-string
    assert s.set(15, ALN_PUBLIC, 7, os_(b"abc")) == 3  # no right (and no LLS)
    assert s.set(15, "0.0.40.0.0.255", 7, os_(b"abc")) == 3
    assert s.dev.policies[READER].secret == b"12345678"
    # the class itself refuses a role without LLS, whatever the rights say
    aln = s.dev.lookup(MGMT, obis(ALN_PUBLIC))[0]
    assert aln.set(7, (axdr.OCTET_STRING, b"abc"), s.assoc) == 3
    # the reader cannot change its own password
    r = Session(READER)
    assert r.set(15, ALN_READER, 7, os_(b"abc")) == 3
    assert r.set(15, "0.0.40.0.0.255", 7, os_(b"abc")) == 3


def test_association_ln_methods_are_refused():
    s = Session(MGMT)
    for m in (1, 2, 3, 4):
        assert s.action(15, "0.0.40.0.0.255", m, os_(b"x" * 16)) == (3, None)  # no right
    aln = s.dev.lookup(MGMT, obis("0.0.40.0.3.255"))[0]
    w = axdr.Writer(bytearray(16))
    assert aln.action(1, (axdr.OCTET_STRING, b"x"), w, s.assoc) == 11  # HLS: not yet
    assert aln.action(2, (axdr.OCTET_STRING, b"x"), w, s.assoc) == 11
    assert aln.action(3, (axdr.STRUCTURE, []), w, s.assoc) == 3  # static table
    assert aln.action(4, (axdr.STRUCTURE, []), w, s.assoc) == 3
    assert w.pos == 0


def test_sap_assignment_connect_is_refused():
    s = Session(MGMT)
    param = h("0202 120001") + os_(b"X" * 16)
    assert s.action(17, "0.0.41.0.0.255", 1, param) == (3, None)
    sap = s.dev.lookup(MGMT, obis("0.0.41.0.0.255"))[0]
    assert sap.action(1, None, axdr.Writer(bytearray(8)), s.assoc) == 3


# ---------------------------------------------------------------------- HDLC setup (IC 23)


class FakeLink:
    def __init__(self, connected=False):
        self.connected = connected
        self.lower = 17
        self.max_info_rx = self.max_info_tx = 128
        self.window_rx = self.window_tx = 1
        self.inter_octet_timeout_ms = 25
        self.inactivity_timeout_ms = 120000


def test_hdlc_setup_defaults_and_types():
    s = Session(MGMT)
    want = ((2, axdr.ENUM, 5), (3, axdr.UNSIGNED, 1), (4, axdr.UNSIGNED, 1),
            (5, axdr.LONG_UNSIGNED, 128), (6, axdr.LONG_UNSIGNED, 128),
            (7, axdr.LONG_UNSIGNED, 25), (8, axdr.LONG_UNSIGNED, 120),
            (9, axdr.LONG_UNSIGNED, 17))
    for attr, tag, v in want:
        assert s.value(23, HDLC, attr) == (tag, v), attr
    r = Session(READER)
    assert r.value(23, HDLC, 9) == (axdr.LONG_UNSIGNED, 17)
    assert r.set(23, HDLC, 3, h("11 02")) == 3
    p = Session(PUB)
    assert p.get(23, HDLC, 1) == (4, None)  # public: not visible


def test_hdlc_setup_writes_reach_the_links():
    settings = HdlcSettings(info_cap=512)
    link = hdlc.Link(**settings.link_args())
    settings.apply(link)
    busy = FakeLink(connected=True)
    port = type("Port", (), {})()
    port.link = FakeLink()
    targets = [link, busy, port]
    saved = []
    settings.on_change.append(lambda st: saved.append(st.pack()))
    s = Session(MGMT, hdlc_settings=settings, hdlc_targets=targets)
    assert link.max_info_rx == 128 and link.lower == 17
    assert s.set(23, HDLC, 3, h("11 07")) == 0
    assert s.set(23, HDLC, 4, h("11 03")) == 0
    assert s.set(23, HDLC, 5, h("12 0200")) == 0  # 512
    assert s.set(23, HDLC, 6, h("12 0100")) == 0
    assert s.set(23, HDLC, 7, h("12 0064")) == 0  # 100 ms
    assert s.set(23, HDLC, 8, h("12 0000")) == 0  # no inactivity timeout
    assert s.set(23, HDLC, 2, h("16 09")) == 0  # 115200
    for ln in (link, busy, port.link):
        assert (ln.window_tx, ln.window_rx, ln.max_info_tx, ln.max_info_rx) == (7, 3, 512, 256)
        assert (ln.inter_octet_timeout_ms, ln.inactivity_timeout_ms) == (100, 0)
    assert s.value(23, HDLC, 5) == (axdr.LONG_UNSIGNED, 512)
    assert s.value(23, HDLC, 2) == (axdr.ENUM, 9)
    # the device address: at once on idle links, after the connection on busy ones
    assert s.set(23, HDLC, 9, h("12 0123")) == 0
    assert link.lower == 0x123 and port.link.lower == 0x123 and busy.lower == 17
    assert settings.apply(busy) is False
    busy.connected = False
    assert settings.apply(busy) is True and busy.lower == 0x123
    assert len(saved) == 8
    restored = HdlcSettings()
    restored.unpack(saved[-1])
    assert restored.pack() == settings.pack() and restored.device_address == 0x123


def test_hdlc_setup_refusals():
    settings = HdlcSettings(info_cap=256)
    s = Session(MGMT, hdlc_settings=settings)
    for attr, enc in ((2, "16 0A"), (3, "11 00"), (3, "11 08"), (4, "11 00"), (5, "12 001F"),
                      (5, "12 0101"), (6, "12 07EF"), (7, "12 0013"), (7, "12 1771"),
                      (9, "12 000F"), (9, "12 3FFE")):
        assert s.set(23, HDLC, attr, h(enc)) == 250, (attr, enc)
    for attr, enc in ((2, "11 05"), (3, "12 0001"), (5, "11 80"), (8, "06 00000001"),
                      (9, "10 0011")):
        assert s.set(23, HDLC, attr, h(enc)) == 12, (attr, enc)
    assert s.set(23, HDLC, 1, os_(b"\x00" * 6)) == 3
    assert settings.pack() == HdlcSettings().pack()
    assert s.set(23, HDLC, 6, h("12 0100")) == 0  # 256 = the cap: accepted
    for bad in (b"", settings.pack()[:-1], b"\x0a" + settings.pack()[1:]):
        try:
            HdlcSettings().unpack(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted %r" % bad)


# ---------------------------------------------------------------------- local port (IC 19)


def test_local_port_setup_defaults_and_passwords():
    s = Session(MGMT)
    assert s.value(19, PORT, 2) == (axdr.ENUM, 0)  # IEC 62056-21 (mode E)
    assert s.value(19, PORT, 3) == (axdr.ENUM, 0)  # starts at 300 baud
    assert s.value(19, PORT, 4) == (axdr.ENUM, 5)  # proposes 9600 baud
    assert s.value(19, PORT, 5) == (axdr.ENUM, 0)  # 20 ms
    assert s.value(19, PORT, 6) == (axdr.OCTET_STRING, b"12345678")  # the serial number
    for attr in (7, 8, 9):
        assert s.set(19, PORT, attr, os_(b"pw%d" % attr)) == 0
        assert s.get(19, PORT, attr) == (3, None)
    port = s.dev.lookup(MGMT, obis(PORT))[0]
    assert (port.settings.pass_p1, port.settings.pass_p2, port.settings.pass_w5) == (
        b"pw7", b"pw8", b"pw9")
    w = axdr.Writer(bytearray(64))
    assert port.get(7, w, s.assoc, None) == 3 and w.pos == 0  # the class refuses too
    r = Session(READER)
    assert r.get(19, PORT, 7) == (3, None)
    assert r.set(19, PORT, 4, h("16 06")) == 3
    assert Session(PUB).get(19, PORT, 2) == (4, None)


def test_local_port_setup_writes():
    settings = LocalPortSettings()
    saved = []
    settings.on_change.append(lambda st: saved.append(st.pack()))
    s = Session(MGMT, port_settings=settings)
    assert s.set(19, PORT, 2, h("16 01")) == 0
    assert s.set(19, PORT, 3, h("16 05")) == 0
    assert s.set(19, PORT, 4, h("16 09")) == 0
    assert s.set(19, PORT, 5, h("16 01")) == 0
    assert s.set(19, PORT, 6, os_(b"Meter 42")) == 0
    assert s.value(19, PORT, 6) == (axdr.OCTET_STRING, b"Meter 42")
    assert [s.value(19, PORT, a)[1] for a in (2, 3, 4, 5)] == [1, 5, 9, 1]
    for attr, enc in ((2, "16 03"), (3, "16 0A"), (4, "16 0A"), (5, "16 02")):
        assert s.set(19, PORT, attr, h(enc)) == 250
    assert s.set(19, PORT, 6, os_(b"a/b")) == 250  # not a device address character
    assert s.set(19, PORT, 6, os_(b"1" * 33)) == 250
    assert s.set(19, PORT, 7, os_(b"p" * 33)) == 250
    assert s.set(19, PORT, 2, h("11 01")) == 12
    assert s.set(19, PORT, 7, h("0A 02 4142")) == 12
    assert len(saved) == 5
    copy = LocalPortSettings()
    copy.unpack(saved[-1])
    assert copy.pack() == settings.pack() and copy.device_addr == b"Meter 42"
    for bad in (b"", saved[-1][:-1], saved[-1] + b"\x00", b"\x05" + saved[-1][1:]):
        try:
            LocalPortSettings().unpack(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted %r" % bad)
