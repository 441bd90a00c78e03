"""Black-box tests of the virtual meter's link layers and ACSE, written from the standards
with raw bytes (no client library): HDLC (IEC 62056-46 / ISO 13239 frame format type 3) on
the meter's pseudo-terminal and the TCP wrapper (IEC 62056-47) on its TCP port.

The HDLC frames are built by a small helper below with its own CRC-16/X.25 (written from
the spec, independent of firmware/dlms/fcs.py); the AARQ/AARE bytes come from
shared/vectors/dlms-vectors.md.

One meter process serves the whole module (module-scoped fixture).
"""

import os
import select
import socket
import sys
import time
import tty

import pytest

import hil
import running_meter as vm  # noqa: E402
vmeter = vm.vmeter  # the module-scoped pytest fixture


# ====================================================================== HDLC helpers
def crc16_x25(data):
    """CRC-16/X.25 (ISO 13239 FCS): reflected poly 0x1021 (0x8408), init 0xFFFF, xorout
    0xFFFF. Returned as an int; on the wire it goes least significant byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _fcs_bytes(data):
    return crc16_x25(data).to_bytes(2, "little")


FLAG = 0x7E
# the meter's address: upper (logical) 1, lower (physical) 17 unless HIL options say otherwise
SRV_2 = hil.server_address(2)  # 02 23
SRV_1 = hil.server_address(1)  # 03: logical only
SRV_4 = hil.server_address(4)  # 00 02 00 23
CLIENT_PUBLIC = 0x21  # client SAP 16
CLIENT_READER = 0x41  # client SAP 32

SNRM = 0x93  # SNRM + P
DISC = 0x53  # DISC + P
UA = 0x73  # UA + F
DM = 0x1F  # DM + F
FRMR = 0x97  # FRMR + F
LLC_REQ = b"\xe6\xe6\x00"
LLC_RSP = b"\xe6\xe7\x00"


def i_ctrl(ns, nr, pf=True):
    return ((nr & 7) << 5) | (0x10 if pf else 0) | ((ns & 7) << 1)


def rr_ctrl(nr):
    return ((nr & 7) << 5) | 0x11


def hdlc_frame(dst, src, ctrl, info=b"", segmented=False, bad_hcs=False, bad_fcs=False):
    """A complete frame with flags. dst: server address bytes; src: client address byte."""
    if isinstance(src, int):
        src = bytes([src])
    n = 2 + len(dst) + len(src) + 1 + 2
    if info:
        n += 2 + len(info)
    fmt = 0xA000 | (0x0800 if segmented else 0) | n
    body = fmt.to_bytes(2, "big") + dst + src + bytes([ctrl])
    if info:
        hcs = bytearray(_fcs_bytes(body))
        if bad_hcs:
            hcs[0] ^= 0x01
        body += bytes(hcs) + info
    fcs = bytearray(_fcs_bytes(body))
    if bad_fcs:
        fcs[1] ^= 0x80
    return bytes([FLAG]) + body + bytes(fcs) + bytes([FLAG])


class Frame:
    def __init__(self, raw):
        self.raw = raw  # without the flags
        fmt = (raw[0] << 8) | raw[1]
        self.format_type = fmt >> 12
        self.segmented = bool(fmt & 0x0800)
        self.length = fmt & 0x07FF
        i = 2
        self.dst, i = _address(raw, i)
        self.src, i = _address(raw, i)
        self.ctrl = raw[i]
        i += 1
        self.hcs_ok = True
        self.info = b""
        if len(raw) > i + 2:
            self.hcs_ok = _fcs_bytes(raw[:i]) == raw[i:i + 2]
            self.info = raw[i + 2:-2]
        self.fcs_ok = _fcs_bytes(raw[:-2]) == raw[-2:]

    @property
    def is_i(self):
        return self.ctrl & 1 == 0

    @property
    def ns(self):
        return (self.ctrl >> 1) & 7

    @property
    def nr(self):
        return (self.ctrl >> 5) & 7

    @property
    def pf(self):
        return bool(self.ctrl & 0x10)

    def __repr__(self):
        return "Frame(%s)" % self.raw.hex()


def _address(raw, i):
    start = i
    while i < len(raw) and not raw[i] & 1:
        i += 1
    i += 1
    return bytes(raw[start:i]), i


def ua_params(info):
    """Parse a UA/SNRM information field (ISO 13239 parameter negotiation, format 81 80)."""
    assert info[0] == 0x81 and info[1] == 0x80, "format/group id: %s" % info.hex()
    assert info[2] == len(info) - 3, "group length %d vs %d: %s" % (info[2], len(info) - 3, info.hex())
    out = {}
    i = 3
    while i < len(info):
        pid, ln = info[i], info[i + 1]
        out[pid] = int.from_bytes(info[i + 2:i + 2 + ln], "big")
        i += 2 + ln
    return out


class Pty:
    """The meter's pseudo-terminal, opened raw and non-blocking; a length-driven frame
    reader (no byte stuffing, see dlms-vectors 2)."""

    def __init__(self, path):
        self.ser = None
        if hil.enabled():  # a real serial port: pyserial sets the baud rate, 8N1, raw
            self.ser = hil.open_serial(path)
            self.fd = self.ser.fileno()
        else:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(self.fd)
        self.buf = bytearray()
        self.drain()

    def close(self):
        if self.ser is not None:
            self.ser.close()
        else:
            os.close(self.fd)

    def write(self, data):
        view = memoryview(bytes(data))
        while view:
            try:
                k = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)
                continue
            view = view[k:]

    def _fill(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            b = os.read(self.fd, 4096)
        except BlockingIOError:
            return False
        self.buf += b
        return bool(b)

    def drain(self, quiet=0.05):
        """Discard whatever arrives until the line is quiet; return it."""
        got = bytearray()
        while self._fill(quiet):
            got += self.buf
            self.buf.clear()
        got += self.buf
        self.buf.clear()
        return bytes(got)

    def recv_frame(self, timeout=3.0):
        """The next complete frame (FCS not checked here), or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                return f
            if not self._fill(deadline - time.monotonic()):
                if time.monotonic() >= deadline:
                    return None

    def _parse(self):
        buf = self.buf
        while buf and buf[0] != FLAG:
            del buf[0]
        while len(buf) >= 2 and buf[1] == FLAG:  # shared/idle flags
            del buf[0]
        if len(buf) < 3:
            return None
        n = ((buf[1] << 8) | buf[2]) & 0x07FF
        if len(buf) < n + 2:
            return None
        if buf[n + 1] != FLAG:
            raise AssertionError("frame not closed by a flag: %s" % bytes(buf[:n + 2]).hex())
        raw = bytes(buf[1:n + 1])
        del buf[:n + 1]  # keep the closing flag: it may open the next frame
        return Frame(raw)

    def expect_silence(self, t=0.5):
        got = bytearray()
        end = time.monotonic() + t
        while time.monotonic() < end:
            if self._fill(end - time.monotonic()):
                got += self.buf
                self.buf.clear()
        assert not got, "expected no answer, got %s" % bytes(got).hex()


