"""Fuzz targets: every decoder of the firmware that sees wire bytes, driven through the
firmware's own modules under CPython (issue 8, robustness campaign; docs/robustness.md).

A target is ``one_input(data)``: it feeds ``data`` to the code under test and returns
normally when the firmware behaved as documented. Anything else raises: an exception the
module does not document for hostile input, a broken invariant (``Violation``), or no
progress (``Violation("hang")``; atheris' ``-timeout`` catches real infinite loops).

    target        code under test                                  documented outcome
    hdlc          dlms.hdlc.Link.feed (+ reply / output / tick)     never raises; frames it
                                                                   sends are well formed
    wrapper       dlms.wrapper.Conn.feed                            never raises; broken state
    axdr          dlms.axdr.Reader.data / skip_data (+ re-encode)   DecodeError
    acse          dlms.acse.parse_aarq / parse_rlrq /               DecodeError
                  parse_initiate_request, evaluate + respond
    xdlms         dlms.xdlms.decode_get / decode_set / decode_action RequestError
                  (selective access included)
    security      dlms.security.unwrap / unwrap_initiate /          negative ERR_* codes
                  hls_verify, also past a valid tag
    assoc_public  dlms.association.Association.handle, client 16    never raises
    assoc_reader  the same, client 32 (LLS)                         never raises
    assoc_mgmt    the same, client 1: HLS-GMAC, ciphered context;   never raises
                  the harness can authenticate and protect the
                  fuzzed APDUs, so the fuzzer reaches past the tag
    profile       cosem.profile_generic.ProfileGeneric: GET buffer  a Data-Access-Result or
                  with selector 1/2 and fuzzed access parameters    a generator that streams
                  (rows on real segment files)                      without exceptions
    stack_hdlc    HDLC bytes -> Link -> Association (all clients),  never raises
                  as ports.HdlcPort wires them
    iec21         dlms.iec21.ModeE (IEC 62056-21 mode E sign-on)   never raises; right
                  in front of an HDLC link, as optical.OpticalPort  identification and
                  wires them                                       line settings

Session inputs (assoc_*, hdlc, wrapper, stack_hdlc, iec21) are a sequence of records
``flags(1) | length(2, big-endian) | payload`` (``encode_records``); the meaning of the flags
is per target (see each harness). Seeds are built from the published vectors and recorded
real sessions by ``seeds.py``.

No state survives from one input to the next: every input builds its objects afresh (the
logical device, links, security context), so a crash reproduces from its input alone.
"""

import binascii
import os
import struct
import sys

# Also imported by the MicroPython Unix port (host_tests/fw/test_fuzz_regressions.py
# replays the corpus there): no os.path, no os.environ.
MICROPYTHON = sys.implementation.name == "micropython"


def _dirname(p):
    i = p.rfind("/")
    return p[:i] if i > 0 else ("/" if i == 0 else ".")


HERE = _dirname(__file__) if "/" in __file__ else "."
ROOT = _dirname(_dirname(HERE)) if HERE not in (".", "") else "../.."
if not MICROPYTHON:
    HERE = os.path.dirname(os.path.abspath(__file__))
    ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (ROOT + "/firmware", ROOT + "/boards/unix"):
    if _p not in sys.path:
        sys.path.insert(0, _p)

MAX_RECORDS = 48  # records per session input (bounds the time of one input)


def _hex(b):
    return binascii.hexlify(bytes(b)).decode()


def _unhex(s):
    return binascii.unhexlify(s)


def _env(name):
    return os.getenv(name) if hasattr(os, "getenv") else None


# Speed, not semantics: under CPython dlms.gcm tries ``import cryptolib`` for every key and
# falls back to pyca; a None entry makes that failed import instant. The boot self-test of
# app.Security (a known-answer test, not wire input) runs once per process, not per input.
if not MICROPYTHON:
    sys.modules.setdefault("cryptolib", None)
_SELF_TEST = []


def _self_test_once(aes_factory=None):
    from dlms import gcm

    if not _SELF_TEST:
        _SELF_TEST.append(_real_self_test(aes_factory))
    return _SELF_TEST[0]


class _FastGcm:
    """dlms.gcm.Gcm's interface on pyca ``cryptography`` (OpenSSL): the fuzzing harness's
    stand-in under CPython, where the firmware's pure-Python GHASH takes most of the time of
    a ciphered session. The GCM arithmetic is not what is fuzzed (its known-answer and NIST
    tests are in host_tests/fw/test_gcm.py); every caller, every length and tag decision in
    dlms/security.py is the firmware's. DLMS_FUZZ_FIRMWARE_GCM=1 keeps the firmware's Gcm;
    the corpus replay under MicroPython (test_fuzz_regressions) always uses it."""

    def __init__(self, key, aes_factory=None):
        from cryptography.hazmat.primitives.ciphers import algorithms

        if len(key) != 16:
            raise ValueError("key length")
        self._alg = algorithms.AES(bytes(key))

    @staticmethod
    def _aad(aad):
        if aad is None:
            return b""
        if isinstance(aad, (list, tuple)):
            return b"".join(bytes(x) for x in aad)
        return bytes(aad)

    def _enc(self, iv, aad, pt, tag_len):
        from cryptography.hazmat.primitives.ciphers import Cipher, modes

        e = Cipher(self._alg, modes.GCM(bytes(iv))).encryptor()
        e.authenticate_additional_data(self._aad(aad))
        ct = e.update(bytes(pt)) + e.finalize()
        return ct + e.tag[:tag_len]

    def _dec(self, iv, aad, ct, tag):
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers import Cipher, modes

        try:
            d = Cipher(self._alg, modes.GCM(bytes(iv), bytes(tag),
                                            min_tag_length=len(tag))).decryptor()
            d.authenticate_additional_data(self._aad(aad))
            return d.update(bytes(ct)) + d.finalize()
        except (InvalidTag, ValueError):
            return None

    def encrypt(self, iv, aad, plaintext, out, tag_len=12):
        r = self._enc(iv, aad, plaintext, tag_len)
        out[0:len(r)] = r
        return len(r)

    def encrypt_in_place(self, iv, aad, buf, start, end, tag_len=12):
        r = self._enc(iv, aad, memoryview(buf)[start:end], tag_len)
        buf[start:start + len(r)] = r
        return len(r)

    def decrypt(self, iv, aad, ct_and_tag, out, tag_len=12):
        n = len(ct_and_tag) - tag_len
        if n < 0:
            return -1
        if len(out) < n:
            raise ValueError("output too small")
        pt = self._dec(iv, aad, memoryview(ct_and_tag)[:n], memoryview(ct_and_tag)[n:])
        if pt is None:
            return -1
        out[0:n] = pt
        return n

    def decrypt_in_place(self, iv, aad, buf, start, end, tag_len=12):
        n = end - start - tag_len
        if n < 0:
            return -1
        mv = memoryview(buf)
        pt = self._dec(iv, aad, mv[start:start + n], mv[start + n:end])
        if pt is None:
            return -1
        if n:
            buf[start:start + n] = pt
        return n

    def gmac(self, iv, aad, tag_len=12):
        return self._enc(iv, aad, b"", tag_len)

    def __repr__(self):
        return "<Gcm pyca>"


