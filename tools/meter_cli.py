"""Read a DLMS/COSEM electricity meter from the command line: the object list, any attribute
(registers scaled, with their unit), the clock, the load profile to CSV (and a PNG of the
load curve), the event log; set the clock as the management client.

    .venv/bin/python tools/meter_cli.py --tcp 127.0.0.1:4059 --client reader read 1.0.1.8.0.255
    .venv/bin/python tools/meter_cli.py --serial run/meter.tty objects
    .venv/bin/python tools/meter_cli.py --tcp 127.0.0.1:4059 profile 1.0.99.1.0.255 \\
        --from 2026-02-28T00:00 --to 2026-03-01T00:00 --csv lp.csv --png lp.png

Everything on the wire is the project's own code (tools/dlms_client.py on firmware/dlms);
the interop test libraries (gurux-dlms, dlms-cosem) are never imported.
"""

import argparse
import contextlib
import csv
import datetime
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dlms_client as dc  # noqa: E402
from dlms import axdr  # noqa: E402  (firmware/dlms, put on the path by dlms_client)
from dlms.axdr_tools import date_time_bytes, parse_date_time  # noqa: E402

# the contract's clients and development defaults (design/virtual-meter.md)
CLIENTS = {"public": (16, dc.MECH_NONE), "reader": (32, dc.MECH_LLS),
           "management": (1, dc.MECH_HLS_GMAC)}
DEFAULT_PASSWORD = "12345678"
DEFAULT_EK = "000102030405060708090A0B0C0D0E0F"
DEFAULT_AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
DEFAULT_SYSTEM_TITLE = "434C490000000001"  # "CLI" 00000001: any 8 octets identify the client
IC_OBIS = "0.0.43.1.0.255"
CLOCK_OBIS = "0.0.1.0.0.255"
EVENT_LOG_OBIS = "0.0.99.98.0.255"
OBJECT_LIST_OBIS = "0.0.40.0.0.255"
UTC = datetime.timezone.utc

# Interface classes (Blue Book)
CLASS_NAMES = {
    1: "Data", 3: "Register", 4: "Extended register", 5: "Demand register",
    6: "Register activation", 7: "Profile generic", 8: "Clock", 9: "Script table",
    10: "Schedule", 11: "Special days table", 12: "Association SN", 15: "Association LN",
    17: "SAP assignment", 18: "Image transfer", 19: "IEC local port setup",
    20: "Activity calendar", 21: "Register monitor", 22: "Single action schedule",
    23: "IEC HDLC setup", 26: "Utility tables", 28: "Auto answer", 29: "Auto connect",
    40: "Push setup", 41: "TCP-UDP setup", 42: "IPv4 setup", 45: "GPRS modem setup",
    47: "GSM diagnostic", 61: "Register table", 63: "Status mapping", 64: "Security setup",
    70: "Disconnect control", 71: "Limiter", 72: "M-Bus client", 111: "Account",
}

# The classes of this meter's objects (design/virtual-meter.md), so that `read` needs no
# object-list round trip for them; other OBIS codes are looked up in the object list.
KNOWN_CLASSES = {
    "0.0.40.0.0.255": 15, "0.0.40.0.1.255": 15, "0.0.40.0.2.255": 15, "0.0.40.0.3.255": 15,
    "0.0.41.0.0.255": 17, "0.0.42.0.0.255": 1, "0.0.96.1.0.255": 1, "1.0.0.2.0.255": 1,
    "0.0.1.0.0.255": 8, "0.0.43.0.0.255": 64, "0.0.43.1.0.255": 1, "0.0.22.0.0.255": 23,
    "0.0.20.0.0.255": 19, "1.0.99.1.0.255": 7, "1.0.98.1.0.255": 7, "0.0.99.98.0.255": 7,
    "0.0.96.10.1.255": 1, "0.0.96.11.0.255": 1,
}
for _ln in ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255",
            "1.0.21.8.0.255", "1.0.41.8.0.255", "1.0.61.8.0.255", "1.0.32.7.0.255",
            "1.0.52.7.0.255", "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.51.7.0.255",
            "1.0.71.7.0.255", "1.0.1.7.0.255", "1.0.2.7.0.255", "1.0.13.7.0.255",
            "1.0.14.7.0.255"):
    KNOWN_CLASSES[_ln] = 3

