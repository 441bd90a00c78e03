#!/usr/bin/env python3
"""Trace decoder: explains DLMS/COSEM bytes layer by layer, one line per field.

    .venv/bin/python tools/trace.py 7EA00802232193BD647E             # a pasted frame
    .venv/bin/python tools/trace.py 7E A0 08 02 23 21 93 BD 64 7E    # spaces are fine
    .venv/bin/python tools/trace.py --apdu C001C1000100002B0100FF0200
    .venv/bin/python tools/trace.py capture.txt                      # a file; '-' = stdin
    ... | .venv/bin/python tools/trace.py                            # stdin

Every line is ``offset  bytes  meaning``; every input byte appears on exactly one line
(long fields wrap onto continuation lines). What is decoded:

* HDLC (IEC 62056-46): flags, format (type 3, segmentation bit, length), destination and
  source addresses (client SAP; server upper/logical and lower/physical address in the 1-,
  2- and 4-byte forms), control (I with N(S)/N(R)/P-F, RR, RNR, REJ, SREJ, SNRM, DISC, UA,
  DM, FRMR, UI), HCS and FCS checked, SNRM/UA parameter negotiation, FRMR reason, LLC.
  Segmented messages are reassembled and their APDU decoded after the last segment.
* TCP wrapper (IEC 62056-47): version, source and destination wPort, length.
* ACSE (AARQ, AARE, RLRQ, RLRE) with every BER field named, and the xDLMS
  InitiateRequest/InitiateResponse/ConfirmedServiceError in user-information (conformance
  bits named, max PDU).
* xDLMS: GET/SET/ACTION request and response of every kind (normal, next, with-list,
  datablocks; blocks are reassembled), event-notification, data-notification,
  exception-response, general-block-transfer.
* Ciphering (security suite 0): glo-/ded- service-specific APDUs, general-glo- and
  general-ded-ciphering, glo-initiate-request/-response: security control byte, invocation
  counter, and the APDU decrypted and its tag checked with the keys given (default: the
  virtual meter's development keys; the sender's system title is taken from --system-title,
  the AARQ/AARE seen earlier in the same input, the APDU itself, or the meter's default).
  The HLS-GMAC answers f(StoC)/f(CtoS) are checked when the challenge was seen.
* A-XDR data as an indented tree; logical names (OBIS) and interface classes named.

Several frames in one input are decoded in order with one shared context (the client's
system title from the AARQ, block and segment reassembly). Lines of the virtual meter's
live trace format (``rx hdlc:pty HEX``) are accepted too.

The decoding reuses the firmware's own codecs where they fit (firmware/dlms: fcs,
hdlc_tools address and parameter codecs, axdr Reader, ber.read_tlv, gcm, security.gmac_tag,
axdr_tools.parse_date_time; attribute and method names from the firmware's cosem classes).

Exit status: 0, or 1 when a check failed (HCS, FCS, authentication tag, malformed input).

``--live FD``: the virtual meter's ``--trace`` mode. Reads lines ``DIR TRANSPORT:CHANNEL
[HEX]`` (DIR rx = from the client, tx = from the meter; ``open``/``close`` for TCP
connections) from file descriptor FD and prints each frame annotated on stderr, until
end of file (the meter exited).
"""

import argparse
import binascii
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FW = os.path.join(ROOT, "firmware")
if _FW not in sys.path:
    sys.path.insert(0, _FW)

from dlms import axdr, ber, gcm, hdlc_tools, security  # noqa: E402
from dlms.axdr_tools import parse_date_time  # noqa: E402
from dlms.fcs import fcs16  # noqa: E402

# The contract's development defaults (README, design/virtual-meter.md)
DEV_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEV_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DEV_SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")

C2S = "c2s"  # from the client
S2C = "s2c"  # from the server (the meter)
_DIR_TEXT = {C2S: "client -> meter", S2C: "meter -> client"}


# =============================================================================== names
CLASS_NAMES = {
    1: "Data", 3: "Register", 4: "Extended register", 5: "Demand register",
    6: "Register activation", 7: "Profile generic", 8: "Clock", 9: "Script table",
    10: "Schedule", 11: "Special days table", 12: "Association SN", 15: "Association LN",
    17: "SAP assignment", 18: "Image transfer", 19: "IEC local port setup",
    20: "Activity calendar", 21: "Register monitor", 22: "Single action schedule",
    23: "IEC HDLC setup", 24: "IEC twisted pair setup", 26: "Utility tables",
    27: "Modem configuration", 28: "Auto answer", 29: "Auto connect", 30: "Data protection",
    40: "Push setup", 41: "TCP-UDP setup", 42: "IPv4 setup", 43: "MAC address setup",
    44: "PPP setup", 45: "GPRS modem setup", 46: "SMTP setup", 47: "GSM diagnostic",
    48: "IPv6 setup", 61: "Register table", 62: "Compact data", 63: "Status mapping",
    64: "Security setup", 65: "Parameter monitor", 70: "Disconnect control", 71: "Limiter",
    72: "M-Bus client", 111: "Account", 112: "Credit", 113: "Charge",
}

# The objects of this meter (firmware/cosem/objects.py; the contract's object list):
# OBIS -> (interface class, name). host_tests/test_trace.py checks that every object the
# firmware's table builds is here, with the same class.
OBJECTS = {
    "0.0.40.0.0.255": (15, "current association"),
    "0.0.40.0.1.255": (15, "association of the public client (SAP 16)"),
    "0.0.40.0.2.255": (15, "association of the reader (SAP 32)"),
    "0.0.40.0.3.255": (15, "association of the management client (SAP 1)"),
    "0.0.41.0.0.255": (17, "SAP assignment"),
    "0.0.42.0.0.255": (1, "COSEM logical device name"),
    "0.0.96.1.0.255": (1, "meter serial number"),
    "1.0.0.2.0.255": (1, "firmware version"),
    "0.0.1.0.0.255": (8, "clock"),
    "0.0.22.0.0.255": (23, "IEC HDLC setup"),
    "0.0.20.0.0.255": (19, "IEC local port setup (optical port)"),
    "0.0.43.0.0.255": (64, "security setup (management association)"),
    "0.0.43.1.0.255": (1, "invocation counter (last accepted from the management client)"),
    "1.0.1.8.0.255": (3, "active energy import (+A), total"),
    "1.0.2.8.0.255": (3, "active energy export (-A), total"),
    "1.0.3.8.0.255": (3, "reactive energy import (+R), total"),
    "1.0.4.8.0.255": (3, "reactive energy export (-R), total"),
    "1.0.21.8.0.255": (3, "active energy import (+A) L1"),
    "1.0.41.8.0.255": (3, "active energy import (+A) L2"),
    "1.0.61.8.0.255": (3, "active energy import (+A) L3"),
    "1.0.32.7.0.255": (3, "voltage L1"),
    "1.0.52.7.0.255": (3, "voltage L2"),
    "1.0.72.7.0.255": (3, "voltage L3"),
    "1.0.31.7.0.255": (3, "current L1"),
    "1.0.51.7.0.255": (3, "current L2"),
    "1.0.71.7.0.255": (3, "current L3"),
    "1.0.1.7.0.255": (3, "active power import (+P), total"),
    "1.0.2.7.0.255": (3, "active power export (-P), total"),
    "1.0.13.7.0.255": (3, "power factor, total"),
    "1.0.14.7.0.255": (3, "supply frequency"),
    "1.0.99.1.0.255": (7, "load profile (15 min)"),
    "1.0.98.1.0.255": (7, "daily billing values"),
    "0.0.99.98.0.255": (7, "standard event log"),
    "0.0.96.10.1.255": (1, "AMR profile status"),
    "0.0.96.11.0.255": (1, "event code"),
}

# Electricity (A = 1) value group C: the quantity; phases L1/L2/L3 add 20/40/60
_QUANTITY = {
    1: ("active power import (+P)", "active energy import (+A)"),
    2: ("active power export (-P)", "active energy export (-A)"),
    3: ("reactive power import (+Q)", "reactive energy import (+R)"),
    4: ("reactive power export (-Q)", "reactive energy export (-R)"),
    5: ("reactive power QI", "reactive energy QI"),
    6: ("reactive power QII", "reactive energy QII"),
    7: ("reactive power QIII", "reactive energy QIII"),
    8: ("reactive power QIV", "reactive energy QIV"),
    9: ("apparent power import (+S)", "apparent energy import (+S)"),
    10: ("apparent power export (-S)", "apparent energy export (-S)"),
    11: ("current (any phase)", None),
    12: ("voltage (any phase)", None),
    13: ("power factor", None),
    14: ("supply frequency", None),
    15: ("active power |+P| + |-P|", "active energy |+A| + |-A|"),
    16: ("active power |+P| - |-P|", "active energy |+A| - |-A|"),
}
_PHASE_QUANTITY = {11: "current", 12: "voltage", 13: "power factor"}
# value group D (processing)
_PROCESSING = {
    1: "cumulative minimum 1", 2: "cumulative maximum 1", 3: "minimum 1",
    4: "current average 1", 5: "last average 1", 6: "maximum 1", 7: "instantaneous value",
    8: "time integral 1 (since the start of measurement)",
    9: "time integral 2 (over the billing period)", 10: "time integral 3",
    29: "time integral 5 (over the capture period)",
}
_ENERGY_D = (8, 9, 10, 29)


def obis_text(b):
    return ".".join(str(x) for x in b)


def obis_name(b):
    """A name for a logical name (6 bytes), or None."""
    b = bytes(b)
    if len(b) != 6:
        return None
    known = OBJECTS.get(obis_text(b))
    if known:
        return known[1]
    a, _b, c, d, e, f = b
    if a == 0:
        if (c, d) == (40, 0):
            return "Association LN" + ("" if e == 0 else " instance %d" % e)
        abstract = {(1, 0): "clock", (41, 0): "SAP assignment",
                    (42, 0): "COSEM logical device name", (43, 0): "security setup",
                    (43, 1): "invocation counter", (44, 0): "image transfer",
                    (22, 0): "IEC HDLC setup", (20, 0): "IEC local port setup",
                    (96, 1): "device ID", (96, 10): "status register", (96, 11): "event code",
                    (99, 98): "event log", (10, 0): "script table",
                    (11, 0): "special days table", (13, 0): "activity calendar",
                    (15, 0): "single action schedule", (25, 0): "TCP-UDP setup",
                    (25, 1): "IPv4 setup"}.get((c, d))
        return abstract
    if a != 1:
        return None
    if c == 99 and d in (1, 2):
        return "load profile %d" % d
    if c == 98:
        return "billing values profile"
    if c == 0 and d == 2:
        return "firmware/configuration identifier"
    phase = ""
    base = c
    for lo, ph in ((21, "L1"), (41, "L2"), (61, "L3")):
        if lo <= c < lo + 20:
            base = c - lo + 1
            phase = " " + ph
    q = _QUANTITY.get(base)
    if q is None:
        return None
    if phase and base in _PHASE_QUANTITY:
        qname = _PHASE_QUANTITY[base]
    elif d in _ENERGY_D and q[1]:
        qname = q[1]
    else:
        qname = q[0]
    parts = [qname + phase]
    if d in _PROCESSING:
        parts.append(_PROCESSING[d])
    parts.append("total" if e == 0 else "tariff %d" % e)
    if f != 255:
        parts.append("billing period %d" % f)
    return ", ".join(parts)


def obis_label(b):
    name = obis_name(b)
    return obis_text(b) + (" (%s)" % name if name else "")


def _load_class_members():
    """class id -> (attribute names, method names), from the firmware's cosem classes."""
    out = {}
    try:
        from cosem import (association_ln, clock, data, hdlc_setup, local_port_setup,
                           profile_generic, register, sap_assignment, security_setup)
    except Exception:  # the decoder works without them: numbers only
        return out
    for mod in (association_ln, clock, data, hdlc_setup, local_port_setup, profile_generic,
                register, sap_assignment, security_setup):
        for v in vars(mod).values():
            cid = getattr(v, "CLASS_ID", 0) if isinstance(v, type) else 0
            if cid:
                out[cid] = (tuple(a[0] for a in v.ATTRS), tuple(v.METHODS))
    return out