def _patch_gcm():
    """Use _FastGcm in dlms.security (and so in every Keys and Context) under CPython."""
    if MICROPYTHON or _env("DLMS_FUZZ_FIRMWARE_GCM"):
        return
    from dlms import security

    if security.Gcm is not _FastGcm:
        security.Gcm = _FastGcm


def _patch_self_test():
    global _real_self_test
    from dlms import gcm

    if gcm.self_test is not _self_test_once:
        _real_self_test = gcm.self_test
        gcm.self_test = _self_test_once


class Violation(AssertionError):
    """The firmware broke a documented property (not an exception of its own)."""


def encode_records(records):
    """[(flags, payload)] -> session input bytes."""
    out = bytearray()
    for flags, payload in records:
        payload = bytes(payload)
        out += bytes([flags & 0xFF]) + struct.pack(">H", len(payload)) + payload
    return bytes(out)


def records(data):
    """Session input bytes -> [(flags, payload)] (a truncated last record is kept as is)."""
    out = []
    i = 0
    n = len(data)
    while i < n and len(out) < MAX_RECORDS:
        flags = data[i]
        if i + 3 > n:
            out.append((flags, bytes(data[i + 1:])))
            break
        ln = (data[i + 1] << 8) | data[i + 2]
        out.append((flags, bytes(data[i + 3:i + 3 + ln])))
        i += 3 + ln
    return out


# ------------------------------------------------------------------------------ HDLC
def check_frame(frame):
    """A frame the meter sends: flags, length field, HCS and FCS right (Violation if not)."""
    from dlms.fcs import fcs16

    f = bytes(frame)
    if len(f) < 9 or f[0] != 0x7E or f[-1] != 0x7E:
        raise Violation("frame flags: " + _hex(f))
    if f[1] & 0xF0 != 0xA0:
        raise Violation("frame format: " + _hex(f))
    flen = ((f[1] & 7) << 8) | f[2]
    if flen != len(f) - 2:
        raise Violation("frame length field %d vs %d: %s" % (flen, len(f) - 2, _hex(f)))
    body = f[1:-1]
    if fcs16(body, 0, len(body) - 2) != body[-2] | (body[-1] << 8):
        raise Violation("frame FCS: " + _hex(f))


_HDLC_STEPS = (0, 1, 5, 30, 1000, 130000)  # ms between records (inter-octet 25 ms, inactivity 120 s)
def hdlc_step(flags):
    """Milliseconds before an hdlc / stack_hdlc record."""
    return _HDLC_STEPS[(flags & 7) % len(_HDLC_STEPS)]


HDLC_FRAME = 0x20  # record flag: the payload is a frame body (addresses, control, information)
HDLC_SEGMENT = 0x40  # with HDLC_FRAME: the segmentation bit is set


def hdlc_split(body):
    """(header, information) of a frame body: destination (1..4 bytes, LSB 1 on the last),
    source (the same), control -- scanned as the receiver does."""
    i = 0
    for _ in range(2):
        k = 0
        while i < len(body) and k < 4:
            k += 1
            i += 1
            if body[i - 1] & 1:
                break
    i += 1
    return body[:i], body[i:]


def hdlc_frame(body, segmented=False):
    """A frame with flags, the right length, HCS and FCS around a body (what a client's
    HDLC layer adds; the fuzzer then mutates what the link's state machine sees)."""
    from dlms.fcs import fcs16

    hdr, info = hdlc_split(bytes(body))
    info = info[:0x7FF - 4 - len(hdr) - 2 - 2]
    flen = 2 + len(hdr) + (2 + len(info) if info else 0) + 2
    f = bytearray([0xA0 | (0x08 if segmented else 0) | (flen >> 8), flen & 0xFF]) + hdr
    if info:
        c = fcs16(f, 0, len(f))
        f += bytes([c & 0xFF, c >> 8]) + info
    c = fcs16(f, 0, len(f))
    f += bytes([c & 0xFF, c >> 8])
    return b"\x7e" + bytes(f) + b"\x7e"


def hdlc_body(frame):
    """The inverse of hdlc_frame for a well-formed frame with flags: (body, segmented), or
    None."""
    f = bytes(frame)
    if len(f) < 9 or f[0] != 0x7E or f[-1] != 0x7E or f[1] & 0xF0 != 0xA0:
        return None
    inner = f[3:-3]  # after the format, before the FCS
    hdr, info = hdlc_split(inner)
    if info:
        info = info[2:]  # the HCS
    return hdr + info, bool(f[1] & 0x08)


def _hdlc_payload(flags, payload):
    if flags & HDLC_FRAME:
        return hdlc_frame(payload, bool(flags & HDLC_SEGMENT))
    return payload


def hdlc_link_args(cfg):
    """(link arguments, HdlcSettings) of an HDLC port as app.App builds them
    (HdlcSettings.link_args), configured by one input byte: bit 0 information fields of 512
    instead of 128, bits 1/2 window 7 for transmit/receive, bit 3 APDU buffers of 64 bytes
    instead of 1,088 (their bounds are then a few frames away)."""
    from cosem.hdlc_setup import HdlcSettings

    cap = 128 if cfg & 1 == 0 else 512
    s = HdlcSettings(info_cap=cap, max_info_tx=cap, max_info_rx=cap,
                     window_tx=1 if cfg & 2 == 0 else 7, window_rx=1 if cfg & 4 == 0 else 7)
    args = s.link_args()
    if cfg & 8:
        args["max_apdu"] = 64
    return args, s


def _hdlc_link(cfg):
    """The link of an HDLC port, configured by one input byte (hdlc_link_args)."""
    from dlms import hdlc

    args, s = hdlc_link_args(cfg)
    link = hdlc.Link(**args)
    s.apply(link)
    return link


def _drain(link, sent):
    k = link.output_len()
    guard = 0
    while k:
        check_frame(link.output_view[:k])
        sent.append(bytes(link.output_view[:k]))
        link.output_done()
        k = link.output_len()
        guard += 1
        if guard > 64:
            raise Violation("hang: endless output burst")


