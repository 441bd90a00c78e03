"""HDLC data link layer, server side (IEC 62056-46, frame format type 3; ISO/IEC 13239 NRM).

This module is sans-IO: ``Link.feed()`` takes bytes and the current time, the link hands one
request APDU at a time up through ``request_view`` and frames to transmit down through
``output_view``. It never reads a clock, sleeps or touches a port.

One frame on the wire (IEC 62056-46 clause 6.4.1)::

    7E | A0 LL | dst addr | src addr | ctrl | HCS HCS | information ... | FCS FCS | 7E
         format  1,2,4 B    1 B (client)      only if there is info      CRC-16/X.25

* Format: ``1010 S LLL LLLLLLLL``; S = segmentation bit (more segments follow), L = frame
  length without the two flags. There is no byte stuffing: the information field may contain
  7E (ciphered APDUs often do), so the receiver counts bytes using L and never searches for
  the closing flag. A closing flag may also open the next frame.
* HCS covers format..control; FCS covers format..end of information (``fcs.py``). A frame
  without information field has no HCS.
* Addresses carry 7 bits per byte; LSB = 1 marks the last byte. The client address is one
  byte (SAP << 1 | 1: client 16 is 21). The server address (clause 6.4.2) has three forms:
  1 byte = upper HDLC address (logical device) only; 2 bytes = upper 7 bits + lower (physical
  device) 7 bits; 4 bytes = upper 14 bits + lower 14 bits. Logical 1, physical 17: ``03``,
  ``02 23``, ``00 02 00 23``. The server answers in the form the client used.
* LLC (clause 5.3.2): the information field of a request starts with E6 E6 00, of a response
  with E6 E7 00. Only the first segment of a segmented message carries it.

Following one request through ``feed()``: the receiver hunts for 7E, stores the format,
address and control bytes in a 16-byte header buffer, checks the HCS, decides whether the
frame is for this server, then copies the information bytes straight into the request
(reassembly) buffer while running the FCS over them. At the closing flag it checks the FCS
and hands the frame to ``_frame_done()``, which applies the rules below. A complete request
appears as ``request_view[:request_len()]`` without its LLC; the upper layer writes the
response APDU into ``reply_view()`` (LLC space already reserved in front) and calls
``reply(n)``; the response leaves as one or more I-frames through ``output_view``.

What the server does with a valid frame addressed to it (``_frame_done``)::

    frame            NDM (disconnected)          NRM (connected)
    SNRM (P=1)       negotiate, UA -> NRM        reset N(S)/N(R), negotiate, UA
                     (DM if parameters bad)      (DM -> NDM if parameters bad)
    DISC             DM                          UA -> NDM
    I                DM if P                     N(R) check, N(S) check, reassemble, deliver
    RR / RNR         DM if P                     acknowledge; next segment(s) or RR if P
    UI               deliver (unconfirmed)       deliver (unconfirmed)
    anything else    DM if P                     FRMR (W)
    from another client while connected          DM if P (one client at a time)
    addressed to all stations: only UI is accepted (delivered with request_broadcast =
    True) and nothing is ever sent back; no-station (0) is ignored.

FRMR (clause 6.4.3, ISO/IEC 13239) carries 3 information bytes: the rejected
control field; ``V(R) << 5 | C/R << 4 | V(S) << 1`` (C/R = 0: the rejected frame was a
command); and the flags W=1 (invalid control field), X=2 (information field not allowed in
this frame, sent with W), Y=4 (information field longer than the negotiated maximum, or a
segmented request larger than the reassembly buffer), Z=8 (invalid N(R)). After an FRMR the
link stays in the frame-reject condition and repeats the FRMR to every polled frame until
the client sends SNRM or DISC.

Parameter negotiation (clause 6.4.4): the SNRM information field is
``81 80 GL`` followed by ``id len value`` items: 05 max info field TX, 06 max info field RX,
07 window TX, 08 window RX, named from the sender's side, values of 1..4 bytes big-endian.
Missing parameters take the defaults 128/128/1/1. The server takes the smaller of the
client's proposal and its own limit for each direction (client TX -> server RX) and the UA
carries all four from the server's side: info lengths in the shortest form (1 or 2 bytes),
windows in 4 bytes as Gurux and dlms-cosem send them. A proposed max information length
below 32 or a window of 0 cannot be honoured: the server answers DM.

Sequence numbers (modulo 8, window 1..7): an I-frame is accepted when N(S) = V(R). N(R)
acknowledges the server's I-frames; an N(R) outside [oldest unacknowledged, V(S)] is
answered with FRMR Z. When N(R) shows that some server frames were not received, the server
goes back to N(R) and sends them again (on an RR, or when the client repeats its last
I-frame); when the client starts a new request instead, the unacknowledged rest of the old
response is abandoned and its sequence numbers are reused. An I-frame with the wrong N(S) is
not accepted; the answer to a polled one is RR with the expected N(R).

Long responses are cut into segments of max_info_tx_neg bytes, each sent with S = 1 except
the last; with window k the server sends up to k segments per poll, F = 1 only on the last
frame of the burst, and waits for the client's RR. Segmented requests (S = 1) are
reassembled; every polled intermediate segment is answered with RR.

Timeouts (IEC HDLC setup, class 23 defaults): inter-octet 25 ms discards a partially
received frame when the gap between two bytes exceeds it; inactivity 120 s (0 = never)
returns the link from NRM to NDM when no valid frame arrived from the connected client for
that long. ``now_ms`` may be ``time.ticks_ms()`` or any other millisecond count; the
differences are taken modulo 2**30, so wrapping ticks are fine.

Hostile input: every length is bounded by a buffer size; a bad format, length, address,
HCS, FCS or closing flag drops the frame silently and the receiver resynchronises at the next
7E, re-examining the header bytes it had already stored, so garbage in front of a frame does
not eat the frame. Nothing on the wire can raise an exception.

RAM (allocated once in ``__init__``): request buffer 3 + max_apdu, reply buffer
3 + max_apdu, transmit frame buffer max_info_tx + 14, two 16-byte header buffers, plus one
memoryview per buffer. The per-frame path (feed, request, reply, output, RR -> next segment)
allocates nothing (``host_tests/fw/mp_test_hdlc_alloc.py`` proves it with ``heap_lock``).

UI frames are unconfirmed: they carry one complete LSDU (no segmentation) with the request
LLC. A UI request is delivered only while no other request is being reassembled and no
response is being transmitted (otherwise it is dropped), because the upper layer must be free
to use the reply buffer. Its answer, if the upper layer calls ``reply()``, is a single UI
frame, sent only when the UI frame had P = 1, was not broadcast and the response fits one
frame.

A request is delivered only with an APDU after the LLC (``request_len() > 0``): an I-frame
(or the last segment of a request) whose information field is the LLC alone is accepted at
the link level (N(S)/N(R), RR when polled) but delivers nothing, a UI frame with only the
LLC is dropped. An empty request would hold the link (``feed()`` consumes nothing while a
request waits) while an adapter that answers only ``request_len() > 0`` waits for input:
found by fuzzing (``iec21`` target), a hang of the whole meter.
"""

