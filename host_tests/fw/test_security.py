"""Security suite 0 (dlms/security.py) against published vectors, under CPython and MicroPython.

Vectors: shared/vectors/dlms-vectors.md 1.1 (glo-get-request), 1.2/3.4/3.10
(glo-initiate-request in AARQ/RLRQ), 1.3/3.13 (RLRE glo-initiate-response), 1.5-1.7
(HLS-GMAC f(StoC)/f(CtoS)), 6.1/6.2/6.3 (general-glo-ciphering with and without a system
title). Negative cases: flipped bits, wrong key, replays, truncation at every byte, refused SC
values, the security policy, the envelope/plain tag match; and the meter's IC increasing.
"""

import binascii

from dlms import acse, axdr, gcm
from dlms import security as sec


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


EK = h("000102030405060708090A0B0C0D0E0F")
AK = h("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
BK = h("B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF")
DK = h("00112233445566778899AABBCCDDEEFF")
ST_SERVER = h("4D4D4D0000BC614E")
ST_CLIENT = h("4D4D4D0000000001")

V11_PT = h("C0010000080000010000FF0200")
V11_APDU = h("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
V12_PT = h("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
V34_AARQ = h(
    "6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B0760857405080201AC0A8008"
    "3132333435363738BE34043221303001234567801302FF8A7874133D414CED25B42534D28DB004772060"
    "6B175BD52211BE6841DB204D39EE6FDB8E356855")
V13_PT = h("0800065F1F0400007C1F04000007")
V313_RLRE = h("6328800100BE230421281F3001234567891214A0845E475714383F65BC19745CA235906525E4F3"
              "E1C893")
CTOS = h("4B35366956616759")
STOC = h("503677524A323146")
F_STOC = h("10000000011A52FE7DD3E72748973C1E28")
F_CTOS = h("1001234567FE1466AFB3DBCD4F9389E2B7")
PASS3 = h("C301C1000F0000280000FF01010911" + "10000000011A52FE7DD3E72748973C1E28")
PASS4 = h("C701C10001000911" + "1001234567FE1466AFB3DBCD4F9389E2B7")

DUMMY = b"MYDUMMYGLOBALKEY"
V61 = h("DB082F192291991641033B30000001E5025CE9D2271FD78BE8C204211A916A9D7F587E0A7A814CADEA8"
        "9E9593F01F92EA8C087B5BDFDEFEAB6BECF282DFE49C08F5BE6DC8400")
V61_TITLE = h("2F19229199164103")
V63_PT = h("0F000001DB000922125A8591360000000049000000110000000A5A8513D014800000000D0000000A0100")
V62 = h("DB001E30800000D181EC9EC4BF53E9776EF0C453969FBDFE11BE9B791AACC0FF8C")

GET_RESP = h("C401C1000600001391")  # vector 4.2
EXC = h("D80102")  # ExceptionResponse service-not-allowed, service-not-supported


class Counter:
    """The meter's tx invocation counter (the real one persists reservations)."""

    def __init__(self, first):
        self.value = first

    def next(self):
        v = self.value
        self.value = v + 1
        return v


class Guard:
    """Client-IC guard: strictly increasing per key id (the real one persists)."""

    def __init__(self):
        self.last = {}
        self.calls = 0

    def check_and_update(self, key_id, ic):
        self.calls += 1
        if key_id in self.last and ic <= self.last[key_id]:
            return False
        self.last[key_id] = ic
        return True


KEYS = sec.Keys(EK, AK)
KEYS_BK = sec.Keys(EK, AK, BK)


def meter(client_title=ST_SERVER, ic=1, keys=KEYS, server_title=ST_SERVER, **kw):
    """A meter-side context (vector 1.1 uses the same title on both sides)."""
    return sec.Context(keys, server_title, client_title, Counter(ic), Guard(), **kw)


def client_request(plain, ic, kind=sec.GLO, sc=0x30, title=ST_SERVER, keys=KEYS, dk=None):
    """A protected request as a client would send it: ``wrap`` is direction-agnostic
    (C0 -> C8 ...), so a context whose 'server' title is the client's builds requests."""
    c = sec.Context(keys, title, None, Counter(ic), Guard(), dedicated_key=dk)
    out = bytearray(len(plain) + sec.OVERHEAD)
    n = sec.wrap(c, sec.Protection(kind, sc), plain, 0, len(plain), out)
    assert n > 0
    return bytes(out[:n])


def unwrap_ok(ctx, apdu):
    out = bytearray(len(apdu))
    n = sec.unwrap(ctx, apdu, 0, len(apdu), out)
    assert n >= 0, n
    return bytes(out[:n])


# -- vectors ---------------------------------------------------------------------------------
def test_v11_unwrap_glo_get_request():
    ctx = meter()
    assert unwrap_ok(ctx, V11_APDU) == V11_PT
    rx = ctx.rx
    assert (rx.kind, rx.sc, rx.key, rx.ic) == (sec.GLO, 0x30, sec.KEY_GLOBAL, 0x01234567)
    assert ctx.rx_guard.last[sec.KEY_GLOBAL] == 0x01234567


def test_v11_unwrap_in_place():
    ctx = meter()
    buf = bytearray(b"\xAA\xAA" + V11_APDU + b"\x55")
    n = sec.unwrap(ctx, buf, 2, 2 + len(V11_APDU), None)
    assert n == len(V11_PT)
    s = ctx.rx.start
    assert s == 2 + 7 and bytes(buf[s : s + n]) == V11_PT
    assert buf[0] == 0xAA and buf[-1] == 0x55


def test_v11_wrap_reproduces_apdu():
    ctx = meter(ic=0x01234567)
    out = bytearray(64)
    n = sec.wrap(ctx, sec.Protection(sec.GLO, 0x30), V11_PT, 0, len(V11_PT), out)
    assert bytes(out[:n]) == V11_APDU
    # at an offset and from a slice of a larger buffer
    ctx = meter(ic=0x01234567)
    src = b"\x00" + V11_PT + b"\x00"
    n = sec.wrap(ctx, sec.Protection(sec.GLO, 0x30), src, 1, 1 + len(V11_PT), out, 3)
    assert bytes(out[3 : 3 + n]) == V11_APDU


def test_v12_v34_aarq_glo_initiate_request():
    aarq = acse.parse_aarq(V34_AARQ, 0, len(V34_AARQ))
    assert aarq.application_context == acse.CTX_LN_CIPHERED
    ctx = meter(client_title=aarq.calling_ap_title)
    ui = aarq.user_info
    out = bytearray(64)
    n = sec.unwrap_initiate(ctx, ui, 0, len(ui), out)
    assert bytes(out[:n]) == V12_PT
    assert ctx.rx.ic == 0x01234567 and ctx.rx_guard.last[sec.KEY_GLOBAL] == 0x01234567
    ir = acse.parse_initiate_request(out, 0, n)
    assert ir.dedicated_key == DK and ir.dlms_version == 6
    assert ctx.set_dedicated_key(ir.dedicated_key)
    # the same AARQ again: its IC is not new
    assert sec.unwrap_initiate(ctx, ui, 0, len(ui), out) == sec.ERR_REPLAY
    # a plain InitiateRequest is not ciphered: the caller handles it
    assert sec.unwrap_initiate(ctx, V12_PT, 0, len(V12_PT), out) == sec.ERR_UNKNOWN_TAG
    assert not ctx.set_dedicated_key(DK[:15])


def test_v310_rlrq_glo_initiate_request():
    aarq = acse.parse_aarq(V34_AARQ, 0, len(V34_AARQ))
    ui = bytes(aarq.user_info)
    rlrq = b"\x62\x39\x80\x01\x00\xBE\x34\x04\x32" + ui  # vector 3.10
    reason, ui2 = acse.parse_rlrq(rlrq, 0, len(rlrq))
    assert reason == 0
    ctx = meter(client_title=ST_SERVER)
    out = bytearray(64)
    n = sec.unwrap_initiate(ctx, ui2, 0, len(ui2), out)
    assert bytes(out[:n]) == V12_PT


def test_v13_v313_rlre_glo_initiate_response():
    ctx = meter(ic=0x01234567)
    ui = bytearray(64)
    n = sec.wrap_initiate_response(ctx, V13_PT, 0, len(V13_PT), ui, 0, sec.SC_AUTH_ENC)
    buf = bytearray(64)
    w = axdr.Writer(buf)
    acse.encode_rlre(w, 0, memoryview(ui)[:n])
    assert bytes(buf[: w.pos]) == V313_RLRE
    # and it decrypts (independently of wrap) to the InitiateResponse
    g = gcm.Gcm(EK)
    pt = bytearray(len(V13_PT))
    iv = ST_SERVER + h("01234567")
    assert g.decrypt(iv, (b"\x30", AK), V313_RLRE[16:], pt) == len(V13_PT)
    assert bytes(pt) == V13_PT


def test_initiate_confirmed_service_error_tag():
    ctx = meter()
    out = bytearray(40)
    cse = h("0E010601")
    n = sec.wrap_initiate_response(ctx, cse, 0, len(cse), out, 0, 0x30)
    assert out[0] == 0x2E and out[1] == n - 2 and out[2] == 0x30
    assert sec.wrap_initiate_response(ctx, V12_PT, 0, 4, out) == sec.ERR_MALFORMED


def test_v15_hls_verify_f_stoc():
    ctx = meter(client_title=ST_CLIENT)
    assert sec.gmac_tag(KEYS, ST_CLIENT, 1, STOC) == F_STOC[5:]
    assert sec.hls_verify(ctx, STOC, PASS3, len(PASS3) - 17, len(PASS3)) == sec.OK
    assert ctx.rx_guard.last[sec.KEY_GLOBAL] == 1
    # the same reply again: IC 1 is used up
    assert sec.hls_verify(ctx, STOC, F_STOC, 0, 17) == sec.ERR_REPLAY
    # inside a ciphered pass 3 the envelope's IC was guarded instead
    assert sec.hls_verify(ctx, STOC, F_STOC, 0, 17, False) == sec.OK


def test_v16_v17_hls_response_f_ctos():
    ctx = meter(ic=0x01234567)
    out = bytearray(8 + 17)
    out[0:8] = PASS4[:8]
    assert sec.hls_response(ctx, CTOS, out, 8) == 17
    assert bytes(out) == PASS4
    assert bytes(out[8:]) == F_CTOS
    assert ctx.tx_counter.value == 0x01234568


def test_hls_verify_negatives():
    for i in range(17):
        for bit in (0x01, 0x80):
            f = bytearray(F_STOC)
            f[i] ^= bit
            ctx = meter(client_title=ST_CLIENT)
            assert sec.hls_verify(ctx, STOC, f, 0, 17) != sec.OK
            assert ctx.rx_guard.calls == 0  # a forged reply never moves the guard
    ctx = meter(client_title=ST_CLIENT)
    assert sec.hls_verify(ctx, CTOS, F_STOC, 0, 17) == sec.ERR_AUTH  # another challenge
    assert sec.hls_verify(ctx, STOC, F_STOC, 0, 16) == sec.ERR_MALFORMED
    assert sec.hls_verify(meter(client_title=ST_SERVER), STOC, F_STOC, 0, 17) == sec.ERR_AUTH
    assert sec.hls_verify(meter(client_title=None), STOC, F_STOC, 0, 17) == sec.ERR_POLICY
    other = sec.Keys(BK, AK)
    ctx = sec.Context(other, ST_SERVER, ST_CLIENT, Counter(1), Guard())
    assert sec.hls_verify(ctx, STOC, F_STOC, 0, 17) == sec.ERR_AUTH


def test_v61_general_glo_with_system_title():
    keys = sec.Keys(DUMMY, DUMMY)
    for title in (V61_TITLE, None):  # the association's title, or the one in the APDU
        ctx = sec.Context(keys, ST_SERVER, title, Counter(1), Guard())
        assert unwrap_ok(ctx, V61) == V63_PT
        assert (ctx.rx.kind, ctx.rx.sc, ctx.rx.ic) == (sec.GENERAL_GLO, 0x30, 0x1E5)
    ctx = sec.Context(keys, ST_SERVER, ST_CLIENT, Counter(1), Guard())
    out = bytearray(64)
    assert sec.unwrap(ctx, V61, 0, len(V61), out) == sec.ERR_POLICY  # another sender
    ctx = sec.Context(KEYS, ST_SERVER, V61_TITLE, Counter(1), Guard())
    assert sec.unwrap(ctx, V61, 0, len(V61), out) == sec.ERR_AUTH  # another key


def test_v62_general_glo_empty_system_title():
    # parses (length 00, then 1E, SC 30, IC 800000D1); its key is not published: tag fails
    ctx = meter()
    out = bytearray(64)
    assert sec.unwrap(ctx, V62, 0, len(V62), out) == sec.ERR_AUTH
    assert ctx.rx_guard.calls == 0
    # the same shape with our keys: the IV takes the client title of the association
    g = gcm.Gcm(EK)
    ct = bytearray(len(V11_PT) + 12)
    g.encrypt(ST_CLIENT + h("800000D1"), (b"\x30", AK), V11_PT, ct)
    apdu = h("DB001E30800000D1") + bytes(ct)
    ctx = meter(client_title=ST_CLIENT)
    assert unwrap_ok(ctx, apdu) == V11_PT
    assert ctx.rx.ic == 0x800000D1 and ctx.rx.kind == sec.GENERAL_GLO
    # without a known client title there is no IV
    assert sec.unwrap(meter(client_title=None), apdu, 0, len(apdu), out) == sec.ERR_POLICY


def test_general_glo_and_ded_reply_round_trip():
    for kind, tag in ((sec.GENERAL_GLO, 0xDB), (sec.GENERAL_DED, 0xDC)):
        req = client_request(V11_PT, 7, kind, title=ST_CLIENT, dk=DK)
        assert req[0] == tag and req[1] == 8 and req[2:10] == ST_CLIENT
        ctx = meter(client_title=ST_CLIENT, ic=100, dedicated_key=DK)
        assert unwrap_ok(ctx, req) == V11_PT and ctx.rx.kind == kind
        out = bytearray(64)
        n = sec.wrap(ctx, ctx.rx, GET_RESP, 0, len(GET_RESP), out)
        assert out[0] == tag and out[1] == 8 and bytes(out[2:10]) == ST_SERVER
        assert out[10] == n - 11 and out[11] == 0x30 and bytes(out[12:16]) == h("00000064")
        # the client's view of the reply: the meter is the sender
        cli = sec.Context(KEYS, ST_CLIENT, ST_SERVER, Counter(1), Guard(), dedicated_key=DK)
        assert unwrap_ok(cli, bytes(out[:n])) == GET_RESP


def test_glo_reply_and_exception_response():
    ctx = meter(ic=5)
    assert unwrap_ok(ctx, V11_APDU) == V11_PT
    out = bytearray(64)
    n = sec.wrap(ctx, ctx.rx, GET_RESP, 0, len(GET_RESP), out)
    assert out[0] == 0xCC and out[1] == n - 2 and out[2] == 0x30 and out[3:7] == h("00000005")
    pt = bytearray(len(GET_RESP))
    iv = ST_SERVER + h("00000005")
    assert gcm.Gcm(EK).decrypt(iv, (b"\x30", AK), out[7:n], pt) == len(GET_RESP)
    assert bytes(pt) == GET_RESP
    # no glo form for ExceptionResponse: sent unprotected, no IC used
    n = sec.wrap(ctx, ctx.rx, EXC, 0, len(EXC), out)
    assert bytes(out[:n]) == EXC and ctx.tx_counter.value == 6
    # under general-glo-ciphering it is protected like any APDU
    n = sec.wrap(ctx, sec.Protection(sec.GENERAL_GLO, 0x30), EXC, 0, len(EXC), out)
    assert out[0] == 0xDB and n == 1 + 9 + 1 + 5 + 3 + 12


def test_response_tags():
    pairs = ((0xC0, 0xC4), (0xC1, 0xC5), (0xC3, 0xC7), (0xC8, 0xCC), (0xC9, 0xCD),
             (0xCB, 0xCF), (0xD0, 0xD4), (0xD1, 0xD5), (0xD3, 0xD7), (0x01, 0x08),
             (0x21, 0x28), (0xDB, 0xDB), (0xDC, 0xDC))
    for req, resp in pairs:
        assert sec.response_tag(req) == resp
    for t in (0xC2, 0xC4, 0xCA, 0xD2, 0xD8, 0x60, 0x00):
        assert sec.response_tag(t) == -1
    # wrap maps every plain request/response to its glo and ded forms
    ctx = meter(dedicated_key=DK)
    out = bytearray(64)
    for plain, glo, ded in ((0xC0, 0xC8, 0xD0), (0xC1, 0xC9, 0xD1), (0xC3, 0xCB, 0xD3),
                            (0xC4, 0xCC, 0xD4), (0xC5, 0xCD, 0xD5), (0xC7, 0xCF, 0xD7)):
        p = bytes([plain, 1, 0xC1])
        sec.wrap(ctx, sec.Protection(sec.GLO), p, 0, 3, out)
        assert out[0] == glo
        sec.wrap(ctx, sec.Protection(sec.DED), p, 0, 3, out)
        assert out[0] == ded


# -- negatives -------------------------------------------------------------------------------
def test_flipped_bits_fail_authentication():
    for i in range(7, len(V11_APDU)):  # ciphertext and tag
        for bit in (0x01, 0x80):
            a = bytearray(V11_APDU)
            a[i] ^= bit
            ctx = meter()
            assert sec.unwrap(ctx, a, 0, len(a), bytearray(64)) == sec.ERR_AUTH
            assert ctx.rx_guard.calls == 0
    for i in range(3, 7):  # the IC is part of the IV
        a = bytearray(V11_APDU)
        a[i] ^= 0x01
        assert sec.unwrap(meter(), a, 0, len(a), bytearray(64)) == sec.ERR_AUTH
    a = bytearray(V11_APDU)
    a[2] = 0x10  # SC is in the AAD: claiming authentication-only fails
    assert sec.unwrap(meter(), a, 0, len(a), bytearray(64)) == sec.ERR_AUTH
    # in place: a rejected APDU is left as it was
    a = bytearray(V11_APDU)
    a[-1] ^= 1
    keep = bytes(a)
    assert sec.unwrap(meter(), a, 0, len(a), None) == sec.ERR_AUTH and bytes(a) == keep


def test_wrong_key_and_wrong_title():
    ctx = sec.Context(sec.Keys(BK, AK), ST_SERVER, ST_SERVER, Counter(1), Guard())
    assert sec.unwrap(ctx, V11_APDU, 0, len(V11_APDU), bytearray(64)) == sec.ERR_AUTH
    ctx = sec.Context(sec.Keys(EK, BK), ST_SERVER, ST_SERVER, Counter(1), Guard())
    assert sec.unwrap(ctx, V11_APDU, 0, len(V11_APDU), bytearray(64)) == sec.ERR_AUTH
    assert sec.unwrap(meter(client_title=ST_CLIENT), V11_APDU, 0, len(V11_APDU),
                      bytearray(64)) == sec.ERR_AUTH


def test_replayed_invocation_counter():
    ctx = meter(client_title=ST_CLIENT)
    out = bytearray(64)
    r10 = client_request(V11_PT, 10, title=ST_CLIENT)
    assert sec.unwrap(ctx, r10, 0, len(r10), out) == len(V11_PT)
    assert sec.unwrap(ctx, r10, 0, len(r10), out) == sec.ERR_REPLAY  # equal
    r9 = client_request(V11_PT, 9, title=ST_CLIENT)
    assert sec.unwrap(ctx, r9, 0, len(r9), out) == sec.ERR_REPLAY  # lower
    r11 = client_request(V11_PT, 11, title=ST_CLIENT)
    assert sec.unwrap(ctx, r11, 0, len(r11), out) == len(V11_PT)
    # the guard is per key: the broadcast key has its own counter
    ctx = meter(client_title=ST_CLIENT, keys=KEYS_BK)
    rb = client_request(V11_PT, 5, sc=0x70, title=ST_CLIENT, keys=sec.Keys(BK, AK))
    assert rb[2] == 0x30  # wrap never sends with the broadcast key...
    a = bytearray(rb)
    a[2] = 0x70  # ...so build the broadcast request by hand
    g = gcm.Gcm(BK)
    body = bytearray(len(V11_PT) + 12)
    g.encrypt(ST_CLIENT + h("00000005"), (b"\x70", AK), V11_PT, body)
    a[7:] = body
    assert unwrap_ok(ctx, bytes(a)) == V11_PT and ctx.rx.key == sec.KEY_BROADCAST
    assert ctx.rx_guard.last == {sec.KEY_BROADCAST: 5}
    r4 = client_request(V11_PT, 4, title=ST_CLIENT)
    assert unwrap_ok(ctx, r4) == V11_PT  # global key: 4 is new there
    assert sec.unwrap(ctx, a, 0, len(a), out) == sec.ERR_REPLAY
    # the reply to a broadcast-key request uses the unicast key
    n = sec.wrap(ctx, sec.Protection(sec.GLO, 0x70, sec.KEY_BROADCAST), GET_RESP, 0, 9, out)
    assert out[2] == 0x30 and n == 2 + 5 + 9 + 12
    # no broadcast key configured
    assert sec.unwrap(meter(client_title=ST_CLIENT), a, 0, len(a), out) == sec.ERR_POLICY


def test_dedicated_key():
    req = client_request(V11_PT, 3, sec.DED, title=ST_CLIENT, dk=DK)
    assert req[0] == 0xD0
    ctx = meter(client_title=ST_CLIENT, dedicated_key=DK)
    assert unwrap_ok(ctx, req) == V11_PT
    assert (ctx.rx.kind, ctx.rx.key) == (sec.DED, sec.KEY_DEDICATED)
    assert ctx.rx_guard.calls == 0  # dedicated counters are the context's own
    out = bytearray(64)
    assert sec.unwrap(ctx, req, 0, len(req), out) == sec.ERR_REPLAY
    n = sec.wrap(ctx, ctx.rx, GET_RESP, 0, len(GET_RESP), out)
    assert out[0] == 0xD4
    pt = bytearray(9)
    assert gcm.Gcm(DK).decrypt(ST_SERVER + bytes(out[3:7]), (b"\x30", AK), out[7:n], pt) == 9
    # a new association forgets the key
    ctx.reset(ST_CLIENT)
    assert sec.unwrap(ctx, req, 0, len(req), out) == sec.ERR_POLICY
    assert sec.wrap(ctx, sec.Protection(sec.DED), GET_RESP, 0, 9, out) == sec.ERR_POLICY
    # a glo request is not readable with the dedicated key, nor a ded one with the global key
    ctx = meter(client_title=ST_CLIENT, dedicated_key=DK)
    a = bytearray(req)
    a[0] = 0xC8
    assert sec.unwrap(ctx, a, 0, len(a), out) == sec.ERR_AUTH


def test_truncated_at_every_byte():
    for apdu, title in ((V11_APDU, ST_SERVER), (V61, V61_TITLE)):
        for i in range(len(apdu)):
            ctx = meter(client_title=title)
            assert sec.unwrap(ctx, apdu, 0, i, bytearray(80)) == sec.ERR_MALFORMED
            assert sec.unwrap(ctx, apdu[:i], 0, i, bytearray(80)) == sec.ERR_MALFORMED
        # and one byte too many
        longer = apdu + b"\x00"
        assert sec.unwrap(meter(client_title=title), longer, 0, len(longer),
                          bytearray(80)) == sec.ERR_MALFORMED
    aarq = acse.parse_aarq(V34_AARQ, 0, len(V34_AARQ))
    ui = bytes(aarq.user_info)
    for i in range(len(ui)):
        assert sec.unwrap_initiate(meter(), ui, 0, i, bytearray(64)) == sec.ERR_MALFORMED
    # a bad system-title length, a bad length form
    out = bytearray(80)
    assert sec.unwrap(meter(), h("DB0541424344453000"), 0, 9, out) == sec.ERR_MALFORMED
    assert sec.unwrap(meter(), h("C880"), 0, 2, out) == sec.ERR_MALFORMED
    assert sec.unwrap(meter(), h("C8831E"), 0, 3, out) == sec.ERR_MALFORMED


def test_refused_security_control():
    out = bytearray(64)
    for sc in (0xB0, 0x31, 0x32, 0x3F, 0x20, 0x00, 0x80, 0x40, 0x60):
        a = bytearray(V11_APDU)
        a[2] = sc
        ctx = meter(keys=KEYS_BK)
        assert sec.unwrap(ctx, a, 0, len(a), out) == sec.ERR_POLICY, sc
        assert ctx.rx_guard.calls == 0


def test_security_policy_authentication_only():
    auth_only = client_request(V11_PT, 20, sc=0x10)
    # authentication only: the APDU is readable on the wire, followed by the GMAC tag
    assert auth_only[:7] == h("C81E1000000014") and auth_only[7:20] == V11_PT
    g = gcm.Gcm(EK)
    tag = g.gmac(ST_SERVER + h("00000014"), (b"\x10", AK, V11_PT))
    assert auth_only[20:] == tag
    out = bytearray(64)
    ctx = meter()
    ctx.require = sec.SC_AUTH_ENC
    assert sec.unwrap(ctx, auth_only, 0, len(auth_only), out) == sec.ERR_POLICY
    assert sec.unwrap(ctx, V11_APDU, 0, len(V11_APDU), out) == len(V11_PT)
    ctx = meter(require=sec.SC_AUTH)
    assert unwrap_ok(ctx, auth_only) == V11_PT and ctx.rx.sc == 0x10
    a = bytearray(auth_only)  # in place: the text was never encrypted
    assert sec.unwrap(meter(), a, 0, len(a), None) == len(V11_PT) and a[7:20] == V11_PT
    a[10] ^= 0x04  # the clear text is authenticated
    assert sec.unwrap(meter(), a, 0, len(a), out) == sec.ERR_AUTH
    # the reply goes authentication-only too
    n = sec.wrap(ctx, ctx.rx, GET_RESP, 0, len(GET_RESP), out)
    assert out[:3] == h("CC1A10") and out[7:16] == GET_RESP and n == 28


def test_envelope_must_match_plain_tag():
    set_req = h("C101C100080000010000FF0200090C07E50118FF0E303950FFC400")
    req = bytearray(client_request(set_req, 30))
    assert req[0] == 0xC9
    req[0] = 0xC8  # the envelope tag is not authenticated; the plain tag is
    out = bytearray(64)
    assert sec.unwrap(meter(), req, 0, len(req), out) == sec.ERR_MALFORMED
    for t in (0xC0, 0xCC, 0x21, 0xD8, 0xDD, 0xCA):
        a = bytearray(V11_APDU)
        a[0] = t
        assert sec.unwrap(meter(), a, 0, len(a), out) == sec.ERR_UNKNOWN_TAG


def test_meter_ic_strictly_increases():
    ctx = meter(client_title=ST_CLIENT, ic=1, dedicated_key=DK)
    out = bytearray(64)
    seen = []
    for kind in (sec.GLO, sec.DED, sec.GENERAL_GLO, sec.GENERAL_DED, sec.GLO):
        n = sec.wrap(ctx, sec.Protection(kind), GET_RESP, 0, len(GET_RESP), out)
        p = n - 12 - 9 - 4
        seen.append((out[p] << 24) | (out[p + 1] << 16) | (out[p + 2] << 8) | out[p + 3])
    sec.hls_response(ctx, CTOS, out)
    seen.append((out[1] << 24) | (out[2] << 16) | (out[3] << 8) | out[4])
    sec.wrap_initiate_response(ctx, V13_PT, 0, len(V13_PT), out, 0, 0x30)
    seen.append((out[3] << 24) | (out[4] << 16) | (out[5] << 8) | out[6])
    assert seen == [1, 2, 3, 4, 5, 6, 7]


def test_counter_and_buffer_limits():
    out = bytearray(64)
    ctx = meter(ic=0x100000000)  # exhausted: never wraps to 0
    assert sec.wrap(ctx, sec.Protection(), GET_RESP, 0, 9, out) == sec.ERR_COUNTER
    assert sec.hls_response(ctx, CTOS, out) == sec.ERR_COUNTER
    ctx = meter(ic=0)  # the first IC a client accepts is 1
    assert sec.wrap(ctx, sec.Protection(), GET_RESP, 0, 9, out) == sec.ERR_COUNTER
    ctx = meter(ic=1)
    assert sec.wrap(ctx, sec.Protection(), GET_RESP, 0, 9, bytearray(27)) == sec.ERR_TOO_LONG
    assert ctx.tx_counter.value == 1  # no IC spent on a reply that was not written
    assert sec.wrap(ctx, sec.Protection(), GET_RESP, 0, 9, bytearray(28)) == 28
    assert sec.unwrap(meter(), V11_APDU, 0, len(V11_APDU), bytearray(12)) == sec.ERR_TOO_LONG
    assert sec.wrap(ctx, sec.Protection(sec.GLO, 0x20), GET_RESP, 0, 9, out) == sec.ERR_POLICY


def test_long_apdus_length_forms():
    for size, lbytes in ((100, b"\x75"), (110, b"\x7f"), (111, b"\x81\x80"),
                         (200, b"\x81\xd9"), (300, b"\x82\x01\x3d"), (2000, b"\x82\x07\xe1")):
        for kind, first in ((sec.GLO, 0xC0), (sec.GENERAL_GLO, 0xC4)):
            plain = bytearray(size)
            for i in range(size):
                plain[i] = i & 0xFF
            plain[0] = first
            req = client_request(plain, size, kind, title=ST_CLIENT)
            lpos = 1 if kind == sec.GLO else 10
            assert req[lpos : lpos + len(lbytes)] == lbytes  # content = size + 17
            ctx = meter(client_title=ST_CLIENT)
            assert unwrap_ok(ctx, req) == plain