CLASS_MEMBERS = _load_class_members()


def class_label(cid):
    name = CLASS_NAMES.get(cid)
    return "%d (%s)" % (cid, name) if name else "%d" % cid


def member_name(cid, idx, method=False):
    m = CLASS_MEMBERS.get(cid)
    if idx == 0 and not method:
        return "all attributes"
    if m is None:
        return None
    names = m[1] if method else m[0]
    if 1 <= idx <= len(names):
        return names[idx - 1]
    return None


# xDLMS and ACSE names (Green Book)
CONFORMANCE_BITS = (
    "reserved-zero", "general-protection", "general-block-transfer", "read", "write",
    "unconfirmed-write", "delta-value-encoding", "reserved-seven",
    "attribute0-supported-with-set", "priority-mgmt-supported",
    "attribute0-supported-with-get", "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write", "block-transfer-with-action", "multiple-references",
    "information-report", "data-notification", "access", "parameterized-access", "get",
    "set", "selective-access", "event-notification", "action",
)
DAR = {
    0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
    4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
    12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
    15: "long-get-aborted", 16: "no-long-get-in-progress", 17: "long-set-aborted",
    18: "no-long-set-in-progress", 19: "data-block-number-invalid", 250: "other-reason",
}
APPLICATION_CONTEXTS = {
    1: "logical name referencing, no ciphering", 2: "short name referencing, no ciphering",
    3: "logical name referencing with ciphering", 4: "short name referencing with ciphering",
}
MECHANISMS = {
    0: "lowest level security (no authentication)", 1: "low level security (LLS, password)",
    2: "high level security (HLS, manufacturer specific)", 3: "HLS-MD5", 4: "HLS-SHA1",
    5: "HLS-GMAC", 6: "HLS-SHA256", 7: "HLS-ECDSA",
}
ASSOCIATION_RESULT = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
DIAG_USER = {
    0: "null", 1: "no-reason-given", 2: "application-context-name-not-supported",
    3: "calling-AP-title-not-recognized", 4: "calling-AP-invocation-identifier-not-recognized",
    5: "calling-AE-qualifier-not-recognized",
    6: "calling-AE-invocation-identifier-not-recognized", 7: "called-AP-title-not-recognized",
    8: "called-AP-invocation-identifier-not-recognized",
    9: "called-AE-qualifier-not-recognized",
    10: "called-AE-invocation-identifier-not-recognized",
    11: "authentication-mechanism-name-not-recognised",
    12: "authentication-mechanism-name-required", 13: "authentication-failure",
    14: "authentication-required",
}
DIAG_PROVIDER = {0: "null", 1: "no-reason-given", 2: "no-common-acse-version"}
RLRQ_REASON = {0: "normal", 1: "urgent", 30: "user-defined"}
RLRE_REASON = {0: "normal", 1: "not-finished", 30: "user-defined"}
CONFIRMED_SERVICE = {1: "initiateError", 2: "getStatus", 3: "getNameList",
                     4: "getVariableAttribute", 5: "read", 6: "write",
                     7: "getDataSetAttribute", 8: "getTIAttribute", 9: "changeScope",
                     10: "start", 11: "stop", 12: "resume", 13: "makeUsable",
                     14: "initiateLoad", 15: "loadSegment", 16: "terminateLoad",
                     17: "initiateUpLoad", 18: "upLoadSegment", 19: "terminateUpLoad"}
SERVICE_ERROR = {0: "application-reference", 1: "hardware-resource", 2: "vde-state-error",
                 3: "service", 4: "definition", 5: "access", 6: "initiate",
                 7: "load-data-set", 8: "change-scope", 9: "task", 10: "other"}
SERVICE_ERROR_VALUES = {
    0: {0: "other", 1: "time-elapsed", 2: "application-unreachable",
        3: "application-reference-invalid", 4: "application-context-unsupported",
        5: "provider-communication-error", 6: "deciphering-error"},
    3: {0: "other", 1: "pdu-size", 2: "service-unsupported"},
    6: {0: "other", 1: "dlms-version-too-low", 2: "incompatible-conformance",
        3: "pdu-size-too-short", 4: "refused-by-the-VDE-Handler"},
}
EXC_STATE = {1: "service-not-allowed", 2: "service-unknown"}
EXC_SERVICE = {1: "operation-not-possible", 2: "service-not-supported", 3: "other-reason",
               4: "pdu-too-long", 5: "deciphering-error", 6: "invocation-counter-error"}
ACCESS_SELECTORS = {1: "range_descriptor", 2: "entry_descriptor"}
UNITS = {1: "year", 2: "month", 3: "week", 4: "day", 5: "hour", 6: "min", 7: "s",
         8: "degree (angle)", 9: "degree Celsius", 27: "W", 28: "VA", 29: "var", 30: "Wh",
         31: "VAh", 32: "varh", 33: "A", 34: "C", 35: "V", 44: "Hz", 56: "%", 254: "other",
         255: "no unit (count)"}

TYPE_NAMES = {
    0: "null-data", 1: "array", 2: "structure", 3: "boolean", 4: "bit-string",
    5: "double-long", 6: "double-long-unsigned", 9: "octet-string", 10: "visible-string",
    12: "utf8-string", 13: "bcd", 15: "integer", 16: "long", 17: "unsigned",
    18: "long-unsigned", 19: "compact-array", 20: "long64", 21: "long64-unsigned",
    22: "enum", 23: "float32", 24: "float64", 25: "date-time", 26: "date", 27: "time",
    255: "dont-care",
}

# APDU tags
_SERVICE_NAMES = {0xC0: "GET-Request", 0xC1: "SET-Request", 0xC2: "EventNotification-Request",
                  0xC3: "ACTION-Request", 0xC4: "GET-Response", 0xC5: "SET-Response",
                  0xC7: "ACTION-Response"}
_GLO_INITIATE = {0x21: ("glo-initiate-request", 0x01), 0x28: ("glo-initiate-response", 0x08),
                 0x2E: ("glo-confirmed-service-error", 0x0E)}
RESPONSE_TAGS = {0x08, 0x0E, 0x28, 0x2E, 0x61, 0x63, 0xC4, 0xC5, 0xC7, 0xCC, 0xCD, 0xCF,
                 0xD4, 0xD5, 0xD7, 0xD8, 0xDA, 0x0F, 0xC2, 0xCA, 0xD2}


class Bad(Exception):
    """Malformed or truncated input: the rest of the field is shown undecoded."""


# ============================================================================ output
class Line:
    __slots__ = ("space", "off", "raw", "depth", "text")

    def __init__(self, space, off, raw, depth, text):
        self.space = space
        self.off = off
        self.raw = raw
        self.depth = depth
        self.text = text


class Trace:
    """The decoded lines of one input, plus facts for programs (tests) and a list of failed
    checks. ``space``: "" for the input bytes; nested buffers (a decrypted APDU "d", a
    reassembled one "r", reassembled data blocks "b") number their bytes from 0."""

    def __init__(self):
        self.lines = []
        self.facts = []
        self.failed = []
        self.space = ""
        self.hi = 0

    def field(self, buf, p, n, depth, text):
        self.lines.append(Line(self.space, p, bytes(buf[p : p + n]), depth, text))
        if p + n > self.hi:
            self.hi = p + n

    def note(self, depth, text):
        self.lines.append(Line(self.space, None, b"", depth, text))

    def fact(self, key, value):
        self.facts.append((key, value))

    def get(self, key):
        return [v for k, v in self.facts if k == key]

    def fail(self, what):
        self.failed.append(what)

    def enter(self, space, depth, text):
        self.note(depth, text)
        saved = (self.space, self.hi)
        self.space = (self.space + "." + space) if self.space else space
        self.hi = 0
        return saved

    def leave(self, saved):
        self.space, self.hi = saved

    def render(self, width=8, indent=""):
        out = []
        for ln in self.lines:
            meaning = "  " * ln.depth + ln.text
            if ln.off is None:
                out.append("%s%-8s %-*s %s" % (indent, "", 3 * width, "", meaning))
                continue
            raw = ln.raw
            first = True
            for i in range(0, max(len(raw), 1), width):
                chunk = raw[i : i + width]
                off = "%s%04X" % ((ln.space + ":") if ln.space else "", ln.off + i)
                hx = " ".join("%02X" % b for b in chunk)
                out.append(("%s%-8s %-*s %s" % (indent, off, 3 * width, hx,
                                                meaning if first else "")).rstrip())
                first = False
        return out

    def text(self, width=8):
        return "\n".join(self.render(width)) + "\n"


class Cur:
    """A cursor over buf[p:end] that emits fields; every read is checked against end."""

    def __init__(self, t, buf, p, end, depth=0):
        self.t = t
        self.buf = buf
        self.p = p
        self.end = end
        self.depth = depth

    def need(self, n, what="field"):
        if n < 0 or self.p + n > self.end:
            raise Bad("truncated: %s needs %d byte(s), %d left" % (what, n, self.end - self.p))

    def left(self):
        return self.end - self.p

    def byte(self, k=0):
        self.need(k + 1)
        return self.buf[self.p + k]

    def uint(self, n):
        self.need(n)
        v = 0
        for i in range(n):
            v = (v << 8) | self.buf[self.p + i]
        return v

    def bytes(self, n):
        self.need(n)
        return bytes(self.buf[self.p : self.p + n])

    def emit(self, n, text, d=0):
        self.need(n)
        self.t.field(self.buf, self.p, n, self.depth + d, text)
        self.p += n

    def note(self, text, d=0):
        self.t.note(self.depth + d, text)

    def alen(self):
        """An A-XDR/BER length at p: (value, its size in bytes); the value must fit."""
        r = axdr.Reader(self.buf, self.p, self.end)
        try:
            v = r._len()
        except axdr.DecodeError as e:
            raise Bad("length: %s" % e)
        size = r.pos - self.p
        if v > self.end - self.p - size:
            raise Bad("length %d but only %d byte(s) follow" % (v, self.end - self.p - size))
        return v, size

    def sub(self, end, d=1):
        return Cur(self.t, self.buf, self.p, end, self.depth + d)


def _hex(b):
    return binascii.hexlify(bytes(b)).decode().upper()


def _printable(b):
    return len(b) > 0 and all(32 <= x < 127 for x in b)


def _title_text(b):
    b = bytes(b)
    if len(b) == 8 and _printable(b[:3]):
        return "%s (manufacturer '%s', device %s = %d)" % (
            _hex(b), b[:3].decode(), _hex(b[3:]), int.from_bytes(b[3:], "big"))
    return _hex(b)


def _date_time_text(b):
    try:
        y, mo, d, wd, h, mi, s, hs, dev, st = parse_date_time(bytes(b))
    except Exception:
        return None
    if not ((mo <= 12 or mo >= 0xFD) and (1 <= d <= 31 or d >= 0xFD) and (h < 24 or h == 0xFF)
            and (mi < 60 or mi == 0xFF) and (s < 60 or s == 0xFF)
            and (hs < 100 or hs == 0xFF) and (1 <= wd <= 7 or wd == 0xFF)):
        return None

    def f(v, w, none):
        return "*" * w if v == none else "%0*d" % (w, v)

    txt = "%s-%s-%s %s:%s:%s.%s" % (f(y, 4, 0xFFFF), f(mo, 2, 0xFF), f(d, 2, 0xFF),
                                    f(h, 2, 0xFF), f(mi, 2, 0xFF), f(s, 2, 0xFF),
                                    f(hs, 2, 0xFF))
    if wd != 0xFF:
        txt += " (%s)" % ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[wd - 1]
    txt += ", deviation %s" % ("not specified" if dev == 0x8000 else "%d min" % dev)
    txt += ", status 0x%02X" % st
    return txt