class Hdlc:
    """A raw HDLC client (secondary station = the meter) with sequence numbering."""

    def __init__(self, path, client=CLIENT_PUBLIC, server=SRV_2):
        self.pty = Pty(path)
        self.client = client
        self.server = server
        self.vs = 0
        self.vr = 0

    def close(self):
        try:
            self.pty.write(hdlc_frame(self.server, self.client, DISC))
            self.pty.recv_frame(1.0)
            self.pty.drain()
        finally:
            self.pty.close()

    def send(self, ctrl, info=b"", **kw):
        self.pty.write(hdlc_frame(self.server, self.client, ctrl, info, **kw))

    def recv(self, timeout=3.0):
        f = self.pty.recv_frame(timeout)
        assert f is not None, "no frame from the meter within %.1f s" % timeout
        assert f.fcs_ok and f.hcs_ok, "bad HCS/FCS from the meter: %r" % f
        assert f.format_type == 0xA, "not frame format type 3: %r" % f
        return f

    def command(self, ctrl, info=b"", timeout=3.0):
        self.send(ctrl, info)
        return self.recv(timeout)

    def snrm(self, info=b""):
        f = self.command(SNRM, info)
        assert f.ctrl == UA, "SNRM not answered by UA: %r" % f
        self.vs = self.vr = 0
        return f

    def disc(self):
        return self.command(DISC)

    def request(self, apdu, timeout=3.0, frames=None):
        """Send an APDU in one I-frame (LLC E6 E6 00), collect the whole (possibly
        segmented) response, return its APDU (LLC E6 E7 00 checked and stripped)."""
        self.send(i_ctrl(self.vs, self.vr), LLC_REQ + apdu)
        self.vs = (self.vs + 1) & 7
        data = b""
        while True:
            f = self.recv(timeout)
            if frames is not None:
                frames.append(f)
            assert f.is_i, "expected an I-frame, got %r" % f
            assert f.dst == bytes([self.client]) and f.src == self.server, f
            assert f.ns == self.vr, "N(S) %d, expected %d: %r" % (f.ns, self.vr, f)
            assert f.nr == self.vs, "N(R) %d, expected %d: %r" % (f.nr, self.vs, f)
            self.vr = (self.vr + 1) & 7
            data += f.info
            if not f.segmented:
                break
            assert f.pf, "segment without the final bit (window 1): %r" % f
            self.send(rr_ctrl(self.vr))
        assert data.startswith(LLC_RSP), "response LLC: %s" % data[:3].hex()
        return data[3:]


