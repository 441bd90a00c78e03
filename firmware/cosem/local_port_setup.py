"""IEC local port setup (interface class 19, version 1; Blue Book 4.7.1, IEC 62056-21).

The optical (or other IEC 62056-21) port: how it starts and what it answers in the
sign-on. This meter's optical port works in mode E: IEC 62056-21 opening at 300 baud, then
the switch to HDLC at the proposed baud rate. Attributes (A-XDR type):

 1 logical_name    octet-string
 2 default_mode    enum 0 IEC 62056-21 protocol (modes A..E), 1 DLMS/COSEM on HDLC
                   (IEC 62056-46), 2 not specified
 3 default_baud    enum 0 300, 1 600, 2 1200, 3 2400, 4 4800, 5 9600, 6 19200, 7 38400,
                   8 57600, 9 115200 baud: the rate the port starts with
 4 prop_baud       enum, same table: the rate the meter proposes in its identification
 5 response_time   enum 0 20 ms, 1 200 ms (minimum time before the meter answers)
 6 device_addr     octet-string: the device address of the sign-on "/?addr!"; 0..32
                   characters 0-9 A-Z a-z and space (IEC 62056-21)
 7 pass_p1         octet-string  \
 8 pass_p2         octet-string   > passwords of the IEC 62056-21 P1/P2/W5 commands:
 9 pass_w5         octet-string  /  0..32 octets, write-only (never disclosed)
No methods.

A write: wrong A-XDR type -> type-unmatched; a value out of range -> other-reason; a read of
a password -> read-write-denied whatever the access rights say. Values are stored in a
``LocalPortSettings`` object that the IEC 62056-21 layer reads; ``on_change`` hooks
f(settings) persist ``pack()``.

RAM: the settings object (four ints, four short byte strings), one instance.
"""

import struct

from cosem.base import CosemObject, expect
from dlms import axdr
from dlms import xdlms

MODE_IEC62056_21 = 0
MODE_HDLC = 1
MODE_NOT_SPECIFIED = 2
TEXT_MAX = 32  # device address and passwords: longest value accepted

_ENUM_MAX = (2, 9, 9, 1)  # attributes 2..5
_NAMES = ("default_mode", "default_baud", "prop_baud", "response_time", "device_addr",
          "pass_p1", "pass_p2", "pass_w5")


def _addr_ok(b):
    for c in b:
        if not (0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A or c == 0x20):
            return False
    return True


class LocalPortSettings:
    """Mode E defaults: start with IEC 62056-21 at 300 baud, propose 9600 baud, 20 ms."""

    def __init__(self, default_mode=MODE_IEC62056_21, default_baud=0, prop_baud=5,
                 response_time=0, device_addr=b"", pass_p1=b"", pass_p2=b"", pass_w5=b""):
        self.default_mode = default_mode
        self.default_baud = default_baud
        self.prop_baud = prop_baud
        self.response_time = response_time
        self.device_addr = bytes(device_addr)
        self.pass_p1 = bytes(pass_p1)
        self.pass_p2 = bytes(pass_p2)
        self.pass_w5 = bytes(pass_w5)
        self.on_change = []  # hooks f(settings) after a successful write
        for i in range(8):
            if not self.valid(i + 2, getattr(self, _NAMES[i])):
                raise ValueError(_NAMES[i])

    @staticmethod
    def valid(attr, v):
        if 2 <= attr <= 5:
            return 0 <= v <= _ENUM_MAX[attr - 2]
        if len(v) > TEXT_MAX:
            return False
        return attr != 6 or _addr_ok(v)

    def pack(self):
        """The settings as bytes, for the store (four enums, then four length-prefixed
        strings)."""
        parts = [struct.pack(">BBBB", self.default_mode, self.default_baud, self.prop_baud,
                             self.response_time)]
        for n in _NAMES[4:]:
            v = getattr(self, n)
            parts.append(bytes([len(v)]))
            parts.append(v)
        return b"".join(parts)

    def unpack(self, rec):
        """Restore ``pack()`` bytes; ValueError (nothing changed) if they do not fit."""
        values = list(rec[:4])
        p = 4
        for _ in range(4):
            if p >= len(rec) or p + 1 + rec[p] > len(rec):
                raise ValueError("local port settings record")
            values.append(bytes(rec[p + 1:p + 1 + rec[p]]))
            p += 1 + rec[p]
        if len(values) != 8 or p != len(rec):
            raise ValueError("local port settings record")
        for i, v in enumerate(values):
            if not self.valid(i + 2, v):
                raise ValueError(_NAMES[i])
        for i, v in enumerate(values):
            setattr(self, _NAMES[i], v)


class LocalPortSetup(CosemObject):
    CLASS_ID = 19
    VERSION = 1
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("default_mode", axdr.ENUM),
        ("default_baud", axdr.ENUM),
        ("prop_baud", axdr.ENUM),
        ("response_time", axdr.ENUM),
        ("device_addr", axdr.OCTET_STRING),
        ("pass_p1", axdr.OCTET_STRING),
        ("pass_p2", axdr.OCTET_STRING),
        ("pass_w5", axdr.OCTET_STRING),
    )

    def __init__(self, ln, settings):
        super().__init__(ln)
        self.settings = settings

    def get_attr(self, attr, w, ctx):
        if 2 <= attr <= 5:
            w.enum(getattr(self.settings, _NAMES[attr - 2]))
            return 0
        if attr == 6:
            w.octet_string(self.settings.device_addr)
            return 0
        if 7 <= attr <= 9:
            return xdlms.DAR_READ_WRITE_DENIED  # passwords are never disclosed
        return super().get_attr(attr, w, ctx)

    def set_attr(self, attr, value, ctx):
        if 2 <= attr <= 9:
            v = expect(value, axdr.ENUM if attr <= 5 else axdr.OCTET_STRING)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            s = self.settings
            if not s.valid(attr, v):
                return xdlms.DAR_OTHER_REASON
            setattr(s, _NAMES[attr - 2], v if attr <= 5 else bytes(v))
            for hook in s.on_change:
                hook(s)
            return 0
        return super().set_attr(attr, value, ctx)