from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms.fcs import TABLE, fcs16

try:  # the viper twin when this port can load it, else the pure-Python table loop
    from dlms.fcs_viper import fcs16_update
except (ImportError, SyntaxError, ValueError):
    from dlms.fcs import fcs16_update

_FLAG = const(0x7E)

# --- format field (clause 6.4.1) ---
_FORMAT_TYPE3 = const(0xA0)  # 1010 in the top 4 bits
_FORMAT_S = const(0x08)  # segmentation bit
_MIN_FRAME_LEN = const(7)  # format 2 + dst 1 + src 1 + control 1 + FCS 2
_MAX_FRAME_LEN = const(0x7FF)

# --- control field (clause 6.4.3), P/F bit clear ---
_PF = const(0x10)  # poll (command) / final (response) bit
_SNRM = const(0x83)
_DISC = const(0x43)
_UA = const(0x63)
_DM = const(0x0F)
_FRMR = const(0x87)
_UI = const(0x03)
_RR = const(0x01)  # | N(R) << 5
_RNR = const(0x05)  # | N(R) << 5
_U_MASK = const(0xEF)  # unnumbered frames: everything but P/F
_S_MASK = const(0x0F)  # supervisory frames: low nibble

# --- FRMR flags (third information byte) ---
_FRMR_W = const(0x01)  # control field invalid or not implemented
_FRMR_X = const(0x02)  # information field not permitted with this frame
_FRMR_Y = const(0x04)  # information field exceeds the maximum
_FRMR_Z = const(0x08)  # invalid N(R)

# --- addresses (clause 6.4.2) ---
_ALL_STATION_7 = const(0x7F)  # all-station, 1- and 2-byte forms (7-bit fields)
_ALL_STATION_14 = const(0x3FFF)  # all-station, 4-byte form (14-bit fields)
_NOT_US = const(0)
_TO_US = const(1)
_TO_ALL = const(2)

# --- LLC (clause 5.3.2) ---
_LLC_LEN = const(3)
_LSAP = const(0xE6)
_LSAP_CMD = const(0xE6)
_LSAP_RSP = const(0xE7)

# --- negotiation (clause 6.4.4) and IEC HDLC setup defaults ---
_FORMAT_ID = const(0x81)
_GROUP_ID = const(0x80)
_P_INFO_TX = const(0x05)
_P_INFO_RX = const(0x06)
_P_WINDOW_TX = const(0x07)
_P_WINDOW_RX = const(0x08)
_DEFAULT_INFO_LEN = const(128)
_DEFAULT_WINDOW = const(1)
_MIN_INFO_LEN = const(32)
_MAX_INFO_LEN = const(2030)
_MAX_WINDOW = const(7)

# --- receiver states ---
_RX_HUNT = const(0)  # looking for an opening flag
_RX_FLAG = const(1)  # just after a flag: 7E repeats, anything else is a format byte
_RX_HEAD = const(2)  # format, destination, source, control
_RX_HCS = const(3)
_RX_INFO = const(4)
_RX_FCS = const(5)
_RX_CLOSE = const(6)  # expecting the closing flag

# what happens to information bytes
_INFO_STORE = const(0)  # copy into the request buffer and run the FCS
_INFO_CHECK = const(1)  # too long to store: run the FCS only (FRMR Y if the frame is good)
_INFO_SKIP = const(2)  # not for us: just count