# Units (Blue Book, enumeration of attribute scaler_unit)
UNITS = {
    1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "°", 9: "°C",
    10: "currency", 11: "m", 12: "m/s", 13: "m³", 14: "m³", 15: "m³/h", 16: "m³/h",
    17: "m³/d", 18: "m³/d", 19: "l", 20: "kg", 21: "N", 22: "Nm", 23: "Pa", 24: "bar",
    25: "J", 26: "J/h", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh",
    33: "A", 34: "C", 35: "V", 36: "V/m", 37: "F", 38: "Ω", 39: "Ωm²/m", 40: "Wb", 41: "T",
    42: "A/m", 43: "H", 44: "Hz", 45: "1/(Wh)", 46: "1/(varh)", 47: "1/(VAh)", 48: "V²h",
    49: "A²h", 50: "kg/s", 51: "S", 52: "K", 53: "1/(V²h)", 54: "1/(A²h)", 55: "1/m³",
    56: "%", 57: "Ah", 60: "Wh/m³", 61: "J/m³", 62: "Mol %", 63: "g/m³", 64: "Pa s",
    65: "J/kg", 66: "g/cm²", 67: "atm", 70: "dBm", 71: "dBµV", 72: "dB", 253: "",
    254: "(other unit)", 255: "",
}
# energy units and the power unit an energy difference per hour gives
POWER_OF_ENERGY = {30: "W", 31: "VA", 32: "var"}

# Event codes of the standard event log (docs/history.md)
EVENT_NAMES = {
    1: "power down", 2: "power up", 4: "clock adjusted (old time)",
    5: "clock adjusted (new time)", 6: "clock invalid",
    16: "measurement system error (metering chip fault)", 230: "firmware started",
    231: "association authentication failure", 232: "security key changed",
    233: "metering chip recovered", 234: "crypto self-test failed",
}

CLOCK_STATUS_BITS = ((0x01, "invalid"), (0x02, "doubtful"), (0x04, "different clock base"),
                     (0x08, "invalid clock status"), (0x80, "daylight saving active"))
ATTR_MODES = {0: "-", 1: "r", 2: "w", 3: "rw", 4: "ar", 5: "aw", 6: "arw"}


class LocalError(Exception):
    exit_code = dc.EXIT_LOCAL


# ------------------------------------------------------------------------------ formatting
def datetime_of(b12):
    """12 octets of a COSEM date-time -> aware datetime (naive when the deviation is not
    specified), or None when a field is not specified."""
    y, mo, d, _wd, h, mi, s, hs, dev, _st = parse_date_time(bytes(b12))
    if y == 0xFFFF or not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        return None
    tz = None if dev == 0x8000 else datetime.timezone(datetime.timedelta(minutes=-dev))
    try:
        return datetime.datetime(y, mo, d, h, mi, s, (hs if hs < 100 else 0) * 10000,
                                 tzinfo=tz)
    except ValueError:
        return None


def iso(dt):
    return dt.isoformat(timespec="seconds")


def format_datetime(b12):
    dt = datetime_of(b12)
    return iso(dt) if dt is not None else "date-time " + bytes(b12).hex()


def clock_status(st):
    names = [n for bit, n in CLOCK_STATUS_BITS if st & bit]
    return ", ".join(names) if names else "ok"


def _plausible_datetime(b):
    if len(b) != 12:
        return False
    y, mo, d, wd, h, mi, s, hs, dev, _st = parse_date_time(bytes(b))
    return ((1 <= mo <= 12 or mo in (0xFD, 0xFE, 0xFF)) and (1 <= d <= 31 or d >= 0xFD)
            and (1 <= wd <= 7 or wd == 0xFF) and (h < 24 or h == 0xFF)
            and (mi < 60 or mi == 0xFF) and (s < 60 or s == 0xFF) and (hs < 100 or hs == 0xFF)
            and (dev == 0x8000 or -720 <= dev <= 720) and (1970 <= y <= 2200 or y == 0xFFFF))


def format_octets(b):
    b = bytes(b)
    if _plausible_datetime(b):
        return format_datetime(b)
    if b and all(32 <= x < 127 for x in b):
        return b.decode("ascii")
    return b.hex().upper() if b else '""'