# ============================================================================ session
class Session:
    """What a decoder learns along a sequence of frames: titles, challenges, keys, pending
    segments and blocks, and the requests waiting for their responses."""

    def __init__(self, ek=DEV_EK, ak=DEV_AK, system_title=None, dk=None, bk=None):
        self.ek = bytes(ek)
        self.ak = bytes(ak)
        self.bk = bytes(bk) if bk else None
        self.explicit_title = bytes(system_title) if system_title else None
        self.dk = bytes(dk) if dk else None
        self.client_title = None
        self.server_title = None
        self.ctos = None
        self.stoc = None
        self.segments = {}  # direction -> [bytearray, count, last N(S)]
        self.blocks = {}  # (direction, tag) -> [bytearray, count, shape]
        self.pending = {}  # invoke id -> list of (service, class, obis, index)
        self.hdlc_client = None  # the client's HDLC address value, once seen
        self._gcms = {}

    def gcm(self, key):
        g = self._gcms.get(key)
        if g is None:
            g = self._gcms[key] = gcm.Gcm(key)
        return g

    def titles(self, direction, embedded=None):
        cands = [self.explicit_title, embedded]
        if direction == C2S:
            cands.append(self.client_title)
        elif direction == S2C:
            cands.append(self.server_title)
        cands += [self.server_title, self.client_title, DEV_SERVER_TITLE]
        out = []
        for c in cands:
            if c and len(c) == 8 and c not in out:
                out.append(c)
        return out

    def open(self, key, sc, ic, body, titles):
        """-> (plain bytes, title, 'ok' | 'no tag') or (None, None, why)."""
        sec = sc & 0x30
        g = self.gcm(key)
        scb = bytes([sc])
        if sec == 0x20:  # encryption only: nothing to verify, decrypt with the first title
            if not titles:
                return None, None, "no system title known"
            buf = bytearray(body)
            g._start(titles[0] + ic.to_bytes(4, "big"))
            g._ctr_xor(buf, 0, len(buf))
            return bytes(buf), titles[0], "no tag"
        if len(body) < gcm.TAG_LEN:
            return None, None, "shorter than the tag"
        for title in titles:
            iv = title + ic.to_bytes(4, "big")
            if sec == 0x30:
                out = bytearray(len(body))
                n = g.decrypt(iv, (scb, self.ak), body, out)
                if n >= 0:
                    return bytes(out[:n]), title, "ok"
            else:  # 0x10: GMAC over SC || AK || APDU
                apdu = body[: -gcm.TAG_LEN]
                tag = bytearray(body[-gcm.TAG_LEN :])
                if g.decrypt_in_place(iv, (scb, self.ak, apdu), tag, 0, len(tag)) == 0:
                    return bytes(apdu), title, "ok"
        return None, None, "BAD"


