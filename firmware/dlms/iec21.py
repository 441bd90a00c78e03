"""IEC 62056-21 protocol mode E opening of the optical port, server side (sans-IO).

The optical port of a meter starts in the IEC 62056-21 sign-on at 300 baud, 7 data bits,
even parity, 1 stop bit. Mode E is the way from there into HDLC (IEC 62056-46)::

    client (HHU)                                   meter                     line
    /?!CRLF  or  /?<device address>!CRLF     ->                               300 7E1
                                             <-    /XXXZ\\2<ident>CRLF        300 7E1
    ACK 2 Z 2 CRLF                           ->                               300 7E1
                     both switch to the baud rate Z, 8N1: HDLC from now on
    SNRM ... DISC                           <->    UA ... UA                  Z 8N1
                     the meter returns to the sign-on (300 baud 7E1)

The messages (IEC 62056-21:2002 clause 6.3; bytes are ASCII):

* request ``/ ? [device address] ! CR LF`` = ``2F 3F [..] 21 0D 0A``. The device address
  (0..32 characters 0-9 A-Z a-z space) is the Local port setup's ``device_addr`` (IC 19
  attribute 6). A request without an address is answered; a request with an address is
  answered when it equals ``device_addr`` character for character, or when ``device_addr``
  is empty (a meter without an address answers every request). Any other address: no answer.
* identification ``/ X X X Z \\ W <ident> CR LF``: XXX the manufacturer's three-letter
  identification (here the first three characters of the logical device name, the FLAG ID);
  the third letter is sent in lower case when the meter answers after the 20 ms minimum
  reaction time (IC 19 ``response_time`` = 0), in upper case when it waits 200 ms
  (``response_time`` = 1), as IEC 62056-21 prescribes. Z is the baud rate identification
  of the proposed rate (IC 19 ``prop_baud``): ``'0'`` 300, ``'1'`` 600, ``'2'`` 1200,
  ``'3'`` 2400, ``'4'`` 4800, ``'5'`` 9600, ``'6'`` 19200 baud (the mode C/E table of the
  standard); IC 19 also allows 7 38400, 8 57600, 9 115200, sent as ``'7'`` .. ``'9'``,
  which IEC 62056-21:2002 reserves (a meter configured so is beyond the standard's table).
  ``\\W`` is the enhanced identification sequence (clause 6.3.2, item 24; the DLMS UA
  keeps the list of its values): ``\\2`` (bytes ``5C 32``) = "binary mode (HDLC)
  available", i.e. protocol mode E. <ident> is manufacturer-specific printable text
  without ``/``, ``!`` (and, here, ``\\``), at most 14 characters so that ``\\2`` + ident
  fit the standard's 16. Example, default settings (prop_baud 5, response_time 0)::

      /MMm5\\2dlms-mpy 0.1.0 CR LF = 2F 4D 4D 6D 35 5C 32 64 6C 6D 73 2D 6D 70 79 20 30 2E
                                     31 2E 30 0D 0A

* acknowledgement/option select ``ACK V Z Y CR LF`` = ``06 V Z Y 0D 0A``: V the protocol
  control character (``'2'`` = HDLC protocol procedure, mode E), Z the baud rate the client
  selects, Y the mode control character (``'2'`` = binary mode, HDLC). Accepted: V = Y =
  ``'2'`` and ``'0'`` <= Z <= the proposed Z (the client may take a lower rate). After its
  LF the meter switches to baud rate Z, 8N1, and runs HDLC; it sends nothing in between
  (no echo of the ACK: the next thing on the line is the client's SNRM). Any other option
  select (V = ``'0'``/``'1'``: data readout or programming mode of modes A..C, not provided
  by this meter) is ignored: back to waiting for a request.

Timing: the identification goes out no earlier than the minimum reaction time after the
request's LF (20 or 200 ms, see above; IEC 62056-21 allows at most 1500 ms). A partial
message is discarded when more than 1500 ms pass between two characters (the standard's
limit for the gap inside a message). The option select must come within 2200 ms after the
identification's last character (its transmission time at the sign-on rate, 10 bits per
character, is counted); that bound is this meter's choice (the client's reaction time of at
most 1500 ms, plus margin); otherwise the meter waits for a new request. ``ACK_WAIT_MS`` and
``CHAR_TIMEOUT_MS`` name them.

Back to the sign-on (``watch()``, called by the adapter after each HDLC step): when the HDLC
connection ends (DISC answered with UA, the HDLC inactivity time-out, a rejected SNRM while
connected, or a reset of the link), or when no valid frame arrived for the HDLC inactivity
time-out (IC 23 attribute 8; 0 = never) while not connected. A DISC while not connected is
answered DM by the link and does not end mode E (the inactivity time-out does). The adapter
writes the link's last frame (UA) at the HDLC rate, flushes, and only then switches back.

A port configured for direct HDLC (IC 19 ``default_mode`` = 1, DLMS/COSEM on HDLC) starts
in HDLC at ``hdlc_speed`` (IC 23 ``comm_speed``, the adapter passes it), 8N1, with no
sign-on; ``default_mode`` 0 and 2 (not specified) start with the sign-on at
``default_baud`` (IC 19 attribute 3, 300 baud by default), 7E1. Settings written by a client
take effect at the next start (the end of the current session).

An HDLC frame arriving directly during the sign-on (no mode E opening): the adapter also
hands the sign-on bytes to the HDLC link; when the link receives a valid frame addressed to
it, the adapter calls ``direct()`` and the port stays in HDLC at the current line settings
until the connection ends, as after mode E. On a UART at 7E1 an 8N1 frame cannot arrive
intact, so this matters where the line has no bit format (the virtual meter's pty) or for a
client that sends HDLC at the sign-on rate; sign-on text never contains 7E, so the link
ignores it.

Wire input is hostile: received characters are taken modulo 128 (7-bit sign-on characters;
a client emulating 7E1 on an 8-bit line may send the parity bit), every message has a
fixed maximum length, anything unexpected returns to waiting for ``/``, and nothing raises.

Line settings for the adapter: ``baud``, ``bits`` (7 or 8), ``parity`` (``None``, or 0 =
even, as ``machine.UART``), ``stop`` (1); ``line_gen`` changes whenever they change (the
adapter flushes the UART and calls ``init()``).

RAM (allocated once): identification buffer (23 bytes), device address buffer (32 bytes),
a memoryview. ``feed()``, ``tick()`` and ``watch()`` allocate nothing
(``host_tests/fw/mp_test_iec21_alloc.py``).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_TICKS_MASK = const(0x3FFFFFFF)
CHAR_TIMEOUT_MS = const(1500)  # between two characters of a message
ACK_WAIT_MS = const(2200)  # from the end of the identification to the option select
_ADDR_MAX = const(32)
_IDENT_MAX = const(14)  # after "\2": 16 characters in all
_OUT_MAX = const(23)  # "/" XXX Z "\2" ident(14) CR LF

_SLASH = const(0x2F)
_QUERY = const(0x3F)
_BANG = const(0x21)
_CR = const(0x0D)
_LF = const(0x0A)
_ACK = const(0x06)
_BACKSLASH = const(0x5C)
_ZERO = const(0x30)
_TWO = const(0x32)

# states
ST_IDLE = const(0)  # waiting for "/"
ST_REQ = const(1)  # inside "/?addr!CRLF"
ST_IDENT = const(2)  # request accepted: the identification waits for the reaction time
ST_ACK_WAIT = const(3)  # identification out: waiting for the option select
ST_OPT = const(4)  # inside "ACK V Z Y CRLF"
ST_HDLC = const(5)  # the line carries HDLC

BAUDS = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)  # IC 19/23 enum

_MODE_HDLC = const(1)  # IC 19 default_mode: DLMS/COSEM on HDLC directly


def _addr_char(c):
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A or c == 0x20


class ModeE:
    """The opening state machine of one optical port.

    settings: a ``cosem.local_port_setup.LocalPortSettings`` (read at every request and
    start, so written values apply to the next session); maker: the three-letter
    manufacturer identification; ident: the manufacturer-specific identification text.
    """

    def __init__(self, settings, maker=b"MMM", ident=b""):
        maker = bytes(maker)
        ident = bytes(ident)[:_IDENT_MAX]
        if len(maker) != 3:
            raise ValueError("maker")
        for c in maker:
            if not (0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A):
                raise ValueError("maker")
        for c in ident:
            if not 0x20 <= c <= 0x7E or c == _SLASH or c == _BANG or c == _BACKSLASH:
                raise ValueError("ident")
        self.settings = settings
        self.maker = maker
        self.ident = ident
        self.hdlc_speed = 5  # IC 23 comm_speed for a direct-HDLC port (the adapter sets it)
        self._out = bytearray(_OUT_MAX)
        self.output_view = memoryview(self._out)
        self._out_len = 0
        self._addr = bytearray(_ADDR_MAX)
        self._alen = 0
        self._step = 0  # position inside the current message
        self._v = 0
        self._z = 0
        self._y = 0
        self._last = 0  # time of the last character of the current message
        self._at = 0  # request accepted / identification out (ST_IDENT / ST_ACK_WAIT)
        self._wait = 0  # ms to wait from _at
        self.state = ST_IDLE
        self.direct_mode = False  # True: a port configured for direct HDLC
        # line settings
        self.baud = 300
        self.bits = 7
        self.parity = 0
        self.stop = 1
        self.line_gen = 0
        # HDLC watch
        self._watch_init = True
        self._cid = 0
        self._rx = 0
        self._since = 0
        # statistics
        self.requests = 0  # sign-on requests answered
        self.ignored = 0  # requests for another device address
        self.switches = 0  # mode E completed: HDLC at the agreed rate
        self.direct_frames = 0  # HDLC sessions that started without the opening
        self.rejected = 0  # option selects not accepted
        self.timeouts = 0  # partial messages discarded, option select not received
        self.returns = 0  # HDLC sessions ended (back to the initial state)

    # ------------------------------------------------------------------ state

    def start(self, now_ms):
        """Enter the initial state the settings give: the sign-on at default_baud 7E1, or
        (default_mode 1) HDLC at hdlc_speed 8N1."""
        s = self.settings
        self._out_len = 0
        self._step = 0
        self._watch_init = True
        self._since = now_ms
        if s.default_mode == _MODE_HDLC:
            self.state = ST_HDLC
            self.direct_mode = True
            sp = self.hdlc_speed
            self._set_line(BAUDS[sp] if 0 <= sp < len(BAUDS) else 9600, 8, None)
        else:
            self.state = ST_IDLE
            self.direct_mode = False
            b = s.default_baud
            self._set_line(BAUDS[b] if 0 <= b < len(BAUDS) else 300, 7, 0)

    def _set_line(self, baud, bits, parity):
        if baud != self.baud or bits != self.bits or parity != self.parity:
            self.baud = baud
            self.bits = bits
            self.parity = parity
            self.stop = 1
            self.line_gen += 1

    def direct(self, now_ms):
        """A valid HDLC frame arrived during the sign-on: HDLC at the current line settings
        until that session ends."""
        if self.state != ST_HDLC:
            self.state = ST_HDLC
            self._out_len = 0
            self._watch_init = True
            self._since = now_ms
            self.direct_frames += 1

    # ------------------------------------------------------------------ input

    def feed(self, data, start, end, now_ms):
        """Consume sign-on bytes data[start:end] received at now_ms; returns how many were
        used. Stops right after a completed option select (the line changes there: the
        rest belongs to HDLC) and uses nothing in the HDLC state."""
        if self.state == ST_HDLC:
            return 0
        self.tick(now_ms)
        pos = start
        while pos < end:
            b = data[pos] & 0x7F
            pos += 1
            self._byte(b, now_ms)
            if self.state == ST_HDLC:
                break
        return pos - start

    def _byte(self, b, now):
        st = self.state
        if st == ST_REQ:
            self._last = now
            step = self._step
            if step == 0:
                if b == _QUERY:
                    self._step = 1
                    return
            elif step == 1:
                if b == _BANG:
                    self._step = 2
                    return
                if _addr_char(b) and self._alen < _ADDR_MAX:
                    self._addr[self._alen] = b
                    self._alen += 1
                    return
            elif step == 2:
                if b == _CR:
                    self._step = 3
                    return
            elif b == _LF:
                self._request(now)
                return
            self._abort(b, now)
            return
        if st == ST_OPT:
            self._last = now
            step = self._step
            if step == 0:
                self._v = b
            elif step == 1:
                self._z = b
            elif step == 2:
                self._y = b
            elif step == 3:
                if b != _CR:
                    self._abort(b, now)
                    return
            else:
                if b != _LF:
                    self._abort(b, now)
                    return
                self._option_select(now)
                return
            self._step = step + 1
            return
        # ST_IDLE, ST_IDENT, ST_ACK_WAIT: a new request may start; in ST_ACK_WAIT an option
        # select too; anything else is ignored
        if b == _SLASH:
            self._begin_request(now)
        elif b == _ACK and st == ST_ACK_WAIT:
            self.state = ST_OPT
            self._step = 0
            self._last = now

    def _begin_request(self, now):
        self.state = ST_REQ
        self._step = 0
        self._alen = 0
        self._last = now
        self._out_len = 0  # a new request replaces an identification not yet written

    def _abort(self, b, now):
        """A message went wrong: back to waiting; a "/" starts a new request at once."""
        self.state = ST_IDLE
        if b == _SLASH:
            self._begin_request(now)

    def _request(self, now):
        addr = self.settings.device_addr
        n = self._alen
        if n and len(addr):
            ok = n == len(addr)
            if ok:
                a = self._addr
                for i in range(n):
                    if a[i] != addr[i]:
                        ok = False
                        break
            if not ok:
                self.ignored += 1
                self.state = ST_IDLE
                return
        self.requests += 1
        self.state = ST_IDENT
        self._at = now
        self._wait = 20 if self.settings.response_time == 0 else 200

    def _option_select(self, now):
        prop = self.settings.prop_baud
        z = self._z - _ZERO
        if self._v != _TWO or self._y != _TWO or z < 0 or z > prop or z >= len(BAUDS):
            self.rejected += 1
            self.state = ST_IDLE
            return
        self.switches += 1
        self.state = ST_HDLC
        self._out_len = 0
        self._watch_init = True
        self._since = now
        self._set_line(BAUDS[z], 8, None)

    # ------------------------------------------------------------------ time

    def tick(self, now_ms):
        """Apply the reaction time (the identification becomes output) and the time-outs."""
        st = self.state
        if st == ST_REQ or st == ST_OPT:
            if (now_ms - self._last) & _TICKS_MASK > CHAR_TIMEOUT_MS:
                self.timeouts += 1
                self.state = ST_IDLE
        elif st == ST_IDENT:
            if (now_ms - self._at) & _TICKS_MASK >= self._wait:
                self._identify(now_ms)
        elif st == ST_ACK_WAIT:
            if (now_ms - self._at) & _TICKS_MASK > self._wait:
                self.timeouts += 1
                self.state = ST_IDLE

    def _identify(self, now):
        s = self.settings
        out = self._out
        out[0] = _SLASH
        m = self.maker
        out[1] = m[0]
        out[2] = m[1]
        c = m[2]
        out[3] = c | 0x20 if s.response_time == 0 else c & 0xDF  # lower case: 20 ms
        out[4] = _ZERO + s.prop_baud
        out[5] = _BACKSLASH
        out[6] = _TWO
        n = 7
        for c in self.ident:
            out[n] = c
            n += 1
        out[n] = _CR
        out[n + 1] = _LF
        n += 2
        self._out_len = n
        self.state = ST_ACK_WAIT
        self._at = now
        self._wait = ACK_WAIT_MS + n * 10000 // self.baud  # + transmission (10 bits each)

    # ------------------------------------------------------------------ output

    def output_len(self):
        """>0: the identification message waits in output_view[:output_len()]."""
        return self._out_len

    def output_done(self):
        self._out_len = 0

    # ------------------------------------------------------------------ HDLC session

    def watch(self, link, now_ms):
        """In the HDLC state, after each step of the link: returns True when the session
        ended and the port went back to its initial state (see the module docstring).
        link: a ``dlms.hdlc.Link`` (connected, connection_id, frames_rx_ok,
        inactivity_timeout_ms are read)."""
        if self.state != ST_HDLC:
            return False
        if self._watch_init:  # first look at the link in this session; the inactivity
            self._watch_init = False  # timer runs from the switch already
            self._cid = link.connection_id
            self._rx = link.frames_rx_ok
        if link.frames_rx_ok != self._rx:
            self._rx = link.frames_rx_ok
            self._since = now_ms
        if link.connection_id != self._cid:
            self._cid = link.connection_id
            self._since = now_ms
            if not link.connected:  # the connection ended
                return self._end(now_ms)
        if not link.connected:
            t = link.inactivity_timeout_ms
            if t and (now_ms - self._since) & _TICKS_MASK > t:
                return self._end(now_ms)
        return False

    def _end(self, now):
        """The HDLC session is over: the initial state again (a direct-HDLC port stays in
        HDLC, at the rate the settings now give)."""
        self.returns += 1
        self.start(now)
        return True
