"""Security suite 0 (firmware/dlms/security.py) against the two independent client libraries,
offline (CPython only: no meter, no transport).

* gurux-dlms: a real ``GXDLMSSecureClient`` builds the AARQ (glo-initiate-request), a
  glo-get-request and the HLS pass 3 (glo-action-request CB with f(StoC)); ours unwrap them.
  Our glo-get-response CC, general-glo DB, glo-action-response CF with f(CtoS) go back
  through the client's own ``getData`` / ``parseApplicationAssociationResponse``.
* dlms-cosem: a ``DlmsConnection`` protects the AARQ/GET as it does on the wire (general-glo
  DB) and unprotects our DB replies and ciphered RLRE (it also checks our IC increases);
  its ``gmac``/``HighLevelSecurityGmacAuthentication`` check our HLS answers both ways.
"""

import os

import pytest

from dlms import acse, axdr
from dlms import security as sec

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
ST_SERVER = bytes.fromhex("4D4D4D0000BC614E")
ST_CLIENT = bytes.fromhex("4D4D4D0000000001")
STOC = bytes.fromhex("503677524A323146")
GET_RESP_5009 = bytes.fromhex("C401C1000600001391")  # double-long-unsigned 5009


class Counter:
    def __init__(self, first):
        self.value = first

    def next(self):
        v = self.value
        self.value = v + 1
        return v


class Guard:
    def __init__(self):
        self.last = {}

    def check_and_update(self, key_id, ic):
        if key_id in self.last and ic <= self.last[key_id]:
            return False
        self.last[key_id] = ic
        return True


def meter_ctx(client_title, ic=1):
    return sec.Context(sec.Keys(EK, AK), ST_SERVER, client_title, Counter(ic), Guard())


def meter_aarq(ctx, aarq_bytes):
    """What the association layer does with a ciphered AARQ: the plain InitiateRequest."""
    aarq = acse.parse_aarq(aarq_bytes, 0, len(aarq_bytes))
    assert aarq.application_context == acse.CTX_LN_CIPHERED
    ctx.reset(aarq.calling_ap_title)
    out = bytearray(128)
    n = sec.unwrap_initiate(ctx, aarq.user_info, 0, len(aarq.user_info), out)
    assert n > 0, n
    ir = acse.parse_initiate_request(out, 0, n)
    assert ctx.set_dedicated_key(ir.dedicated_key)
    return aarq, ir


def unwrap(ctx, apdu):
    out = bytearray(len(apdu))
    n = sec.unwrap(ctx, apdu, 0, len(apdu), out)
    assert n >= 0, n
    return bytes(out[:n])


def pyca_open(apdu, key=EK, title=ST_SERVER):
    """Independent check of one protected APDU with pyca ``cryptography`` (gurux-dlms 1.0.203
    does not verify the GCM tag when it decrypts: it runs its cipher stream in encrypt mode)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    p = 1
    if apdu[0] in (0xDB, 0xDC):
        assert apdu[1] == 8 and apdu[2:10] == title
        p = 10
    n = apdu[p]
    p += 1
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(apdu[p : p + k], "big")
        p += k
    assert len(apdu) - p == n
    sc, ic, body, tag = apdu[p], apdu[p + 1 : p + 5], apdu[p + 5 : -12], apdu[-12:]
    dec = Cipher(algorithms.AES(key), modes.GCM(title + ic, tag, min_tag_length=12)).decryptor()
    if sc == 0x30:
        dec.authenticate_additional_data(bytes([sc]) + AK)
        return dec.update(body) + dec.finalize()
    assert sc == 0x10
    dec.authenticate_additional_data(bytes([sc]) + AK + body)
    dec.finalize()
    return body


def wrap(ctx, plain, prot=None, key=EK):
    out = bytearray(len(plain) + sec.OVERHEAD)
    n = sec.wrap(ctx, prot or ctx.rx, plain, 0, len(plain), out)
    assert n > 0, n
    out = bytes(out[:n])
    assert pyca_open(out, key) == plain
    return out


# -- gurux-dlms ------------------------------------------------------------------------------
gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXReplyData  # noqa: E402
from gurux_dlms.enums import Authentication, Conformance, InterfaceType, Security  # noqa: E402
from gurux_dlms.ConnectionState import ConnectionState  # noqa: E402
from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: E402
from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: E402
from gurux_dlms.objects import GXDLMSRegister  # noqa: E402
from gurux_dlms.secure import GXDLMSSecureClient  # noqa: E402


def gurux_client(ic, auth=Authentication.NONE, security=Security.AUTHENTICATION_ENCRYPTION):
    c = GXDLMSSecureClient(True)
    c.interfaceType = InterfaceType.WRAPPER
    c.clientAddress = 1
    c.serverAddress = 1
    c.authentication = auth
    c.ciphering.security = security
    c.ciphering.systemTitle = bytearray(ST_CLIENT)
    c.ciphering.blockCipherKey = bytearray(EK)
    c.ciphering.authenticationKey = bytearray(AK)
    c.ciphering.invocationCounter = ic
    return c


def apdu_of(frames):
    """The xDLMS APDU of one wrapper frame (8-byte header: version, src, dst, length)."""
    assert len(frames) == 1
    f = bytes(frames[0])
    assert f[:2] == b"\x00\x01" and int.from_bytes(f[6:8], "big") == len(f) - 8
    return f[8:]


def to_gurux(c, apdu):
    """Feed our APDU to the gurux client's receive path; returns its GXReplyData."""
    frame = b"\x00\x01\x00\x01\x00\x01" + len(apdu).to_bytes(2, "big") + apdu
    reply = GXReplyData()
    assert c.getData(GXByteBuffer(bytearray(frame)), reply, None)
    return reply


