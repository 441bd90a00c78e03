"""The client side of DLMS/COSEM for the host tools (``tools/meter_cli.py``), written on the
firmware's own codecs (``firmware/dlms``: A-XDR, BER, HDLC frames, the wrapper header,
suite-0 security) so that the project reads its meters with nothing but its own code. The
GPL/BSL-licensed client libraries of the interop tests (gurux-dlms, dlms-cosem) are never
imported here.

What a session does, layer by layer (Green Book, IEC 62056-5-3 / -46 / -47):

    transport.open()                TCP connect, or HDLC: SNRM -> UA (parameters negotiated)
    client.associate()              AARQ -> AARE; HLS-GMAC: pass 3 / pass 4 (reply_to_HLS)
    client.get(...) / set / action  xDLMS GET (normal, with-list, block transfer, selective
                                    access), SET-normal, ACTION-normal; ciphered as
                                    general-glo-ciphering (DB) in a ciphered association
    client.release()                RLRQ -> RLRE; transport.close() (HDLC: DISC -> UA)

Every way a meter can say no becomes one exception class, each with its own process exit
code (``meter_cli.py --help`` lists them): no answer, association refused (AARE result and
diagnostic named), access denied, object undefined, request refused (any other
data-access-result or exception-response), protocol error (a reply that does not parse or
fails its GCM tag).

Ciphering: the security context of ``dlms.security`` is symmetric, so the client builds one
with its *own* system title in the sender's place and the meter's as the peer:
``security.wrap`` protects requests as DB with the client's invocation counter and
``security.unwrap`` checks the meter's replies (tag, and a strictly increasing meter
counter). Only the glo-initiate-request/-response of the AARQ/AARE are sealed here directly
with ``dlms.gcm``.
"""

import os
import socket
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIRMWARE = os.path.join(ROOT, "firmware")
if _FIRMWARE not in sys.path:
    sys.path.insert(0, _FIRMWARE)

from dlms import axdr, ber, hdlc_tools, security, xdlms  # noqa: E402

# ------------------------------------------------------------------------------ exit codes
EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_NO_ANSWER = 3
EXIT_REFUSED = 4
EXIT_ACCESS_DENIED = 5
EXIT_UNDEFINED = 6
EXIT_REQUEST_REFUSED = 7
EXIT_PROTOCOL = 8
EXIT_LOCAL = 9

EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_USAGE, "bad command line"),
    (EXIT_NO_ANSWER, "no answer: nothing listening, no such serial device, or a timeout"),
    (EXIT_REFUSED, "association refused (AARE result and diagnostic) or HLS failed"),
    (EXIT_ACCESS_DENIED, "access denied (read-write-denied, scope-of-access-violated)"),
    (EXIT_UNDEFINED, "object undefined, of another class, or no such attribute"),
    (EXIT_REQUEST_REFUSED, "the meter refused the request otherwise (other data-access-result, "
                           "exception-response)"),
    (EXIT_PROTOCOL, "protocol error: a reply that does not parse or fails its check"),
    (EXIT_LOCAL, "local error: an output file, a missing plotting library"),
)


class DlmsError(Exception):
    exit_code = EXIT_PROTOCOL


class NoAnswer(DlmsError):
    exit_code = EXIT_NO_ANSWER


class AssociationRefused(DlmsError):
    exit_code = EXIT_REFUSED


class AccessDenied(DlmsError):
    exit_code = EXIT_ACCESS_DENIED


class ObjectUndefined(DlmsError):
    exit_code = EXIT_UNDEFINED


class RequestRefused(DlmsError):
    exit_code = EXIT_REQUEST_REFUSED


class ProtocolError(DlmsError):
    exit_code = EXIT_PROTOCOL


# ------------------------------------------------------------------------------ names
# Data-Access-Result (Green Book, xDLMS)
DAR_NAMES = {
    0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
    4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
    12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
    15: "long-get-aborted", 16: "no-long-get-in-progress", 17: "long-set-aborted",
    18: "no-long-set-in-progress", 19: "data-block-number-invalid", 250: "other-reason",
}
_DAR_DENIED = (3, 13)
_DAR_UNDEFINED = (4, 9, 11)

# AARE result and result-source-diagnostic (ISO/IEC 8650-1 as profiled by the Green Book)
AARE_RESULTS = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
ACSE_USER_DIAGNOSTICS = {
    0: "null", 1: "no-reason-given", 2: "application-context-name-not-supported",
    3: "calling-AP-title-not-recognized", 4: "calling-AP-invocation-identifier-not-recognized",
    5: "calling-AE-qualifier-not-recognized",
    6: "calling-AE-invocation-identifier-not-recognized", 7: "called-AP-title-not-recognized",
    8: "called-AP-invocation-identifier-not-recognized", 9: "called-AE-qualifier-not-recognized",
    10: "called-AE-invocation-identifier-not-recognized",
    11: "authentication-mechanism-name-not-recognised",
    12: "authentication-mechanism-name-required", 13: "authentication failure",
    14: "authentication-required",
}
ACSE_PROVIDER_DIAGNOSTICS = {0: "null", 1: "no-reason-given", 2: "no-common-acse-version"}
INITIATE_ERRORS = {0: "other", 1: "dlms-version-too-low", 2: "incompatible-conformance",
                   3: "pdu-size-too-short", 4: "refused-by-the-VDE-handler"}