def hdlc_input(data):
    """First byte: link configuration (_hdlc_link). Records: flags low 3 bits = time step
    before the bytes; bit 3 = the upper layer answers nothing; bit 4 = the payload arrives
    in pieces of 5 bytes (with bit 7: byte by byte); bit 5 (HDLC_FRAME) = the payload is a
    frame body that the harness frames (length, HCS, FCS, flags; bit 6 the segmentation
    bit), so that mutations reach the state machine instead of failing the FCS. The upper
    layer answers a request with a reply whose length follows from the request: under 300
    bytes, or, when the request's first byte has bit 7 set, up to the whole reply view (so
    replies are segmented)."""
    if not data:
        return
    link = _hdlc_link(data[0])
    now = 1000
    sent = []
    for flags, payload in records(data[1:]):
        now += hdlc_step(flags)
        payload = _hdlc_payload(flags, payload)
        mv = memoryview(payload)
        n = len(payload)
        # arrival in pieces: bit 4 alone 5 bytes at a time, with bit 7 one byte at a time
        step = (1 if flags & 0x80 else 5) if flags & 0x10 else n
        start = 0
        stuck = 0
        while start < n:
            end = start + step if start + step < n else n
            used = link.feed(mv, start, end, now)
            if used < 0 or used > end - start:
                raise Violation("feed consumed %d of %d" % (used, end - start))
            start += used
            k = link.request_len()
            if k < 0 or k > len(link.request_view):
                raise Violation("request length %d" % k)
            if k:
                if flags & 8 or link.request_broadcast:
                    link.no_reply()
                else:
                    rv = link.reply_view()
                    req = link.request_view
                    if req[0] & 0x80:  # a long reply, in segments up to the whole view
                        m = ((req[0] << 8 | req[k - 1]) * 7) % (len(rv) + 1)
                    else:
                        m = (req[0] * 7 + req[k - 1]) % 300
                    pattern = bytes(req[:k]) * (m // k + 1)
                    rv[:m] = pattern[:m]
                    link.reply(m)
            _drain(link, sent)
            if used == 0:
                stuck += 1
                if stuck > 2:
                    raise Violation("hang: feed() makes no progress")
            else:
                stuck = 0
        link.tick(now)
        _drain(link, sent)
    return sent


# ------------------------------------------------------------------------------ wrapper
def wrapper_input(data):
    """Records: the payload is fed to the connection as it comes; flag bit 0: the upper layer
    answers nothing; bit 1: the transport drops (a fresh Conn on the pooled buffers, as
    ports.TcpConn.attach does)."""
    from dlms import wrapper

    tx = bytearray(wrapper.HEADER_LEN + 1024)
    conn = wrapper.Conn(max_apdu=1024, tx=tx)
    for flags, payload in records(data):
        if flags & 2:
            conn.no_reply()
            conn.state = wrapper.ST_HEADER
            conn.output_done()
        mv = memoryview(payload)
        n = len(payload)
        start = 0
        stuck = 0
        while start < n:
            used = conn.feed(mv, start, n)
            if used < 0 or used > n - start:
                raise Violation("feed consumed %d of %d" % (used, n - start))
            start += used
            if conn.broken:
                conn = wrapper.Conn(max_apdu=1024, tx=tx)  # the adapter closes it
                stuck = 0
                continue
            k = conn.request_len()
            if k < 0 or k > 1024:
                raise Violation("request length %d" % k)
            if k:
                if flags & 1:
                    conn.no_reply()
                else:
                    rv = conn.reply_view()
                    m = k if k < len(rv) else len(rv)
                    rv[:m] = conn.request_view[:m]
                    conn.reply(m)
                    out = conn.output_len()
                    if out != wrapper.HEADER_LEN + m:
                        raise Violation("output length")
                    conn.output_done()
            if used == 0:
                stuck += 1
                if stuck > 2:
                    raise Violation("hang: feed() makes no progress")
            else:
                stuck = 0


# ------------------------------------------------------------------------------ A-XDR
def _has_float(v):
    from dlms import axdr

    tag, x = v
    if tag in (axdr.FLOAT32, axdr.FLOAT64):
        return True
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        return any(_has_float(i) for i in x)
    if tag == axdr.COMPACT_ARRAY:
        return any(_has_float(i) for i in x[1])
    return False


def _norm_bits(v):
    """Bit-strings with their unused trailing bits cleared (the Writer clears them)."""
    from dlms import axdr

    tag, x = v
    if tag == axdr.BIT_STRING:
        data, nbits = x
        data = bytearray(data)
        if nbits & 7 and data:
            data[-1] &= (0xFF << (8 - (nbits & 7))) & 0xFF
        return (tag, (bytes(data), nbits))
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        return (tag, [_norm_bits(i) for i in x])
    if tag == axdr.COMPACT_ARRAY:
        return (tag, (x[0], [_norm_bits(i) for i in x[1]]))
    return v


def axdr_input(data):
    """Reader.data() and skip_data() must agree (both fail, or both consume the same bytes);
    a decoded value must encode again with Writer.data() and decode to the same value."""
    from dlms import axdr

    r1 = axdr.Reader(data)
    try:
        v = r1.data()
    except axdr.DecodeError:
        v = None
    r2 = axdr.Reader(data)
    try:
        r2.skip_data()
        skipped = True
    except axdr.DecodeError:
        skipped = False
    if (v is not None) != skipped or (skipped and r1.pos != r2.pos):
        raise Violation("data() and skip_data() disagree")
    if v is None:
        return
    buf = bytearray(len(data) * 2 + 16)
    w = axdr.Writer(buf)
    w.data(v)
    v2 = axdr.Reader(buf, 0, w.pos).data()
    if not _has_float(v) and _norm_bits(v) != v2:
        raise Violation("re-encoded value differs: %r / %r" % (v, v2))


# ------------------------------------------------------------------------------ ACSE
def acse_input(data):
    """The same bytes as AARQ, RLRQ and InitiateRequest; a parsed AARQ goes through the
    decision and the AARE for each client policy."""
    from cosem import objects
    from dlms import acse, axdr

    try:
        a = acse.parse_aarq(data, 0, len(data))
    except axdr.DecodeError:
        a = None
    try:
        acse.parse_rlrq(data, 0, len(data))
    except axdr.DecodeError:
        pass
    try:
        ir = acse.parse_initiate_request(data, 0, len(data))
    except axdr.DecodeError:
        ir = None
    if a is None:
        return
    if ir is None and a.user_info is not None and len(a.user_info):
        try:
            ir = acse.parse_initiate_request(a.user_info, 0, len(a.user_info))
        except axdr.DecodeError:
            ir = None
    for policy in (
            acse.Policy(mechanism=0, conformance=objects.CONFORMANCE),
            acse.Policy(mechanism=1, secret=b"12345678", conformance=objects.CONFORMANCE),
            acse.Policy(mechanism=5, app_context=3, conformance=objects.CONFORMANCE)):
        d = acse.evaluate(a, policy, ir)
        out = bytearray(512)
        acse.respond(axdr.Writer(out), a, d, policy, stoc=b"P6wRJ21F" if d.auth_pending
                     else None)


# ------------------------------------------------------------------------------ xDLMS
def xdlms_input(data):
    """decode_get / decode_set / decode_action on the bytes (only RequestError is
    documented); a decoded request must be internally consistent."""
    from dlms import xdlms

    req = xdlms.Request()
    for decode in (xdlms.decode_get, xdlms.decode_set, xdlms.decode_action):
        try:
            decode(data, len(data), req)
        except xdlms.RequestError:
            continue
        if not 0 <= req.count <= xdlms.MAX_LIST or req.count > len(req.refs):
            raise Violation("count %d" % req.count)
        if not 0 <= req.raw_start <= req.raw_end <= len(data):
            raise Violation("raw data window")


# ------------------------------------------------------------------------------ security
EK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))
DK = bytes(range(0x40, 0x50))
SERVER_TITLE = _unhex("4D4D4D0000BC614E")
CLIENT_TITLE = _unhex("4752580000000001")


