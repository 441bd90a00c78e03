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
from cosem.hdlc_setup import HdlcSettings
from meter import clock as meter_clock
from meter.store import Store

FIRMWARE_VERSION = b"dlms-mpy 0.1.0"
_STATE_VERSION = 1
_CONFIG_VERSION = 1  # records "clock", "hdlc", "port", "lls<role>"
_MECH_LLS = 1


class App:
    def __init__(self, board):
        self.board = board
        self.store = Store(board.store_root) if board.store_root else None
        self.boots = 0
        self._restore()
        self.clock = meter_clock.Clock(board.rtc)
        self.hdlc_settings = HdlcSettings(info_cap=getattr(board, "hdlc_info_cap", 128))
        self.port_settings = objects.default_port_settings(board.identity)
        self._load("clock", self.clock.load_config)
        self._load("hdlc", self.hdlc_settings.unpack)
        self._load("port", self.port_settings.unpack)
        self.hdlc_ports = []  # HdlcSetup applies written settings to these
        self.device = objects.build(self.clock, board.identity,
                                    hdlc_settings=self.hdlc_settings,
                                    port_settings=self.port_settings,
                                    hdlc_targets=self.hdlc_ports)
        for role, policy in self.device.policies.items():
            if policy.mechanism == _MECH_LLS:
                self._load("lls%d" % role, lambda rec, p=policy: _set_secret(p, rec))
        self.clock.on_change.append(self._clock_changed)
        self.hdlc_settings.on_change.append(lambda s: self._save("hdlc", s.pack()))
        self.port_settings.on_change.append(lambda s: self._save("port", s.pack()))
        self.device.on_secret_change.append(lambda role, sec: self._save("lls%d" % role, sec))
        self.server = ports.Server(self.device, max_tcp=board.max_tcp,
                                   on_error=getattr(board, "log_error", None))
        for stream, name in board.hdlc_streams:
            port = self.server.add_hdlc(stream, name, **self.hdlc_settings.link_args())
            port.settings = self.hdlc_settings
            self.hdlc_settings.apply(port)
            self.hdlc_ports.append(port)
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

    def _load(self, kind, restore):
        """Restore one configuration record; a missing or unusable one keeps the defaults."""
        if self.store is None:
            return
        rec = self.store.load(kind, _CONFIG_VERSION)
        if rec is not None:
            try:
                restore(rec)
            except ValueError:
                pass

    def _save(self, kind, payload):
        if self.store is not None:
            self.store.save(kind, _CONFIG_VERSION, payload)

    def _clock_changed(self, clock, old_utc):
        """meter.clock hook: configuration -> its record; time set -> the RTC offset now
        (the event log will record old_utc -> new time here)."""
        if old_utc is None:
            self._save("clock", clock.config())
        else:
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


def _set_secret(policy, rec):
    if not 1 <= len(rec) <= 32:
        raise ValueError("LLS secret record")
    policy.secret = bytes(rec)