def test_gurux_aarq_and_glo_get_request_unwrap():
    c = gurux_client(ic=41)
    ctx = meter_ctx(None)
    aarq, ir = meter_aarq(ctx, apdu_of(c.aarqRequest()))
    assert aarq.calling_ap_title == ST_CLIENT and ir.dlms_version == 6
    assert ctx.rx.ic == 41
    reg = GXDLMSRegister("1.0.1.8.0.255")
    req = apdu_of(c.read(reg, 2))
    assert req[0] == 0xC8
    plain = unwrap(ctx, req)
    assert plain[0:2] == b"\xC0\x01" and plain[3:] == bytes.fromhex("000301000108 00FF 0200")
    assert ctx.rx.kind == sec.GLO and ctx.rx.ic == 42
    # gurux reads our glo-get-response with its own receive path
    c.settings.sourceSystemTitle = bytearray(ST_SERVER)
    resp = GET_RESP_5009[:2] + plain[2:3] + GET_RESP_5009[3:]
    reply = to_gurux(c, wrap(ctx, resp))
    assert reply.value == 5009
    # the same APDU again is a replay
    assert sec.unwrap(ctx, req, 0, len(req), bytearray(64)) == sec.ERR_REPLAY


def test_gurux_general_glo_ciphering_both_ways():
    c = gurux_client(ic=100)
    ctx = meter_ctx(ST_CLIENT)
    c.settings.negotiatedConformance |= Conformance.GENERAL_PROTECTION
    c.settings.sourceSystemTitle = bytearray(ST_SERVER)
    c.settings.connected = ConnectionState.DLMS
    req = apdu_of(c.read(GXDLMSRegister("1.0.1.8.0.255"), 2))
    assert req[0] == 0xDB and req[1:10] == b"\x08" + ST_CLIENT
    plain = unwrap(ctx, req)
    assert plain[0] == 0xC0 and ctx.rx.kind == sec.GENERAL_GLO
    resp = GET_RESP_5009[:2] + plain[2:3] + GET_RESP_5009[3:]
    out = wrap(ctx, resp)
    assert out[0] == 0xDB and out[2:10] == ST_SERVER
    assert to_gurux(c, out).value == 5009


def test_gurux_dedicated_key():
    dk = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    c = gurux_client(ic=60)
    c.ciphering.dedicatedKey = bytearray(dk)
    ctx = meter_ctx(None)
    _, ir = meter_aarq(ctx, apdu_of(c.aarqRequest()))
    assert ir.dedicated_key == dk
    c.settings.sourceSystemTitle = bytearray(ST_SERVER)
    c.settings.connected = ConnectionState.DLMS
    req = apdu_of(c.read(GXDLMSRegister("1.0.1.8.0.255"), 2))
    assert req[0] == 0xD0
    plain = unwrap(ctx, req)
    assert plain[0] == 0xC0 and ctx.rx.kind == sec.DED and ctx.rx.key == sec.KEY_DEDICATED
    resp = GET_RESP_5009[:2] + plain[2:3] + GET_RESP_5009[3:]
    out = wrap(ctx, resp, key=dk)
    assert out[0] == 0xD4
    assert to_gurux(c, out).value == 5009