class _Counter:
    def __init__(self, v=1):
        self.v = v

    def next(self):
        v = self.v
        self.v += 1
        return v


class _Guard:
    def __init__(self):
        self.last = {}

    def check_and_update(self, kid, ic):
        if ic <= self.last.get(kid, -1):
            return False
        self.last[kid] = ic
        return True


_KEYS = []


def _keys():
    if not _KEYS:
        from dlms import security

        _patch_gcm()
        _KEYS.append(security.Keys(EK, AK, bytes(range(0x60, 0x70))))
    return _KEYS[0]


def _client_ctx(ic=1, dk=None):
    """The client's side of suite 0: a Context whose "server" title is the client's, so
    that security.wrap protects requests as a client does."""
    from dlms import security

    return security.Context(_keys(), CLIENT_TITLE, SERVER_TITLE, _Counter(ic), _Guard(),
                            dedicated_key=dk)


def protect(plain, kind, sc=0x30, ic=1, dk=None):
    """A request APDU protected as a client would (kind: security.GLO, DED, GENERAL_GLO,
    GENERAL_DED), with a valid tag."""
    from dlms import security

    c = _client_ctx(ic, dk)
    out = bytearray(len(plain) + 64)
    n = security.wrap(c, security.Protection(kind, sc), plain, 0, len(plain), out)
    return bytes(out[:n]) if n > 0 else b""


def security_input(data):
    """First byte: bits 0..1 mode (0: the bytes as a ciphered APDU, 1: as a
    glo-initiate-request, 2: the rest is plaintext that the harness protects with a valid
    tag first (bits 2..3 the kind, bit 4 SC 0x10), 3: as f(StoC) for hls_verify);
    bit 5 the meter's policy requires authentication and encryption; bit 6 a dedicated
    key is in force. Only ERR_* results are documented: no exception."""
    from dlms import security

    if not data:
        return
    mode = data[0] & 3
    rest = data[1:]
    dk = DK if data[0] & 0x40 else None
    ctx = security.Context(_keys(), SERVER_TITLE, CLIENT_TITLE, _Counter(7), _Guard(),
                           dedicated_key=dk, require=0x30 if data[0] & 0x20 else 0)
    if mode == 2:
        kinds = (security.GLO, security.DED, security.GENERAL_GLO, security.GENERAL_DED)
        rest = protect(rest, kinds[(data[0] >> 2) & 3], 0x10 if data[0] & 0x10 else 0x30,
                       dk=DK)
    if mode == 3:
        r = security.hls_verify(ctx, b"P6wRJ21F", rest, 0, len(rest))
        if r > 0:
            raise Violation("hls_verify returned %d" % r)
        return
    out = bytearray(len(rest))
    buf = bytearray(rest)
    ctx2 = security.Context(_keys(), SERVER_TITLE, CLIENT_TITLE, _Counter(7), _Guard(),
                            dedicated_key=dk, require=ctx.require)
    if mode == 1:
        n = security.unwrap_initiate(ctx, rest, 0, len(rest), out)
        m = security.unwrap_initiate(ctx2, buf, 0, len(buf))
    else:
        n = security.unwrap(ctx, rest, 0, len(rest), out)
        m = security.unwrap(ctx2, buf, 0, len(buf))
    if n != m:
        raise Violation("unwrap into a buffer %d, in place %d" % (n, m))
    if n >= 0:
        if n > len(rest) or not 0 <= ctx.rx.start <= len(rest):
            raise Violation("plain length %d" % n)
        # a reply to it must be protected the same way, or refused with an ERR_* code
        reply = bytearray(b"\xc4\x01\xc1\x00\x09\x02\x41\x42")
        o = bytearray(128)
        r = security.wrap(ctx, ctx.rx, reply, 0, len(reply), o)
        if r == 0 or r > len(o):
            raise Violation("wrap returned %d" % r)


# ------------------------------------------------------------------------------ the device
class _StillRTC:
    def __init__(self):
        self.t = (2024, 1, 15, 0, 12, 30, 45, 670000)

    def datetime(self, t=None):
        if t is None:
            return self.t
        self.t = tuple(t)


class MemStore:
    """meter.store.Store's interface in RAM (the harness must not touch the disk per input)."""

    def __init__(self, on_save=None):
        self.records = {}
        self.on_save = on_save

    def save(self, name, version, payload):
        self.records[name] = (version, bytes(payload))
        if self.on_save is not None:
            self.on_save(name)

    def load(self, name, version):
        rec = self.records.get(name)
        return rec[1] if rec and rec[0] == version else None


class MemLog:
    """meter.profile_log.ProfileLog's interface in RAM (rows as bytes): the association
    harnesses rebuild the device per input, which real segment files would make slow. The
    ``profile`` target reads real segment files."""

    def __init__(self, name, row_size, entries):
        self.name = name
        self.row_size = row_size
        self.entries = entries
        self.rows = {}
        self.first = 0
        self.next = 0

    def start(self):
        s = self.next - self.entries
        return s if s > self.first else self.first

    def in_use(self):
        return self.next - self.start()

    def append(self, row):
        if len(row) != self.row_size:
            raise ValueError("row size")
        self.rows[self.next] = bytes(row)
        self.next += 1
        while self.next - self.first > self.entries + 4:
            self.rows.pop(self.first, None)
            self.first += 1

    def reset(self):
        self.rows = {}
        self.first = self.next

    def read(self, a, out=None):
        r = self.rows.get(a)
        return None if r is None else memoryview(r)

    def read_u32(self, a, off=0):
        r = self.rows.get(a)
        return None if r is None else struct.unpack_from(">I", r, off)[0]

    def last(self):
        return self.read(self.next - 1)

    def close(self):
        pass