# ============================================================================ decoder
class Decoder:
    def __init__(self, session=None):
        self.s = session or Session()
        self.t = Trace()

    # -- entry points ---------------------------------------------------------------------
    def guarded(self, c, start, end, fn, *args):
        """Run fn(c, *args); on malformed input show the rest of buf[start:end] undecoded
        (end None: up to c.end as it is then)."""
        try:
            fn(c, *args)
        except (Bad, axdr.DecodeError, ValueError) as e:
            if end is None:
                end = c.end
            q = max(self.t.hi, start, c.p)
            if q < end:
                self.t.field(c.buf, q, end - q, c.depth, "undecoded: %s" % e)
            else:
                self.t.note(c.depth, "malformed: %s" % e)
            self.t.fail("malformed: %s" % e)
            return False
        return True

    def decode(self, buf, kind="auto", direction=None):
        """Decode everything in buf (several frames follow each other)."""
        buf = bytes(buf)
        p = 0
        end = len(buf)
        while p < end:
            k = kind
            if k == "auto":
                k = detect(buf, p)
            q = p
            if k == "hdlc":
                p = self.hdlc(buf, p, end, direction)
            elif k == "wrapper":
                p = self.wrapper(buf, p, end, direction)
            else:
                self.apdu_region(Cur(self.t, buf, p, end), direction)
                p = end
            if p <= q:  # no progress (cannot happen, but never loop on hostile input)
                r = max(q, self.t.hi)
                if r < end:
                    self.t.field(buf, r, end - r, 0, "undecoded")
                self.t.fail("no progress")
                break
        return self.t

    # -- HDLC -------------------------------------------------------------------------------
    def hdlc(self, buf, start, end, direction=None):
        """One HDLC frame at buf[start] (with or without flags); returns where it ends."""
        t = self.t
        c = Cur(t, buf, start, end)
        while c.p + 1 < end and buf[c.p] == 0x7E and buf[c.p + 1] == 0x7E:
            c.emit(1, "flag (inter-frame fill)")
        has_flag = buf[c.p] == 0x7E
        if has_flag:
            c.emit(1, "HDLC opening flag")
        fstart = c.p
        frame_end = [end]

        def body(c):
            c.need(2, "format field")
            b0, b1 = buf[fstart], buf[fstart + 1]
            if b0 & 0xF0 != 0xA0:
                c.emit(2, "format field: type %d, not type 3 (1010): not an HDLC frame of "
                       "IEC 62056-46" % (b0 >> 4))
                raise Bad("bad format type")
            flen = ((b0 & 7) << 8) | b1
            seg = bool(b0 & 8)
            fe = fstart + flen  # just after the FCS
            if flen < 7:  # format 2 + addresses 2 + control 1 + FCS 2
                c.emit(2, "format: type 3, frame length %d: below the minimum of 7" % flen)
                raise Bad("frame length %d" % flen)
            txt = "format: type 3, S=%d (%s), frame length %d" % (
                seg, "segmented: more segments follow" if seg else "not segmented", flen)
            if fe > end:
                txt += " (only %d present: truncated)" % (end - fstart)
            c.emit(2, txt)
            t.fact("hdlc.segmented", seg)
            frame_end[0] = min(fe, end)
            c.end = frame_end[0]
            dst, dl = hdlc_tools.decode_address(buf, c.p, c.end)
            if not dl:
                c.emit(min(4, c.left()), "destination address: malformed (no last byte "
                       "with LSB 1 within 4 bytes)")
                raise Bad("bad address")
            src, sl = hdlc_tools.decode_address(buf, c.p + dl, c.end)
            if not sl:
                c.emit(dl, "destination address")
                raise Bad("bad source address")
            ctrl = c.byte(dl + sl)
            kind = _control_kind(ctrl)
            info_start = c.p + dl + sl + 1
            gap = fe - 2 - info_start  # HCS + information, or nothing
            has_info = gap >= 3
            llc = bytes(buf[info_start + 2 : info_start + 4]) if has_info else b""
            d = direction or self._guess_hdlc_dir(dl, sl, dst, src, kind, llc)
            t.fact("direction", d)
            if d == C2S:
                self.s.hdlc_client = src
                c.emit(dl, "destination address: " + _server_addr(dst, dl))
                c.emit(sl, "source address: " + _client_addr(src, sl))
            else:
                self.s.hdlc_client = dst
                c.emit(dl, "destination address: " + _client_addr(dst, dl))
                c.emit(sl, "source address: " + _server_addr(src, sl))
            t.fact("hdlc.dst", (dst, dl))
            t.fact("hdlc.src", (src, sl))
            ctext, ns, nr, pf = _control_text(ctrl, d == C2S)
            c.emit(1, "control: " + ctext)
            t.fact("hdlc.control", kind)
            if ns is not None:
                t.fact("hdlc.ns", ns)
            if nr is not None:
                t.fact("hdlc.nr", nr)
            t.fact("hdlc.pf", pf)
            if fe > end:
                rest = end - c.p
                if rest > 0:
                    c.emit(rest, "rest of a truncated frame (%d byte(s) missing)"
                           % (fe - end))
                t.fail("truncated frame")
                return
            if 0 < gap < 3:
                c.emit(gap, "malformed: %d byte(s) between control and FCS (an HCS needs an "
                       "information field after it)" % gap)
                t.fail("malformed frame")
            if has_info:
                hcs = fcs16(buf, fstart, c.p)
                got = buf[c.p] | (buf[c.p + 1] << 8)
                ok = hcs == got
                c.emit(2, "HCS (header check sequence over format..control): %s" % (
                    "ok" if ok else "BAD, computed %02X %02X" % (hcs & 0xFF, hcs >> 8)))
                t.fact("hcs", ok)
                if not ok:
                    t.fail("HCS")
                info_end = fe - 2
                ic = c.sub(info_end, 0)
                self.guarded(ic, ic.p, info_end, self._hdlc_info, kind, seg, ns, d)
                c.p = info_end
            elif fe - 2 < c.p:
                raise Bad("frame length too short for its header")
            f = fcs16(buf, fstart, fe - 2)
            got = buf[fe - 2] | (buf[fe - 1] << 8)
            ok = f == got
            c.emit(2, "FCS (frame check sequence over format..information): %s" % (
                "ok" if ok else "BAD, computed %02X %02X" % (f & 0xFF, f >> 8)))
            t.fact("fcs", ok)
            if not ok:
                t.fail("FCS")

        self.guarded(c, fstart, None, body)
        p = frame_end[0]
        if p < end and buf[p] == 0x7E:
            t.field(buf, p, 1, 0, "HDLC closing flag")
            p += 1
        elif has_flag and p >= end:
            t.note(0, "(no closing flag)")
        return p

    def _guess_hdlc_dir(self, dl, sl, dst, src, kind, llc):
        if self.s.hdlc_client is not None and dl == 1 and sl == 1:
            if src == self.s.hdlc_client and dst != self.s.hdlc_client:
                return C2S
            if dst == self.s.hdlc_client and src != self.s.hdlc_client:
                return S2C
        if dl > 1 and sl == 1:
            return C2S
        if sl > 1 and dl == 1:
            return S2C
        if kind in ("SNRM", "DISC"):
            return C2S
        if kind in ("UA", "DM", "FRMR"):
            return S2C
        if llc == b"\xe6\xe7":
            return S2C
        return C2S

    def _hdlc_info(self, c, kind, seg, ns, d):
        t = self.t
        n = c.left()
        if kind in ("SNRM", "UA"):
            self._hdlc_params(c, kind)
            return
        if kind == "FRMR":
            self._frmr(c)
            return
        if kind not in ("I", "UI"):
            c.emit(n, "information field (not expected in a %s frame)" % kind)
            return
        pend = self.s.segments.get(d)
        if pend is not None and kind == "I":
            if ns is not None and ns == pend[2]:
                c.emit(n, "information: a repeated segment (N(S)=%d again), already counted"
                       % ns)
                return
            pend[0] += bytes(c.buf[c.p : c.end])
            pend[1] += 1
            pend[2] = ns
            c.emit(n, "information: segment %d of a segmented APDU (%d bytes, %d so far)"
                   % (pend[1], n, len(pend[0])))
            if not seg:
                del self.s.segments[d]
                self._sub(bytes(pend[0]), "r", c.depth,
                          "reassembled APDU: %d bytes from %d segments" % (len(pend[0]),
                                                                           pend[1]), d)
            return
        if n >= 3 and c.buf[c.p] == 0xE6 and c.buf[c.p + 1] in (0xE6, 0xE7):
            cmd = c.buf[c.p + 1] == 0xE6
            c.emit(3, "LLC: destination LSAP E6, source LSAP %02X (%s), quality %02X" % (
                c.buf[c.p + 1], "command" if cmd else "response", c.buf[c.p + 2]))
            t.fact("llc", "command" if cmd else "response")
        elif n:
            c.note("(no LLC header: a continuation segment, or not a DLMS APDU)")
        if seg:
            self.s.segments[d] = [bytearray(c.buf[c.p : c.end]), 1, ns]
            if c.left():
                c.emit(c.left(), "information: segment 1 of a segmented APDU (%d bytes; "
                       "decoded after the last segment)" % c.left())
            return
        if c.left():
            self.apdu_region(c, d)

    def apdu_region(self, c, d=None):
        """The APDU that must fill c exactly: decoded, and whatever follows it shown as
        trailing bytes."""
        start = c.p
        self.guarded(c, start, c.end, self.apdu, d)
        q = max(c.p, self.t.hi, start)
        if q < c.end:
            self.t.field(c.buf, q, c.end - q, c.depth, "trailing bytes after the APDU")
            self.t.fail("trailing bytes")
        c.p = c.end

    def _hdlc_params(self, c, kind):
        n = c.left()
        c.need(3, "parameter field header")
        if c.byte(0) != 0x81 or c.byte(1) != 0x80:
            c.emit(n, "information field: not a parameter negotiation field (81 80 ...)")
            return
        c.emit(1, "format identifier 81 (HDLC parameter negotiation)")
        c.emit(1, "group identifier 80 (user data subfield)")
        gl = c.byte()
        c.emit(1, "group length %d" % gl)
        if gl != c.left():
            raise Bad("group length %d, but %d byte(s) follow" % (gl, c.left()))
        names = {5: "maximum information field length, transmit",
                 6: "maximum information field length, receive",
                 7: "window size, transmit", 8: "window size, receive"}
        while c.left():
            pid = c.byte()
            size = c.byte(1)
            c.need(2 + size)
            v = 0
            for i in range(size):
                v = (v << 8) | c.buf[c.p + 2 + i]
            c.emit(2 + size, "parameter %02X (%d bytes): %s = %d" % (
                pid, size, names.get(pid, "unknown parameter"), v))
        side = "client's" if kind == "SNRM" else "server's"
        p = hdlc_tools.parse_params(bytes(c.buf[c.end - n : c.end]))
        if p is not None:
            c.note("%s view (missing ones default): max info TX %d, RX %d, window TX %d, "
                   "RX %d" % ((side,) + p), 1)
            self.t.fact("hdlc.params", p)

    def _frmr(self, c):
        c.need(3, "FRMR information")
        rej = c.byte()
        c.emit(1, "rejected frame's control field %02X (%s)" % (rej, _control_text(rej, True)[0]))
        b = c.byte()
        c.emit(1, "V(R)=%d, C/R=%d, V(S)=%d" % (b >> 5, (b >> 4) & 1, (b >> 1) & 7))
        f = c.byte()
        why = [n for bit, n in ((1, "W: invalid control field"),
                                (2, "X: information field not permitted"),
                                (4, "Y: information field too long"),
                                (8, "Z: invalid N(R)")) if f & bit]
        c.emit(1, "reason flags %02X: %s" % (f, "; ".join(why) or "none"))
        if c.left():
            c.emit(c.left(), "further FRMR bytes")

    # -- wrapper ----------------------------------------------------------------------------
    def wrapper(self, buf, start, end, direction=None):
        t = self.t
        c = Cur(t, buf, start, end)
        stop = [end]

        def body(c):
            c.need(8, "wrapper header")
            ver = c.uint(2)
            src = (buf[start + 2] << 8) | buf[start + 3]
            dst = (buf[start + 4] << 8) | buf[start + 5]
            n = (buf[start + 6] << 8) | buf[start + 7]
            d = direction
            tag = buf[start + 8] if start + 8 < end else None
            if d is None:
                d = S2C if tag in RESPONSE_TAGS else C2S
            t.fact("direction", d)
            t.fact("wrapper", (ver, src, dst, n))
            c.emit(2, "wrapper version %d%s" % (ver, "" if ver == 1 else " (expected 1)"))
            if d == C2S:
                c.emit(2, "source wPort %d: %s" % (src, _client_sap(src)))
                c.emit(2, "destination wPort %d: %s" % (dst, _server_sap(dst)))
            else:
                c.emit(2, "source wPort %d: %s" % (src, _server_sap(src)))
                c.emit(2, "destination wPort %d: %s" % (dst, _client_sap(dst)))
            ae = start + 8 + n
            txt = "length %d (the APDU)" % n
            if ae > end:
                txt += ": only %d present, truncated" % (end - start - 8)
                t.fail("truncated wrapper frame")
            c.emit(2, txt)
            stop[0] = min(ae, end)
            if stop[0] > c.p:
                self.apdu_region(c.sub(stop[0], 0), d)

        self.guarded(c, start, end, body)
        return stop[0]

    # -- nested buffers ---------------------------------------------------------------------
    def _sub(self, data, space, depth, banner, d, fn=None):
        saved = self.t.enter(space, depth, banner)
        try:
            c = Cur(self.t, data, 0, len(data), depth + 1)
            if fn is None:
                self.apdu_region(c, d)
            else:
                self.guarded(c, 0, len(data), fn, d)
                q = max(c.p, self.t.hi)
                if q < len(data):
                    self.t.field(data, q, len(data) - q, depth + 1, "trailing bytes")
                    self.t.fail("trailing bytes")
        finally:
            self.t.leave(saved)

    # -- APDUs ------------------------------------------------------------------------------
    def apdu(self, c, d=None):
        tag = c.byte()
        if d is None:
            d = S2C if tag in RESPONSE_TAGS else C2S
        if tag in (0x60, 0x61, 0x62, 0x63):
            self._acse(c, tag, d)
        elif tag == 0x01:
            self._initiate_request(c)
        elif tag == 0x08:
            self._initiate_response(c)
        elif tag == 0x0E:
            self._confirmed_service_error(c)
        elif tag in _GLO_INITIATE:
            self._ciphered(c, tag, d)
        elif tag in (0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7):
            self.t.fact("apdu", _SERVICE_NAMES[tag])
            getattr(self, "_x%02x" % tag)(c, d)
        elif tag == 0xC2:
            self._event_notification(c)
        elif 0xC8 <= tag <= 0xD7 and (tag & 7) != 6:
            self._ciphered(c, tag, d)
        elif tag == 0xD8:
            self._exception(c)
        elif tag in (0xDB, 0xDC):
            self._general_ciphering(c, tag, d)
        elif tag == 0xDD:
            self._general_ciphering_full(c, d)
        elif tag == 0x0F:
            self._data_notification(c)
        elif tag == 0xE0:
            self._general_block_transfer(c)
        else:
            self.t.fact("apdu", "unknown")
            c.emit(c.left(), "unknown APDU (tag %02X), not decoded" % tag)

    # ACSE --------------------------------------------------------------------------------
    def _tlv(self, c, name):
        """Emit the tag and length of one BER TLV; -> (tag, content start, content end)."""
        try:
            tag, cs, ce = ber.read_tlv(c.buf, c.p, c.end)
        except axdr.DecodeError as e:
            raise Bad("BER %s: %s" % (name, e))
        c.emit(cs - c.p, "%s [%s], length %d" % (name, _tagtext(tag), ce - cs))
        return tag, cs, ce

    def _acse(self, c, tag, d):
        names = {0x60: "AARQ (A-ASSOCIATE request)", 0x61: "AARE (A-ASSOCIATE response)",
                 0x62: "RLRQ (A-RELEASE request)", 0x63: "RLRE (A-RELEASE response)"}
        kind = names[tag].split()[0]
        self.t.fact("apdu", kind)
        _t, _cs, end = self._tlv(c, names[tag])
        fields = {
            0x60: {0x80: "protocol-version", 0xA1: "application-context-name",
                   0xA2: "called-AP-title", 0xA3: "called-AE-qualifier",
                   0xA4: "called-AP-invocation-identifier",
                   0xA5: "called-AE-invocation-identifier", 0xA6: "calling-AP-title",
                   0xA7: "calling-AE-qualifier", 0xA8: "calling-AP-invocation-identifier",
                   0xA9: "calling-AE-invocation-identifier",
                   0x8A: "sender-acse-requirements", 0x8B: "mechanism-name",
                   0xAC: "calling-authentication-value", 0xBD: "implementation-information",
                   0xBE: "user-information"},
            0x61: {0x80: "protocol-version", 0xA1: "application-context-name",
                   0xA2: "result", 0xA3: "result-source-diagnostic",
                   0xA4: "responding-AP-title", 0xA5: "responding-AE-qualifier",
                   0xA6: "responding-AP-invocation-identifier",
                   0xA7: "responding-AE-invocation-identifier",
                   0x88: "responder-acse-requirements", 0x89: "mechanism-name",
                   0xAA: "responding-authentication-value",
                   0xBD: "implementation-information", 0xBE: "user-information"},
            0x62: {0x80: "reason", 0xBE: "user-information"},
            0x63: {0x80: "reason", 0xBE: "user-information"},
        }[tag]
        a = c.sub(end, 1)
        while a.left():
            ftag = a.byte()
            name = fields.get(ftag, "unknown field")
            ft, cs, ce = self._tlv(a, name)
            f = a.sub(ce, 1)
            self._acse_field(f, tag, ft, name, cs, ce, d)
            if f.p < ce:
                f.emit(ce - f.p, "contents")
            a.p = ce
        c.p = end

    def _acse_field(self, f, apdu, ft, name, cs, ce, d):
        t = self.t
        s = self.s
        n = ce - cs
        if ft == 0x80 and apdu in (0x60, 0x61):  # protocol-version BIT STRING
            if n >= 2:
                f.emit(n, "unused bits %d, bits %s: %s" % (
                    f.byte(), _hex(f.buf[cs + 1 : ce]),
                    "version1" if f.buf[cs + 1] & 0x80 else "no version1"))
        elif ft == 0x80:  # RLRQ/RLRE reason
            v = f.uint(n) if 0 < n <= 4 else -1
            table = RLRQ_REASON if apdu == 0x62 else RLRE_REASON
            f.emit(n, "reason %d (%s)" % (v, table.get(v, "?")))
            t.fact("release.reason", v)
        elif ft == 0xA1:  # application-context-name { OBJECT IDENTIFIER }
            _t, os_, oe = self._tlv(f, "OBJECT IDENTIFIER")
            f.emit(oe - os_, _oid_text(f.buf[os_:oe], "context"))
            t.fact("context", _oid_last(f.buf[os_:oe]))
        elif ft in (0x8B, 0x89):  # mechanism-name, implicit OBJECT IDENTIFIER
            f.emit(n, _oid_text(f.buf[cs:ce], "mechanism"))
            t.fact("mechanism", _oid_last(f.buf[cs:ce]))
        elif ft in (0x8A, 0x88):  # acse-requirements BIT STRING
            if n >= 2:
                f.emit(n, "unused bits %d, bits %s: %s" % (
                    f.byte(), _hex(f.buf[cs + 1 : ce]),
                    "authentication" if f.buf[cs + 1] & 0x80 else "no authentication"))
        elif ft in (0xA6, 0xA4, 0xA2) and apdu == 0x60 or ft in (0xA4,) and apdu == 0x61:
            _t, os_, oe = self._tlv(f, "OCTET STRING")
            title = bytes(f.buf[os_:oe])
            f.emit(oe - os_, "system title %s" % _title_text(title))
            if ft == 0xA6 and apdu == 0x60 and len(title) == 8:
                s.client_title = title
                t.fact("client_title", title)
            if ft == 0xA4 and apdu == 0x61 and len(title) == 8:
                s.server_title = title
                t.fact("server_title", title)
        elif ft == 0xA2 and apdu == 0x61:  # result
            _t, os_, oe = self._tlv(f, "INTEGER")
            v = f.uint(oe - os_)
            f.emit(oe - os_, "result %d: %s" % (v, ASSOCIATION_RESULT.get(v, "?")))
            t.fact("result", v)
        elif ft == 0xA3 and apdu == 0x61:  # result-source-diagnostic
            st, ss, se = self._tlv(f, "CHOICE")
            src = {0xA1: "acse-service-user", 0xA2: "acse-service-provider"}.get(st, "?")
            g = f.sub(se, 1)
            _t, os_, oe = self._tlv(g, "INTEGER")
            v = g.uint(oe - os_)
            table = DIAG_USER if st == 0xA1 else DIAG_PROVIDER
            g.emit(oe - os_, "%s diagnostic %d: %s" % (src, v, table.get(v, "?")))
            t.fact("diagnostic", (src, v))
            f.p = se
        elif ft in (0xAC, 0xAA):  # authentication value CHOICE
            ct, vs, ve = self._tlv(f, "authentication value")
            val = bytes(f.buf[vs:ve])
            kind = {0x80: "charstring", 0x81: "bitstring", 0x82: "external",
                    0x83: "other"}.get(ct, "?")
            mech = (t.get("mechanism") or [None])[-1]
            what = "password" if mech == 1 else "challenge (%s)" % (
                "CtoS" if ft == 0xAC else "StoC") if mech else "value"
            f.emit(ve - vs, "%s %s: %s%s" % (kind, what, _hex(val),
                                             " '%s'" % val.decode() if _printable(val) else ""))
            if ft == 0xAC:
                s.ctos = val
            else:
                s.stoc = val
        elif ft == 0xBE:  # user-information { OCTET STRING: an xDLMS APDU }
            _t, os_, oe = self._tlv(f, "OCTET STRING (xDLMS APDU)")
            self.apdu_region(f.sub(oe, 1), d)
            f.p = oe
        else:
            f.emit(n, "contents")

    # xDLMS initiate ------------------------------------------------------------------------
    def _conformance(self, c):
        c.need(7, "conformance")
        if c.uint(2) != 0x5F1F:
            raise Bad("conformance block tag 5F1F expected")
        c.emit(2, "conformance tag [APPLICATION 31] (5F 1F)")
        c.emit(1, "length %d" % c.byte())
        c.emit(1, "unused bits %d" % c.byte())
        bits = c.uint(3)
        names = [CONFORMANCE_BITS[i] for i in range(24) if bits & (1 << (23 - i))]
        c.emit(3, "conformance 0x%06X: %d service(s)" % (bits, len(names)))
        for i in range(24):
            if bits & (1 << (23 - i)):
                c.note("bit %d %s" % (i, CONFORMANCE_BITS[i]), 1)
        self.t.fact("conformance", names)

    def _initiate_request(self, c):
        self.t.fact("apdu", "InitiateRequest")
        c.emit(1, "InitiateRequest (xDLMS)")
        c.depth += 1
        if c.byte():
            c.emit(1, "dedicated-key: present")
            n = c.byte()
            c.emit(1, "length %d" % n)
            key = c.bytes(n)
            c.emit(n, "dedicated key %s (used for ded- APDUs of this association)" % _hex(key))
            if n == 16:
                self.s.dk = key
        else:
            c.emit(1, "dedicated-key: absent")
        if c.byte():
            c.emit(2, "response-allowed: %s" % bool(c.byte(1)))
        else:
            c.emit(1, "response-allowed: default (TRUE)")
        if c.byte():
            c.emit(2, "proposed-quality-of-service: %d" % c.byte(1))
        else:
            c.emit(1, "proposed-quality-of-service: absent")
        c.emit(1, "proposed-dlms-version-number %d" % c.byte())
        self._conformance(c)
        v = c.uint(2)
        c.emit(2, "client-max-receive-pdu-size %d%s" % (v, " (no limit)" if v == 0 else ""))
        self.t.fact("max_pdu", v)
        c.depth -= 1

    def _initiate_response(self, c):
        self.t.fact("apdu", "InitiateResponse")
        c.emit(1, "InitiateResponse (xDLMS)")
        c.depth += 1
        if c.byte():
            c.emit(2, "negotiated-quality-of-service: %d" % c.byte(1))
        else:
            c.emit(1, "negotiated-quality-of-service: absent")
        c.emit(1, "negotiated-dlms-version-number %d" % c.byte())
        self._conformance(c)
        v = c.uint(2)
        c.emit(2, "server-max-receive-pdu-size %d" % v)
        self.t.fact("max_pdu", v)
        v = c.uint(2)
        c.emit(2, "vaa-name 0x%04X (%s)" % (v, {7: "logical name referencing",
                                                 0xFA00: "short name referencing"}.get(v, "?")))
        c.depth -= 1

    def _confirmed_service_error(self, c):
        self.t.fact("apdu", "ConfirmedServiceError")
        c.emit(1, "ConfirmedServiceError (xDLMS)")
        c.depth += 1
        v = c.byte()
        c.emit(1, "service: %s (%d)" % (CONFIRMED_SERVICE.get(v, "?"), v))
        e = c.byte()
        c.emit(1, "service-error: %s (%d)" % (SERVICE_ERROR.get(e, "?"), e))
        x = c.byte()
        c.emit(1, "%s error: %s (%d)" % (SERVICE_ERROR.get(e, "?"),
                                          SERVICE_ERROR_VALUES.get(e, {}).get(x, "?"), x))
        self.t.fact("service_error", (v, e, x))
        c.depth -= 1

    # xDLMS services ------------------------------------------------------------------------
    def _invoke(self, c):
        v = c.byte()
        c.emit(1, "invoke-id-and-priority 0x%02X: invoke-id %d, %s, %s priority" % (
            v, v & 0x0F, "confirmed" if v & 0x40 else "unconfirmed",
            "high" if v & 0x80 else "normal"))
        return v & 0x0F

    def _descriptor(self, c, method=False):
        cid = c.uint(2)
        c.emit(2, "class-id %s" % class_label(cid))
        ln = c.bytes(6)
        c.emit(6, "instance-id (logical name) %s" % obis_label(ln))
        idx = c.byte()
        if idx > 127:
            idx -= 256
        name = member_name(cid, idx, method)
        c.emit(1, "%s %d%s" % ("method-id" if method else "attribute-id", idx,
                               " (%s)" % name if name else ""))
        self.t.fact("obis", obis_text(ln))
        self.t.fact("class", cid)
        return (cid, ln, idx)

    def _access_selection(self, c):
        if not c.byte():
            c.emit(1, "access-selection: absent")
            return
        c.emit(1, "access-selection: present")
        sel = c.byte()
        c.emit(1, "access-selector %d (%s)" % (sel, ACCESS_SELECTORS.get(sel, "?")), 1)
        c.note("access-parameters:", 1)
        self.data(c, 2)

    def _dar(self, c, what="data-access-result"):
        v = c.byte()
        c.emit(1, "%s %d (%s)" % (what, v, DAR.get(v, "?")))
        self.t.fact("dar", v)

    def _get_data_result(self, c, ref=None):
        ch = c.byte()
        if ch == 0:
            c.emit(1, "result: data%s" % _ref_text(ref))
            self.data(c, 1, ref)
        elif ch == 1:
            c.emit(1, "result: data-access-result")
            self._dar(c)
        else:
            raise Bad("Get-Data-Result choice %d" % ch)

    def _block_number(self, c):
        v = c.uint(4)
        c.emit(4, "block-number %d" % v)
        return v

    def _raw_block(self, c, key, last, shape, d, first=False):
        if first:
            self.s.blocks.pop(key, None)
        n, k = c.alen()
        c.emit(k, "raw-data: octet-string, length %d" % n)
        data = c.bytes(n)
        c.emit(n, "raw-data (one block of the encoded value)", 1)
        blocks = self.s.blocks
        acc = blocks.get(key)
        if acc is None:
            acc = blocks[key] = [bytearray(), 0, shape]
        acc[0] += data
        acc[1] += 1
        if last:
            del blocks[key]
            self._sub(bytes(acc[0]), "b", c.depth, "value reassembled from %d block(s), %d "
                      "bytes:" % (acc[1], len(acc[0])), d, lambda g, _d: self._shape(g, acc[2]))

    def _shape(self, c, shape):
        kind, refs = shape
        if kind == "data":
            self.data(c, 0, refs[0] if refs else None)
        elif kind == "results":  # GET with-list: count, Get-Data-Result per attribute
            n, k = c.alen()
            c.emit(k, "%d result(s)" % n)
            for i in range(n):
                self._get_data_result(c, refs[i] if refs and i < len(refs) else None)
        elif kind == "list":  # SET with-list: count, Data per attribute
            n, k = c.alen()
            c.emit(k, "%d value(s)" % n)
            for i in range(n):
                self.data(c, 1)
        else:
            c.emit(c.left(), "data")

    def _xc0(self, c, d):
        c.emit(1, "GET-Request")
        ch = c.byte()
        kinds = {1: "GET-Request-Normal", 2: "GET-Request-Next", 3: "GET-Request-With-List"}
        c.emit(1, "%s (choice %d)" % (kinds.get(ch, "unknown"), ch), 1)
        self.t.fact("service", kinds.get(ch, "?"))
        c.depth += 1
        inv = self._invoke(c)
        if ch == 1:
            ref = self._descriptor(c)
            self._access_selection(c)
            self.s.pending[inv] = ("get", [ref])
        elif ch == 2:
            self._block_number(c)
        elif ch == 3:
            n, k = c.alen()
            c.emit(k, "%d attribute descriptor(s)" % n)
            refs = []
            for i in range(n):
                c.note("attribute %d:" % (i + 1))
                c.depth += 1
                refs.append(self._descriptor(c))
                self._access_selection(c)
                c.depth -= 1
            self.s.pending[inv] = ("get-list", refs)
        else:
            raise Bad("unknown GET-Request choice %d" % ch)
        c.depth -= 1

    def _xc4(self, c, d):  # GET-Response
        c.emit(1, "GET-Response")
        ch = c.byte()
        kinds = {1: "GET-Response-Normal", 2: "GET-Response-With-Datablock",
                 3: "GET-Response-With-List"}
        c.emit(1, "%s (choice %d)" % (kinds.get(ch, "unknown"), ch), 1)
        self.t.fact("service", kinds.get(ch, "?"))
        c.depth += 1
        inv = self._invoke(c)
        pend = self.s.pending.get(inv)
        refs = pend[1] if pend else None
        if ch == 1:
            self._get_data_result(c, refs[0] if refs else None)
        elif ch == 2:
            last = c.byte()
            c.emit(1, "last-block: %s" % bool(last))
            bn = self._block_number(c)
            r = c.byte()
            if r == 0:
                c.emit(1, "result: raw-data")
                shape = ("results", refs) if pend and pend[0] == "get-list" else ("data", refs)
                self._raw_block(c, (d, 0xC4), last, shape, d, bn == 1)
            else:
                c.emit(1, "result: data-access-result")
                self._dar(c)
        elif ch == 3:
            n, k = c.alen()
            c.emit(k, "%d result(s)" % n)
            for i in range(n):
                self._get_data_result(c, refs[i] if refs and i < len(refs) else None)
        else:
            raise Bad("unknown GET-Response choice %d" % ch)
        c.depth -= 1

    def _datablock_sa(self, c, key, shape, d):
        last = c.byte()
        c.emit(1, "last-block: %s" % bool(last))
        bn = self._block_number(c)
        self._raw_block(c, key, last, shape, d, bn == 1)

    def _xc1(self, c, d):  # SET-Request
        c.emit(1, "SET-Request")
        ch = c.byte()
        kinds = {1: "SET-Request-Normal", 2: "SET-Request-With-First-Datablock",
                 3: "SET-Request-With-Datablock", 4: "SET-Request-With-List",
                 5: "SET-Request-With-List-And-First-Datablock"}
        c.emit(1, "%s (choice %d)" % (kinds.get(ch, "unknown"), ch), 1)
        self.t.fact("service", kinds.get(ch, "?"))
        c.depth += 1
        inv = self._invoke(c)
        key = (d, 0xC1)
        if ch in (1, 2):
            ref = self._descriptor(c)
            self._access_selection(c)
            if ch == 1:
                c.note("value:")
                self.data(c, 1, ref)
            else:
                self.s.blocks.pop(key, None)
                self._datablock_sa(c, key, ("data", [ref]), d)
            self.s.pending[inv] = ("set", [ref])
        elif ch == 3:
            self._datablock_sa(c, key, self.s.blocks.get(key, [0, 0, ("data", None)])[2], d)
        elif ch in (4, 5):
            n, k = c.alen()
            c.emit(k, "%d attribute descriptor(s)" % n)
            refs = []
            for i in range(n):
                c.note("attribute %d:" % (i + 1))
                c.depth += 1
                refs.append(self._descriptor(c))
                self._access_selection(c)
                c.depth -= 1
            if ch == 4:
                m, k = c.alen()
                c.emit(k, "%d value(s)" % m)
                for i in range(m):
                    self.data(c, 1, refs[i] if i < len(refs) else None)
            else:
                self.s.blocks.pop(key, None)
                self._datablock_sa(c, key, ("list", refs), d)
            self.s.pending[inv] = ("set-list", refs)
        else:
            raise Bad("unknown SET-Request choice %d" % ch)
        c.depth -= 1

    def _xc5(self, c, d):  # SET-Response
        c.emit(1, "SET-Response")
        ch = c.byte()
        kinds = {1: "SET-Response-Normal", 2: "SET-Response-Datablock",
                 3: "SET-Response-Last-Datablock", 4: "SET-Response-Last-Datablock-With-List",
                 5: "SET-Response-With-List"}
        c.emit(1, "%s (choice %d)" % (kinds.get(ch, "unknown"), ch), 1)
        self.t.fact("service", kinds.get(ch, "?"))
        c.depth += 1
        self._invoke(c)
        if ch == 1:
            self._dar(c, "result")
        elif ch == 2:
            self._block_number(c)
        elif ch == 3:
            self._dar(c, "result")
            self._block_number(c)
        elif ch in (4, 5):
            n, k = c.alen()
            c.emit(k, "%d result(s)" % n)
            for _ in range(n):
                self._dar(c, "result")
            if ch == 4:
                self._block_number(c)
        else:
            raise Bad("unknown SET-Response choice %d" % ch)
        c.depth -= 1

    def _xc3(self, c, d):  # ACTION-Request
        c.emit(1, "ACTION-Request")
        ch = c.byte()
        kinds = {1: "ACTION-Request-Normal", 2: "ACTION-Request-Next-Pblock",
                 3: "ACTION-Request-With-List", 4: "ACTION-Request-With-First-Pblock",
                 5: "ACTION-Request-With-List-And-First-Pblock",
                 6: "ACTION-Request-With-Pblock"}
        c.emit(1, "%s (choice %d)" % (kinds.get(ch, "unknown"), ch), 1)
        self.t.fact("service", kinds.get(ch, "?"))
        c.depth += 1
        inv = self._invoke(c)
        key = (d, 0xC3)
        if ch == 1:
            ref = self._descriptor(c, True)
            self.s.pending[inv] = ("action", [ref])
            if c.byte():
                c.emit(1, "method-invocation-parameters: present")
                self.data(c, 1, ref + ("param",))
            else:
                c.emit(1, "method-invocation-parameters: absent")
        elif ch == 2:
            self._block_number(c)
        elif ch in (3, 5):
            n, k = c.alen()
            c.emit(k, "%d method descriptor(s)" % n)
            refs = [self._descriptor(c, True) for _ in range(n)]
            self.s.pending[inv] = ("action-list", refs)
            if ch == 3:
                m, k = c.alen()
                c.emit(k, "%d parameter(s)" % m)
                for _ in range(m):
                    self.data(c, 1)
            else:
                self.s.blocks.pop(key, None)
                self._datablock_sa(c, key, ("list", refs), d)
        elif ch == 4:
            ref = self._descriptor(c, True)
            self.s.pending[inv] = ("action", [ref])
            self.s.blocks.pop(key, None)
            self._datablock_sa(c, key, ("data", None), d)
        elif ch == 6:
            self._datablock_sa(c, key, self.s.blocks.get(key, [0, 0, ("data", None)])[2], d)
        else:
            raise Bad("unknown ACTION-Request choice %d" % ch)
        c.depth -= 1

    def _action_result(self, c, ref):
        self._dar(c, "action-result")
        if c.byte():
            c.emit(1, "return-parameters: present")
            self._get_data_result(c, ref + ("return",) if ref else None)
        else:
            c.emit(1, "return-parameters: absent")

    def _xc7(self, c, d):  # ACTION-Response
        c.emit(1, "ACTION-Response")
        ch = c.byte()
        kinds = {1: "ACTION-Response-Normal", 2: "ACTION-Response-With-Pblock",
                 3: "ACTION-Response-With-List", 4: "ACTION-Response-Next-Pblock"}
        c.emit(1, "%s (choice %d)" % (kinds.get(ch, "unknown"), ch), 1)
        self.t.fact("service", kinds.get(ch, "?"))
        c.depth += 1
        inv = self._invoke(c)
        pend = self.s.pending.get(inv)
        refs = pend[1] if pend and pend[0].startswith("action") else None
        if ch == 1:
            self._action_result(c, refs[0] if refs else None)
        elif ch == 2:
            self._datablock_sa(c, (d, 0xC7), ("data", None), d)
        elif ch == 3:
            n, k = c.alen()
            c.emit(k, "%d result(s)" % n)
            for i in range(n):
                self._action_result(c, refs[i] if refs and i < len(refs) else None)
        elif ch == 4:
            self._block_number(c)
        else:
            raise Bad("unknown ACTION-Response choice %d" % ch)
        c.depth -= 1

    def _event_notification(self, c):
        self.t.fact("apdu", "EventNotification-Request")
        c.emit(1, "EventNotification-Request")
        c.depth += 1
        if c.byte():
            c.emit(1, "time: present")
            n, k = c.alen()
            c.emit(k, "octet-string, length %d" % n)
            b = c.bytes(n)
            c.emit(n, "time %s" % (_date_time_text(b) or _hex(b)))
        else:
            c.emit(1, "time: absent")
        ref = self._descriptor(c)
        c.note("attribute-value:")
        self.data(c, 1, ref)
        c.depth -= 1

    def _data_notification(self, c):
        self.t.fact("apdu", "DataNotification")
        c.emit(1, "DataNotification")
        c.depth += 1
        v = c.uint(4)
        c.emit(4, "long-invoke-id-and-priority 0x%08X: invoke-id %d, %s, %s priority%s" % (
            v, v & 0xFFFFFF, "confirmed" if v & (1 << 30) else "unconfirmed",
            "high" if v & (1 << 31) else "normal",
            ", self-descriptive" if v & (1 << 28) else ""))
        n, k = c.alen()
        c.emit(k, "date-time: octet-string, length %d%s" % (n, " (absent)" if n == 0 else ""))
        if n:
            b = c.bytes(n)
            c.emit(n, "date-time %s" % (_date_time_text(b) or _hex(b)))
        c.note("notification-body:")
        self.data(c, 1)
        c.depth -= 1

    def _exception(self, c):
        self.t.fact("apdu", "ExceptionResponse")
        c.emit(1, "ExceptionResponse")
        c.depth += 1
        v = c.byte()
        c.emit(1, "state-error %d (%s)" % (v, EXC_STATE.get(v, "?")))
        e = c.byte()
        c.emit(1, "service-error %d (%s)" % (e, EXC_SERVICE.get(e, "?")))
        self.t.fact("exception", (v, e))
        if e == 6 and c.left() >= 4:
            c.emit(4, "invocation counter %d" % c.uint(4))
        c.depth -= 1

    def _general_block_transfer(self, c):
        self.t.fact("apdu", "general-block-transfer")
        c.emit(1, "general-block-transfer")
        c.depth += 1
        bc = c.byte()
        c.emit(1, "block-control 0x%02X: last-block %d, streaming %d, window %d" % (
            bc, bc >> 7, (bc >> 6) & 1, bc & 0x3F))
        c.emit(2, "block-number %d" % c.uint(2))
        c.emit(2, "block-number-ack %d" % c.uint(2))
        n, k = c.alen()
        c.emit(k, "block-data: octet-string, length %d" % n)
        c.emit(n, "block-data (part of an APDU)")
        c.depth -= 1

    # ciphering -----------------------------------------------------------------------------
    def _ciphered(self, c, tag, d):
        if tag in _GLO_INITIATE:
            name, inner = _GLO_INITIATE[tag]
            kind = "glo"
            desc = "%s (ciphered %s, global key)" % (
                name, {1: "InitiateRequest", 8: "InitiateResponse",
                       0x0E: "ConfirmedServiceError"}[inner])
        else:
            kind = "glo" if tag < 0xD0 else "ded"
            inner = tag - (8 if kind == "glo" else 0x10)
            svc = _SERVICE_NAMES.get(inner, "APDU %02X" % inner)
            name = "%s-%s" % (kind, svc.lower().replace("eventnotification",
                                                        "event-notification"))
            desc = "%s (ciphered %s, %s key)" % (name, svc,
                                                 "global" if kind == "glo" else "dedicated")
        self.t.fact("apdu", name)
        c.emit(1, desc)
        c.depth += 1
        n, k = c.alen()
        c.emit(k, "length %d" % n)
        body = c.sub(c.p + n, 0)
        self._protected(body, kind, None, d)
        c.p = body.p
        c.depth -= 1

    def _general_ciphering(self, c, tag, d):
        kind = "glo" if tag == 0xDB else "ded"
        name = "general-%s-ciphering" % kind
        self.t.fact("apdu", name)
        c.emit(1, "%s (any APDU, %s key)" % (name, "global" if kind == "glo" else "dedicated"))
        c.depth += 1
        n, k = c.alen()
        c.emit(k, "system-title: octet-string, length %d" % n)
        title = None
        if n:
            title = c.bytes(n)
            c.emit(n, "system title of the sender %s" % _title_text(title))
        else:
            c.note("(empty: the title agreed at association)")
        n, k = c.alen()
        c.emit(k, "ciphered-content: octet-string, length %d" % n)
        body = c.sub(c.p + n, 0)
        self._protected(body, kind, title, d)
        c.p = body.p
        c.depth -= 1

    def _general_ciphering_full(self, c, d):
        self.t.fact("apdu", "general-ciphering")
        c.emit(1, "general-ciphering")
        c.depth += 1
        title = None
        for what in ("transaction-id", "originator-system-title", "recipient-system-title",
                     "date-time", "other-information"):
            n, k = c.alen()
            c.emit(k, "%s: octet-string, length %d" % (what, n))
            if n:
                b = c.bytes(n)
                if what == "originator-system-title":
                    title = b
                c.emit(n, "%s %s" % (what, _hex(b)), 1)
        if c.byte():
            c.emit(c.left(), "key-info present: not decoded")
            c.depth -= 1
            return
        c.emit(1, "key-info: absent (the global key)")
        n, k = c.alen()
        c.emit(k, "ciphered-content: octet-string, length %d" % n)
        body = c.sub(c.p + n, 0)
        self._protected(body, "glo", title, d)
        c.p = body.p
        c.depth -= 1

    def _protected(self, c, kind, title, d):
        """SC || IC || body (ciphertext || tag, or APDU || tag) in c."""
        t = self.t
        s = self.s
        sc = c.byte()
        bits = []
        if sc & 0x80:
            bits.append("compressed")
        bits.append("broadcast key" if sc & 0x40 else "unicast key")
        sec = sc & 0x30
        bits.append({0x00: "no protection", 0x10: "authenticated only",
                     0x20: "encrypted only", 0x30: "authenticated and encrypted"}[sec])
        bits.append("security suite %d" % (sc & 0x0F))
        c.emit(1, "security control 0x%02X: %s" % (sc, ", ".join(bits)))
        ic = c.uint(4)
        c.emit(4, "invocation counter %d (0x%08X)" % (ic, ic))
        t.fact("sc", sc)
        t.fact("ic", ic)
        body = c.bytes(c.left())
        if kind == "ded":
            key = s.dk
            keyname = "dedicated key"
        elif sc & 0x40:
            key = s.bk
            keyname = "broadcast key"
        else:
            key = s.ek
            keyname = "global unicast key"
        if sec == 0 or sc & 0x8F:
            c.emit(c.left(), "protected content (%s: not decoded)" % (
                "no protection" if sec == 0 else "compression or another suite"))
            return
        titles = s.titles(d, title)
        if key is None:
            plain, used, status = None, None, "no %s known" % keyname
        elif sec == 0x10 and len(body) < gcm.TAG_LEN:
            plain, used, status = None, None, "shorter than the tag"
        else:
            plain, used, status = s.open(key, sc, ic, body, titles)
        if sec == 0x10:
            n = c.left() - gcm.TAG_LEN
            c.note("the APDU travels in clear, authenticated by the tag after it:")
            a = c.sub(c.p + max(n, 0), 1)
            self.apdu_region(a, d)
            c.p = a.end
        elif c.left() > gcm.TAG_LEN:
            c.emit(c.left() - gcm.TAG_LEN if sec == 0x30 else c.left(),
                   "ciphertext (%d bytes)" % (c.left() - (gcm.TAG_LEN if sec == 0x30 else 0)))
        if sec in (0x10, 0x30):
            if status == "ok":
                txt = "authentication tag (12 bytes): ok (%s, sender system title %s)" % (
                    keyname, _hex(used))
                t.fact("tag", True)
            else:
                txt = "authentication tag (12 bytes): %s" % (
                    "BAD with the %s and every known system title (%s): not decrypted" % (
                        keyname, ", ".join(_hex(x) for x in titles) or "none")
                    if status == "BAD" else "not checked: %s" % status)
                t.fact("tag", False)
                t.fail("tag")
            c.emit(min(gcm.TAG_LEN, c.left()), txt)
        elif sec == 0x20:
            c.note("encrypted only: no tag, nothing authenticates it")
        if plain is not None and sec != 0x10:
            t.fact("plain", plain)
            self._sub(plain, "d", c.depth, "decrypted APDU (%d bytes, %s, IV = %s || %08X):"
                      % (len(plain), keyname, _hex(used), ic), d)
        elif plain is not None:
            t.fact("plain", plain)

    # A-XDR data ----------------------------------------------------------------------------
    def data(self, c, d=0, ref=None):
        """One A-XDR Data element at c.p as an indented tree."""
        self._data(c, c.depth + d, 0, ref)

    def _data(self, c, depth, level, ref=None, hint=None):
        if level > 16:
            raise Bad("nesting too deep")
        t = self.t
        buf = c.buf
        p = c.p
        tag = c.byte()
        name = TYPE_NAMES.get(tag)
        if name is None:
            raise Bad("unknown A-XDR type tag %d" % tag)
        r = axdr.Reader(buf, p + 1, c.end)
        if tag in (axdr.ARRAY, axdr.STRUCTURE):
            n = r.length()
            t.field(buf, p, r.pos - p, depth, "%s (%d element%s)%s" % (
                name, n, "" if n == 1 else "s", hint or ""))
            c.p = r.pos
            kids = self._kid_hints(c, tag, n, ref if level == 0 else None)
            for i in range(n):
                self._data(c, depth + 1, level + 1, None, kids[i] if i < len(kids) else None)
            return
        if tag == axdr.COMPACT_ARRAY:
            self._compact(c, depth)
            return
        v = r._content(tag, True)
        c.p = r.pos
        raw = bytes(buf[p + 1 : c.p])
        t.field(buf, p, c.p - p, depth, _value_text(tag, v, raw, hint))
        if tag == axdr.OCTET_STRING and len(v) == 6:
            t.fact("obis", obis_text(v))
        if ref is not None and len(ref) > 3 and ref[3] == "param" and tag == axdr.OCTET_STRING:
            self._hls_check(depth, v, ref, pass3=True)
        elif ref is not None and len(ref) > 3 and ref[3] == "return" and \
                tag == axdr.OCTET_STRING:
            self._hls_check(depth, v, ref, pass3=False)

    def _kid_hints(self, c, tag, n, ref=None):
        """Names for the elements of a structure of a known shape, looked at ahead (the
        bytes are decoded again by the tree walk): {class id, ..., logical name, ...}
        (object list, capture objects, selective access) and, for the scaler_unit attribute
        of a register, {scaler, unit}."""
        if tag != axdr.STRUCTURE or n < 2:
            return []
        scaler_unit = ref is not None and len(ref) == 3 and (
            (ref[0] in (3, 4) and ref[2] == 3) or (ref[0] == 5 and ref[2] == 4))
        try:
            r = axdr.Reader(c.buf, c.p, c.end)
            items = [r.data() for _ in range(min(n, 3))]
        except (axdr.DecodeError, ValueError):
            return []
        if scaler_unit and n == 2 and items[0][0] == axdr.INTEGER and \
                items[1][0] == axdr.ENUM:
            return [": scaler (x 10^%d)" % items[0][1],
                    ": unit %s" % UNITS.get(items[1][1], "%d" % items[1][1])]
        if items[0][0] == axdr.LONG_UNSIGNED and any(
                it[0] == axdr.OCTET_STRING and len(it[1]) == 6 for it in items[1:]):
            return [": class-id %s" % class_label(items[0][1])]
        return []

    def _compact(self, c, depth):
        buf = c.buf
        p = c.p
        r = axdr.Reader(buf, p + 1, c.end)
        axdr._td_min_size(r, 1)
        td_end = r.pos
        self.t.field(buf, p, 1, depth, "compact-array")
        self.t.field(buf, p + 1, td_end - p - 1, depth + 1,
                     "contents-description %s" % _hex(buf[p + 1 : td_end]))
        n = r.length()
        self.t.field(buf, td_end, r.pos - td_end, depth + 1, "array-contents length %d" % n)
        cstart = r.pos
        cend = cstart + n
        r2 = axdr.Reader(buf, cstart, cend)
        i = 0
        while r2.pos < cend:
            s = r2.pos
            v = r2._celem(p + 1, True)[0]
            self.t.field(buf, s, r2.pos - s, depth + 1, "element %d: %s" % (i, _typed_repr(v)))
            i += 1
        c.p = cend

    def _hls_check(self, depth, v, ref, pass3):
        """f(StoC) in reply_to_HLS (pass 3) or f(CtoS) in its answer (pass 4)."""
        cid, _ln, idx = ref[:3]
        if not (cid == 15 and idx == 1) or len(v) != 17 or v[0] != 0x10:
            return
        s = self.s
        ic = int.from_bytes(v[1:5], "big")
        challenge = s.stoc if pass3 else s.ctos
        titles = s.titles(C2S if pass3 else S2C)
        what = "f(StoC), the client's answer" if pass3 else "f(CtoS), the meter's answer"
        if challenge is None:
            self.t.note(depth + 1, "%s: SC 10, IC %d, GMAC %s (not checked: the challenge "
                        "was not seen)" % (what, ic, _hex(v[5:])))
            return
        keys = security.Keys(s.ek, s.ak)
        used = None
        for title in titles:
            if bytes(security.gmac_tag(keys, title, ic, challenge)) == bytes(v[5:]):
                used = title
                break
        self.t.note(depth + 1, "%s: SC 10, IC %d, GMAC %s: %s" % (
            what, ic, _hex(v[5:]), "ok (system title %s)" % _hex(used) if used else
            "BAD with every known system title"))
        self.t.fact("gmac", used is not None)
        if used is None:
            self.t.fail("HLS GMAC")