# pending request kinds
_REQ_NONE = const(0)
_REQ_I = const(1)
_REQ_UI = const(2)

_HDR_SIZE = const(16)  # format 2 + dst 4 + src 4 + control 1 + HCS 2 + FCS 2 + flag 1
_TX_OVERHEAD = const(14)  # 2 flags + format 2 + dst 1 + src 4 + control 1 + HCS 2 + FCS 2
_TICKS_MASK = const(0x3FFFFFFF)
_FCS_INIT = const(0xFFFF)  # fcs.FCS_INIT
_FCS_XOROUT = const(0xFFFF)  # fcs.FCS_XOROUT


class Link:
    """One server HDLC link (one serial port), NDM/NRM state machine and frame codec."""

    def __init__(
        self,
        upper=1,
        lower=17,
        max_info_rx=_DEFAULT_INFO_LEN,
        max_info_tx=_DEFAULT_INFO_LEN,
        window_rx=_DEFAULT_WINDOW,
        window_tx=_DEFAULT_WINDOW,
        max_apdu=1024 + 64,
        inter_octet_timeout_ms=25,
        inactivity_timeout_ms=120000,
    ):
        for v in (max_info_rx, max_info_tx):
            if not _MIN_INFO_LEN <= v <= _MAX_INFO_LEN:
                raise ValueError("max_info")
        for v in (window_rx, window_tx):
            if not 1 <= v <= _MAX_WINDOW:
                raise ValueError("window")
        if max_apdu < 1:
            raise ValueError("max_apdu")
        # configuration: the IEC HDLC setup object may change these between connections
        self.upper = upper  # logical device address
        self.lower = lower  # physical device address
        self.max_info_rx = max_info_rx
        self.max_info_tx = max_info_tx
        self.window_rx = window_rx
        self.window_tx = window_tx
        self.inter_octet_timeout_ms = inter_octet_timeout_ms
        self.inactivity_timeout_ms = inactivity_timeout_ms
        self._rx_cap = max_info_rx  # the buffers bound what a later negotiation may grant
        self._tx_cap = max_info_tx
        # buffers
        self._hdr = bytearray(_HDR_SIZE)  # header (+FCS, +flag) of the frame being received
        self._replay = bytearray(_HDR_SIZE)  # header bytes to re-examine after a bad start
        self._req = bytearray(_LLC_LEN + max_apdu)  # LLC + request APDU (reassembled)
        self.request_view = memoryview(self._req)[_LLC_LEN:]
        self._reply = bytearray(_LLC_LEN + max_apdu)  # LLC + response APDU
        self._reply[0] = _LSAP
        self._reply[1] = _LSAP_RSP
        self._reply[2] = 0
        self._reply_mv = memoryview(self._reply)[_LLC_LEN:]
        self._tx = bytearray(_TX_OVERHEAD + max_info_tx)  # one outgoing frame, with flags
        self.output_view = memoryview(self._tx)
        self._params = array("i", [0, 0, 0, 0])  # SNRM proposal: info tx, info rx, win tx, rx
        self._frmr_info = bytearray(3)
        # receiver
        self._rx_state = _RX_HUNT
        self._hn = 0  # bytes stored in _hdr
        self._flen = 0  # frame length from the format field
        self._dst_len = 0
        self._src_len = 0
        self._hl = 0  # header length: format + addresses + control
        self._ctrl = 0
        self._info_len = 0
        self._info_at = 0  # where this frame's information starts in _req
        self._info_pos = 0  # write position in _req
        self._info_mode = _INFO_STORE
        self._too_long = False
        self._rx_left = 0  # information bytes still to come
        self._crc = 0  # running FCS register
        self._for_us = _NOT_US
        self._rp = 0  # replay read position
        self._rn = 0  # replay length
        self._from_replay = False
        # time
        self._now = 0
        self._last_byte_ms = 0
        self._last_frame_ms = 0
        # link state
        self.connected = False  # True in NRM
        self.client = 0  # client SAP of the connection
        self.connection_id = 0
        self._vs = 0  # V(S): N(S) of our next new I-frame
        self._vr = 0  # V(R): N(S) we expect next
        self._va = 0  # oldest N(S) of ours not yet acknowledged
        self._polled = False  # the client gave us the right to send (P=1), not yet used
        self._frmr_cond = False  # frame-reject condition (until SNRM/DISC)
        self._rsp_dst = 0x03  # client address byte of the last frame we answer
        self._rsp_form = 1  # server address form (1, 2, 4) to answer with
        self.max_info_tx_neg = _DEFAULT_INFO_LEN
        self.max_info_rx_neg = _DEFAULT_INFO_LEN
        self.window_tx_neg = _DEFAULT_WINDOW
        self.window_rx_neg = _DEFAULT_WINDOW
        # request (upward)
        self._req_len = 0  # bytes in _req (LLC included): reassembly so far
        self._req_kind = _REQ_NONE  # != NONE: a complete request waits for reply()/no_reply()
        self.request_client = 0
        self.request_broadcast = False
        self.request_ui = False
        # response (downward)
        self._tx_total = 0  # LLC + response APDU length, 0 when nothing to send
        self._tx_next = 0  # offset of the next segment to send
        self._tx_acked = 0  # offset of the oldest unacknowledged segment
        self._burst_left = 0  # frames we may still send in this burst
        self._out_len = 0
        # statistics
        self.frames_rx_ok = 0  # good frames addressed to us (or to all stations)
        self.frames_dropped = 0  # bad format/length/address/HCS/FCS/flag, or not acceptable
        self.frames_other = 0  # good frames for other stations
        self.frames_tx = 0
        self.frmr_sent = 0
        self.inter_octet_timeouts = 0
        self.inactivity_timeouts = 0

    # ------------------------------------------------------------------ input

    def feed(self, data, start, end, now_ms):
        """Consume bytes data[start:end] received at now_ms; return how many were used.

        Returns early (possibly 0) as soon as a request or an output frame is waiting: the
        caller answers the request / writes the output, then calls feed() again with the
        rest. Nothing is consumed while a request or an output is pending.
        """
        if self._req_kind != _REQ_NONE or self._out_len:
            return 0
        self.tick(now_ms)
        self._last_byte_ms = now_ms
        pos = start
        replay = self._replay
        while True:
            if self._rp < self._rn:  # header bytes of a bad frame, re-examined first
                b = replay[self._rp]
                self._rp += 1
                self._from_replay = True
            elif pos >= end:
                break
            elif self._rx_state == _RX_INFO:  # bulk path: the information field
                n = end - pos
                if n > self._rx_left:
                    n = self._rx_left
                mode = self._info_mode
                if mode != _INFO_SKIP:
                    self._crc = fcs16_update(self._crc, data, pos, pos + n)
                    if mode == _INFO_STORE:
                        req = self._req
                        o = self._info_pos - pos
                        for i in range(pos, pos + n):
                            req[o + i] = data[i]
                        self._info_pos += n
                pos += n
                self._rx_left -= n
                if self._rx_left == 0:
                    self._rx_state = _RX_FCS
                continue
            else:
                b = data[pos]
                pos += 1
                self._from_replay = False
            if self._rx_byte(b) and (self._req_kind != _REQ_NONE or self._out_len):
                break
        return pos - start

    def tick(self, now_ms):
        """Apply the inter-octet and inactivity timeouts at time now_ms (elapsed times are
        taken modulo 2**30: wrapping ticks are fine)."""
        now = self._now = now_ms
        t = self.inter_octet_timeout_ms
        if self._rx_state != _RX_HUNT and t and (now - self._last_byte_ms) & _TICKS_MASK > t:
            if self._rx_state != _RX_FLAG:
                self.inter_octet_timeouts += 1  # a partial frame is discarded
            self._rx_state = _RX_HUNT
            self._rp = self._rn = 0
        t = self.inactivity_timeout_ms
        if self.connected and t and (now - self._last_frame_ms) & _TICKS_MASK > t:
            self.inactivity_timeouts += 1
            self._disconnect()

    def _rx_byte(self, b):
        """Receiver state machine for one byte; returns True at the end of a good frame."""
        st = self._rx_state
        if st == _RX_HUNT:
            if b == _FLAG:
                self._rx_state = _RX_FLAG
            return False
        if st == _RX_FLAG:
            if b == _FLAG:  # flags may repeat; a closing flag may open the next frame
                return False
            self._hn = 0
            self._rx_state = st = _RX_HEAD
        if st == _RX_INFO:  # only replayed bytes come here; see feed() for the bulk path
            if self._info_mode != _INFO_SKIP:
                crc = self._crc
                self._crc = (crc >> 8) ^ TABLE[(crc ^ b) & 0xFF]
                if self._info_mode == _INFO_STORE:
                    self._req[self._info_pos] = b
                    self._info_pos += 1
            self._rx_left -= 1
            if self._rx_left == 0:
                self._rx_state = _RX_FCS
            return False
        hdr = self._hdr
        n = self._hn
        hdr[n] = b
        n += 1
        self._hn = n
        if st == _RX_HEAD:
            if n == 1:
                if b & 0xF0 != _FORMAT_TYPE3:
                    self._resync()
                return False
            if n == 2:
                flen = ((hdr[0] & 0x07) << 8) | b
                if flen < _MIN_FRAME_LEN:
                    self._resync()
                    return False
                self._flen = flen
                self._dst_len = 0
                self._src_len = 0
                return False
            if not self._dst_len:  # destination address: up to 4 bytes, LSB=1 on the last
                if b & 1:
                    self._dst_len = n - 2
                elif n - 2 >= 4:
                    self._resync()
                return False
            if not self._src_len:  # source address: up to 4 bytes
                if b & 1:
                    self._src_len = n - 2 - self._dst_len
                elif n - 2 - self._dst_len >= 4:
                    self._resync()
                return False
            # control field: the header is complete
            self._ctrl = b
            self._hl = n
            flen = self._flen
            if flen == n + 2:  # no information field: FCS follows
                self._info_len = 0
                self._info_at = self._req_len
                self._info_mode = _INFO_STORE
                self._too_long = False
                self._rx_state = _RX_FCS
            elif flen > n + 4:  # HCS, at least one information byte, FCS
                self._info_len = flen - n - 4
                self._rx_state = _RX_HCS
            else:
                self._resync()
            return False
        if st == _RX_HCS:
            hl = self._hl
            if n < hl + 2:
                return False
            crc = fcs16_update(_FCS_INIT, hdr, 0, hl)
            if crc ^ _FCS_XOROUT != hdr[hl] | (hdr[hl + 1] << 8):
                self._resync()
                return False
            self._crc = fcs16_update(crc, hdr, hl, hl + 2)  # the FCS covers the HCS too
            self._start_info()
            return False
        if st == _RX_FCS:
            if n == self._hl + (4 if self._info_len else 2):
                self._rx_state = _RX_CLOSE
            return False
        # _RX_CLOSE: b is stored after the FCS so that a bad short frame can be re-examined
        hl = self._hl
        rx_fcs = hdr[n - 3] | (hdr[n - 2] << 8)
        if not self._info_len:
            if b != _FLAG or fcs16(hdr, 0, hl) != rx_fcs:
                self._resync()
                return False
            self._for_us = self._match_address()
        else:
            if b != _FLAG:  # missing closing flag
                self.frames_dropped += 1
                self._rx_state = _RX_HUNT
                return False
            if self._info_mode != _INFO_SKIP and self._crc ^ _FCS_XOROUT != rx_fcs:
                self.frames_dropped += 1
                self._rx_state = _RX_FLAG
                return False
        self._rx_state = _RX_FLAG  # the closing flag can open the next frame
        self._frame_done()
        return True

    def _start_info(self):
        """HCS is good: decide what to do with the information field that follows."""
        n = self._info_len
        self._for_us = fu = self._match_address()
        self._info_at = self._info_pos = self._req_len
        self._too_long = False
        if fu == _NOT_US:
            mode = _INFO_SKIP
        else:
            limit = self.max_info_rx_neg
            if not self.connected:  # before any negotiation the default maximum applies
                limit = min(_DEFAULT_INFO_LEN, self._rx_cap)
            self._too_long = n > limit
            if self._too_long or n > len(self._req) - self._req_len:
                mode = _INFO_CHECK
            else:
                mode = _INFO_STORE
        self._info_mode = mode
        self._rx_left = n
        self._rx_state = _RX_INFO

    def _resync(self):
        """The stored bytes after an opening flag are not a valid frame: drop them, and if one
        of them is a flag, restart the receiver there and re-examine the bytes after it."""
        self.frames_dropped += 1
        hdr = self._hdr
        n = self._hn
        i = 0
        while i < n and hdr[i] != _FLAG:
            i += 1
        if i >= n:
            self._rx_state = _RX_HUNT
            return
        self._rx_state = _RX_FLAG
        i += 1
        if self._from_replay:  # hdr[0:n] are the last n replayed bytes: back up over them
            self._rp = self._rp - n + i
        else:
            replay = self._replay
            for k in range(i, n):
                replay[k - i] = hdr[k]
            self._rp = 0
            self._rn = n - i

    def _match_address(self):
        """_TO_US, _TO_ALL or _NOT_US for the destination/source in the stored header."""
        hdr = self._hdr
        dl = self._dst_len
        if self._src_len != 1:  # clients have 1-byte addresses; this is no client->server frame
            return _NOT_US
        if dl == 1:
            upper = hdr[2] >> 1
            lower = -1
            all_st = _ALL_STATION_7
        elif dl == 2:
            upper = hdr[2] >> 1
            lower = hdr[3] >> 1
            all_st = _ALL_STATION_7
        elif dl == 4:
            upper = ((hdr[2] >> 1) << 7) | (hdr[3] >> 1)
            lower = ((hdr[4] >> 1) << 7) | (hdr[5] >> 1)
            all_st = _ALL_STATION_14
        else:
            return _NOT_US
        result = _TO_US
        if upper == all_st:
            result = _TO_ALL
        elif upper != self.upper:
            return _NOT_US
        if lower >= 0:
            if lower == all_st:
                result = _TO_ALL
            elif lower != self.lower:
                return _NOT_US
        client = hdr[2 + dl] >> 1
        if client == 0 or client == _ALL_STATION_7:  # no-station / all-station as a source
            return _NOT_US
        return result

    # ------------------------------------------------------------------ frame rules

    def _frame_done(self):
        """A frame with good HCS/FCS is complete: apply the table in the module docstring."""
        fu = self._for_us
        if fu == _NOT_US:
            self.frames_other += 1
            return
        self.frames_rx_ok += 1
        ctrl = self._ctrl
        src = self._hdr[2 + self._dst_len]
        client = src >> 1
        u = ctrl & _U_MASK
        if fu == _TO_ALL:  # broadcast: accept UI, never answer
            if u == _UI:
                self._on_ui(True)
            else:
                self.frames_dropped += 1
            return
        self._rsp_dst = src
        self._rsp_form = self._dst_len
        if self.connected and client == self.client:
            self._last_frame_ms = self._now
        if ctrl & _PF and (not self.connected or client == self.client):
            self._polled = True
        if u == _UI:
            self._on_ui(False)
            return
        if not self.connected:  # NDM
            if u == _SNRM:
                self._on_snrm(client)
            elif ctrl & _PF:
                self._send_u(_DM)  # DISC, I, RR, RNR, anything else: "disconnected"
            return
        if client != self.client:  # another client while connected: it is not connected
            if ctrl & _PF:
                self._send_u(_DM)
            return
        if u == _SNRM:
            self._on_snrm(client)
            return
        if u == _DISC:
            if self._info_len:
                self._frmr(_FRMR_W | _FRMR_X)
            elif ctrl & _PF:
                self._send_u(_UA)
                self._disconnect()
            return
        if self._frmr_cond:  # until SNRM or DISC, every poll gets the same FRMR
            if ctrl & _PF:
                self._send_frmr()
            return
        if not ctrl & 1:
            self._on_i()
        elif ctrl & _S_MASK == _RR or ctrl & _S_MASK == _RNR:
            self._on_rr()
        else:
            self._frmr(_FRMR_W)

    def _on_snrm(self, client):
        """SNRM: negotiate and connect (or reset the connection); clause 6.4.4."""
        if not self._ctrl & _PF:
            self.frames_dropped += 1
            return
        ok = self._info_mode == _INFO_STORE and not self._too_long
        if ok:
            ok = _parse_params(self._req, self._info_at, self._info_at + self._info_len,
                               self._params)
        p = self._params
        if ok:  # p: the client's info TX, info RX, window TX, window RX
            ok = p[0] >= _MIN_INFO_LEN and p[1] >= _MIN_INFO_LEN and p[2] >= 1 and p[3] >= 1
        if not ok:
            if self.connected:
                self._disconnect()
            self._send_u(_DM)
            return
        self._reset_link()
        self.max_info_rx_neg = min(p[0], self.max_info_rx, self._rx_cap)
        self.max_info_tx_neg = min(p[1], self.max_info_tx, self._tx_cap)
        self.window_rx_neg = min(p[2], self.window_rx, _MAX_WINDOW)
        self.window_tx_neg = min(p[3], self.window_tx, _MAX_WINDOW)
        self.connected = True
        self.client = client
        self.connection_id = (self.connection_id + 1) & _TICKS_MASK
        self._last_frame_ms = self._now
        self._send_ua_params()

    def _on_i(self):
        """I-frame in NRM from the connected client."""
        ctrl = self._ctrl
        ns = (ctrl >> 1) & 7
        nr = ctrl >> 5
        if self._too_long:
            self._frmr(_FRMR_Y)
            return
        if (nr - self._va) & 7 > (self._vs - self._va) & 7:  # N(R) outside [V(A), V(S)]
            self._frmr(_FRMR_Z)
            return
        if ns != self._vr:  # not the frame we expect: its information is not accepted,
            self._ack(nr)  # but its N(R) counts (ISO/IEC 13239)
            if ctrl & _PF:
                if self._tx_next < self._tx_total:
                    # typically the client repeats its last frame because our answer got
                    # lost: N(R) made us go back, send it again
                    self._start_burst()
                else:
                    self._send_rr()  # tell the client which N(S) we expect
            return
        if self._info_mode != _INFO_STORE:  # in sequence, but no room to reassemble it
            self._frmr(_FRMR_Y)  # (drops the partial request)
            return
        n = self._info_len
        if self._req_len == 0:  # the first segment starts with the LLC E6 E6 00
            req = self._req
            if n < _LLC_LEN or req[0] != _LSAP or req[1] != _LSAP_CMD or req[2] != 0:
                self.frames_dropped += 1
                return
        self._ack(nr)
        if self._tx_total:  # a new request abandons what is left of the old response
            self._tx_total = 0
        self._vr = (self._vr + 1) & 7
        self._req_len += n
        if self._hdr[0] & _FORMAT_S:  # more segments follow
            if ctrl & _PF:
                self._send_rr()
            return
        if self._req_len <= _LLC_LEN:  # the LLC alone: no APDU to deliver (module doc)
            self._req_len = 0
            self.frames_dropped += 1
            if ctrl & _PF:
                self._send_rr()
            return
        self._deliver(_REQ_I, False)

    def _on_rr(self):
        """RR / RNR in NRM: acknowledgment, and with P=1 a poll for what we have to send."""
        ctrl = self._ctrl
        nr = ctrl >> 5
        if self._info_len:
            self._frmr(_FRMR_W | _FRMR_X)
            return
        if (nr - self._va) & 7 > (self._vs - self._va) & 7:  # N(R) outside [V(A), V(S)]
            self._frmr(_FRMR_Z)
            return
        self._ack(nr)
        if not ctrl & _PF:
            return
        if ctrl & _S_MASK == _RR and self._tx_next < self._tx_total:
            self._start_burst()  # next segment(s), or the ones the client did not receive
        else:
            self._send_rr()  # nothing to send (or the client is busy: RNR)

    def _on_ui(self, broadcast):
        """UI: one complete unconfirmed request (see the module docstring for when)."""
        if (
            self._hdr[0] & _FORMAT_S
            or self._info_mode != _INFO_STORE
            or self._info_at != 0
            or self._tx_total
            or self._info_len <= _LLC_LEN  # no APDU after the LLC
        ):
            self.frames_dropped += 1
            return
        req = self._req
        if req[0] != _LSAP or req[1] != _LSAP_CMD or req[2] != 0:
            self.frames_dropped += 1
            return
        self._req_len = self._info_len
        self._deliver(_REQ_UI, broadcast)

    def _deliver(self, kind, broadcast):
        self._req_kind = kind
        self.request_client = self._hdr[2 + self._dst_len] >> 1
        self.request_broadcast = broadcast
        self.request_ui = kind == _REQ_UI

    def _ack(self, nr):
        """The client received our I-frames up to N(R)-1; go back to N(R) for the rest."""
        k = (nr - self._va) & 7
        if self._tx_total:
            acked = self._tx_acked + k * self.max_info_tx_neg
            if acked >= self._tx_total:  # the whole response arrived
                self._tx_total = 0
                acked = 0
            self._tx_acked = acked
            self._tx_next = acked
        self._va = nr
        self._vs = nr

    def _reset_link(self):
        self._vs = self._vr = self._va = 0
        self._req_len = 0
        self._req_kind = _REQ_NONE
        self._tx_total = self._tx_next = self._tx_acked = 0
        self._burst_left = 0
        self._frmr_cond = False

    def reset(self):
        """Back to NDM with nothing pending -- no partial frame, request or output -- using
        the buffers it has (the adapter calls it to recover from an unexpected error; it
        allocates nothing, so it works when memory is exhausted)."""
        self._rx_state = _RX_HUNT
        self._hn = 0
        self._rx_left = 0
        self._from_replay = False
        self._rn = self._rp = 0
        self._out_len = 0
        self._disconnect()

    def _disconnect(self):
        """Leave NRM (DISC, inactivity, rejected SNRM)."""
        self._reset_link()
        self._polled = False
        self.connected = False
        self.client = 0
        self.connection_id = (self.connection_id + 1) & _TICKS_MASK
        self.max_info_tx_neg = self.max_info_rx_neg = _DEFAULT_INFO_LEN
        self.window_tx_neg = self.window_rx_neg = _DEFAULT_WINDOW

    # ------------------------------------------------------------------ upward

    def request_len(self):
        """Length of the complete request APDU in request_view (LLC removed), else 0."""
        if self._req_kind == _REQ_NONE:
            return 0
        return self._req_len - _LLC_LEN

    def reply_view(self):
        """Where the upper layer writes the response APDU (LLC space reserved in front)."""
        return self._reply_mv

    def reply(self, n):
        """The response APDU is reply_view()[:n]: frame it (in segments) and release the
        request. Ignored when no request is pending (e.g. the link was reset meanwhile)."""
        if n < 0 or n > len(self._reply_mv):
            raise ValueError("bad length")  # reply length
        kind = self._req_kind
        broadcast = self.request_broadcast
        self._release()
        if kind == _REQ_I:
            if not self.connected:
                return
            self._tx_total = _LLC_LEN + n
            self._tx_next = self._tx_acked = 0
            self._va = self._vs
            if self._polled:
                self._start_burst()
        elif kind == _REQ_UI:
            limit = self.max_info_tx_neg if self.connected else _DEFAULT_INFO_LEN
            if limit > self._tx_cap:
                limit = self._tx_cap
            if self._polled and not broadcast and _LLC_LEN + n <= limit:
                self._send_info_frame(_UI | _PF, self._reply, 0, _LLC_LEN + n, False)

    def no_reply(self):
        """Release the request without an answer. A polled I-frame still gets RR (so the
        client gets the link back); broadcast and UI requests get nothing."""
        kind = self._req_kind
        self._release()
        if kind == _REQ_I and self.connected and self._polled:
            self._send_rr()

    def _release(self):
        self._req_kind = _REQ_NONE
        self._req_len = 0
        self.request_broadcast = False
        self.request_ui = False

    # ------------------------------------------------------------------ downward

    def output_len(self):
        """>0: a complete frame (flags included) waits in output_view[:output_len()]."""
        return self._out_len

    def output_done(self):
        """The caller has written the output frame; the next frame of a burst may follow."""
        self._out_len = 0
        if self._burst_left and self._tx_next < self._tx_total:
            self._send_segment()

    def _start_burst(self):
        self._burst_left = self.window_tx_neg
        if self._tx_next < self._tx_total:
            self._send_segment()

    def _send_segment(self):
        """Next I-frame of the response: N(S) = V(S); S=1 unless it is the last segment;
        F=1 on the last frame of the burst."""
        off = self._tx_next
        n = self._tx_total - off
        more = n > self.max_info_tx_neg
        if more:
            n = self.max_info_tx_neg
        self._burst_left -= 1
        final = not more or self._burst_left <= 0
        vs = self._vs
        ctrl = (self._vr << 5) | (vs << 1)
        if final:
            ctrl |= _PF
            self._burst_left = 0
        self._send_info_frame(ctrl, self._reply, off, off + n, more)
        self._vs = (vs + 1) & 7
        self._tx_next = off + n

    def _send_rr(self):
        self._send_u((self._vr << 5) | _RR)

    def _frmr(self, flags):
        """Reject the frame just received; clause 6.4.3 (layout in the module docstring)."""
        info = self._frmr_info
        info[0] = self._ctrl
        info[1] = (self._vr << 5) | (self._vs << 1)
        info[2] = flags
        self._frmr_cond = True
        self._req_len = 0
        if self._ctrl & _PF:
            self._send_frmr()

    def _send_frmr(self):
        self.frmr_sent += 1
        self._send_info_frame(_FRMR | _PF, self._frmr_info, 0, 3, False)

    def _header(self, ctrl, info_len, segmented):
        """Write flag, format, addresses, control and (when the frame has an information
        field) the HCS into the transmit buffer; return the offset after them. The server
        address goes out in the form the client used; a frame with F=1 hands the right to
        send back to the client."""
        tx = self._tx
        form = self._rsp_form
        flen = 2 + 1 + form + 1 + 2
        if info_len:
            flen += 2 + info_len
        tx[0] = _FLAG
        tx[1] = _FORMAT_TYPE3 | (_FORMAT_S if segmented else 0) | (flen >> 8)
        tx[2] = flen & 0xFF
        tx[3] = self._rsp_dst
        up = self.upper
        lo = self.lower
        if form == 1:
            tx[4] = ((up & 0x7F) << 1) | 1
        elif form == 2:
            tx[4] = (up & 0x7F) << 1
            tx[5] = ((lo & 0x7F) << 1) | 1
        else:
            tx[4] = ((up >> 7) & 0x7F) << 1
            tx[5] = (up & 0x7F) << 1
            tx[6] = ((lo >> 7) & 0x7F) << 1
            tx[7] = ((lo & 0x7F) << 1) | 1
        p = 4 + form
        tx[p] = ctrl
        p += 1
        if ctrl & _PF:
            self._polled = False
        if info_len:  # HCS over format..control
            hcs = fcs16_update(_FCS_INIT, tx, 1, p) ^ _FCS_XOROUT
            tx[p] = hcs & 0xFF
            tx[p + 1] = hcs >> 8
            p += 2
        return p

    def _finish(self, end):
        """FCS over tx[1:end] and the closing flag; the frame is ready."""
        tx = self._tx
        fcs = fcs16_update(_FCS_INIT, tx, 1, end) ^ _FCS_XOROUT
        tx[end] = fcs & 0xFF
        tx[end + 1] = fcs >> 8
        tx[end + 2] = _FLAG
        self._out_len = end + 3
        self.frames_tx += 1

    def _send_u(self, ctrl):
        """A frame without information field (UA, DM, RR, RNR); F=1."""
        self._finish(self._header(ctrl | _PF, 0, False))

    def _send_info_frame(self, ctrl, src, start, end, segmented):
        n = end - start
        p = self._header(ctrl, n, segmented)
        tx = self._tx
        o = p - start
        for i in range(start, end):
            tx[o + i] = src[i]
        self._finish(p + n)

    def _send_ua_params(self):
        """UA carrying the negotiated parameters from the server's side."""
        info_tx = self.max_info_tx_neg
        info_rx = self.max_info_rx_neg
        ltx = 1 if info_tx < 256 else 2
        lrx = 1 if info_rx < 256 else 2
        n = 3 + (2 + ltx) + (2 + lrx) + 6 + 6
        p = self._header(_UA | _PF, n, False)
        tx = self._tx
        tx[p] = _FORMAT_ID
        tx[p + 1] = _GROUP_ID
        tx[p + 2] = n - 3
        q = _put_param(tx, p + 3, _P_INFO_TX, info_tx, ltx)
        q = _put_param(tx, q, _P_INFO_RX, info_rx, lrx)
        q = _put_param(tx, q, _P_WINDOW_TX, self.window_tx_neg, 4)
        q = _put_param(tx, q, _P_WINDOW_RX, self.window_rx_neg, 4)
        self._finish(q)