# ExceptionResponse
STATE_ERRORS = {1: "service-not-allowed", 2: "service-unknown"}
SERVICE_ERRORS = {1: "operation-not-possible", 2: "service-not-supported", 3: "other-reason",
                  4: "pdu-too-long", 5: "deciphering-error", 6: "invocation-counter-error"}

# mechanism-name 2.16.756.5.8.2.x, application-context-name 2.16.756.5.8.1.x
MECH_NONE, MECH_LLS, MECH_HLS_GMAC = 0, 1, 5
CTX_LN, CTX_LN_CIPHERED = 1, 3
_OID_DLMS = b"\x60\x85\x74\x05\x08"

# Conformance proposed: the services this client uses (Green Book bit n = 1 << (23 - n))
CONF_GET = 1 << 4
CONF_SET = 1 << 3
CONF_ACTION = 1 << 0
CONF_SELECTIVE_ACCESS = 1 << 2
CONF_BLOCK_TRANSFER_WITH_GET = 1 << 12
CONF_MULTIPLE_REFERENCES = 1 << 9
PROPOSED_CONFORMANCE = (CONF_GET | CONF_SET | CONF_ACTION | CONF_SELECTIVE_ACCESS
                        | CONF_BLOCK_TRANSFER_WITH_GET | CONF_MULTIPLE_REFERENCES)

_INVOKE = 0xC1  # invoke-id-and-priority: high priority, confirmed service, invoke id 1
_CURRENT_ASSOCIATION = bytes([0, 0, 40, 0, 0, 255])


def obis_bytes(text):
    """'1.0.1.8.0.255' -> 6 bytes; ValueError unless six groups 0..255."""
    parts = text.strip().split(".")
    if len(parts) != 6:
        raise ValueError("an OBIS code has six groups a.b.c.d.e.f: %r" % text)
    return bytes(int(p) for p in parts)


def obis_text(b):
    return ".".join(str(x) for x in bytes(b))


def dar_error(dar, what):
    """The exception for a failed Data-Access-Result."""
    text = "%s: the meter answered %s (%d)" % (what, DAR_NAMES.get(dar, "data-access-result"),
                                                dar)
    if dar in _DAR_DENIED:
        return AccessDenied("access denied: " + text)
    if dar in _DAR_UNDEFINED:
        return ObjectUndefined("object undefined: " + text)
    return RequestRefused("request refused: " + text)


def exception_error(state, service, what):
    text = "%s: the meter answered exception-response %s / %s" % (
        what, STATE_ERRORS.get(state, "state-error %d" % state),
        SERVICE_ERRORS.get(service, "service-error %d" % service))
    if service == 5:
        text += " (it could not decipher the request: wrong keys?)"
    elif service == 6:
        text += " (invocation counter not above the last one it accepted: try a higher --ic)"
    return RequestRefused("request refused: " + text)


def _trace_hex(trace, direction, data):
    if trace is not None:
        trace("%s %s" % (direction, bytes(data).hex()))


# ------------------------------------------------------------------------------ transports
class TcpTransport:
    """The TCP wrapper (IEC 62056-47): 00 01 | source wPort | destination wPort | length."""

    name = "tcp"

    def __init__(self, host, port, client_sap, server_wport=1, timeout=5.0, trace=None):
        self.host = host
        self.port = port
        self.client_sap = client_sap
        self.server_wport = server_wport
        self.timeout = timeout
        self.trace = trace
        self.sock = None

    def where(self):
        return "%s:%d" % (self.host, self.port)

    def open(self):
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except ConnectionRefusedError:
            raise NoAnswer("no answer: nothing is listening at %s (connection refused)"
                           % self.where()) from None
        except socket.timeout:
            raise NoAnswer("no answer: TCP connection to %s timed out after %g s"
                           % (self.where(), self.timeout)) from None
        except OSError as e:
            raise NoAnswer("no answer: cannot connect to %s: %s" % (self.where(), e)) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def _recv_exactly(self, n, deadline, what):
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer("no answer from the meter at %s within %g s (waiting for %s)"
                               % (self.where(), self.timeout, what))
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(n - len(out))
            except socket.timeout:
                continue
            except OSError as e:
                raise NoAnswer("no answer: the connection to %s failed (%s) while waiting for "
                               "%s" % (self.where(), e, what)) from None
            if not b:
                raise NoAnswer("no answer: the meter at %s closed the connection while we "
                               "waited for %s" % (self.where(), what))
            out += b
        return bytes(out)

    def request(self, apdu, what):
        """Send one APDU, return the reply APDU."""
        head = bytes([0, 1, self.client_sap >> 8, self.client_sap & 0xFF,
                      self.server_wport >> 8, self.server_wport & 0xFF,
                      len(apdu) >> 8, len(apdu) & 0xFF])
        _trace_hex(self.trace, ">>", apdu)
        try:
            self.sock.sendall(head + bytes(apdu))
        except OSError as e:
            raise NoAnswer("no answer: sending to %s failed (%s)" % (self.where(), e)) from None
        deadline = time.monotonic() + self.timeout
        while True:
            h = self._recv_exactly(8, deadline, what)
            if h[0:2] != b"\x00\x01":
                raise ProtocolError("protocol error: not a wrapper header from %s: %s"
                                    % (self.where(), h.hex()))
            n = (h[6] << 8) | h[7]
            body = self._recv_exactly(n, deadline, what)
            dst = (h[4] << 8) | h[5]
            if dst != self.client_sap:
                continue  # not for this client (the meter answers the wPort that asked)
            _trace_hex(self.trace, "<<", body)
            return body