def test_gurux_authentication_only():
    c = gurux_client(ic=7, security=Security.AUTHENTICATION)
    ctx = meter_ctx(ST_CLIENT)
    req = apdu_of(c.read(GXDLMSRegister("1.0.1.8.0.255"), 2))
    assert req[0] == 0xC8 and req[2] == 0x10
    plain = unwrap(ctx, req)
    assert plain[0] == 0xC0 and req[7 : 7 + len(plain)] == plain  # readable on the wire
    c.settings.sourceSystemTitle = bytearray(ST_SERVER)
    resp = GET_RESP_5009[:2] + plain[2:3] + GET_RESP_5009[3:]
    out = wrap(ctx, resp)
    assert out[2] == 0x10
    assert to_gurux(c, out).value == 5009


def test_gurux_chippering_decrypts_our_glo_and_db():
    ctx = meter_ctx(ST_CLIENT, ic=0x01234567)
    for kind in (sec.GLO, sec.GENERAL_GLO):
        out = wrap(ctx, GET_RESP_5009, sec.Protection(kind, 0x30))
        p = AesGcmParameter(0, bytearray(ST_SERVER), bytearray(EK), bytearray(AK))
        plain = GXDLMSChippering.decryptAesGcm(None, p, GXByteBuffer(bytearray(out)))
        assert bytes(plain) == GET_RESP_5009
        assert p.invocationCounter == ctx.tx_counter.value - 1


def test_gurux_hls_gmac_pass3_pass4():
    c = gurux_client(ic=10, auth=Authentication.HIGH_GMAC)
    ctx = meter_ctx(None, ic=500)
    meter_aarq(ctx, apdu_of(c.aarqRequest()))  # IC 10
    ctos = bytes(c.settings.ctoSChallenge)
    # the AARE (not modelled here) would carry StoC and the server system title
    c.settings.stoCChallenge = bytearray(STOC)
    c.settings.sourceSystemTitle = bytearray(ST_SERVER)
    c.settings.connected = ConnectionState.DLMS
    req = apdu_of(c.getApplicationAssociationRequest())
    assert req[0] == 0xCB
    plain = unwrap(ctx, req)  # the envelope's IC (12) went through the guard
    assert plain[0] == 0xC3 and plain[-19:-17] == b"\x09\x11"
    f_stoc = plain[-17:]
    assert int.from_bytes(f_stoc[1:5], "big") == 11  # gurux: envelope IC - 1
    assert sec.hls_verify(ctx, STOC, f_stoc, 0, 17, guard_ic=False) == sec.OK
    assert sec.hls_verify(ctx, STOC, f_stoc, 0, 17) == sec.ERR_REPLAY  # 11 < 12
    # pass 4: ACTION-Response with f(CtoS), protected like the request (CF)
    f = bytearray(17)
    assert sec.hls_response(ctx, ctos, f) == 17
    resp = b"\xC7\x01" + plain[2:3] + b"\x00\x01\x00\x09\x11" + bytes(f)
    out = wrap(ctx, resp)
    assert out[0] == 0xCF
    reply = to_gurux(c, out)
    c.parseApplicationAssociationResponse(reply.data)  # raises if f(CtoS) is wrong
    bad = bytearray(f)
    bad[-1] ^= 1
    c2 = gurux_client(ic=10, auth=Authentication.HIGH_GMAC)
    c2.settings.ctoSChallenge = bytearray(ctos)
    c2.settings.sourceSystemTitle = bytearray(ST_SERVER)
    c2.settings.connected = ConnectionState.DLMS
    resp = b"\xC7\x01" + plain[2:3] + b"\x00\x01\x00\x09\x11" + bytes(bad)
    reply = to_gurux(c2, wrap(ctx, resp))
    with pytest.raises(Exception):
        c2.parseApplicationAssociationResponse(reply.data)


# -- dlms-cosem ------------------------------------------------------------------------------
dc = pytest.importorskip("dlms_cosem")
from dlms_cosem import cosem, enumerations  # noqa: E402
from dlms_cosem import security as dc_security  # noqa: E402
from dlms_cosem.connection import DlmsConnection, XDlmsApduFactory  # noqa: E402
from dlms_cosem.protocol import acse as dc_acse  # noqa: E402
from dlms_cosem.protocol import xdlms as dc_xdlms  # noqa: E402


def cosem_connection(ic, auth=None):
    return DlmsConnection(
        authentication=auth or dc_security.NoSecurityAuthentication(),
        client_system_title=ST_CLIENT, global_encryption_key=EK, global_authentication_key=AK,
        client_invocation_counter=ic, meter_system_title=ST_SERVER)


def cosem_get():
    attr = cosem.CosemAttribute(enumerations.CosemInterface.REGISTER,
                                cosem.Obis(1, 0, 1, 8, 0, 255), 2)
    return dc_xdlms.GetRequestNormal(cosem_attribute=attr)