# ====================================================================== TCP helpers
class Wrapper:
    """A raw IEC 62056-47 wrapper client."""

    def __init__(self, port, client=16, timeout=3.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = client
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def send(self, apdu, src=None, dst=1, version=1):
        src = self.client if src is None else src
        hdr = (version.to_bytes(2, "big") + src.to_bytes(2, "big") + dst.to_bytes(2, "big")
               + len(apdu).to_bytes(2, "big"))
        self.sock.sendall(hdr + apdu)

    def _recv_exact(self, n):
        out = b""
        self.sock.settimeout(self.timeout)
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise ConnectionError("closed by the meter after %r" % out)
            out += b
        return out

    def recv(self):
        hdr = self._recv_exact(8)
        assert hdr[0:2] == b"\x00\x01", "wrapper version: %s" % hdr.hex()
        assert hdr[2:4] == b"\x00\x01", "source wPort must be the server's (1): %s" % hdr.hex()
        assert int.from_bytes(hdr[4:6], "big") == self.client, "dest wPort: %s" % hdr.hex()
        n = int.from_bytes(hdr[6:8], "big")
        return self._recv_exact(n)

    def request(self, apdu):
        self.send(apdu)
        return self.recv()

    def expect_silence(self, t=0.5):
        self.sock.settimeout(t)
        try:
            b = self.sock.recv(100)
        except socket.timeout:
            return
        raise AssertionError("expected no answer, got %r" % b)

    def expect_closed(self, t=3.0):
        """The meter closes the connection (EOF or reset) within t seconds, unanswered."""
        self.sock.settimeout(t)
        try:
            b = self.sock.recv(100)
        except socket.timeout:
            raise AssertionError("the meter kept the connection open")
        except ConnectionResetError:
            return
        assert b == b"", "expected the connection closed, got data %s" % b.hex()


# ====================================================================== APDUs
H = bytes.fromhex
# dlms-vectors 3.1 / 3.2 / 3.3
AARQ_PUBLIC = H("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
AARQ_LLS_VECTOR = H("6036A1090607608574050801018A0207808B0760857405080201AC0A8008"
                    "3132333435363738BE10040E01000000065F1F0400007E1F04B0")


def lls_aarq(password):
    """dlms-vectors 3.2 with another password (calling-authentication-value [AC])."""
    body = (H("A1090607608574050801018A0207808B0760857405080201")
            + bytes([0xAC, len(password) + 2, 0x80, len(password)]) + password
            + H("BE10040E01000000065F1F0400007E1F04B0"))
    return bytes([0x60, len(body)]) + body


AARQ_LLS = lls_aarq(hil.PASSWORD)
AARQ_HLS5 = H("6036A1090607608574050801018A0207808B0760857405080205AC0A80084B35366956616759"
              "BE10040E01000000065F1F0400007E1F04B0")
# the same InitiateRequest with a client max PDU of 128
AARQ_PUBLIC_PDU128 = H("601DA109060760857405080101BE10040E01000000065F1F0400007E1F0080")
RLRQ = H("6203800100")
INVOKE = 0xC1


def get_normal(class_id, ln, attr, invoke=INVOKE):
    return (bytes([0xC0, 0x01, invoke]) + class_id.to_bytes(2, "big") + bytes(ln)
            + bytes([attr, 0x00]))


def get_next(block, invoke=INVOKE):
    return bytes([0xC0, 0x02, invoke]) + block.to_bytes(4, "big")


LN_LDN = bytes([0, 0, 42, 0, 0, 255])
LN_CLOCK = bytes([0, 0, 1, 0, 0, 255])
LN_ASSOC = bytes([0, 0, 40, 0, 0, 255])
LN_ASSOC_READER = bytes([0, 0, 40, 0, 2, 255])
GET_LDN = get_normal(1, LN_LDN, 2)


def ber_fields(apdu, tag):
    """Top-level BER TLVs of an ACSE APDU as {tag: value} (single-byte lengths only, which
    is all an AARE of this size uses)."""
    assert apdu[0] == tag, "APDU tag %02X, expected %02X: %s" % (apdu[0], tag, apdu.hex())
    assert apdu[1] == len(apdu) - 2, "APDU length %d vs %d: %s" % (apdu[1], len(apdu) - 2, apdu.hex())
    out = {}
    order = []
    i = 2
    while i < len(apdu):
        t, n = apdu[i], apdu[i + 1]
        assert n < 0x80, "long BER length in %s" % apdu.hex()
        out[t] = apdu[i + 2:i + 2 + n]
        order.append(t)
        i += 2 + n
    assert i == len(apdu), apdu.hex()
    out["order"] = order
    return out


def aare_result(aare):
    """(result, source, diagnostic, user_information) of an AARE (Green Book 9.3 ACSE)."""
    f = ber_fields(aare, 0x61)
    r = f[0xA2]
    assert r[:2] == b"\x02\x01" and len(r) == 3, r.hex()
    sd = f[0xA3]
    assert len(sd) == 5 and sd[1] == 3 and sd[2:4] == b"\x02\x01", sd.hex()
    source = {0xA1: 1, 0xA2: 2}[sd[0]]  # acse-service-user / acse-service-provider
    ui = f.get(0xBE)
    if ui is not None:
        assert ui[0] == 0x04 and ui[1] == len(ui) - 2, ui.hex()
        ui = ui[2:]
    return r[2], source, sd[4], ui


def parse_initiate_response(ui):
    """xDLMS InitiateResponse (no QoS, no dedicated key): (conformance, max_pdu, vaa)."""
    assert ui[0] == 0x08, "not an InitiateResponse: %s" % ui.hex()
    assert ui[1] == 0x00, "negotiated-quality-of-service present: %s" % ui.hex()
    assert ui[2] == 0x06, "negotiated DLMS version: %s" % ui.hex()
    assert ui[3:6] == b"\x5f\x1f\x04" and ui[6] == 0x00, "conformance block: %s" % ui.hex()
    assert len(ui) == 14, ui.hex()
    # conformance (bit string, 3 octets), server max receive PDU, VAA name (0x0007: LN)
    return int.from_bytes(ui[7:10], "big"), int.from_bytes(ui[10:12], "big"), ui[12:14]


# ====================================================================== fixtures
@pytest.fixture
def hdlc(vmeter):
    h = Hdlc(vmeter.serial)
    try:
        # start from NDM whatever the previous test left
        h.send(DISC)
        h.pty.recv_frame(0.5)
        h.pty.drain()
        yield h
    finally:
        h.close()


@pytest.fixture
def wrapper_conn(vmeter):
    conns = []

    def make(client=16):
        w = Wrapper(vmeter.tcp, client)
        conns.append(w)
        return w

    yield make
    for w in conns:
        try:
            w.close()
        except OSError:
            pass


def associate(transport, h_or_w, aarq=AARQ_PUBLIC):
    aare = h_or_w.request(aarq)
    res, source, diag, ui = aare_result(aare)
    assert (res, diag) == (0, 0), "association refused: %s" % aare.hex()
    return aare


# ====================================================================== helper self-tests
def test_crc_helper_matches_published_vectors():
    # dlms-vectors 2.1 (SNRM), 2.9 (jDLMS FCS list)
    assert hdlc_frame(H("0223"), CLIENT_PUBLIC, SNRM) == H("7EA00802232193BD647E")
    assert hdlc_frame(H("00020023"), CLIENT_PUBLIC, SNRM) == H("7EA00A00020023219318717E")
    assert lls_aarq(b"12345678") == AARQ_LLS_VECTOR
    assert [hil.server_address(n, 1, 17) for n in (1, 2, 4)] == [H("03"), H("0223"),
                                                                 H("00020023")]
    assert _fcs_bytes(H("A0199575546835E6E600C0018100080000010000FF0100")) == H("0DFD")
    assert _fcs_bytes(H("A01E7595966F67E6E700C4018100090C07D20C04030A060BFF007800")) == H("F330")
    ua = Frame(H("A023210002002373F6C58180140502008006020080070400000001080400000001CE6A"))
    assert ua.fcs_ok and ua.hcs_ok and ua.ctrl == UA and ua.src == H("00020023")
    assert ua_params(ua.info) == {5: 128, 6: 128, 7: 1, 8: 1}


# ====================================================================== HDLC: link
def test_bare_snrm_gets_ua_with_default_parameters(hdlc):
    f = hdlc.snrm()
    assert not f.segmented
    assert f.dst == bytes([CLIENT_PUBLIC]) and f.src == SRV_2, f
    assert f.pf
    # IEC 62056-46 6.4.4.4.3.2 defaults: max info field 128 both ways, window 1 both ways
    assert f.info, "UA without an information field: the client cannot learn the limits"
    assert ua_params(f.info) == {5: 128, 6: 128, 7: 1, 8: 1}, f.info.hex()
    d = hdlc.disc()
    assert d.ctrl == UA, d


@pytest.mark.parametrize("server", [SRV_1, SRV_2, SRV_4], ids=["1byte", "2byte", "4byte"])
def test_snrm_address_forms(vmeter, server):
    h = Hdlc(vmeter.serial, server=server)
    try:
        f = h.snrm()
        assert f.src == server and f.dst == bytes([CLIENT_PUBLIC]), f
        aare = h.request(AARQ_PUBLIC)
        assert aare_result(aare)[:3] == (0, 1, 0), aare.hex()
        assert h.disc().ctrl == UA
    finally:
        h.close()


def test_snrm_negotiation_40_42(hdlc):
    # dlms-vectors 3 "SNRM with max_info_rx 40 / tx 42": client TX 42 -> server RX 42;
    # client RX 40 -> server TX 40
    f = hdlc.snrm(H("818006 05012A 060128".replace(" ", "")))
    p = ua_params(f.info)
    assert (p.get(5), p.get(6), p.get(7), p.get(8)) == (40, 42, 1, 1), f.info.hex()
    # and the meter keeps to it: a long answer comes in segments of <= 40 info octets
    # and the meter keeps to it: the AARE (46 octets with the LLC) comes in segments of
    # <= 40 information octets
    frames = []
    aare = hdlc.request(AARQ_PUBLIC, frames=frames)
    assert aare_result(aare)[:3] == (0, 1, 0), aare.hex()
    for fr in frames:
        assert len(fr.info) <= 40, "info field %d > negotiated 40: %r" % (len(fr.info), fr)
    assert len(frames) >= 2 and frames[0].segmented, frames
    apdu = hdlc.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910"), apdu.hex()


def test_bad_fcs_is_dropped_and_link_still_serves(hdlc):
    hdlc.send(SNRM, bad_fcs=True)
    hdlc.pty.expect_silence(0.5)
    hdlc.snrm()
    associate("hdlc", hdlc)
    apdu = hdlc.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910"), apdu.hex()


def test_bad_hcs_is_dropped_and_link_still_serves(hdlc):
    hdlc.snrm()
    # an I-frame whose HCS is wrong but whose FCS is right over the (wrong) bytes
    hdlc.send(i_ctrl(0, 0), LLC_REQ + AARQ_PUBLIC, bad_hcs=True)
    hdlc.pty.expect_silence(0.5)
    # the dropped frame did not consume N(S)=0
    aare = hdlc.request(AARQ_PUBLIC)
    assert aare_result(aare)[:3] == (0, 1, 0), aare.hex()


# (with the default address 1/17: 02 25, 04 23, 00 02 00 25, 05)
@pytest.mark.parametrize("server", [
    hil.server_address(2, lower=hil.SERVER_PHYSICAL + 1),
    hil.server_address(2, upper=hil.SERVER_LOGICAL + 1),
    hil.server_address(4, lower=hil.SERVER_PHYSICAL + 1),
    hil.server_address(1, upper=hil.SERVER_LOGICAL + 1)],
    ids=["phys18", "logical2", "4byte-phys18", "1byte-logical2"])
def test_wrong_server_address_gets_no_answer(vmeter, server):
    h = Hdlc(vmeter.serial, server=server)
    try:
        h.send(SNRM)
        h.pty.expect_silence(0.5)
        h.server = SRV_2
        h.snrm()
    finally:
        h.close()


def test_i_frame_in_ndm_gets_dm(hdlc):
    # the fixture left the link disconnected (NDM)
    hdlc.send(i_ctrl(0, 0), LLC_REQ + AARQ_PUBLIC)
    f = hdlc.recv()
    assert f.ctrl == DM, "I-frame in NDM must be answered with DM (ISO 13239), got %r" % f
    assert f.dst == bytes([CLIENT_PUBLIC]) and f.src == SRV_2


def test_disc_twice_ua_then_dm(hdlc):
    hdlc.snrm()
    assert hdlc.disc().ctrl == UA
    f = hdlc.disc()
    assert f.ctrl == DM, "DISC in NDM must be answered with DM, got %r" % f


def test_overlong_frame_then_link_still_serves(hdlc):
    hdlc.snrm()  # max info field 128 (defaults)
    hdlc.send(i_ctrl(0, 0), LLC_REQ + bytes(300))
    f = hdlc.pty.recv_frame(1.0)
    if f is not None:
        # ISO 13239: FRMR, information = rejected control, V(S)/V(R), flags W X Y Z;
        # Y (0x04 of the third octet, transmitted LSB first) = information field too long
        assert f.ctrl == FRMR, "over-long frame answered by %r (expected FRMR or nothing)" % f
        assert len(f.info) == 3, f
        assert f.info[0] == i_ctrl(0, 0), f
        assert f.info[2] & 0x04, "FRMR without the Y bit: %r" % f
    hdlc.snrm()
    associate("hdlc", hdlc)
    apdu = hdlc.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910"), apdu.hex()


def test_llc_alone_in_i_and_ui_frames_then_link_still_serves(hdlc):
    """An I-frame and a UI frame carrying the LLC and no APDU: no request for the
    association, and the meter keeps serving (the fuzzer found them holding the link and
    the meter's read loop spinning: firmware/dlms/hdlc.py module doc)."""
    hdlc.snrm()
    rr = hdlc.command(i_ctrl(0, 0), LLC_REQ)  # in sequence, polled: RR N(R)=1
    assert rr.ctrl == rr_ctrl(1), rr
    hdlc.vs = 1
    hdlc.send(0x13, LLC_REQ)  # UI + P, the LLC alone: dropped
    hdlc.pty.expect_silence(0.5)
    associate("hdlc", hdlc)
    apdu = hdlc.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910"), apdu.hex()


def test_garbage_between_frames_is_ignored(hdlc):
    hdlc.pty.write(H("00FF1337AA55C0DE"))
    hdlc.snrm()
    hdlc.pty.write(H("7E7E7E12347E") + H("0102030405"))
    associate("hdlc", hdlc)
    hdlc.pty.write(H("DEADBEEF"))
    apdu = hdlc.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910"), apdu.hex()


def test_truncated_frame_then_resync(hdlc):
    hdlc.snrm()
    # the start of a frame announcing 0x40 octets, then nothing: the receiver must give
    # up on it (inter-octet time-out, Green Book HDLC setup default 25 ms)
    hdlc.pty.write(H("7EA04002232110"))
    time.sleep(1.0)
    f = hdlc.command(SNRM, timeout=2.0)
    assert f.ctrl == UA, f


def test_get_before_aarq_is_exception_response_hdlc(hdlc):
    hdlc.snrm()
    apdu = hdlc.request(GET_LDN)
    # ExceptionResponse: state-error service-not-allowed(1), service-error
    # operation-not-possible(1)
    assert apdu == H("D80101"), apdu.hex()


def test_segmented_response_follows_62056_46(hdlc):
    hdlc.snrm()  # 128-octet information field
    associate("hdlc", hdlc)
    frames = []
    apdu = hdlc.request(get_normal(15, LN_ASSOC, 2), frames=frames)
    assert len(frames) >= 2, "the object list should not fit 128 octets"
    for f in frames[:-1]:
        assert f.segmented and f.pf, f
        assert len(f.info) == 128, "intermediate segment of %d octets" % len(f.info)
    assert not frames[-1].segmented and 0 < len(frames[-1].info) <= 128
    assert apdu[:3] in (H("C401C1"), H("C402C1")), apdu[:8].hex()


# ====================================================================== ACSE, both transports
@pytest.fixture(params=["hdlc", "tcp"])
def link(request, vmeter):
    """make(client) -> a fresh link of either kind with .request(apdu) -> apdu.

    TCP: a new connection each time. HDLC: the pty has one link, so the same Hdlc object
    is reused: DISC (as the previous client), then SNRM as the new client.
    """
    opened = []

    def make(client=16):
        addr = {16: CLIENT_PUBLIC, 32: CLIENT_READER}[client]
        if request.param == "hdlc":
            if opened:
                h = opened[0]
                h.disc()
            else:
                h = Hdlc(vmeter.serial)
                opened.append(h)
                h.send(DISC)
                h.pty.recv_frame(0.5)
                h.pty.drain()
            h.client = addr
            h.snrm()
            return h
        w = Wrapper(vmeter.tcp, client)
        opened.append(w)
        return w

    make.kind = request.param
    yield make
    for x in opened:
        try:
            x.close()
        except OSError:
            pass


def get_all(c, req):
    """GET (normal) through block transfer if the meter uses it: the Data octets."""
    apdu = c.request(req)
    if apdu[:4] == H("C401C100"):
        return apdu[4:]
    got = b""
    block = 1
    while True:
        assert apdu[:3] == H("C402C1") and apdu[8] == 0, apdu[:16].hex()
        assert int.from_bytes(apdu[4:8], "big") == block, apdu[:16].hex()
        n, i = apdu[9], 10
        if n == 0x81:
            n, i = apdu[10], 11
        elif n == 0x82:
            n, i = int.from_bytes(apdu[10:12], "big"), 12
        assert len(apdu) == i + n, apdu[:16].hex()
        got += apdu[i:]
        if apdu[3]:
            return got
        assert block < 1000
        apdu = c.request(get_next(block))
        block += 1


REJECT_HEAD = H("611FA109060760857405080101A203020101A305A103020101BE0604040E0106")

NEGATIVE_CASES = {
    # name: (client, AARQ, exact expected AARE) -- dlms-vectors "Negative association cases"
    "dlms-version-5": (16, H("601DA109060760857405080101BE10040E01000000055F1F0400000010FFFF"),
                       REJECT_HEAD + b"\x01"),
    "empty-conformance": (16, H("601DA109060760857405080101BE10040E01000000065F1F0400000000FFFF"),
                          REJECT_HEAD + b"\x02"),
    "max-pdu-59": (16, H("601DA109060760857405080101BE10040E01000000065F1F0400000010003B"),
                   REJECT_HEAD + b"\x03"),
    "lls-wrong-password": (
        32, H("602FA1090607608574050801018A0207808B0760857405080201AC03800131"
              "BE10040E01000000065F1F0400000010FFFF"),
        # the meter's InitiateResponse: conformance = proposed (Get) AND the meter's, max
        # PDU 1024 -- which is exactly the hand-encoded vector
        H("6129A109060760857405080101A203020101A305A10302010D"
          "BE10040E0800065F1F040000001004000007")),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE_CASES))
def test_negative_aarq_exact_aare(link, case):
    client, aarq, expected = NEGATIVE_CASES[case]
    c = link(client)
    aare = c.request(aarq)
    got = aare_result(aare)
    want = aare_result(expected)
    assert got[:3] == want[:3], "result/source/diagnostic %r, expected %r; AARE %s" % (
        got[:3], want[:3], aare.hex())
    assert got[3] == want[3], "user-information %s, expected %s" % (
        got[3].hex() if got[3] is not None else None, want[3].hex())
    assert aare == expected, "AARE %s\nexpected %s" % (aare.hex(), expected.hex())
    # the refused association serves nothing
    assert c.request(GET_LDN) == H("D80101")


def _accepted_initiate_response(c, aarq):
    aare = c.request(aarq)
    res, source, diag, ui = aare_result(aare)
    assert (res, source, diag) == (0, 1, 0), aare.hex()
    c.request(RLRQ)
    return ui


@pytest.mark.parametrize("case", ["sn-context", "no-mechanism-to-reader",
                                  "hls2-to-reader", "lls-to-public"])
def test_negative_aarq_diagnostics(link, case):
    """Rejections whose AARE carries an InitiateResponse: result, source and diagnostic are
    compared exactly; the InitiateResponse must be the one the meter gives the same
    InitiateRequest when it accepts (its own conformance and max PDU 1024)."""
    ref_client = 32 if case in ("no-mechanism-to-reader", "hls2-to-reader") else 16
    ref = link(ref_client)
    ui_ok = _accepted_initiate_response(ref, AARQ_LLS if ref_client == 32 else AARQ_PUBLIC)
    conformance, max_pdu, vaa = parse_initiate_response(ui_ok)
    assert max_pdu == 1024 and vaa == b"\x00\x07"
    if case == "sn-context":
        # dlms-vectors 3.6: application-context-name not supported (SN referencing, ...0102)
        client, aarq, diag = 16, AARQ_PUBLIC.replace(H("0760857405080101"),
                                                     H("0760857405080102")), 2
    elif case == "no-mechanism-to-reader":
        client, aarq, diag = 32, AARQ_PUBLIC, 12  # authentication-mechanism-name-required
    elif case == "hls2-to-reader":
        client, aarq, diag = 32, AARQ_HLS5.replace(H("60857405080205"),
                                                   H("60857405080202")), 11  # not recognised
    else:
        # LLS to the public client, which uses no authentication: a wrong mechanism for
        # that client SAP -> authentication-mechanism-name-not-recognised (the contract)
        client, aarq, diag = 16, AARQ_LLS, 11
    c = link(client)
    aare = c.request(aarq)
    res, source, d, ui = aare_result(aare)
    head = ber_fields(aare, 0x61)
    assert head[0xA1] == H("060760857405080101"), "AARE application-context-name %s" % head[0xA1].hex()
    assert (res, source, d) == (1, 1, diag), "AARE %s" % aare.hex()
    assert ui == ui_ok, "user-information %s, expected the accepting InitiateResponse %s" % (
        ui.hex() if ui else None, ui_ok.hex())


def test_garbage_aarq_is_refused_then_association_works(link):
    c = link(16)
    aare = c.request(H("6005A103060100"))
    assert aare[0] == 0x61, aare.hex()
    res, _source, _diag, _ui = aare_result(aare)
    assert res != 0, aare.hex()
    assert aare_result(c.request(AARQ_PUBLIC))[:3] == (0, 1, 0)


@pytest.mark.parametrize("client,aarq", [(16, AARQ_PUBLIC), (32, AARQ_LLS)],
                         ids=["public", "reader-lls"])
def test_accepted_aare(link, client, aarq):
    c = link(client)
    aare = c.request(aarq)
    res, source, diag, ui = aare_result(aare)
    assert (res, source, diag) == (0, 1, 0), aare.hex()
    f = ber_fields(aare, 0x61)
    assert f[0xA1] == H("060760857405080101")
    conformance, max_pdu, vaa = parse_initiate_response(ui)
    assert max_pdu == 1024 and vaa == b"\x00\x07", ui.hex()
    assert conformance & 0x000010, "GET not in the negotiated conformance %06X" % conformance
    assert conformance & ~0x007E1F == 0, "conformance %06X exceeds the proposal 007E1F" % conformance
    apdu = c.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910") and len(apdu) == 22, apdu.hex()
    rlre = c.request(RLRQ)
    assert rlre[:5] == H("6303800100"), rlre.hex()
    # released: no more service
    assert c.request(GET_LDN) == H("D80101")


# ====================================================================== TCP wrapper
def test_get_before_aarq_is_exception_response_tcp(wrapper_conn):
    w = wrapper_conn()
    assert w.request(GET_LDN) == H("D80101")


def test_wrapper_version_2_closes_only_that_connection(wrapper_conn):
    a = wrapper_conn()
    b = wrapper_conn()
    associate("tcp", b)
    associate("tcp", a)
    a.send(GET_LDN, version=2)
    a.expect_closed()
    apdu = b.request(GET_LDN)
    assert apdu[:6] == H("C401C1000910"), apdu.hex()
    # and a new connection is served as well
    c = wrapper_conn()
    associate("tcp", c)
    assert c.request(GET_LDN)[:6] == H("C401C1000910")


def test_wrapper_other_destination_wport_is_discarded(wrapper_conn):
    w = wrapper_conn()
    associate("tcp", w)
    w.send(GET_LDN, dst=2)
    w.expect_silence(0.5)
    assert w.request(GET_LDN)[:6] == H("C401C1000910")


def test_several_tcp_clients_each_with_its_own_association(wrapper_conn):
    pub = wrapper_conn(16)
    rdr = wrapper_conn(32)
    none = wrapper_conn(16)
    pub2 = wrapper_conn(16)
    associate("tcp", rdr, AARQ_LLS)
    associate("tcp", pub)
    associate("tcp", pub2)
    reader_assoc = get_normal(15, LN_ASSOC_READER, 1)
    # the reader's own Association LN instance is visible to the reader only
    r = rdr.request(reader_assoc)
    assert r == H("C401C100") + H("0906") + LN_ASSOC_READER, r.hex()
    p = pub.request(reader_assoc)
    assert p == H("C401C10104"), "public must get object-undefined (4): %s" % p.hex()
    assert none.request(GET_LDN) == H("D80101")
    # interleaved requests, then one releases: the others are unaffected
    assert pub.request(GET_LDN)[:6] == H("C401C1000910")
    assert pub.request(RLRQ)[:5] == H("6303800100")
    assert pub.request(GET_LDN) == H("D80101")
    assert pub2.request(GET_LDN)[:6] == H("C401C1000910")
    assert rdr.request(reader_assoc) == r


def test_get_with_list(link):
    c = link(16)
    associate(link.kind, c)
    # dlms-vectors 4.5
    apdu = c.request(H("C003C102000100002A0000FF020000080000010000FF0200"))
    assert apdu[:5] == H("C403C10200"), apdu.hex()
    assert apdu[5:7] == H("0910") and apdu[23:26] == H("00090C"), apdu.hex()
    assert len(apdu) == 26 + 12


def test_get_block_transfer_raw(link):
    """GET of the object list with a client max PDU of 128: GET-Response-With-Datablock,
    continued by GET-Request-Next; the blocks reassemble to the one-piece answer."""
    big = link(16)
    associate(link.kind, big)
    data = get_all(big, get_normal(15, LN_ASSOC, 2))
    big.request(RLRQ)
    assert data[:1] == H("01"), "object_list is an array: %s" % data[:8].hex()
    small = link(16)
    associate(link.kind, small, AARQ_PUBLIC_PDU128)
    apdu = small.request(get_normal(15, LN_ASSOC, 2))
    got = b""
    block = 1
    while True:
        assert len(apdu) <= 128, "APDU of %d octets > client max PDU 128" % len(apdu)
        assert apdu[:3] == H("C402C1"), apdu[:16].hex()
        last = apdu[3]
        assert int.from_bytes(apdu[4:8], "big") == block, apdu[:16].hex()
        assert apdu[8] == 0x00, "raw-data expected: %s" % apdu[:16].hex()
        n = apdu[9]
        i = 10
        if n == 0x81:
            n, i = apdu[10], 11
        elif n == 0x82:
            n, i = int.from_bytes(apdu[10:12], "big"), 12
        assert len(apdu) == i + n, apdu[:16].hex()
        got += apdu[i:]
        if last:
            break
        assert block < 100
        apdu = small.request(get_next(block))
        block += 1
    assert block >= 2
    assert got == data
    # no transfer in progress any more
    r = small.request(get_next(block))
    assert r == H("C402C101") + block.to_bytes(4, "big") + H("0110"), \
        "expected no-long-get-in-progress (16): %s" % r.hex()