def format_value(v):
    """A typed A-XDR value as text."""
    tag, x = v
    if tag == axdr.NULL:
        return "null"
    if tag == axdr.DONT_CARE:
        return "dont-care"
    if tag == axdr.BOOLEAN:
        return "true" if x else "false"
    if tag == axdr.OCTET_STRING:
        return format_octets(x)
    if tag in (axdr.VISIBLE_STRING, axdr.UTF8_STRING):
        return bytes(x).decode("utf-8", "replace")
    if tag == axdr.BIT_STRING:
        data, n = x
        return "".join("1" if data[i // 8] & (0x80 >> (i % 8)) else "0" for i in range(n))
    if tag == axdr.DATE_TIME:
        return format_datetime(x)
    if tag in (axdr.DATE, axdr.TIME):
        return bytes(x).hex().upper()
    if tag == axdr.ARRAY:
        return "[" + ", ".join(format_value(e) for e in x) + "]"
    if tag == axdr.STRUCTURE:
        return "{" + ", ".join(format_value(e) for e in x) + "}"
    if tag == axdr.COMPACT_ARRAY:
        return "[" + ", ".join(format_value(e) for e in x[1]) + "]"
    return str(x)


def scaled(value, scaler):
    """value x 10^scaler as an exact decimal string."""
    return format(Decimal(value).scaleb(scaler), "f")


def unit_name(unit):
    return UNITS.get(unit, "unit %d" % unit)


def int_of(v, what):
    if v[0] in (axdr.NULL, axdr.ARRAY, axdr.STRUCTURE, axdr.OCTET_STRING, axdr.BOOLEAN,
                axdr.VISIBLE_STRING, axdr.UTF8_STRING, axdr.BIT_STRING, axdr.DATE_TIME,
                axdr.DATE, axdr.TIME, axdr.COMPACT_ARRAY, axdr.DONT_CARE):
        raise dc.ProtocolError("protocol error: %s is not a number: %s" % (what,
                                                                            format_value(v)))
    return v[1]


def scaler_unit(v, what):
    """scaler_unit structure {integer, enum} -> (scaler, unit)."""
    if v[0] != axdr.STRUCTURE or len(v[1]) != 2:
        raise dc.ProtocolError("protocol error: %s: not a scaler_unit structure: %s"
                               % (what, format_value(v)))
    return v[1][0][1], v[1][1][1]


def parse_when(text, name):
    """ISO 8601 (no offset = UTC; 'Z' accepted) or 'now' -> aware datetime."""
    t = text.strip()
    if t.lower() == "now":
        return datetime.datetime.now(UTC)
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        dt = datetime.datetime.fromisoformat(t)
    except ValueError:
        raise argparse.ArgumentTypeError("%s: not an ISO 8601 date-time: %r" % (name, text))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def cosem_datetime(dt):
    """aware datetime -> 12 octets: its own local fields with the deviation of its offset
    (Blue Book: deviation = UTC - local, minutes)."""
    off = dt.utcoffset()
    dev = -int(off.total_seconds() // 60)
    return date_time_bytes(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second,
                           dt.microsecond // 10000, deviation=dev)


# ------------------------------------------------------------------------------ sessions
def make_transport(args, sap):
    trace = _tracer(args)
    if args.tcp:
        host, port = args.tcp
        return dc.TcpTransport(host, port, sap, server_wport=args.logical_device,
                               timeout=args.timeout, trace=trace)
    return dc.HdlcTransport(args.serial, sap, baud=args.baud, logical=args.logical_device,
                            physical=args.physical_device, timeout=args.timeout, trace=trace)


def _tracer(args):
    if not args.verbose:
        return None
    return lambda line: print("trace: " + line, file=sys.stderr)


@contextlib.contextmanager
def session(args, client_name, ic=None):
    """An association of the named client; released and disconnected at the end."""
    sap, mech = CLIENTS[client_name]
    t = make_transport(args, sap)
    t.open()
    c = None
    try:
        kw = {}
        if mech == dc.MECH_LLS:
            kw["password"] = args.password.encode("utf-8")
        elif mech == dc.MECH_HLS_GMAC:
            kw.update(ek=args.ek, ak=args.ak, system_title=args.system_title,
                      invocation_counter=ic)
        c = dc.Client(t, mech, max_pdu=args.max_pdu, trace=_tracer(args), **kw)
        c.associate()
        yield c
    finally:
        try:
            if c is not None:
                c.release()
        finally:
            t.close()


def open_client(args):
    """The session of --client (management: invocation counter from the meter's
    0.0.43.1.0.255, read by the public client, unless --ic is given)."""
    name = args.client
    ic = None
    if name == "management":
        ic = args.ic
        if ic is None:
            try:
                with session(args, "public") as p:
                    v = p.get(1, dc.obis_bytes(IC_OBIS), 2)
            except (dc.AccessDenied, dc.ObjectUndefined, dc.RequestRefused) as e:
                raise type(e)("%s (reading the invocation counter %s as the public client; "
                              "give --ic to skip that)" % (e, IC_OBIS)) from None
            ic = int_of(v, IC_OBIS) + 1
            if ic > 0xFFFFFFFF:
                raise dc.RequestRefused("request refused: the meter's invocation counter for "
                                        "this key is exhausted: transfer new keys")
            if args.verbose:
                print("trace: the meter's last accepted invocation counter is %d: using %d"
                      % (ic - 1, ic), file=sys.stderr)
    return session(args, name, ic)


# ------------------------------------------------------------------------------ commands
def object_list(c):
    v = c.get(15, dc.obis_bytes(OBJECT_LIST_OBIS), 2)
    if v[0] != axdr.ARRAY:
        raise dc.ProtocolError("protocol error: object_list is not an array")
    out = []
    for e in v[1]:
        try:
            cls, ver, ln, rights = (x[1] for x in e[1][:4])
            attrs = [(a[1][0][1], a[1][1][1]) for a in rights[0][1]]
            meths = []
            if len(rights) > 1 and rights[1][0] == axdr.ARRAY:
                for m in rights[1][1]:
                    mode = m[1][1]
                    meths.append((m[1][0][1], (1 if mode[1] else 0) if mode[0] == axdr.BOOLEAN
                                  else mode[1]))
        except (TypeError, IndexError, ValueError):
            raise dc.ProtocolError("protocol error: malformed object_list entry: %s"
                                   % format_value(e)) from None
        out.append((cls, ver, dc.obis_text(ln), attrs, meths))
    return out


def cmd_objects(args, c):
    objs = object_list(c)
    print("%-18s %-26s %2s  %-46s %s" % ("OBIS", "class", "v", "attributes", "methods"))
    for cls, ver, ln, attrs, meths in objs:
        a = " ".join("%d:%s" % (i, ATTR_MODES.get(m, str(m))) for i, m in attrs)
        ms = " ".join(str(i) for i, m in meths if m) or "-"
        print("%-18s %-26s %2d  %-46s %s" % (ln, "%d %s" % (cls, CLASS_NAMES.get(cls, "")), ver,
                                             a, ms))
    print("%d objects visible to the %s client" % (len(objs), args.client), file=sys.stderr)
    return 0


def class_of(c, ln, given):
    if given:
        return given
    if ln in KNOWN_CLASSES:
        return KNOWN_CLASSES[ln]
    for cls, _ver, name, _a, _m in object_list(c):
        if name == ln:
            return cls
    raise dc.ObjectUndefined("object undefined: %s is not in the object list of the %s "
                             "association (give --class to read it anyway)" % (ln, c_name(c)))


def c_name(c):
    return {16: "public", 32: "reader", 1: "management"}.get(c.t.client_sap, "client")


def cmd_read(args, c):
    ln = dc.obis_text(args.obis)
    attr = args.attr
    cls = class_of(c, ln, args.cls)
    label = ln if attr == 2 else "%s:%d" % (ln, attr)
    if cls in (3, 4, 5) and attr in (2, 3):  # registers: value with scaler and unit
        su = c.get(cls, args.obis, 3)
        scaler, unit = scaler_unit(su, ln)
        if attr == 3:
            print("%s  scaler %d, unit %s (%d)" % (label, scaler, unit_name(unit) or "none",
                                                  unit))
            return 0
        v = c.get(cls, args.obis, 2)
        if v[0] == axdr.NULL:
            print("%s  null (value not available)" % label)
            return 0
        text = scaled(int_of(v, ln), scaler)
        u = unit_name(unit)
        print("%s  %s%s" % (label, text, " " + u if u else ""))
        return 0
    v = c.get(cls, args.obis, attr)
    if cls == 8 and attr in (2, 5, 6) and v[0] == axdr.OCTET_STRING and len(v[1]) == 12:
        st = v[1][11]
        print("%s  %s  clock status: %s" % (label, format_datetime(v[1]), clock_status(st)))
    elif v[0] == axdr.ARRAY and v[1] and v[1][0][0] == axdr.STRUCTURE:
        print("%s  array of %d:" % (label, len(v[1])))
        for e in v[1]:
            print("  " + format_value(e))
    else:
        print("%s  %s" % (label, format_value(v)))
    return 0


def read_clock(c):
    v = c.get(8, dc.obis_bytes(CLOCK_OBIS), 2)
    if v[0] != axdr.OCTET_STRING or len(v[1]) != 12:
        raise dc.ProtocolError("protocol error: clock time is not a date-time: %s"
                               % format_value(v))
    return v[1]


def cmd_clock(args, c):
    b = read_clock(c)
    print("%s  %s  clock status: %s" % (CLOCK_OBIS, format_datetime(b), clock_status(b[11])))
    return 0


def cmd_set_clock(args, c):
    target = parse_when(args.time, "set-clock")
    old = read_clock(c)
    c.set(8, dc.obis_bytes(CLOCK_OBIS), 2, (axdr.OCTET_STRING, cosem_datetime(target)))
    new = read_clock(c)
    print("%s  %s  clock status: %s  (was %s)" % (CLOCK_OBIS, format_datetime(new),
                                                  clock_status(new[11]), format_datetime(old)))
    return 0


class Progress:
    """Block-transfer progress on stderr: blocks, bytes, and a bar once the size is known
    (the array's element count times the size of its first element)."""

    def __init__(self, label, enabled, stream=None):
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.blocks = 0
        self.bytes = 0
        self.total = None

    def _estimate(self, data):
        if len(data) < 2 or data[0] != axdr.ARRAY:
            return None
        try:
            n, p = dc.read_length(data, 1)
            if n == 0:
                return p
            r = axdr.Reader(bytes(data), p)
            r.skip_data()
            return p + n * (r.pos - p)
        except (axdr.DecodeError, IndexError):
            return None

    def __call__(self, blocks, data, last):
        self.blocks = blocks
        self.bytes = len(data)
        if self.total is None:
            self.total = self._estimate(data)
        if not self.enabled:
            return
        line = "%s: block %d, %d bytes" % (self.label, blocks, len(data))
        if self.total:
            frac = 1.0 if last else min(len(data) / self.total, 0.99)
            bar = "#" * int(frac * 30)
            line = "%s: [%-30s] %3d%%  block %d, %d/%s bytes" % (
                self.label, bar, int(frac * 100), blocks, len(data),
                len(data) if last else "~%d" % self.total)
        self.stream.write("\r" + line + ("\n" if last else ""))
        self.stream.flush()

    def finish(self, nbytes):
        """After the GET: a reply that came whole shows as one block."""
        if self.blocks == 0:
            self(1, b"\x00" * nbytes, True)


def capture_objects(c, obis):
    v = c.get(7, obis, 3)
    if v[0] != axdr.ARRAY:
        raise dc.ProtocolError("protocol error: capture_objects is not an array")
    out = []
    for e in v[1]:
        try:
            cls, ln, attr, idx = (x[1] for x in e[1][:4])
        except (TypeError, ValueError, IndexError):
            raise dc.ProtocolError("protocol error: malformed capture object %s"
                                   % format_value(e)) from None
        out.append((cls, bytes(ln), attr, idx))
    return out


def column_units(c, cols):
    """(scaler, unit) per column (None where not a register value)."""
    regs = [i for i, (cls, _ln, attr, _x) in enumerate(cols) if cls in (3, 4, 5) and attr == 2]
    out = [None] * len(cols)
    if not regs:
        return out
    items = [(cols[i][0], cols[i][1], 3) for i in regs]
    try:
        values = c.get_list(items)
    except (dc.RequestRefused, dc.ProtocolError):  # no with-list: one by one
        values = []
        for it in items:
            try:
                values.append(c.get(*it))
            except (dc.AccessDenied, dc.ObjectUndefined, dc.RequestRefused) as e:
                values.append(e)
    for i, v in zip(regs, values):
        if not isinstance(v, Exception):
            out[i] = scaler_unit(v, dc.obis_text(cols[i][1]))
    return out


def range_parameters(clock_col, start, end):
    """range_descriptor (selector 1) on the clock column, every column."""
    cls, ln, attr, idx = clock_col
    return (axdr.STRUCTURE, [
        (axdr.STRUCTURE, [(axdr.LONG_UNSIGNED, cls), (axdr.OCTET_STRING, ln),
                          (axdr.INTEGER, attr), (axdr.LONG_UNSIGNED, idx)]),
        (axdr.OCTET_STRING, cosem_datetime(start)),
        (axdr.OCTET_STRING, cosem_datetime(end)),
        (axdr.ARRAY, []),
    ])


def read_profile(args, c, obis, start, end, label):
    """(capture objects, units, rows of typed values) of a profile's buffer, with range
    access when a bound is given."""
    cols = capture_objects(c, obis)
    units = column_units(c, cols)
    clock_i = next((i for i, col in enumerate(cols) if col[0] == 8 and col[2] == 2), None)
    selector, params = 0, None
    if start is not None or end is not None:
        if clock_i is None:
            raise LocalError("%s has no clock column: a time range cannot be selected"
                             % dc.obis_text(obis))
        start = start or datetime.datetime(2000, 1, 1, tzinfo=UTC)
        end = end or datetime.datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
        selector, params = 1, range_parameters(cols[clock_i], start, end)
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    prog = Progress(label, enabled)
    raw = c.get_raw(7, obis, 2, selector, params, progress=prog)
    prog.finish(len(raw))
    v = dc.decode_value(raw, "%s buffer" % dc.obis_text(obis))
    if v[0] != axdr.ARRAY:
        raise dc.ProtocolError("protocol error: the buffer is not an array")
    rows = []
    for e in v[1]:
        if e[0] != axdr.STRUCTURE or len(e[1]) != len(cols):
            raise dc.ProtocolError("protocol error: a buffer row does not match the %d "
                                   "capture objects: %s" % (len(cols), format_value(e)))
        rows.append(e[1])
    return cols, units, clock_i, rows, prog


def column_header(col, su):
    cls, ln, attr, _idx = col
    h = "%s:%d" % (dc.obis_text(ln), attr)
    if su is not None and unit_name(su[1]):
        h += " [%s]" % unit_name(su[1])
    return h


def cell(v, su):
    if v[0] == axdr.OCTET_STRING and len(v[1]) == 12:
        dt = datetime_of(v[1])
        return iso(dt) if dt is not None else bytes(v[1]).hex()
    if su is not None and v[0] not in (axdr.NULL, axdr.STRUCTURE, axdr.ARRAY):
        return scaled(v[1], su[0])
    if v[0] == axdr.NULL:
        return ""
    return format_value(v)


def cmd_profile(args, c):
    obis = args.obis
    label = dc.obis_text(obis)
    cols, units, clock_i, rows, prog = read_profile(args, c, obis, args.start, args.end, label)
    header = [column_header(col, su) for col, su in zip(cols, units)]
    table = [[cell(v, su) for v, su in zip(r, units)] for r in rows]
    try:
        if args.csv == "-":
            w = csv.writer(sys.stdout, lineterminator="\n")
            w.writerow(header)
            w.writerows(table)
        else:
            with open(args.csv, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(table)
    except OSError as e:
        raise LocalError("cannot write %s: %s" % (args.csv, e)) from None
    first = table[0][clock_i] if rows and clock_i is not None else "-"
    last = table[-1][clock_i] if rows and clock_i is not None else "-"
    out = sys.stderr if args.csv == "-" else sys.stdout
    print("%s: %d rows (%s .. %s) in %d blocks, %d bytes -> %s" % (
        label, len(rows), first, last, max(prog.blocks, 1), prog.bytes, args.csv), file=out)
    if args.png:
        n = plot_load_curve(args.png, label, cols, units, clock_i, rows)
        print("%s: load curve of %d intervals -> %s" % (label, n, args.png), file=out)
    return 0


def power_series(cols, units, clock_i, rows):
    """[(label, power unit, [(start, end, average power)])] for every energy column: the
    energy difference between consecutive rows over their time difference. An interval
    whose energy went backwards (a meter reset) or whose times do not increase is left out."""
    times = [datetime_of(r[clock_i][1]) if r[clock_i][0] == axdr.OCTET_STRING else None
             for r in rows]
    out = []
    for i, (col, su) in enumerate(zip(cols, units)):
        if su is None or su[1] not in POWER_OF_ENERGY:
            continue
        pts = []
        for k in range(1, len(rows)):
            a, b = rows[k - 1][i], rows[k][i]
            t0, t1 = times[k - 1], times[k]
            if None in (t0, t1) or a[0] == axdr.NULL or b[0] == axdr.NULL:
                continue
            dt = (t1 - t0).total_seconds()
            de = float(Decimal(b[1] - a[1]).scaleb(su[0]))
            if dt <= 0 or de < 0:
                continue
            pts.append((t0, t1, de * 3600.0 / dt))
        out.append(("%s:%d" % (dc.obis_text(col[1]), col[2]), POWER_OF_ENERGY[su[1]], pts))
    return out


ENERGY_LABELS = {"1.0.1.8.0.255": "active import (+A)", "1.0.2.8.0.255": "active export (-A)",
                 "1.0.3.8.0.255": "reactive import (+R)",
                 "1.0.4.8.0.255": "reactive export (-R)"}


def plot_load_curve(path, label, cols, units, clock_i, rows):
    """PNG of the average power per interval of every energy column that is not all zero
    (a step per interval; a missing interval is a gap). Returns the number of intervals."""
    if clock_i is None:
        raise LocalError("%s has no clock column: nothing to plot against" % label)
    series = power_series(cols, units, clock_i, rows)
    shown = [s for s in series if any(p for _a, _b, p in s[2])] or series[:1]
    if not shown or not shown[0][2]:
        raise LocalError("%s: no interval with an energy difference to plot (need two rows "
                         "or more with energy columns)" % label)
    try:
        import matplotlib
    except ImportError:
        raise LocalError("--png needs matplotlib (pip install -r requirements-dev.txt)") from None
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=100)
    top = 0.0
    for name, unit, pts in shown:
        xs, ys = [], []
        for a, b, p in pts:
            if xs and xs[-1] != a:
                ys[-1] = float("nan")  # a gap: no value from the previous end to this start
                xs.append(a)
                ys.append(p)
            elif not xs:
                xs.append(a)
                ys.append(p)
            else:
                ys[-1] = p  # the point at this start (the previous end) takes this power
            xs.append(b)
            ys.append(p)
            top = max(top, p)
        ln = name.split(":")[0]
        ax.step(xs, ys, where="post", label="%s %s (%s)" % (ln, ENERGY_LABELS.get(ln, ""), unit))
    units_shown = sorted({u for _n, u, _p in shown})
    ax.set_ylabel("average power per interval (%s)" % " / ".join(units_shown))
    t0 = shown[0][2][0][0]
    t1 = shown[0][2][-1][1]
    ax.set_title("Load curve %s, %s .. %s" % (label, iso(t0), iso(t1)))
    ax.grid(True, alpha=0.3)
    ax.set_ylim(0, top * 1.2 if top > 0 else 1)
    ax.legend(loc="upper left", fontsize="small", ncol=2)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d\n%H:%M", tz=t0.tzinfo))
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise LocalError("cannot write %s: %s" % (path, e)) from None
    finally:
        plt.close(fig)
    return len(shown[0][2])


def cmd_events(args, c):
    obis = dc.obis_bytes(EVENT_LOG_OBIS)
    cols, _units, clock_i, rows, _prog = read_profile(args, c, obis, args.start, args.end,
                                                      EVENT_LOG_OBIS)
    code_i = next((i for i, col in enumerate(cols) if i != clock_i), None)
    for r in rows:
        when = cell(r[clock_i], None) if clock_i is not None else "-"
        code = r[code_i][1] if code_i is not None else None
        name = EVENT_NAMES.get(code, "event %s" % code) if isinstance(code, int) else ""
        print("%s  %3s  %s" % (when, code, name))
    print("%d events" % len(rows), file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------ command line
def _hex(n):
    def parse(text):
        try:
            b = bytes.fromhex(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not hexadecimal: %r" % text)
        if len(b) != n:
            raise argparse.ArgumentTypeError("%d octets (%d hex digits) expected, got %d"
                                             % (n, 2 * n, len(b)))
        return b
    return parse


def _host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError("HOST:PORT expected, got %r" % text)
    return host.strip("[]"), int(port)


def _obis(text):
    try:
        return dc.obis_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _counter(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if not 0 <= v <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("an invocation counter is 0..4294967295")
    return v


def _when(name):
    return lambda text: parse_when(text, name)


def build_parser():
    codes = "\n".join("  %d  %s" % c for c in dc.EXIT_CODES)
    p = argparse.ArgumentParser(
        prog="meter_cli.py",
        description="Read a DLMS/COSEM meter (the project's virtual meter or a board): object "
                    "list, attributes, clock, load profile, event log; set the clock.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="clients (contract defaults): public = SAP 16, no authentication; reader = SAP "
               "32, LLS (--password);\nmanagement = SAP 1, HLS-GMAC with suite-0 ciphering "
               "(--ek, --ak, --system-title; the invocation\ncounter is the meter's "
               "0.0.43.1.0.255 + 1, read by the public client first, unless --ic).\n"
               "Default client: management for set-clock, reader otherwise.\n"
               "Date-times are ISO 8601; without an offset they are UTC.\n\n"
               "exit codes:\n" + codes)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=_host_port, metavar="HOST:PORT",
                       help="TCP wrapper (IEC 62056-47), e.g. 127.0.0.1:4059")
    where.add_argument("--serial", metavar="PATH",
                       help="HDLC (IEC 62056-46) on a serial port or pty, e.g. run/meter.tty")
    p.add_argument("--baud", type=int, default=9600, metavar="N", help="serial baud rate (default 9600)")
    p.add_argument("--client", choices=sorted(CLIENTS), default=None,
                   help="public, reader or management (default: see below)")
    p.add_argument("--password", default=DEFAULT_PASSWORD,
                   help="reader's LLS password (default %s)" % DEFAULT_PASSWORD)
    p.add_argument("--ek", type=_hex(16), default=bytes.fromhex(DEFAULT_EK), metavar="HEX",
                   help="global unicast encryption key (default %s)" % DEFAULT_EK)
    p.add_argument("--ak", type=_hex(16), default=bytes.fromhex(DEFAULT_AK), metavar="HEX",
                   help="authentication key (default %s)" % DEFAULT_AK)
    p.add_argument("--system-title", type=_hex(8), default=bytes.fromhex(DEFAULT_SYSTEM_TITLE),
                   metavar="HEX", help="this client's system title (default %s)"
                   % DEFAULT_SYSTEM_TITLE)
    p.add_argument("--ic", type=_counter, default=None, metavar="N",
                   help="management: first invocation counter to use (default: read it)")
    p.add_argument("--max-pdu", type=int, default=1024, metavar="N",
                   help="client max receive PDU size proposed (default 1024; the meter answers "
                        "longer values in blocks)")
    p.add_argument("--logical-device", type=int, default=1, metavar="N",
                   help="server logical device / wrapper wPort (default 1)")
    p.add_argument("--physical-device", type=int, default=17, metavar="N",
                   help="HDLC lower (physical) address (default 17)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="seconds to wait for each answer (default 5)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print every APDU (hex) and HDLC frame on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("objects", help="list the association's objects (OBIS, class, version, "
                                   "access)")
    r = sub.add_parser("read", help="read one attribute (registers: scaled, with unit)")
    r.add_argument("obis", type=_obis, metavar="OBIS")
    r.add_argument("attr", type=int, nargs="?", default=2, metavar="ATTR",
                   help="attribute (default 2, the value)")
    r.add_argument("--class", dest="cls", type=int, default=None,
                   help="interface class (default: known, or from the object list)")
    sub.add_parser("clock", help="read the clock")
    s = sub.add_parser("set-clock", help="set the clock (management)")
    s.add_argument("time", nargs="?", default="now", metavar="ISO|now",
                   help="ISO 8601 date-time or now (default)")
    pr = sub.add_parser("profile", help="a profile's buffer over a time range to CSV (and PNG)")
    pr.add_argument("obis", type=_obis, metavar="OBIS", help="e.g. 1.0.99.1.0.255")
    pr.add_argument("--from", dest="start", type=_when("--from"), metavar="ISO")
    pr.add_argument("--to", dest="end", type=_when("--to"), metavar="ISO")
    pr.add_argument("--csv", required=True, metavar="FILE", help="CSV output ('-': stdout)")
    pr.add_argument("--png", metavar="FILE",
                    help="plot of the average power per interval (needs matplotlib)")
    ev = sub.add_parser("events", help="the standard event log, with event names")
    ev.add_argument("--from", dest="start", type=_when("--from"), metavar="ISO")
    ev.add_argument("--to", dest="end", type=_when("--to"), metavar="ISO")
    for q in (pr, ev):
        g = q.add_mutually_exclusive_group()
        g.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="progress bar on stderr (default: when stderr is a terminal)")
        g.add_argument("--no-progress", dest="progress", action="store_false")
    return p


COMMANDS = {"objects": cmd_objects, "read": cmd_read, "clock": cmd_clock,
            "set-clock": cmd_set_clock, "profile": cmd_profile, "events": cmd_events}


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.client is None:
        args.client = "management" if args.command == "set-clock" else "reader"
    if not 64 <= args.max_pdu <= 0xFFFF:
        p.error("--max-pdu must be 64..65535")
    if args.command == "set-clock":
        try:
            parse_when(args.time, "set-clock")
        except argparse.ArgumentTypeError as e:
            p.error(str(e))
    try:
        with open_client(args) as c:
            return COMMANDS[args.command](args, c)
    except dc.ObjectUndefined as e:
        hint = ""
        if args.client != "management" and "object-undefined" in str(e):
            hint = (" (the %s client may not see it: objects outside an association's object "
                    "list are undefined to it; try --client management)" % args.client)
        print("meter_cli: error: %s%s" % (e, hint), file=sys.stderr)
        return e.exit_code
    except dc.DlmsError as e:
        print("meter_cli: error: %s" % e, file=sys.stderr)
        return e.exit_code
    except LocalError as e:
        print("meter_cli: error: %s" % e, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("meter_cli: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