# ============================================================================ helpers
def _tagtext(tag):
    return "%X" % tag if tag > 0xFF else "%02X" % tag


def _oid(b):
    b = bytes(b)
    if not b:
        return []
    arcs = []
    first = b[0]
    arcs += [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    v = 0
    for x in b[1:]:
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            arcs.append(v)
            v = 0
    return arcs


def _oid_last(b):
    a = _oid(b)
    return a[-1] if a else None


def _oid_text(b, kind):
    arcs = _oid(b)
    txt = ".".join(str(a) for a in arcs)
    if arcs[:5] == [2, 16, 756, 5, 8] and len(arcs) == 7:
        if kind == "context" and arcs[5] == 1:
            return "%s: DLMS application context %d, %s" % (
                txt, arcs[6], APPLICATION_CONTEXTS.get(arcs[6], "?"))
        if kind == "mechanism" and arcs[5] == 2:
            return "%s: authentication mechanism %d, %s" % (
                txt, arcs[6], MECHANISMS.get(arcs[6], "?"))
    return txt


def _control_kind(ctrl):
    if not ctrl & 1:
        return "I"
    if ctrl & 3 == 1:
        return ("RR", "RNR", "REJ", "SREJ")[(ctrl >> 2) & 3]
    return {0x83: "SNRM", 0x43: "DISC", 0x63: "UA", 0x0F: "DM", 0x87: "FRMR",
            0x03: "UI"}.get(ctrl & 0xEF, "U?")


def _control_text(ctrl, command):
    """-> (text, N(S) or None, N(R) or None, P/F bit)."""
    kind = _control_kind(ctrl)
    pf = (ctrl >> 4) & 1
    pfn = "P" if command else "F"
    if kind == "I":
        ns = (ctrl >> 1) & 7
        nr = ctrl >> 5
        return ("I (information) N(S)=%d N(R)=%d %s=%d" % (ns, nr, pfn, pf), ns, nr, pf)
    if kind in ("RR", "RNR", "REJ", "SREJ"):
        nr = ctrl >> 5
        full = {"RR": "receive ready", "RNR": "receive not ready", "REJ": "reject",
                "SREJ": "selective reject"}[kind]
        return ("%s (%s) N(R)=%d %s=%d" % (kind, full, nr, pfn, pf), None, nr, pf)
    full = {"SNRM": "set normal response mode", "DISC": "disconnect",
            "UA": "unnumbered acknowledge", "DM": "disconnected mode",
            "FRMR": "frame reject", "UI": "unnumbered information",
            "U?": "unknown unnumbered frame"}[kind]
    return ("%s (%s) %s=%d" % (kind, full, pfn, pf), None, None, pf)


_CLIENT_SAPS = {0: "no-station", 1: "management client", 16: "public client",
                32: "reader", 0x7F: "all-station (broadcast)"}


def _client_sap(v):
    name = _CLIENT_SAPS.get(v)
    return "client SAP %d%s" % (v, " (%s)" % name if name else "")


def _server_sap(v):
    name = {0: "no-station", 1: "management logical device",
            0x7F: "all-station (broadcast)"}.get(v)
    return "server logical device %d%s" % (v, " (%s)" % name if name else "")


def _client_addr(v, n):
    return "%s (%d-byte form)" % (_client_sap(v), n)


def _server_addr(v, n):
    if n == 1:
        return "server upper address %d: %s (1-byte form, no physical address)" % (
            v, _server_sap(v)[len("server "):])
    bits = 7 if n == 2 else 14
    upper = v >> bits
    lower = v & ((1 << bits) - 1)
    all_ = (1 << bits) - 1
    uname = {0: "no-station", 1: "management logical device", all_: "all-station"}.get(upper)
    lname = {0: "no-station", all_: "all-station", all_ - 1: "calling physical device"}.get(
        lower)
    return "server upper (logical device) %d%s, lower (physical device) %d%s (%d-byte form)" % (
        upper, " (%s)" % uname if uname else "", lower, " (%s)" % lname if lname else "", n)


def _ref_text(ref):
    if not ref:
        return ""
    cid, ln, idx = ref[:3]
    extra = ref[3] if len(ref) > 3 else None
    if extra == "param":
        kind = "parameter of method %d" % idx
        name = member_name(cid, idx, True)
    elif extra == "return":
        kind = "return value of method %d" % idx
        name = member_name(cid, idx, True)
    else:
        kind = "attribute %d" % idx
        name = member_name(cid, idx)
    return " (%s%s of %s)" % (kind, " %s" % name if name else "", obis_label(ln))


def _typed_repr(v):
    tag, val = v
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        return "%s{%s}" % (TYPE_NAMES[tag], ", ".join(_typed_repr(x) for x in val))
    if isinstance(val, bytes):
        return "%s %s" % (TYPE_NAMES.get(tag, "?"), _hex(val))
    return "%s %r" % (TYPE_NAMES.get(tag, "?"), val)


def _value_text(tag, v, raw, hint):
    name = TYPE_NAMES[tag]
    h = hint or ""
    if tag in (axdr.NULL, axdr.DONT_CARE):
        return name + h
    if tag == axdr.BOOLEAN:
        return "%s %s%s" % (name, "TRUE" if v else "FALSE", h)
    if tag == axdr.BIT_STRING:
        bits, n = v
        s = "".join("1" if bits[i // 8] & (0x80 >> (i % 8)) else "0" for i in range(n))
        return "%s (%d bits) %s%s" % (name, n, s, h)
    if tag in (axdr.OCTET_STRING, axdr.VISIBLE_STRING, axdr.UTF8_STRING):
        txt = "%s (%d)%s" % (name, len(v), (" " + _hex(v)) if len(v) <= 16 else "")
        if tag != axdr.OCTET_STRING:
            try:
                txt = "%s (%d) \"%s\"" % (name, len(v), v.decode("utf-8", "replace"))
            except Exception:
                pass
        elif len(v) == 6:
            txt += " = logical name %s" % obis_label(v)
        elif len(v) == 12 and _date_time_text(v):
            txt += " = date-time %s" % _date_time_text(v)
        elif _printable(v):
            txt += " = '%s'" % v.decode()
        return txt + h
    if tag == axdr.DATE_TIME:
        return "%s %s%s" % (name, _date_time_text(v) or _hex(v), h)
    if tag in (axdr.DATE, axdr.TIME):
        return "%s %s%s" % (name, _hex(v), h)
    if tag == axdr.BCD:
        return "%s 0x%02X%s" % (name, v, h)
    return "%s %s%s" % (name, v, h)


def detect(buf, p):
    """'hdlc', 'wrapper' or 'apdu' for the bytes at buf[p:]."""
    b = buf[p]
    if b == 0x7E:
        return "hdlc"
    if b & 0xF0 == 0xA0 and len(buf) - p >= 9:
        flen = ((b & 7) << 8) | buf[p + 1]
        if flen <= len(buf) - p and fcs16(buf, p, p + flen - 2) == (
                buf[p + flen - 2] | (buf[p + flen - 1] << 8)):
            return "hdlc"
    if len(buf) - p >= 8 and buf[p] == 0 and buf[p + 1] == 1:
        return "wrapper"
    if b & 0xF0 == 0xA0:
        return "hdlc"
    return "apdu"


def decode(data, kind="auto", session=None, direction=None):
    """Decode bytes (one or more frames, or one APDU) -> Trace."""
    return Decoder(session).decode(data, kind, direction)


# ============================================================================ live trace
class _Channel:
    def __init__(self, transport, label, make_session):
        self.transport = transport
        self.label = label
        self.session = make_session()
        self.buf = {"rx": bytearray(), "tx": bytearray()}
        self.last = {"rx": 0.0, "tx": 0.0}


class Live:
    """Turns the meter's trace lines (``DIR TRANSPORT:CHANNEL [HEX]``) into annotated frames.
    ``feed(line)`` returns the text to print (possibly empty)."""

    STALE_S = 1.0  # a partial HDLC frame older than this is noise (inter-octet timeout)

    def __init__(self, make_session=Session, width=8, clock=time.time):
        self.make_session = make_session
        self.width = width
        self.clock = clock
        self.channels = {}
        self.failed = 0

    def _channel(self, transport, label):
        key = (transport, label)
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = _Channel(transport, label, self.make_session)
        return ch

    def feed(self, line):
        parts = line.split()
        if len(parts) < 2:
            return ""
        ev, where = parts[0], parts[1]
        transport, _, label = where.partition(":")
        now = self.clock()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + ".%03d" % (
            int(now * 1000) % 1000)
        if ev in ("open", "close"):
            self.channels.pop((transport, label), None)
            return "%s %s %s: connection %s\n" % (stamp, ev, where,
                                                 "opened" if ev == "open" else "closed")
        if ev not in ("rx", "tx") or len(parts) < 3:
            return ""
        if "?" in parts[2:]:  # the meter ran out of heap while tracing: bytes are missing
            self.channels.pop((transport, label), None)
            return "%s %s %s: (frame not traced: the meter was out of memory)\n" % (
                stamp, ev, where)
        try:
            data = binascii.unhexlify(parts[2])
        except (binascii.Error, ValueError):
            return "%s %s %s: (unreadable trace line)\n" % (stamp, ev, where)
        ch = self._channel(transport, label)
        out = []
        buf = ch.buf[ev]
        if transport == "hdlc" and buf and now - ch.last[ev] > self.STALE_S:
            out.append(self._noise(stamp, ev, where, bytes(buf), "incomplete frame dropped "
                                   "(inter-octet timeout)"))
            buf.clear()
        ch.last[ev] = now
        buf += data
        frames = _split_hdlc(buf) if transport == "hdlc" else _split_wrapper(buf)
        d = C2S if ev == "rx" else S2C
        for kind, frame in frames:
            if kind == "noise":
                iec = _iec21_text(frame)
                out.append(self._noise(stamp, ev, where, frame, iec or "noise (not a frame)"))
                continue
            dec = Decoder(ch.session)
            dec.decode(frame, "hdlc" if transport == "hdlc" else "wrapper", d)
            if dec.t.failed:
                self.failed += 1
            head = "%s %s %s %s, %d bytes\n" % (stamp, ev, where, _DIR_TEXT[d], len(frame))
            out.append(head + "\n".join(dec.t.render(self.width, "  ")) + "\n")
        return "".join(out)

    def _noise(self, stamp, ev, where, data, why):
        return "%s %s %s %s: %s\n" % (stamp, ev, where, why, _hex(data))


def _iec21_text(data):
    """IEC 62056-21 characters (the optical port's mode E opening: request, identification,
    option select ACK) as text, or None for other bytes."""
    names = {0x06: "<ACK>", 0x0D: "<CR>", 0x0A: "<LF>", 0x01: "<SOH>", 0x02: "<STX>",
             0x03: "<ETX>", 0x15: "<NAK>"}
    if not all(32 <= b < 127 or b in names for b in data):
        return None
    txt = "".join(names.get(b, chr(b)) for b in data)
    return "IEC 62056-21 characters (mode E opening): %s, bytes" % txt


def _split_hdlc(buf):
    """Complete frames out of buf (consumed); a partial frame stays."""
    out = []
    while buf:
        i = buf.find(b"\x7e")
        if i < 0:
            out.append(("noise", bytes(buf)))
            buf.clear()
            break
        if i:
            out.append(("noise", bytes(buf[:i])))
            del buf[:i]
        j = 0
        while j + 1 < len(buf) and buf[j + 1] == 0x7E:
            j += 1
        if j:
            del buf[:j]
        if len(buf) < 3:
            break
        if buf[1] & 0xF0 != 0xA0:
            k = buf.find(b"\x7e", 1)
            k = len(buf) if k < 0 else k
            out.append(("noise", bytes(buf[:k])))
            del buf[:k]
            continue
        need = (((buf[1] & 7) << 8) | buf[2]) + 2
        if len(buf) < need:
            break
        if buf[need - 1] != 0x7E:
            k = buf.find(b"\x7e", 1)
            k = len(buf) if k < 0 else k
            out.append(("noise", bytes(buf[:k])))
            del buf[:k]
            continue
        out.append(("frame", bytes(buf[:need])))
        del buf[: need - 1]  # the closing flag may open the next frame
        if len(buf) == 1:
            buf.clear()
    return out


def _split_wrapper(buf):
    out = []
    while len(buf) >= 8:
        if buf[0] != 0 or buf[1] != 1:
            out.append(("noise", bytes(buf)))
            buf.clear()
            break
        need = 8 + ((buf[6] << 8) | buf[7])
        if len(buf) < need:
            break
        out.append(("frame", bytes(buf[:need])))
        del buf[:need]
    return out


def run_live(fd, make_session=Session, out=None):
    """Read trace lines from fd until end of file, print annotated frames on out (stderr)."""
    out = out or sys.stderr
    live = Live(make_session)
    with open(fd, "rb", buffering=0) as f:
        pending = b""
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                try:
                    txt = live.feed(raw.decode("ascii", "replace"))
                except Exception as e:  # never stop tracing on one odd frame
                    txt = "trace: cannot decode %r: %s\n" % (raw[:60], e)
                if txt:
                    out.write(txt)
                    out.flush()


# ============================================================================ command line
_HEX_JUNK = re.compile(r"0x|[\s,:;_\-\.]|\\x", re.I)


def parse_hex(text):
    """Hex text (whitespace, commas, colons, 0x prefixes tolerated) -> bytes."""
    s = _HEX_JUNK.sub("", text)
    if not s:
        return b""
    if re.search(r"[^0-9A-Fa-f]", s):
        bad = re.search(r"[^0-9A-Fa-f]", s).group(0)
        raise ValueError("not hex: %r" % bad)
    if len(s) % 2:
        raise ValueError("odd number of hex digits")
    return binascii.unhexlify(s)


_LIVE_LINE = re.compile(r"^\s*(rx|tx)\s+(\S+)\s+([0-9A-Fa-f]+)\s*$")


def records(text, per_line=False):
    """-> list of (direction or None, kind hint or None, bytes)."""
    lines = []
    for ln in text.splitlines():
        ln = ln.split("#", 1)[0].strip()
        if ln:
            lines.append(ln)
    if any(_LIVE_LINE.match(ln) for ln in lines):
        out = []
        for ln in lines:
            m = _LIVE_LINE.match(ln)
            if not m:
                continue
            transport = m.group(2).split(":")[0]
            out.append((C2S if m.group(1) == "rx" else S2C,
                        "hdlc" if transport == "hdlc" else "wrapper" if transport == "tcp"
                        else None, binascii.unhexlify(m.group(3))))
        return out
    if per_line and len(lines) > 1:
        return [(None, None, parse_hex(ln)) for ln in lines]
    return [(None, None, parse_hex(" ".join(lines)))]


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Explain DLMS/COSEM bytes layer by layer (HDLC, TCP wrapper, ACSE, "
                    "xDLMS, ciphering, A-XDR), one line per field.")
    p.add_argument("input", nargs="*",
                   help="hex bytes (spaces allowed), or a file of them, or '-' for stdin "
                        "(default: stdin)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--apdu", action="store_true",
                   help="the input is a bare APDU (one per line when there are several lines)")
    g.add_argument("--wrapper", action="store_true", help="the input is TCP wrapper frames")
    g.add_argument("--hdlc", action="store_true", help="the input is HDLC frames")
    p.add_argument("--ek", default=DEV_EK.hex(), metavar="HEX",
                   help="global unicast encryption key (default: the development key)")
    p.add_argument("--ak", default=DEV_AK.hex(), metavar="HEX",
                   help="authentication key (default: the development key)")
    p.add_argument("--system-title", default=None, metavar="HEX",
                   help="system title of the sender of the ciphered APDUs (default: from the "
                        "AARQ/AARE in the input, else the meter's 4D4D4D0000BC614E)")
    p.add_argument("--dk", default=None, metavar="HEX",
                   help="dedicated key (default: the one an InitiateRequest in the input "
                        "carries)")
    p.add_argument("--from", dest="sender", choices=("client", "meter"), default=None,
                   help="who sent the input (default: guessed from addresses and tags)")
    p.add_argument("--width", type=int, default=8, help="bytes per line (default 8)")
    p.add_argument("--live", type=int, default=None, metavar="FD", help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    def key(v, n, what):
        try:
            b = parse_hex(v)
        except ValueError as e:
            p.error("%s: %s" % (what, e))
        if len(b) != n:
            p.error("%s: %d bytes expected" % (what, n))
        return b

    ek = key(a.ek, 16, "--ek")
    ak = key(a.ak, 16, "--ak")
    st = key(a.system_title, 8, "--system-title") if a.system_title else None
    dk = key(a.dk, 16, "--dk") if a.dk else None

    def make_session():
        return Session(ek, ak, st, dk)

    if a.live is not None:
        run_live(a.live, make_session)
        return 0
    if not a.input or a.input == ["-"]:
        text = sys.stdin.read()
    elif len(a.input) == 1 and os.path.isfile(a.input[0]):
        with open(a.input[0]) as f:
            text = f.read()
    else:
        text = " ".join(a.input)
    try:
        recs = records(text, per_line=a.apdu)
    except ValueError as e:
        p.error(str(e))
    kind = "apdu" if a.apdu else "wrapper" if a.wrapper else "hdlc" if a.hdlc else "auto"
    sender = {"client": C2S, "meter": S2C}.get(a.sender)
    session = make_session()
    failed = False
    for i, (d, k, data) in enumerate(recs):
        if not data:
            continue
        if len(recs) > 1:
            print("--- %d: %s%d bytes" % (i + 1, (_DIR_TEXT[d] + ", ") if d else "",
                                         len(data)))
        t = decode(data, k or kind, session, d or sender)
        sys.stdout.write(t.text(a.width))
        failed = failed or bool(t.failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
