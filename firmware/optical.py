"""The optical port adapter: IEC 62056-21 mode E opening, then HDLC, on one UART.

An ``OpticalPort`` is an ``ports.HdlcPort`` whose bytes first go through the sans-IO
``dlms.iec21.ModeE`` state machine: sign-on at 300 baud 7E1, identification, option select,
then HDLC at the agreed rate 8N1, and back to the sign-on when the HDLC session ends (see
``dlms/iec21.py`` for the exchange, byte by byte). The port reads the Local port setup (IC 19)
settings at each session and the IEC HDLC setup's ``comm_speed`` for a port configured for
direct HDLC.

Line changes go to ``line``, the UART (or, on the Unix port, an object that records and logs
them): ``line.flush()`` first (rp2's ``init()`` resets the peripheral without draining what
is still being transmitted: the identification's last characters or the UA of a DISC), then
``line.init(baudrate=..., bits=..., parity=..., stop=...)`` with ``machine.UART``'s
conventions (parity ``None`` or 0 = even). ``line`` may be None (nothing to switch).

During the sign-on the bytes also go to the HDLC link: a client that sends HDLC straight
away (no opening) is served at the current line settings until its session ends. After a
completed option select the rest of the chunk goes to HDLC (on a real UART nothing follows
before the switch; on a pty a client may write the ACK and the SNRM together).

Per-frame path: the HDLC state adds one state test and ``ModeE.watch()`` (integer
comparisons) to ``HdlcPort``'s path; nothing is allocated.
"""

import ports
from dlms import iec21

_HDLC = iec21.ST_HDLC


class OpticalPort(ports.HdlcPort):
    """HDLC behind an IEC 62056-21 mode E opening.

    line: object with ``init(baudrate=, bits=, parity=, stop=)`` and ``flush()`` (the UART);
    local: ``cosem.local_port_setup.LocalPortSettings``; maker: three-letter manufacturer
    identification; ident: identification text (at most 14 characters are sent);
    settings: ``cosem.hdlc_setup.HdlcSettings`` (comm_speed of a direct-HDLC port), or None.
    """

    def __init__(self, server, stream, name, link_args, line, local, maker=b"MMM", ident=b"",
                 settings=None):
        super().__init__(server, stream, name, link_args)
        self.line = line
        self.settings = settings
        self.mode = iec21.ModeE(local, maker, ident)
        self._line_gen = -1
        self._start(server.ticks_ms())

    def _start(self, now):
        m = self.mode
        if self.settings is not None:
            m.hdlc_speed = self.settings.comm_speed
        m.start(now)
        self._apply_line()

    def _apply_line(self):
        """Give the UART the line settings of the state machine, if they changed."""
        m = self.mode
        if m.line_gen == self._line_gen:
            return
        self._line_gen = m.line_gen
        line = self.line
        if line is not None:
            line.flush()
            line.init(baudrate=m.baud, bits=m.bits, parity=m.parity, stop=m.stop)

    def restart(self):
        """After an unexpected error: the link back to NDM and the port to its initial
        state."""
        super().restart()
        self._start(self.server.ticks_ms())

    def feed(self, mv, n, now):
        mode = self.mode
        link = self.link
        start = 0
        while start < n:
            if mode.state == _HDLC:
                start += link.feed(mv, start, n, now)
                self._service(now)
                self._watch(now)
            else:
                k = mode.feed(mv, start, n, now)
                self._also_to_link(mv, start, start + k, now)
                start += k
                self._emit()
                self._apply_line()
                if mode.state == _HDLC:
                    self._watch(now)  # the session's baseline, before any HDLC byte

    def _also_to_link(self, mv, start, end, now):
        """Sign-on bytes go to the link as well: a valid frame for us means the client
        speaks HDLC directly."""
        link = self.link
        rx = link.frames_rx_ok
        while start < end:
            start += link.feed(mv, start, end, now)
            self._service(now)
        mode = self.mode
        if link.frames_rx_ok != rx and mode.state != _HDLC:
            mode.direct(now)
            self._watch(now)

    def _emit(self):
        """Write the identification message when the state machine has one."""
        m = self.mode
        k = m.output_len()
        if k:
            trace = getattr(self.server, "trace", None)  # the virtual meter's --trace
            if trace is not None:
                trace("tx", "hdlc", self, m.output_view, k)
            ports._write_all(self.stream, m.output_view, k)
            m.output_done()

    def _watch(self, now):
        m = self.mode
        if m.state != _HDLC:
            return
        if self.settings is not None:
            m.hdlc_speed = self.settings.comm_speed
        if m.watch(self.link, now):
            self._apply_line()  # the link's last frame is written: flush() then init()

    def tick(self, now):
        m = self.mode
        if m.state != _HDLC:
            m.tick(now)
            self._emit()
            self._apply_line()
        super().tick(now)
        self._watch(now)
