"""TCP/UDP wrapper framing of DLMS APDUs (IEC 62056-47 / Green Book "TCP-UDP based
communication profile").

Every APDU on a TCP connection is preceded by an 8-byte header:

    version (2 bytes, 0x0001) | source wPort (2) | destination wPort (2) | length (2)

The wPort of a client is its SAP (16 public, 32 reader, 1 management); the server's
logical device is wPort 1. There is no checksum and no segmentation: TCP carries the
bytes, the length delimits the APDU.

This module is sans-IO. One ``Conn`` object per TCP connection holds a preallocated request
buffer (header + max APDU) and a reply buffer of the same size, which connections may share.

A malformed header (wrong version, an APDU longer than the buffer) cannot be resynchronised
on a byte stream: the connection is marked broken and the adapter closes it. Other
connections are not affected.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


HEADER_LEN = const(8)
VERSION = const(1)

# Conn.state values
ST_HEADER = const(0)  # collecting the 8 header bytes
ST_BODY = const(1)  # collecting `length` APDU bytes
ST_READY = const(2)  # a complete request waits for the upper layer
ST_BROKEN = const(3)  # malformed header: the adapter must close the connection


class Conn:
    """Wrapper framing for one TCP connection (server side)."""

    def __init__(self, max_apdu=1024, server_wport=1, tx=None):
        """tx: a transmit buffer shared by every connection (an adapter that writes each
        reply out before reading the next request may share one); default: its own."""
        self.server_wport = server_wport
        self.rx = bytearray(HEADER_LEN + max_apdu)
        self.tx = tx if tx is not None else bytearray(HEADER_LEN + max_apdu)
        self.request_view = memoryview(self.rx)[HEADER_LEN:]
        self._reply_view = memoryview(self.tx)[HEADER_LEN:]
        self.output_view = memoryview(self.tx)
        self._got = 0  # bytes collected in rx (header + body)
        self._need = HEADER_LEN
        self.state = ST_HEADER
        self.request_client = 0  # source wPort of the pending request
        self.request_dst = 0
        self._out = 0
        self.errors = 0

    def feed(self, data, start, end):
        """Consume bytes data[start:end]; returns how many were used (stops after one APDU)."""
        if self.state >= ST_READY:
            return 0  # the caller must answer (or close) first
        n = self._need - self._got
        if n > end - start:
            n = end - start
        rx = self.rx
        got = self._got
        for i in range(n):
            rx[got + i] = data[start + i]
        self._got = got + n
        if self._got < self._need:
            return n
        if self.state == ST_HEADER:
            version = (rx[0] << 8) | rx[1]
            length = (rx[6] << 8) | rx[7]
            if version != VERSION or length == 0 or HEADER_LEN + length > len(rx):
                self.state = ST_BROKEN
                self.errors += 1
                return n
            self.request_client = (rx[2] << 8) | rx[3]
            self.request_dst = (rx[4] << 8) | rx[5]
            self._need = HEADER_LEN + length
            self.state = ST_BODY
            return n
        # body complete
        self.state = ST_READY
        return n

    def request_len(self):
        """Length of the complete request APDU waiting in request_view, else 0."""
        if self.state == ST_READY:
            return self._need - HEADER_LEN
        return 0

    @property
    def broken(self):
        return self.state == ST_BROKEN

    def reply_view(self):
        """Where the upper layer writes the response APDU (header space reserved in front)."""
        return self._reply_view

    def reply(self, n):
        """The response APDU of n bytes is in reply_view()[:n]: add the header."""
        tx = self.tx
        tx[0] = 0
        tx[1] = VERSION
        src = self.request_dst  # answer from the wPort that was addressed
        dst = self.request_client
        tx[2] = src >> 8
        tx[3] = src & 0xFF
        tx[4] = dst >> 8
        tx[5] = dst & 0xFF
        tx[6] = n >> 8
        tx[7] = n & 0xFF
        self._out = HEADER_LEN + n
        self._release()

    def no_reply(self):
        self._release()

    def _release(self):
        self._got = 0
        self._need = HEADER_LEN
        self.state = ST_HEADER

    def output_len(self):
        return self._out

    def output_done(self):
        self._out = 0