# HDLC control fields (IEC 62056-46, ISO/IEC 13239)
_P = 0x10
_SNRM = 0x83
_DISC = 0x43
_UA = 0x63
_DM = 0x0F
_FRMR = 0x87
_RR = 0x01
_LLC_REQUEST = b"\xe6\xe6\x00"
_LLC_RESPONSE = b"\xe6\xe7\x00"


class HdlcTransport:
    """HDLC (IEC 62056-46) over a serial line: SNRM/UA, I-frames with sequence numbers,
    segmentation both ways (RR polls), DISC. Server address: logical device ``logical``,
    physical device ``physical``, in the 2-byte form (4-byte when either is above 127)."""

    name = "hdlc"

    def __init__(self, path, client_sap, baud=9600, logical=1, physical=17, timeout=5.0,
                 trace=None):
        self.path = path
        self.baud = baud
        self.client_sap = client_sap
        size = 2 if logical < 128 and physical < 128 else 4
        self.server = hdlc_tools.encode_address(
            hdlc_tools.server_address(logical, physical, size), size)
        self.client = hdlc_tools.encode_address(client_sap, 1)
        self.timeout = timeout
        self.trace = trace
        self.ser = None
        self._rx = bytearray()
        self.vs = 0  # V(S): next send sequence number
        self.vr = 0  # V(R): next receive sequence number expected
        self.max_send = 128  # the meter's max info field RX (what we may send), from the UA
        self.max_recv = 128
        self.connected = False

    def where(self):
        return self.path

    # -- bytes
    def open(self):
        import serial  # pyserial (BSD): only the HDLC transport needs it

        try:
            self.ser = serial.Serial(self.path, baudrate=self.baud, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as e:
            raise NoAnswer("no answer: cannot open the serial port %s: %s"
                           % (self.path, e)) from None
        self.ser.reset_input_buffer()
        self._rx = bytearray()
        self.vs = self.vr = 0
        frame = self._exchange_u(_SNRM, "UA to SNRM (HDLC connect)")
        kind = frame[5] & ~_P
        if kind == _DM:
            raise AssociationRefused(
                "connection refused: the meter answered the SNRM with DM (busy with another "
                "client, or it cannot use the link parameters)")
        if kind != _UA:
            raise ProtocolError("protocol error: expected UA to SNRM, got control %02x"
                                % frame[5])
        params = hdlc_tools.parse_params(frame[6]) if frame[6] else None
        if frame[6] and params is None:
            raise ProtocolError("protocol error: malformed UA parameters: %s" % frame[6].hex())
        if params is not None:
            self.max_recv, self.max_send = params[0], params[1]
        self.connected = True

    def close(self):
        if self.ser is None:
            return
        try:
            if self.connected:
                self.connected = False
                try:
                    self._exchange_u(_DISC, "UA to DISC", timeout=1.0)
                except DlmsError:
                    pass
        finally:
            try:
                self.ser.close()
            finally:
                self.ser = None

    def _send(self, control, info=b"", segmented=False):
        f = hdlc_tools.frame(self.server, self.client, control, info, segmented)
        try:
            self.ser.write(f)
            self.ser.flush()
        except OSError as e:  # serial.SerialException is an OSError
            raise NoAnswer("no answer: writing to %s failed (%s)" % (self.path, e)) from None

    def _extract(self):
        """One complete, valid frame from the receive buffer (decoded), or None."""
        rx = self._rx
        while True:
            i = rx.find(b"\x7e")
            if i < 0:
                rx.clear()
                return None
            del rx[:i]
            while len(rx) > 1 and rx[1] == 0x7E:
                del rx[:1]  # repeated flags
            if len(rx) < 3:
                return None
            if rx[1] & 0xF0 != 0xA0:
                del rx[:1]
                continue
            total = (((rx[1] & 0x07) << 8) | rx[2]) + 2
            if len(rx) < total:
                return None
            d = hdlc_tools.decode_frame(bytes(rx[:total]))
            if d is None:
                del rx[:1]
                continue
            del rx[: total - 1]  # the closing flag may open the next frame
            segmented, dst, dl, _src, _sl, control, info = d
            if dst != self.client_sap or dl != 1:
                continue  # another station's
            return segmented, control, info

    def _frame(self, deadline, what):
        while True:
            f = self._extract()
            if f is not None:
                if self.trace is not None:
                    self.trace("<< hdlc %02x%s %s" % (f[1], " S" if f[0] else "", f[2].hex()))
                return f
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer("no answer from the meter on %s within %g s (waiting for %s)"
                               % (self.path, self.timeout, what))
            try:
                n = self.ser.in_waiting
                b = self.ser.read(n if n > 0 else 1)
            except OSError as e:
                raise NoAnswer("no answer: reading %s failed (%s)" % (self.path, e)) from None
            if b:
                self._rx += b

    def _exchange_u(self, control, what, timeout=None):
        self._send(control | _P)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        segmented, c, info = self._frame(deadline, what)
        return (segmented, None, None, None, None, c, info)

    def _control_i(self):
        return (self.vr << 5) | _P | (self.vs << 1)

    def _check(self, control, what):
        """Raise on DM/FRMR; return control."""
        if control & ~_P & 0xFF == _DM:
            self.connected = False
            raise ProtocolError("protocol error: the meter answered DM (disconnected mode) "
                                "while we waited for %s" % what)
        if control & ~_P & 0xFF == _FRMR:
            raise ProtocolError("protocol error: the meter rejected a frame (FRMR) while we "
                                "waited for %s" % what)
        return control

    def request(self, apdu, what):
        info = _LLC_REQUEST + bytes(apdu)
        _trace_hex(self.trace, ">>", apdu)
        # send, segmented when longer than the meter's max info field
        pos = 0
        while True:
            chunk = info[pos: pos + self.max_send]
            pos += len(chunk)
            more = pos < len(info)
            self._send(self._control_i(), chunk, more)
            self.vs = (self.vs + 1) & 7
            if not more:
                break
            deadline = time.monotonic() + self.timeout
            _s, c, _i = self._frame(deadline, "RR to a request segment")
            self._check(c, "RR to a request segment")
            if c & 0x0F != _RR or (c >> 5) != self.vs:
                raise ProtocolError("protocol error: expected RR(%d) to a request segment, "
                                    "got control %02x" % (self.vs, c))
        # receive, acknowledging segments with RR
        data = bytearray()
        while True:
            deadline = time.monotonic() + self.timeout
            segmented, c, inf = self._frame(deadline, what)
            self._check(c, what)
            if c & 1:  # RR / RNR: our frame was not taken
                raise ProtocolError("protocol error: the meter answered control %02x (RR/RNR) "
                                    "instead of data while we waited for %s" % (c, what))
            ns = (c >> 1) & 7
            if ns != self.vr:
                raise ProtocolError("protocol error: I-frame N(S)=%d, expected %d"
                                    % (ns, self.vr))
            self.vr = (self.vr + 1) & 7
            data += inf
            if not segmented:
                break
            self._send((self.vr << 5) | _P | _RR)
        if data[:3] != _LLC_RESPONSE:
            raise ProtocolError("protocol error: response without the LLC E6 E7 00: %s"
                                % bytes(data[:8]).hex())
        apdu = bytes(data[3:])
        _trace_hex(self.trace, "<<", apdu)
        return apdu


# ------------------------------------------------------------------------------ APDUs
def _oid(w, tag, kind, arc):
    w.u8(tag)
    w.u8(7)
    w.raw(_OID_DLMS)
    w.u8(kind)
    w.u8(arc)


def encode_initiate_request(conformance, max_pdu):
    """xDLMS InitiateRequest: 01 | no dedicated key | response-allowed default | no QoS |
    dlms-version 6 | conformance 5F 1F 04 00 b1 b2 b3 | client-max-receive-pdu-size."""
    buf = bytearray(16)
    w = axdr.Writer(buf)
    w.raw(b"\x01\x00\x00\x00\x06\x5f\x1f\x04\x00")
    w.u8(conformance >> 16)
    w.u8((conformance >> 8) & 0xFF)
    w.u8(conformance & 0xFF)
    w.u16(max_pdu)
    return bytes(buf[: w.pos])


def encode_aarq(context, mechanism, auth_value, calling_title, user_info):
    """AARQ (BER): application-context-name, [calling-AP-title], [sender-acse-requirements,
    mechanism-name, calling-authentication-value], user-information."""
    buf = bytearray(256 + len(user_info))
    w = axdr.Writer(buf)
    top = ber.start(w, 0x60)
    w.u8(0xA1)  # application-context-name [1] { OBJECT IDENTIFIER }
    w.u8(9)
    _oid(w, 0x06, 1, context)
    if calling_title is not None:  # calling-AP-title [6] { OCTET STRING }
        m = ber.start(w, 0xA6)
        ber.tlv(w, 0x04, calling_title)
        ber.close(w, m)
    if mechanism:
        w.raw(b"\x8a\x02\x07\x80")  # sender-acse-requirements [10]: authentication
        _oid(w, 0x8B, 2, mechanism)  # mechanism-name [11] IMPLICIT
        m = ber.start(w, 0xAC)  # calling-authentication-value [12] { GraphicString [0] }
        ber.tlv(w, 0x80, auth_value)
        ber.close(w, m)
    m = ber.start(w, 0xBE)  # user-information [30] { OCTET STRING }
    ber.tlv(w, 0x04, user_info)
    ber.close(w, m)
    ber.close(w, top)
    return bytes(buf[: w.pos])


class Aare:
    def __init__(self):
        self.context = None
        self.result = None
        self.source = None  # 1 acse-service-user, 2 acse-service-provider
        self.diagnostic = None
        self.responding_title = None
        self.mechanism = None
        self.stoc = None
        self.user_info = None


def _dlms_arc(buf, s, e, kind):
    if e - s == 7 and bytes(buf[s: s + 5]) == _OID_DLMS and buf[s + 5] == kind:
        return buf[s + 6]
    return -1


def parse_aare(buf):
    """AARE bytes -> Aare; ProtocolError when malformed."""
    try:
        tag, p, e = ber.read_tlv(buf, 0, len(buf))
        if tag != 0x61:
            raise ProtocolError("protocol error: expected an AARE (61), got %02x" % tag)
        a = Aare()
        while p < e:
            tag, cs, ce = ber.read_tlv(buf, p, e)
            p = ce
            if tag == 0xA1:
                s, x = ber.read_inner(buf, cs, ce, 0x06)
                a.context = _dlms_arc(buf, s, x, 1)
            elif tag == 0xA2:
                s, x = ber.read_inner(buf, cs, ce, 0x02)
                a.result = ber.read_uint(buf, s, x)
            elif tag == 0xA3:
                t, s, x = ber.read_tlv(buf, cs, ce)
                a.source = t & 0x1F
                s2, x2 = ber.read_inner(buf, s, x, 0x02)
                a.diagnostic = ber.read_uint(buf, s2, x2)
            elif tag == 0xA4:
                s, x = ber.read_inner(buf, cs, ce, 0x04)
                a.responding_title = bytes(buf[s:x])
            elif tag == 0x89:
                a.mechanism = _dlms_arc(buf, cs, ce, 2)
            elif tag == 0xAA:
                t, s, x = ber.read_tlv(buf, cs, ce)
                a.stoc = bytes(buf[s:x])
            elif tag == 0xBE:
                s, x = ber.read_inner(buf, cs, ce, 0x04)
                a.user_info = bytes(buf[s:x])
        if a.result is None:
            raise ProtocolError("protocol error: AARE without a result")
        return a
    except axdr.DecodeError as ex:
        raise ProtocolError("protocol error: malformed AARE (%s): %s"
                            % (ex, bytes(buf).hex())) from None


def parse_initiate_response(b):
    """08 InitiateResponse -> (conformance, server max PDU); 0E ConfirmedServiceError ->
    RequestRefused-like text via ValueError."""
    r = axdr.Reader(b)
    tag = r.u8()
    if tag == 0x0E:
        r.u8()  # initiateError
        r.u8()  # initiate
        code = r.u8()
        raise ValueError("initiate error: %s" % INITIATE_ERRORS.get(code, str(code)))
    if tag != 0x08:
        raise axdr.DecodeError("not an InitiateResponse")
    if r.u8():
        r.u8()  # negotiated QoS
    r.u8()  # negotiated dlms version
    if r.u8() != 0x5F or r.u8() != 0x1F or r.u8() != 4:
        raise axdr.DecodeError("conformance")
    r.u8()
    c = r.raw(3)
    conformance = (c[0] << 16) | (c[1] << 8) | c[2]
    return conformance, r.u16()


def read_length(buf, p):
    """(n, position after the A-XDR length) at buf[p]."""
    n = buf[p]
    if n < 0x80:
        return n, p + 1
    k = n & 0x7F
    return int.from_bytes(bytes(buf[p + 1: p + 1 + k]), "big"), p + 1 + k


def seal_initiate(keys, title, ic, plain):
    """glo-initiate-request 21 | length | SC 30 | IC | AES-GCM(InitiateRequest) || tag."""
    out = bytearray(len(plain) + 12)
    iv = bytes(title) + ic.to_bytes(4, "big")
    n = keys.gcm.encrypt(iv, [b"\x30", keys.ak], plain, out)
    body = b"\x30" + ic.to_bytes(4, "big") + bytes(out[:n])
    w = axdr.Writer(bytearray(len(body) + 4))
    w.u8(0x21)
    w.length(len(body))
    w.raw(body)
    return bytes(w.buf[: w.pos])


def open_initiate(keys, title, b):
    """glo-initiate-response 28 / glo-confirmed-service-error 2E -> (IC, plain) or None when
    the tag check fails."""
    n, p = read_length(b, 1)
    sc = b[p]
    ic = int.from_bytes(bytes(b[p + 1: p + 5]), "big")
    body = bytes(b[p + 5: p + n])
    out = bytearray(max(len(body) - 12, 0))
    iv = bytes(title) + ic.to_bytes(4, "big")
    if sc != 0x30:
        return None
    k = keys.gcm.decrypt(iv, [bytes([sc]), keys.ak], body, out)
    if k < 0:
        return None
    return ic, bytes(out[:k])


def encode_get(class_id, obis, attr, selector=0, parameters=None):
    """GET-Request-Normal."""
    buf = bytearray(64 + (512 if parameters is not None else 0))
    w = axdr.Writer(buf)
    w.u8(xdlms.GET_REQUEST)
    w.u8(xdlms.GET_NORMAL)
    w.u8(_INVOKE)
    _descriptor(w, class_id, obis, attr)
    if selector:
        w.u8(1)
        w.u8(selector)
        w.data(parameters)
    else:
        w.u8(0)
    return bytes(buf[: w.pos])


def encode_get_list(items):
    """GET-Request-With-List: items = [(class_id, obis, attr)]."""
    buf = bytearray(16 + 12 * len(items))
    w = axdr.Writer(buf)
    w.u8(xdlms.GET_REQUEST)
    w.u8(xdlms.GET_WITH_LIST)
    w.u8(_INVOKE)
    w.length(len(items))
    for class_id, obis, attr in items:
        _descriptor(w, class_id, obis, attr)
        w.u8(0)
    return bytes(buf[: w.pos])


def encode_get_next(block):
    return bytes([xdlms.GET_REQUEST, xdlms.GET_NEXT, _INVOKE]) + block.to_bytes(4, "big")


def encode_set(class_id, obis, attr, value):
    buf = bytearray(64 + 1024)
    w = axdr.Writer(buf)
    w.u8(xdlms.SET_REQUEST)
    w.u8(xdlms.SET_NORMAL)
    w.u8(_INVOKE)
    _descriptor(w, class_id, obis, attr)
    w.u8(0)  # no selective access
    w.data(value)
    return bytes(buf[: w.pos])


def encode_action(class_id, obis, method, value=None):
    buf = bytearray(64 + 1024)
    w = axdr.Writer(buf)
    w.u8(xdlms.ACTION_REQUEST)
    w.u8(xdlms.ACTION_NORMAL)
    w.u8(_INVOKE)
    _descriptor(w, class_id, obis, method)
    if value is None:
        w.u8(0)
    else:
        w.u8(1)
        w.data(value)
    return bytes(buf[: w.pos])


def _descriptor(w, class_id, obis, attr):
    w.u16(class_id)
    w.raw(obis)
    w.u8(attr & 0xFF)


def decode_value(b, what):
    """One A-XDR Data -> typed value; ProtocolError if it does not parse exactly."""
    try:
        r = axdr.Reader(b)
        v = r.data()
        if r.remaining():
            raise axdr.DecodeError("%d trailing bytes" % r.remaining())
        return v
    except axdr.DecodeError as e:
        raise ProtocolError("protocol error: %s: undecodable A-XDR value (%s): %s"
                            % (what, e, bytes(b[:64]).hex())) from None


# ------------------------------------------------------------------------------ security
class _Counter:
    """The client's invocation counter: the next value to use."""

    def __init__(self, first):
        self.value = first - 1

    def next(self):
        if self.value >= 0xFFFFFFFF:
            return None
        self.value += 1
        return self.value


class _MeterCounterGuard:
    """The meter's invocation counter must strictly increase (replay protection)."""

    def __init__(self):
        self.last = -1

    def check_and_update(self, key_id, ic):
        if ic <= self.last:
            return False
        self.last = ic
        return True


# ------------------------------------------------------------------------------ client
class Client:
    """One client association over a transport (see the module docstring).

    mechanism: MECH_NONE, MECH_LLS (password) or MECH_HLS_GMAC (ek, ak, system_title,
    invocation_counter: the first one this association uses)."""

    def __init__(self, transport, mechanism=MECH_NONE, password=None, ek=None, ak=None,
                 system_title=None, invocation_counter=1, max_pdu=1024, trace=None):
        self.t = transport
        self.mechanism = mechanism
        self.password = password
        self.max_pdu = max_pdu
        self.trace = trace
        self.ctx = None
        self.keys = None
        self.title = system_title
        self.server_max_pdu = None
        self.conformance = None
        self.associated = False
        if mechanism == MECH_HLS_GMAC:
            self.keys = security.Keys(ek, ak)
            self.counter = _Counter(invocation_counter)
            self.guard = _MeterCounterGuard()
            # the suite-0 context mirrored: our title is the sender's, the meter's the peer's
            self.ctx = security.Context(self.keys, system_title, None, self.counter,
                                        self.guard, require=security.SC_AUTH_ENC)
        self.meter_title = None
        self.ctos = None
        self.stoc = None

    @property
    def next_ic(self):
        return self.counter.value + 1 if self.ctx is not None else None

    # -- association
    def associate(self):
        ciphered = self.mechanism == MECH_HLS_GMAC
        initiate = encode_initiate_request(PROPOSED_CONFORMANCE, self.max_pdu)
        auth = None
        if self.mechanism == MECH_LLS:
            auth = bytes(self.password)
        elif ciphered:
            self.ctos = os.urandom(16)
            auth = self.ctos
            ic = self.counter.next()
            if ic is None:
                raise ProtocolError("protocol error: the invocation counter is exhausted "
                                    "(2^32 - 1): new keys are needed")
            initiate = seal_initiate(self.keys, self.title, ic, initiate)
        aarq = encode_aarq(CTX_LN_CIPHERED if ciphered else CTX_LN, self.mechanism, auth,
                           self.title if ciphered else None, initiate)
        aare = parse_aare(self.t.request(aarq, "the AARE"))
        ui = aare.user_info or b""
        ui_error = None
        if ciphered and ui[:1] in (b"\x28", b"\x2e"):
            if aare.responding_title is None or len(aare.responding_title) != 8:
                raise ProtocolError("protocol error: ciphered AARE without the meter's "
                                    "system title")
            self.meter_title = aare.responding_title
            opened = open_initiate(self.keys, self.meter_title, ui)
            if opened is None:
                raise ProtocolError("protocol error: the AARE's glo-initiate-response fails its "
                                    "GCM tag (wrong --ek/--ak?)")
            ic, ui = opened
            if not self.guard.check_and_update(0, ic):
                raise ProtocolError("protocol error: the meter's invocation counter did not "
                                    "increase")
        try:
            if ui:
                self.conformance, self.server_max_pdu = parse_initiate_response(ui)
        except ValueError as e:
            ui_error = str(e)
        except axdr.DecodeError:
            ui_error = "undecodable user-information %s" % bytes(ui).hex()
        if aare.result != 0:
            raise AssociationRefused(self._refusal(aare, ui_error, ciphered))
        if ui_error is not None or self.conformance is None:
            raise AssociationRefused("association refused: %s" % (ui_error or
                                     "no InitiateResponse in the AARE"))
        if aare.diagnostic == 14:  # authentication-required: HLS pass 3 and 4
            if not ciphered:
                raise ProtocolError("protocol error: the meter asks for HLS, which this client "
                                    "did not request")
            if not aare.stoc:
                raise ProtocolError("protocol error: AARE asks for HLS without a challenge")
            self.stoc = aare.stoc
            self.ctx.reset(self.meter_title)
            self._hls()
        self.associated = True

    def _refusal(self, aare, ui_error, ciphered):
        names = ACSE_PROVIDER_DIAGNOSTICS if aare.source == 2 else ACSE_USER_DIAGNOSTICS
        diag = names.get(aare.diagnostic, "diagnostic %s" % aare.diagnostic)
        text = "association refused: %s, %s: %s (%s)" % (
            AARE_RESULTS.get(aare.result, "result %d" % aare.result),
            "acse-service-provider" if aare.source == 2 else "acse-service-user",
            diag, aare.diagnostic)
        if ui_error:
            text += "; %s" % ui_error
        if aare.diagnostic == 13:
            text += " (wrong --password?)" if self.mechanism == MECH_LLS else \
                " (wrong credentials?)"
        elif ciphered and ui_error and "other" in ui_error:
            text += (" (the meter could not accept the ciphered InitiateRequest: wrong --ek/--ak, "
                     "or an invocation counter not above the last one it accepted (--ic)?)")
        elif aare.diagnostic in (11, 12):
            text += " (this client SAP uses another authentication: check --client)"
        return text

    def _hls(self):
        """HLS-GMAC pass 3 (f(StoC) to reply_to_HLS_authentication) and pass 4 (check the
        meter's f(CtoS))."""
        ic = self.counter.next()
        if ic is None:
            raise ProtocolError("protocol error: the invocation counter is exhausted")
        fstoc = (b"\x10" + ic.to_bytes(4, "big")
                 + security.gmac_tag(self.keys, self.title, ic, self.stoc))
        reply = self._exchange(encode_action(15, _CURRENT_ASSOCIATION, 1,
                                             (axdr.OCTET_STRING, fstoc)),
                               "reply_to_HLS_authentication", hls=True)
        ok, value = self._action_result(reply, "reply_to_HLS_authentication", hls=True)
        if value is None or value[0] != axdr.OCTET_STRING or len(value[1]) != 17:
            raise AssociationRefused("association refused: HLS pass 4 without f(CtoS)")
        f = value[1]
        mic = int.from_bytes(f[1:5], "big")
        if f[0] != 0x10 or security.gmac_tag(self.keys, self.meter_title, mic,
                                             self.ctos) != bytes(f[5:]):
            raise AssociationRefused(
                "association refused: the meter's f(CtoS) is wrong: it does not hold these "
                "keys (HLS pass 4 failed)")

    def release(self):
        """RLRQ (reason normal) -> RLRE; failures are ignored (the transport closes next)."""
        if not self.associated:
            return
        self.associated = False
        try:
            self.t.request(b"\x62\x03\x80\x01\x00", "the RLRE")
        except DlmsError:
            pass

    # -- exchanges
    def _exchange(self, plain, what, hls=False):
        """Send one xDLMS request (protected in a ciphered association), return the plain
        reply APDU."""
        if self.server_max_pdu and len(plain) > self.server_max_pdu:
            raise RequestRefused("request refused: %s: the request (%d bytes) exceeds the "
                                 "meter's max PDU %d" % (what, len(plain), self.server_max_pdu))
        if self.ctx is None:
            return self.t.request(plain, what)
        out = bytearray(len(plain) + security.OVERHEAD)
        prot = security.Protection(security.GENERAL_GLO, security.SC_AUTH_ENC,
                                   security.KEY_GLOBAL)
        n = security.wrap(self.ctx, prot, plain, 0, len(plain), out)
        if n < 0:
            raise ProtocolError("protocol error: cannot protect the request (%d): invocation "
                                "counter exhausted?" % n)
        reply = bytearray(self.t.request(bytes(out[:n]), what))
        if reply[:1] == bytes([xdlms.EXCEPTION_RESPONSE]):
            return bytes(reply)  # plain: the meter could not trust the request
        k = security.unwrap(self.ctx, reply, 0, len(reply))
        if k == security.ERR_UNKNOWN_TAG:
            raise ProtocolError("protocol error: %s: unprotected reply %s in a ciphered "
                                "association" % (what, bytes(reply[:16]).hex()))
        if k == security.ERR_AUTH:
            raise ProtocolError("protocol error: %s: the reply fails its GCM tag check (wrong "
                                "--ek/--ak?)" % what)
        if k == security.ERR_REPLAY:
            raise ProtocolError("protocol error: %s: the meter's invocation counter did not "
                                "increase (replayed reply?)" % what)
        if k < 0:
            raise ProtocolError("protocol error: %s: cannot unprotect the reply (error %d)"
                                % (what, k))
        s = self.ctx.rx.start
        return bytes(reply[s: s + k])

    def _common_errors(self, reply, what, hls=False):
        if not reply:
            raise ProtocolError("protocol error: %s: empty reply" % what)
        if reply[0] == xdlms.EXCEPTION_RESPONSE and len(reply) >= 3:
            err = exception_error(reply[1], reply[2], what)
            if hls:
                raise AssociationRefused("association refused: HLS authentication failed: "
                                         + str(err).split(": ", 1)[1])
            raise err
        if reply[0] == 0x0E:
            raise RequestRefused("request refused: %s: confirmed-service-error %s"
                                 % (what, bytes(reply).hex()))

    def _action_result(self, reply, what, hls=False):
        """ACTION-Response-Normal -> (True, return value or None)."""
        self._common_errors(reply, what, hls)
        try:
            r = axdr.Reader(reply)
            if r.u8() != xdlms.ACTION_RESPONSE or r.u8() != xdlms.ACTION_NORMAL:
                raise axdr.DecodeError("not an ACTION-Response-Normal")
            r.u8()
            result = r.u8()
            value = None
            if r.remaining() and r.u8():
                if r.u8() == 0:
                    value = r.data()
                else:
                    result = r.u8() or result
        except axdr.DecodeError as e:
            raise ProtocolError("protocol error: %s: malformed ACTION response (%s): %s"
                                % (what, e, reply.hex())) from None
        if result:
            if hls:
                raise AssociationRefused(
                    "association refused: HLS authentication failed: the meter answered %s "
                    "to reply_to_HLS_authentication (wrong --ak/--ek or --system-title?)"
                    % DAR_NAMES.get(result, str(result)))
            raise dar_error(result, what)
        return True, value

    def _get_body(self, request, what, progress=None):
        """Send a GET request; return (choice, body): for a normal GET the A-XDR value
        (result checked), for with-list the count + results. Block transfer is followed with
        GET-Request-Next; progress(blocks, data) is called after every block."""
        reply = self._exchange(request, what)
        data = bytearray()
        blocks = 0
        want = request[1]
        while True:
            self._common_errors(reply, what)
            if len(reply) < 4 or reply[0] != xdlms.GET_RESPONSE:
                raise ProtocolError("protocol error: %s: not a GET-Response: %s"
                                    % (what, reply[:16].hex()))
            choice = reply[1]
            if choice == xdlms.GET_NORMAL or choice == xdlms.GET_WITH_LIST:
                if blocks:
                    raise ProtocolError("protocol error: %s: a normal response in the middle "
                                        "of a block transfer" % what)
                body = reply[3:]
                if choice == xdlms.GET_NORMAL:
                    if body[0] == 1:
                        raise dar_error(body[1] if len(body) > 1 else 250, what)
                    return choice, body[1:]
                return choice, body
            if choice != xdlms.GET_WITH_DATABLOCK:
                raise ProtocolError("protocol error: %s: GET-Response choice %d" % (what, choice))
            try:
                r = axdr.Reader(reply, 3)
                last = r.u8()
                block = r.u32()
                if r.u8():  # data-access-result
                    raise dar_error(r.u8(), "%s (block %d)" % (what, block))
                chunk = r.raw(r.length())
            except axdr.DecodeError as e:
                raise ProtocolError("protocol error: %s: malformed data block (%s)"
                                    % (what, e)) from None
            if block != blocks + 1:
                raise ProtocolError("protocol error: %s: block %d after block %d"
                                    % (what, block, blocks))
            blocks = block
            data += chunk
            if progress is not None:
                progress(blocks, data, bool(last))
            if last:
                return want, bytes(data)
            reply = self._exchange(encode_get_next(block), what)

    def get_raw(self, class_id, obis, attr, selector=0, parameters=None, progress=None):
        what = "GET %s attribute %d" % (obis_text(obis), attr)
        _choice, body = self._get_body(encode_get(class_id, obis, attr, selector, parameters),
                                       what, progress)
        return body

    def get(self, class_id, obis, attr, selector=0, parameters=None, progress=None):
        """The attribute's value as a typed A-XDR value (tag, value)."""
        what = "GET %s attribute %d" % (obis_text(obis), attr)
        return decode_value(self.get_raw(class_id, obis, attr, selector, parameters, progress),
                            what)

    def get_list(self, items):
        """GET-Request-With-List: [(class_id, obis, attr)] -> [typed value or DlmsError]."""
        what = "GET with-list of %d attributes" % len(items)
        _choice, body = self._get_body(encode_get_list(items), what)
        out = []
        try:
            r = axdr.Reader(body)
            n = r.length()
            if n != len(items):
                raise axdr.DecodeError("%d results for %d attributes" % (n, len(items)))
            for class_id, obis, attr in items:
                if r.u8() == 0:
                    out.append(r.data())
                else:
                    out.append(dar_error(r.u8(), "GET %s attribute %d" % (obis_text(obis),
                                                                          attr)))
        except axdr.DecodeError as e:
            raise ProtocolError("protocol error: %s: malformed with-list response (%s)"
                                % (what, e)) from None
        return out

    def set(self, class_id, obis, attr, value):
        what = "SET %s attribute %d" % (obis_text(obis), attr)
        reply = self._exchange(encode_set(class_id, obis, attr, value), what)
        self._common_errors(reply, what)
        if len(reply) < 4 or reply[0] != xdlms.SET_RESPONSE or reply[1] != xdlms.SET_NORMAL:
            raise ProtocolError("protocol error: %s: not a SET-Response-Normal: %s"
                                % (what, reply.hex()))
        if reply[3]:
            raise dar_error(reply[3], what)

    def action(self, class_id, obis, method, value=None):
        what = "ACTION %s method %d" % (obis_text(obis), method)
        reply = self._exchange(encode_action(class_id, obis, method, value), what)
        return self._action_result(reply, what)[1]