class _FakeMetering:
    """app.Metering's interface with constant values (no chip, no engine)."""

    phases = 3

    def energy(self, quantity, phase):
        return lambda: 1000 * (quantity + 1) + phase

    def instant(self, name, phase):
        return lambda: 23000 + phase

    def power(self, importing):
        return lambda: 1234 if importing else 0

    def frequency(self):
        return lambda: 5000


IDENTITY = {"name": b"MMM0000012345678", "serial": b"12345678", "firmware": b"dlms-mpy 0.1.0",
            "system_title": SERVER_TITLE}
UTC0 = 757000000  # 2023-12-27, seconds since 2000


def build_device(dirty=None):
    """The meter's logical device as app.App composes it (security with the development
    keys, history on RAM rings with a few rows, constant measurements), without a board.
    ``dirty``: a one-element list set to True whenever anything persistent changes (a store
    record, a capture, a setting, the clock, an event)."""
    import app
    from cosem import objects
    from cosem.hdlc_setup import HdlcSettings
    from meter.clock import Clock
    from meter.history import History

    _patch_self_test()
    _patch_gcm()
    if dirty is None:
        dirty = [False]

    def mark(*_a):
        dirty[0] = True

    clock = Clock(_StillRTC())
    store = MemStore(mark)
    history = History(clock)

    def on_event(kind, detail=0):  # app.App.event: the event log
        history.event(kind, detail)
        mark()

    sec = app.Security(store, SERVER_TITLE,
                       lambda n: bytes((0x50 + i) & 0xFF for i in range(n)), on_event)
    logs = {"load": MemLog("lp", 22, 16), "billing": MemLog("bill", 21, 8),
            "events": MemLog("ev", 6, 8)}
    hdlc_settings = HdlcSettings(info_cap=128)
    port_settings = objects.default_port_settings(IDENTITY)
    dev = objects.build(clock, IDENTITY, hdlc_settings=hdlc_settings,
                        port_settings=port_settings, security=sec,
                        metering=_FakeMetering(), history=history, logs=logs)
    sec.setup.on_change.append(sec.changed)
    load, billing, events = dev.profiles
    history.load, history.billing, history.events = load, billing, events
    for prof in (load, billing, events):
        prof.now = lambda: (clock.utc()[0], 0)
    history.start(clock.utc()[0])
    for i in range(6):
        load.capture(UTC0 + 900 * i, 0)
        events.capture(UTC0 + 900 * (5 - i), 0)  # the event log is not ordered
    billing.capture(UTC0, 0)
    billing.capture(UTC0 + 86400, 0)
    sec.resp = bytearray(dev.max_pdu + 64)
    dev.on_event.append(on_event)
    for prof in (load, billing, events):
        prof.on_capture.append(mark)
        prof.on_reset.append(mark)
        prof.on_period_change.append(mark)
    clock.on_change.append(mark)
    hdlc_settings.on_change.append(mark)
    port_settings.on_change.append(mark)
    dev.on_secret_change.append(mark)
    dirty[0] = False
    return dev


_CACHE = {}


def _snapshot(dev):
    """What a management session changes on every input without a hook: the client-counter
    guard, the meter's counter reservation and their records."""
    sec = dev.security
    return (list(sec.guard.last), list(sec.guard.valid), sec.tx.value, sec.tx.bound,
            dict(sec.store.records), sec.setup.client_title)


def _restore(dev, snap):
    sec = dev.security
    sec.guard.last[:] = snap[0]
    sec.guard.valid[:] = snap[1]
    sec.tx.value, sec.tx.bound = snap[2], snap[3]
    sec.store.records = dict(snap[4])
    sec.setup.client_title = snap[5]


def _clock_object(dev):
    for obj, _rights in dev.entries:
        if obj.CLASS_ID == 8:
            return obj
    return None


def device(role):
    """A device in its pristine state, reused while nothing persistent changed: public and
    reader clients cannot write, so theirs changes only with an event or a capture; for the
    management client the counters it moves on every input are restored from a snapshot,
    and anything else it changed (a hook fired, a store record other than the counters, a
    clock preset) makes a fresh device. DLMS_FUZZ_FRESH=1: a fresh device for every input.
    """
    if _env("DLMS_FUZZ_FRESH"):
        return build_device()
    c = _CACHE.get(role)
    if c is not None and not c[1][0] and (c[3] is None or c[3].preset is None):
        if c[2] is not None:
            _restore(c[0], c[2])
        return c[0]
    dirty = [False]
    dev = build_device(dirty)
    store = dev.security.store
    hook = store.on_save

    def on_save(name):
        if name not in ("icrx", "ictx"):
            hook(name)

    store.on_save = on_save
    _CACHE[role] = (dev, dirty, _snapshot(dev), _clock_object(dev))
    return dev


AARQ_PUBLIC = _unhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
INITIATE = _unhex("01000000065F1F0400007E1F04B0")
CTOS = b"K56iVagY"