def _put_param(buf, pos, pid, value, size):
    buf[pos] = pid
    buf[pos + 1] = size
    for i in range(size):
        buf[pos + 2 + i] = (value >> (8 * (size - 1 - i))) & 0xFF
    return pos + 2 + size


def _parse_params(buf, pos, end, out):
    """Parse an SNRM/UA information field buf[pos:end] into out[0..3] (info TX, info RX,
    window TX, window RX, sender's view); missing ones get the defaults. Returns False when
    the field is malformed. Values too big for 16 bits are saturated (no long ints)."""
    out[0] = _DEFAULT_INFO_LEN
    out[1] = _DEFAULT_INFO_LEN
    out[2] = _DEFAULT_WINDOW
    out[3] = _DEFAULT_WINDOW
    if pos == end:
        return True
    if end - pos < 3 or buf[pos] != _FORMAT_ID or buf[pos + 1] != _GROUP_ID:
        return False
    if pos + 3 + buf[pos + 2] != end:
        return False
    pos += 3
    while pos < end:
        if end - pos < 2:
            return False
        pid = buf[pos]
        size = buf[pos + 1]
        pos += 2
        if size < 1 or size > 4 or pos + size > end:
            return False
        v = 0
        for i in range(pos, pos + size):
            if v < 0x10000:
                v = (v << 8) | buf[i]
        pos += size
        if _P_INFO_TX <= pid <= _P_WINDOW_RX:
            out[pid - _P_INFO_TX] = v
        # unknown parameters are skipped
    return True