def test_dlms_cosem_aarq_get_and_db_reply():
    conn = cosem_connection(ic=1)
    aarq = conn.protect(conn.get_aarq()).to_bytes()
    ctx = meter_ctx(None, ic=1)
    _, ir = meter_aarq(ctx, aarq)
    assert ir.dlms_version == 6 and ctx.rx.ic == 1
    req = conn.protect(cosem_get()).to_bytes()
    assert req[0] == 0xDB and req[2:10] == ST_CLIENT and req[11] == 0x30
    plain = unwrap(ctx, req)
    assert plain[:2] == b"\xC0\x01" and ctx.rx.ic == 2
    for _ in range(3):  # several replies: dlms-cosem wants the meter IC to increase
        resp = GET_RESP_5009[:2] + plain[2:3] + GET_RESP_5009[3:]
        event = conn.unprotect(XDlmsApduFactory.apdu_from_bytes(wrap(ctx, resp)))
        assert isinstance(event, dc_xdlms.GetResponseNormal)
        assert event.data == b"\x06\x00\x00\x13\x91"
    # a reply with a reused IC is refused by the client
    ctx.tx_counter.value -= 1
    with pytest.raises(Exception):
        conn.unprotect(XDlmsApduFactory.apdu_from_bytes(wrap(ctx, resp)))


def test_dlms_cosem_empty_system_title_setting():
    conn = cosem_connection(ic=9)
    conn.settings = type(conn.settings)(empty_system_title_in_general_glo_ciphering=True)
    req = conn.protect(cosem_get()).to_bytes()
    assert req[:2] == b"\xDB\x00"
    ctx = meter_ctx(ST_CLIENT)
    assert unwrap(ctx, req)[0] == 0xC0 and ctx.rx.ic == 9


def test_dlms_cosem_rlre_glo_initiate_response():
    conn = cosem_connection(ic=3)
    ctx = meter_ctx(ST_CLIENT, ic=77)
    rlrq = conn.protect(conn.get_rlrq()).to_bytes()
    reason, ui = acse.parse_rlrq(rlrq, 0, len(rlrq))
    plain = bytearray(64)
    n = sec.unwrap_initiate(ctx, ui, 0, len(ui), plain)
    assert n > 0 and plain[0] == 0x01
    resp = bytes.fromhex("0800065F1F0400001E1D04C80007")
    uo = bytearray(64)
    m = sec.wrap_initiate_response(ctx, resp, 0, len(resp), uo)
    buf = bytearray(80)
    w = axdr.Writer(buf)
    acse.encode_rlre(w, 0, memoryview(uo)[:m])
    rlre = dc_acse.ReleaseResponse.from_bytes(bytes(buf[: w.pos]))
    rlre = conn.unprotect(rlre)
    ir = rlre.user_information.content
    assert isinstance(ir, dc_xdlms.InitiateResponse) and ir.server_max_receive_pdu_size == 0x04C8
    assert conn.meter_invocation_counter == 77


def test_dlms_cosem_hls_gmac_both_ways():
    auth = dc_security.HighLevelSecurityGmacAuthentication(challenge_length=32)
    conn = cosem_connection(ic=20, auth=auth)
    conn.meter_to_client_challenge = STOC
    f_stoc = auth.hls_generate_reply_data(conn)  # IC 20, not yet consumed
    ctx = meter_ctx(ST_CLIENT, ic=900)
    # the ACTION carrying it is protected with the same IC (20): guard the envelope only
    action = dc_xdlms.ActionRequestNormal(
        cosem_method=cosem.CosemMethod(enumerations.CosemInterface.ASSOCIATION_LN,
                                       cosem.Obis(0, 0, 40, 0, 0), 1),
        data=b"\x09\x11" + f_stoc)
    req = conn.protect(action).to_bytes()
    plain = unwrap(ctx, req)
    assert ctx.rx.ic == 20 and plain[-17:] == f_stoc
    assert sec.hls_verify(ctx, STOC, f_stoc, 0, 17, guard_ic=False) == sec.OK
    assert sec.hls_verify(ctx, STOC, f_stoc, 0, 17) == sec.ERR_REPLAY
    ctos = auth.get_calling_authentication_value()
    f = bytearray(17)
    assert sec.hls_response(ctx, ctos, f) == 17
    assert auth.hls_meter_data_is_valid(bytes(f), conn)
    f[9] ^= 0x20
    assert not auth.hls_meter_data_is_valid(bytes(f), conn)
    # and the gmac function agrees with ours on a random challenge
    ch = os.urandom(32)
    ref = dc_security.gmac(dc_security.SecurityControlField(0, authenticated=True),
                           ST_SERVER, 1234, EK, AK, ch)
    assert sec.gmac_tag(sec.Keys(EK, AK), ST_SERVER, 1234, ch) == ref