def _ber(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    elif n < 0x100:
        head = bytes([tag, 0x81, n])
    else:
        head = bytes([tag, 0x82, n >> 8, n & 0xFF])
    return head + bytes(content)


def mgmt_aarq(initiate=INITIATE, ctos=CTOS, ic=1, title=CLIENT_TITLE):
    """A management AARQ as a client builds it: ciphered LN context, calling-AP-title,
    HLS-GMAC, CtoS, and the InitiateRequest as glo-initiate-request under the global key."""
    from dlms import security

    c = _client_ctx(ic)
    out = bytearray(len(initiate) + 64)
    n = security._seal(c, 0x21, False, c.keys.gcm, 0x30, initiate, 0, len(initiate), out, 0)
    ui = bytes(out[:n])
    body = (_unhex("A109060760857405080103") + _ber(0xA6, _ber(0x04, title))
            + _unhex("8A0207808B0760857405080205") + _ber(0xAC, _ber(0x80, ctos))
            + _ber(0xBE, _ber(0x04, ui)))
    return _ber(0x60, body)


def hls_pass3(stoc, ic, invoke=0xC1):
    """reply_to_HLS_authentication(f(StoC)) as a plain ACTION-Request (to be protected)."""
    from dlms import security

    tag = security.gmac_tag(_keys(), CLIENT_TITLE, ic, stoc)
    f = b"\x10" + struct.pack(">I", ic) + bytes(tag)
    return (bytes([0xC3, 0x01, invoke, 0x00, 0x0F]) + bytes([0, 0, 40, 0, 0, 255])
            + b"\x01\x01\x09" + bytes([len(f)]) + f)


# management record modes (flags bits 4..6)
M_RAW = 0
M_AARQ = 1  # payload: InitiateRequest to cipher (empty: the default one)
M_HLS = 2  # pass 3 with the right f(StoC); flags bit 7: as general-glo (DB), else glo (CB)
M_GLO = 3  # payload: a plain request, protected glo (C8/C9/CB)
M_GENERAL = 4  # ... protected general-glo-ciphering (DB)
M_DED = 5  # ... protected ded (D0/D1/D3) under the dedicated key of the AARQ (if any)
M_AUTH = 6  # ... glo with SC 0x10 (authenticated only)
M_REPLAY = 7  # the last protected APDU again, same counter


# ------------------------------------------------------------------------------ responses
def _expect(cond, what, apdu):
    if not cond:
        raise Violation("malformed response (%s): %s" % (what, _hex(apdu[:64])))


def _get_data_result(r, apdu):
    """Get-Data-Result: 00 Data | 01 Data-Access-Result."""
    c = r.u8()
    if c == 0:
        r.data()
    else:
        _expect(c == 1, "data-result choice", apdu)
        r.u8()


def check_plain_response(apdu):
    """A response APDU the meter sent in plain must have the shape of its kind (Green Book
    ASN.1): every length right, every Data decodable, nothing left over."""
    from dlms import axdr, ber

    n = len(apdu)
    tag = apdu[0]
    if tag in (0x61, 0x63):
        try:
            _t, _s, e = ber.read_tlv(apdu, 0, n)
        except axdr.DecodeError:
            e = -1
        _expect(e == n, "BER length", apdu)
        return
    if tag == 0xD8:
        _expect(n == 3, "exception-response length", apdu)
        return
    r = axdr.Reader(apdu)
    try:
        r.u8()
        choice = r.u8()
        r.u8()  # invoke-id-and-priority
        if tag == 0xC4:
            if choice == 1:
                _get_data_result(r, apdu)
            elif choice == 2:
                r.u8()
                r.u32()
                c = r.u8()
                if c == 0:
                    r.raw(r.length())
                else:
                    _expect(c == 1, "datablock choice", apdu)
                    r.u8()
            elif choice == 3:
                for _ in range(r.length()):
                    _get_data_result(r, apdu)
            else:
                _expect(False, "GET-Response choice", apdu)
        elif tag == 0xC5:
            if choice == 1:
                r.u8()
            elif choice == 2:
                r.u32()
            elif choice == 3:
                r.u8()
                r.u32()
            elif choice in (4, 5):
                for _ in range(r.length()):
                    r.u8()
                if choice == 4:
                    r.u32()
            else:
                _expect(False, "SET-Response choice", apdu)
        elif tag == 0xC7:
            if choice == 1:
                r.u8()
                if r.u8():
                    _get_data_result(r, apdu)
            elif choice == 2:
                r.u8()
                r.u32()
                r.raw(r.length())
            elif choice == 3:
                for _ in range(r.length()):
                    r.u8()
                    if r.u8():
                        _get_data_result(r, apdu)
            elif choice == 4:
                r.u32()
            else:
                _expect(False, "ACTION-Response choice", apdu)
        else:
            _expect(False, "response tag", apdu)
    except axdr.DecodeError as e:
        _expect(False, "truncated: %s" % (e,), apdu)
    _expect(r.remaining() == 0, "%d bytes left over" % r.remaining(), apdu)


_GLO_RESPONSES = (0xCC, 0xCD, 0xCF)
_DED_RESPONSES = (0xD4, 0xD5, 0xD7)


def open_response(apdu, gcm, ded, last_ic):
    """The plaintext of a protected response, its tag checked with the keys the harness
    knows (gcm: the global key's, ded: the dedicated key's or None) and its invocation
    counter above last_ic[0] (the meter never repeats one). Returns None when the response
    was not protected (a plain exception-response)."""
    n = len(apdu)
    tag = apdu[0]
    if tag == 0xD8 or tag == 0x61 or tag == 0x63:
        return None
    p = 1
    if tag in (0xDB, 0xDC):
        _expect(n > 10 and apdu[1] == 8 and bytes(apdu[2:10]) == SERVER_TITLE,
                "general-ciphering title", apdu)
        p = 10
    else:
        _expect(tag in _GLO_RESPONSES or tag in _DED_RESPONSES, "protected response tag",
                apdu)
    ln = apdu[p]
    p += 1
    if ln & 0x80:
        k = ln & 0x7F
        ln = 0
        for i in range(k):
            ln = (ln << 8) | apdu[p + i]
        p += k
    _expect(p + ln == n and ln >= 17, "ciphered length", apdu)
    sc = apdu[p]
    ic = (apdu[p + 1] << 24) | (apdu[p + 2] << 16) | (apdu[p + 3] << 8) | apdu[p + 4]
    _expect(ic > last_ic[0], "meter invocation counter %d not above %d" % (ic, last_ic[0]),
            apdu)
    last_ic[0] = ic
    g = ded if tag in _DED_RESPONSES or tag == 0xDC else gcm
    if g is None:
        return None  # a key the harness does not hold
    iv = SERVER_TITLE + struct.pack(">I", ic)
    body = apdu[p + 5:]
    ak = _keys().ak
    if sc == 0x30:
        out = bytearray(len(body))
        k = g.decrypt(iv, [bytes([sc]), ak], body, out)
        _expect(k >= 0, "GCM tag of the response", apdu)
        plain = bytes(out[:k])
    else:
        _expect(sc == 0x10, "response security control %02x" % sc, apdu)
        plain = bytes(body[:-12])
        k = g.decrypt(iv, [bytes([sc]), ak, plain], body[-12:], bytearray(0))
        _expect(k >= 0, "GMAC of the response", apdu)
    _expect(plain and plain[0] in (0xC4, 0xC5, 0xC7, 0xD8), "protected plain tag",
            plain or b"-")
    if tag not in (0xDB, 0xDC):
        _expect(plain[0] + 8 == tag or plain[0] + 0x10 == tag, "envelope/plain tag", apdu)
    return plain


def association_input(data, role):
    """One association driven like ports.HdlcPort/TcpConn drive it. Records: flags bit 0 =
    from another client SAP than ``role``; bit 1 = the reply buffer of a TCP connection
    (1024) instead of an HDLC port's (1088); bit 2 = the transport is lost before this
    record (reset()); for the management role bits 4..6 are a mode (M_*), bit 7 its variant.
    """
    from dlms import association, security

    dev = device(role)
    a = association.Association(dev)
    out = bytearray(1088)
    ic = 1
    last = b""
    dk = None
    meter_ic = [0]
    other = 99 if role != 16 else 32
    for flags, payload in records(data):
        if flags & 4:
            a.reset()
        apdu = payload
        if role == 1:
            mode = (flags >> 4) & 7
            if mode == M_AARQ:
                init = payload if payload[:1] == b"\x01" else INITIATE
                apdu = mgmt_aarq(init, ic=ic)
                ic += 1
                dk = None
                if init[1:2] == b"\x01" and init[2:3] == b"\x10":
                    dk = bytes(init[3:19])
            elif mode == M_HLS:
                stoc = a.stoc if a.stoc is not None else b"\x00" * 16
                plain = hls_pass3(stoc, ic)
                kind = security.GENERAL_GLO if flags & 0x80 else security.GLO
                apdu = protect(plain, kind, ic=ic)
                ic += 1
            elif mode in (M_GLO, M_GENERAL, M_DED, M_AUTH) and payload:
                kind = {M_GLO: security.GLO, M_GENERAL: security.GENERAL_GLO,
                        M_DED: security.DED, M_AUTH: security.GLO}[mode]
                if mode == M_DED and (dk is None or len(dk) != 16):
                    kind = security.GLO
                apdu = protect(payload, kind, 0x10 if mode == M_AUTH else 0x30, ic=ic,
                               dk=dk if kind == security.DED else None)
                ic += 1
            elif mode == M_REPLAY:
                apdu = last
            if mode not in (M_RAW, M_REPLAY):
                last = apdu
        buf = bytearray(apdu)  # ports hand over a writable view of their request buffer
        view = memoryview(out)[:1024 if flags & 2 else 1088]
        n = a.handle(other if flags & 1 else role, buf, len(buf), view)
        if not isinstance(n, int) or n < 0 or n > len(view):
            raise Violation("handle() returned %r" % (n,))
        if n and a.client_max_pdu and n > max(a.client_max_pdu, 64) + 64:
            raise Violation("response of %d bytes above the client's max PDU %d"
                            % (n, a.client_max_pdu))
        if n:
            resp = bytes(out[:n])
            if resp[0] in (0x61, 0x63, 0xC4, 0xC5, 0xC7, 0xD8):
                check_plain_response(resp)
            elif role == 1:
                keys_same = dev.security.keystore.generation == 0
                ded = None
                if dk is not None and a.sec is not None and a.sec._ded is not None:
                    ded = _ded_gcm(dk)
                plain = open_response(resp, _keys().gcm if keys_same else None, ded, meter_ic)
                if plain is not None:
                    check_plain_response(plain)
            else:
                raise Violation("response tag %02x to a plain client" % resp[0])


_DED = {}


def _ded_gcm(dk):
    g = _DED.get(dk)
    if g is None:
        from dlms import security

        g = _DED[dk] = security.Gcm(dk)
    return g


def assoc_public_input(data):
    association_input(data, 16)


def assoc_reader_input(data):
    association_input(data, 32)


def assoc_mgmt_input(data):
    association_input(data, 1)


# ------------------------------------------------------------------------------ HDLC stack
def stack_hdlc_input(data):
    """HDLC bytes through a Link into an Association, wired as ports.HdlcPort does (the
    client SAP comes from the frames). Records: flags low 3 bits = time step; bits 5, 6 as
    for hdlc_input (the harness frames the payload)."""
    from dlms import association

    if not data:
        return
    link = _hdlc_link(data[0])
    a = association.Association(device(0))
    conn_id = link.connection_id
    now = 1000
    sent = []
    for flags, payload in records(data[1:]):
        now += hdlc_step(flags)
        payload = _hdlc_payload(flags, payload)
        mv = memoryview(payload)
        n = len(payload)
        start = 0
        stuck = 0
        while start < n:
            used = link.feed(mv, start, n, now)
            start += used
            if link.connection_id != conn_id:
                conn_id = link.connection_id
                a.reset()
            k = link.request_len()
            if k:
                if link.request_broadcast:
                    link.no_reply()
                else:
                    out = link.reply_view()
                    r = a.handle(link.request_client, link.request_view, k, out)
                    if r:
                        link.reply(r)
                    else:
                        link.no_reply()
            _drain(link, sent)
            if used == 0:
                stuck += 1
                if stuck > 2:
                    raise Violation("hang: feed() makes no progress")
            else:
                stuck = 0
        link.tick(now)
        if link.connection_id != conn_id:
            conn_id = link.connection_id
            a.reset()
        _drain(link, sent)


# ------------------------------------------------------------------------------ IEC 62056-21
_IEC21_STEPS = (0, 5, 19, 25, 199, 1000, 1600, 2500, 130000)  # ms between records
_IEC21_ADDRS = (b"", b"12345678", b"A 1", b"abcdefghijklmnopqrstuvwxyz012345")


def _check_ident(mode, out, settings):
    """The identification the meter writes: / XXX Z \\2 ident CR LF (Violation if not)."""
    m = mode.maker
    third = m[2] | 0x20 if settings.response_time == 0 else m[2] & 0xDF
    want = (b"/" + m[:2] + bytes([third, 0x30 + settings.prop_baud]) + b"\\2" + mode.ident
            + b"\r\n")
    if out != want:
        raise Violation("identification %r, expected %r" % (out, want))


def iec21_settings(c0, c1):
    """The Local port setup of an iec21 input's first two bytes (see iec21_input)."""
    from cosem.local_port_setup import LocalPortSettings

    return LocalPortSettings(default_mode=(c0 & 3) % 3, default_baud=(c1 >> 6) & 3,
                             prop_baud=((c0 >> 2) & 15) % 10, response_time=(c0 >> 6) & 1,
                             device_addr=_IEC21_ADDRS[(c1 >> 4) & 3])


def iec21_step(flags):
    """Milliseconds before an iec21 record."""
    return _IEC21_STEPS[(flags & 15) % len(_IEC21_STEPS)]


def iec21_input(data):
    """The optical port's sign-on (dlms.iec21.ModeE) in front of an HDLC link, wired as
    optical.OpticalPort does: sign-on bytes go to the state machine and to the link (a
    client may speak HDLC directly), after a completed option select the rest goes to HDLC,
    ``watch()`` returns to the sign-on when the session ends. First byte: Local port setup
    (bits 0-1 default_mode 0..2, bits 2-5 prop_baud 0..9, bit 6 response_time, bit 7 an
    8-bit line: the parity bit set on every sign-on character); second byte: bits 0-3 the
    HDLC link configuration (_hdlc_link), bits 4-5 the device address (_IEC21_ADDRS), bits
    6-7 default_baud. Records: flags low 4 bits = time step (_IEC21_STEPS), bit 4 = the
    payload arrives byte by byte, bit 5 (HDLC_FRAME) as for hdlc_input. Checked: the
    identification's bytes, the line settings in every state (sign-on: default_baud 7E1;
    after mode E: a rate no higher than the proposed one, 8N1), progress, the frames the
    link sends."""
    from dlms import iec21

    if len(data) < 2:
        return
    c0, c1 = data[0], data[1]
    settings = iec21_settings(c0, c1)
    mode = iec21.ModeE(settings, b"MMM", b"dlms-mpy 0.1.0")
    link = _hdlc_link(c1 & 15)
    now = 1000
    mode.start(now)
    signon = (iec21.BAUDS[settings.default_baud], 7, 0)
    sent = []
    via_e = [False]  # in HDLC after a completed option select (not directly)

    def check_line():
        line = (mode.baud, mode.bits, mode.parity)
        if not 0 <= mode.state <= iec21.ST_HDLC:
            raise Violation("state %r" % mode.state)
        if mode.state != iec21.ST_HDLC:
            via_e[0] = False
            if line != signon:
                raise Violation("sign-on at %r, expected %r" % (line, signon))
        elif via_e[0]:
            if mode.bits != 8 or mode.parity is not None:
                raise Violation("HDLC after mode E at %r" % (line,))
            if mode.baud not in iec21.BAUDS[:settings.prop_baud + 1]:
                raise Violation("rate %d above the proposed one" % mode.baud)

    def emit():
        k = mode.output_len()
        if k:
            if k > len(mode.output_view):
                raise Violation("identification length %d" % k)
            _check_ident(mode, bytes(mode.output_view[:k]), settings)
            mode.output_done()

    def service():
        k = link.request_len()
        if k:
            if link.request_broadcast:
                link.no_reply()
            else:
                rv = link.reply_view()
                m = (link.request_view[0] * 7) % (min(200, len(rv)) + 1)
                rv[:m] = bytes(m)
                link.reply(m)
        _drain(link, sent)

    def to_link(mv, start, end):
        guard = 0
        while start < end:
            used = link.feed(mv, start, end, now)
            if used <= 0 or used > end - start:
                guard += 1
                if used < 0 or used > end - start or guard > 2:
                    raise Violation("link feed %d of %d" % (used, end - start))
            start += used
            service()

    for flags, payload in records(data[2:]):
        now += iec21_step(flags)
        payload = _hdlc_payload(flags, payload)
        if c0 & 0x80 and not flags & HDLC_FRAME:
            payload = bytes(b | 0x80 for b in payload)
        mv = memoryview(payload)
        n = len(payload)
        step = 1 if flags & 0x10 else n
        start = 0
        while start < n:
            end = start + step if start + step < n else n
            if mode.state == iec21.ST_HDLC:
                to_link(mv, start, end)
                start = end
                mode.watch(link, now)
            else:
                before = mode.switches
                k = mode.feed(mv, start, end, now)
                if k <= 0 or k > end - start:
                    raise Violation("sign-on feed %d of %d" % (k, end - start))
                rx = link.frames_rx_ok
                to_link(mv, start, start + k)
                if link.frames_rx_ok != rx and mode.state != iec21.ST_HDLC:
                    mode.direct(now)
                start += k
                emit()
                if mode.switches != before:
                    via_e[0] = True
                if mode.state == iec21.ST_HDLC:
                    mode.watch(link, now)
            check_line()
        if mode.state != iec21.ST_HDLC:
            mode.tick(now)
            emit()
        link.tick(now)
        _drain(link, sent)
        mode.watch(link, now)
        check_line()
    return sent


# ------------------------------------------------------------------------------ profiles
_PROFILES = []
PROFILE_DIR = "/tmp/dlms-fuzz-profile-" + _hex(os.urandom(4))


def _fresh_dir(d):
    try:
        os.mkdir(d)
    except OSError:
        for name in os.listdir(d):
            os.remove(d + "/" + name)


def _profiles():
    """The three profiles of the meter (columns as objects.add_history builds them) on real
    segment files (meter.profile_log) with rows; built once per process, only read."""
    if _PROFILES:
        return _PROFILES
    from cosem import objects
    from meter.clock import Clock
    from meter.history import History
    from meter.profile_log import ProfileLog

    _fresh_dir(PROFILE_DIR)
    clock = Clock(_StillRTC())
    history = History(clock)
    logs = {"load": ProfileLog(PROFILE_DIR, "lp", 22, 40, seg_rows=8),
            "billing": ProfileLog(PROFILE_DIR, "bill", 21, 6, seg_rows=2),
            "events": ProfileLog(PROFILE_DIR, "ev", 6, 16, seg_rows=4)}
    dev = objects.LogicalDevice(IDENTITY["name"])
    load, billing, events = objects.add_history(dev, clock, history, logs, _FakeMetering())
    for i in range(44):  # more than the window: the oldest rows are outside it
        load.capture(UTC0 + 900 * i, 1 if i == 3 else 0)
    for i in range(8):
        billing.capture(UTC0 + 86400 * i, 0)
    for i in range(20):  # times go back after a clock setting
        events.capture(UTC0 + 600 * ((i * 7) % 11), 0)
    _PROFILES.extend((load, billing, events))
    return _PROFILES


def profile_input(data):
    """A GET-Request; every attribute reference with selective access on a Profile Generic
    buffer (attribute 2) goes to that profile (its OBIS, else the third OBIS byte picks
    one), as association._open_value calls it. The answer must be a Data-Access-Result or
    a generator that streams every row through a scratch writer like xdlms.Pump's
    (BufferFull there is documented: Pump answers other-reason) and never raises."""
    from dlms import axdr, xdlms

    req = xdlms.Request()
    try:
        xdlms.decode_get(data, len(data), req)
    except xdlms.RequestError:
        return
    profs = _profiles()
    scratch = bytearray(xdlms.SCRATCH_SIZE)
    for i in range(req.count):
        ref = req.refs[i]
        prof = None
        for p in profs:
            if p.ln == bytes(ref.obis):
                prof = p
        if prof is None:
            prof = profs[ref.obis[2] % 3]
        w = axdr.Writer(scratch)
        res = prof.get(2, w, None, ref)
        if isinstance(res, int):
            if res < 0 or res > 255:
                raise Violation("Data-Access-Result %d" % res)
            continue
        steps = 0
        for _ in res:
            w.reset()
            steps += 1
            if steps > 10000:
                raise Violation("hang: endless buffer")
        # a generator that ended early by BufferFull propagates it to the Pump: documented
        # (the pump catches it); any other exception reaches the fuzzer


TARGETS = {
    "hdlc": hdlc_input,
    "wrapper": wrapper_input,
    "axdr": axdr_input,
    "acse": acse_input,
    "xdlms": xdlms_input,
    "security": security_input,
    "assoc_public": assoc_public_input,
    "assoc_reader": assoc_reader_input,
    "assoc_mgmt": assoc_mgmt_input,
    "profile": profile_input,
    "stack_hdlc": stack_hdlc_input,
    "iec21": iec21_input,
}

# exceptions a target documents (the fuzzer catches them; anything else is a crash)
DOCUMENTED = {
    "profile": ("BufferFull",),
}


def run_one(name, data):
    """Run one input through a target; documented exceptions are swallowed."""
    from dlms import axdr

    try:
        TARGETS[name](data)
    except axdr.BufferFull:
        if "BufferFull" not in DOCUMENTED.get(name, ()):
            raise
