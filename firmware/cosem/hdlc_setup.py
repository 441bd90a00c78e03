"""IEC HDLC setup (interface class 23, version 1; Blue Book 4.7.7, IEC 62056-46 / DLMS UA
Green Book "HDLC parameter negotiation").

The link parameters a client may read and, with the right, change for the *next*
connection of the meter's HDLC ports. Attributes (A-XDR type, range; "transmit" is the
meter's transmit direction, as in the Blue Book, the meter being the device described):

 1 logical_name                     octet-string
 2 comm_speed                       enum 0 300, 1 600, 2 1200, 3 2400, 4 4800, 5 9600,
                                    6 19200, 7 38400, 8 57600, 9 115200 baud
 3 window_size_transmit             unsigned 1..7
 4 window_size_receive              unsigned 1..7
 5 max_info_field_length_transmit   long-unsigned 32..2030 (and <= the link buffers)
 6 max_info_field_length_receive    long-unsigned 32..2030 (and <= the link buffers)
 7 inter_octet_time_out             long-unsigned, ms, 20..6000
 8 inactivity_time_out              long-unsigned, s, 0 = none
 9 device_address                   long-unsigned 0x10..0x3FFD (the HDLC lower, physical
                                    address)
No methods.

Where the values go: an ``HdlcSettings`` object holds them (one per meter: every HDLC port
shares them) and ``apply(link)`` copies them onto a ``dlms.hdlc.Link``:
max_info_*/window_* are read by the link at the next SNRM, the timeouts at once, and the
device address only while the link is disconnected (changing it inside a connection would
cut the client off mid-answer): a connected link takes it when the port applies the settings
again after DISC/timeout. comm_speed is only stored: the board applies it to the UART (at
start, or in an ``on_change`` hook). The max_info_field_length limits of the link's buffers
are fixed when the Link is built; ``info_cap`` says how large the application built them,
and larger values are refused.

A write: wrong A-XDR type -> type-unmatched; value out of range -> other-reason; success ->
settings updated, applied to every target, ``on_change`` hooks f(settings) called (the
application persists ``pack()``).

RAM: the settings object (nine ints), one instance.
"""

import struct

from cosem.base import CosemObject, expect
from dlms import axdr
from dlms import xdlms

_FMT = ">BBBHHHHH"  # comm_speed, window tx, window rx, info tx, info rx, inter-octet, inact, addr

# attribute -> (settings field, A-XDR type, lowest, highest); highest None: see _limit()
_FIELDS = (
    None,
    None,
    ("comm_speed", axdr.ENUM, 0, 9),
    ("window_tx", axdr.UNSIGNED, 1, 7),
    ("window_rx", axdr.UNSIGNED, 1, 7),
    ("max_info_tx", axdr.LONG_UNSIGNED, 32, None),
    ("max_info_rx", axdr.LONG_UNSIGNED, 32, None),
    ("inter_octet_ms", axdr.LONG_UNSIGNED, 20, 6000),
    ("inactivity_s", axdr.LONG_UNSIGNED, 0, 0xFFFF),
    ("device_address", axdr.LONG_UNSIGNED, 0x10, 0x3FFD),
)
_NAMES = tuple(f[0] for f in _FIELDS[2:])


class HdlcSettings:
    """The HDLC link parameters of this meter (Blue Book defaults: 9600 baud, window 1,
    128-octet information fields, 25 ms inter-octet, 120 s inactivity; address 17, the
    contract's lower address)."""

    def __init__(self, comm_speed=5, window_tx=1, window_rx=1, max_info_tx=128,
                 max_info_rx=128, inter_octet_ms=25, inactivity_s=120, device_address=17,
                 info_cap=2030):
        self.info_cap = info_cap  # the largest info field the links' buffers hold
        self.comm_speed = comm_speed
        self.window_tx = window_tx
        self.window_rx = window_rx
        self.max_info_tx = max_info_tx
        self.max_info_rx = max_info_rx
        self.inter_octet_ms = inter_octet_ms
        self.inactivity_s = inactivity_s
        self.device_address = device_address
        self.on_change = []  # hooks f(settings) after a successful write
        for i in range(2, 10):
            if not self.valid(i, getattr(self, _FIELDS[i][0])):
                raise ValueError(_FIELDS[i][0])

    def valid(self, attr, v):
        _name, _tag, lo, hi = _FIELDS[attr]
        if hi is None:
            hi = self.info_cap if self.info_cap < 2030 else 2030
        return lo <= v <= hi

    def link_args(self):
        """Keyword arguments for ``dlms.hdlc.Link``: buffers sized by ``info_cap`` (call
        ``apply`` on the new link afterwards for the operational values)."""
        return {"lower": self.device_address, "max_info_rx": self.info_cap,
                "max_info_tx": self.info_cap}

    def apply(self, link):
        """Copy the settings onto a Link (or an object with a ``link``: an HDLC port).
        Returns False if the device address is still pending (the link is connected)."""
        link = getattr(link, "link", link)
        link.max_info_tx = self.max_info_tx
        link.max_info_rx = self.max_info_rx
        link.window_tx = self.window_tx
        link.window_rx = self.window_rx
        link.inter_octet_timeout_ms = self.inter_octet_ms
        link.inactivity_timeout_ms = self.inactivity_s * 1000
        if link.connected:
            return link.lower == self.device_address
        link.lower = self.device_address
        return True

    def pack(self):
        """The settings as bytes, for the store."""
        return struct.pack(_FMT, *[getattr(self, n) for n in _NAMES])

    def unpack(self, rec):
        """Restore ``pack()`` bytes; ValueError (nothing changed) if they do not fit."""
        if len(rec) != struct.calcsize(_FMT):
            raise ValueError("HDLC settings record")
        values = struct.unpack(_FMT, rec)
        for i, v in enumerate(values):
            if not self.valid(i + 2, v):
                raise ValueError(_NAMES[i])
        for i, v in enumerate(values):
            setattr(self, _NAMES[i], v)


class HdlcSetup(CosemObject):
    CLASS_ID = 23
    VERSION = 1
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("comm_speed", axdr.ENUM),
        ("window_size_transmit", axdr.UNSIGNED),
        ("window_size_receive", axdr.UNSIGNED),
        ("max_info_field_length_transmit", axdr.LONG_UNSIGNED),
        ("max_info_field_length_receive", axdr.LONG_UNSIGNED),
        ("inter_octet_time_out", axdr.LONG_UNSIGNED),
        ("inactivity_time_out", axdr.LONG_UNSIGNED),
        ("device_address", axdr.LONG_UNSIGNED),
    )

    def __init__(self, ln, settings, targets=None):
        """targets: a list the application fills with the Links (or HDLC ports) to
        configure; it may grow after the table is built."""
        super().__init__(ln)
        self.settings = settings
        self.targets = [] if targets is None else targets

    def get_attr(self, attr, w, ctx):
        if 2 <= attr <= 9:
            w.data((_FIELDS[attr][1], getattr(self.settings, _FIELDS[attr][0])))
            return 0
        return super().get_attr(attr, w, ctx)

    def set_attr(self, attr, value, ctx):
        if 2 <= attr <= 9:
            s = self.settings
            v = expect(value, _FIELDS[attr][1])
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            if not s.valid(attr, v):
                return xdlms.DAR_OTHER_REASON
            setattr(s, _FIELDS[attr][0], v)
            for t in self.targets:
                s.apply(t)
            for hook in s.on_change:
                hook(s)
            return 0
        return super().set_attr(attr, value, ctx)
