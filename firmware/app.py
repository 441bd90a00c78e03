"""Composition root: board -> meter -> COSEM objects -> associations -> ports.

Every board's main.py builds an ``App`` from its board object and runs it. Nothing below
this module knows which board it runs on.

The board object provides:
    rtc            machine.RTC-like object (datetime() in UTC)
    hdlc_streams   list of (stream, name) serving HDLC (UART, pty)
    tcp            a listening socket or None
    store_root     directory of the persistent records (littlefs), or None
    identity       dict: name (16 octets), serial, firmware
    max_tcp        concurrent TCP associations
"""

import struct

import ports
from cosem import objects
from meter import clock as meter_clock
from meter.store import Store

FIRMWARE_VERSION = b"dlms-mpy 0.1.0"
_STATE_VERSION = 1


class App:
    def __init__(self, board):
        self.board = board
        self.store = Store(board.store_root) if board.store_root else None
        self.boots = 0
        self._restore()
        self.clock = meter_clock.Clock(board.rtc)
        self.device = objects.build(self.clock, board.identity)
        self.server = ports.Server(self.device, max_tcp=board.max_tcp,
                                   on_error=getattr(board, "log_error", None))
        for stream, name in board.hdlc_streams:
            self.server.add_hdlc(stream, name)
        if board.tcp is not None:
            self.server.add_tcp_listener(board.tcp)

    def _restore(self):
        if self.store is None:
            return
        rec = self.store.load("meter", _STATE_VERSION)
        if rec is not None:
            self.boots, offset = struct.unpack(">Iq", rec)
            if hasattr(self.board.rtc, "offset_s"):
                self.board.rtc.offset_s = offset
        self.boots += 1
        self.persist()

    def persist(self):
        """Write everything the meter keeps across a restart (clean shutdown, intervals)."""
        if self.store is None:
            return
        offset = getattr(self.board.rtc, "offset_s", 0)
        self.store.save("meter", _STATE_VERSION, struct.pack(">Iq", self.boots, offset))

    def run(self, stop_requested=None):
        """Serve until stop_requested() is true (or a watch callback returns False)."""
        server = self.server
        while server.run_once(20):
            if stop_requested is not None and stop_requested():
                break
        self.persist()
