"""Interoperability of the management association (client SAP 1: HLS mechanism 5 GMAC,
security suite 0, every xDLMS APDU authenticated and encrypted) with gurux-dlms (GPLv2,
test-only) and dlms-cosem (MIT), over HDLC on the pseudo-terminal and the TCP wrapper.

Black box: the meter is tools/virtual_meter.py; keys, titles and rights are the contract's
(design/virtual-meter.md), the clients' quirks are in design/interop.md. gurux-dlms 1.0.203
does not verify GCM tags when it decrypts, so every protected reply is also opened here
with pyca ``cryptography`` (clients.open_ciphered): IV = server title || IC, AAD = SC || AK.

Client invocation counters persist in the meter across associations and restarts: every
association here starts above the last one the meter accepted (0.0.43.1.0.255, read by the
public client), or runs on a fresh meter. Tests that change keys or restart run on a meter
of their own.

Observed behaviour (documented by the tests):
* gurux sends service-specific glo APDUs (glo-action-request CB for HLS pass 3,
  glo-get-request C8 ...) and gets glo replies (CF, CC); the meter does not negotiate
  general-protection. dlms-cosem sends and gets general-glo-ciphering (DB) only.
* After a global key transfer of the unicast key, the next association with the new keys
  may start its invocation counter again from 1 (the sequence restarts); the meter's
  0.0.43.1.0.255 then shows the new sequence. The old keys are refused.
* Refusals of a ciphered AARQ (wrong key, lowered counter) are a plain AARE
  rejected-permanent (acse-service-user no-reason-given) whose user-information is a
  plain confirmed-service-error (0E 01 06 00): nothing protected, no data.
"""

import datetime
import os

import pytest

import clients as cl
import running_meter as vm

vmeter = vm.vmeter
fresh_meter = vm.fresh_meter

cl.quiet_structlog()

H = bytes.fromhex
LIBS = ["gurux", "dlms_cosem"]
TRANSPORTS = ["hdlc", "tcp"]
LDN_LN = "0.0.42.0.0.255"
CLOCK_LN = "0.0.1.0.0.255"
IC_LN = "0.0.43.1.0.255"
SECURITY_SETUP_LN = "0.0.43.0.0.255"
# what the management client sees at least (the contract's objects the meter implements)
MGMT_AT_LEAST = {
    "0.0.40.0.0.255", "0.0.40.0.1.255", "0.0.40.0.2.255", "0.0.40.0.3.255",
    "0.0.41.0.0.255", LDN_LN, "0.0.96.1.0.255", "1.0.0.2.0.255", CLOCK_LN,
    "0.0.22.0.0.255", "0.0.20.0.0.255", SECURITY_SETUP_LN, IC_LN,
}
PROTECTED_REPLY_TAGS = {0xCC, 0xCD, 0xCF, 0xD4, 0xD5, 0xD7, 0xDB, 0xDC}
PLAIN_XDLMS_REPLY_TAGS = {0xC4, 0xC5, 0xC7}
GET_LDN_PLAIN = H("C001C1000100002A0000FF0200")  # GET-Request-Normal LDN attr 2


# ------------------------------------------------------------------------------ helpers
def target(m, transport):
    return m.tcp if transport == "tcp" else m.serial


def last_ic(m):
    """The last client invocation counter the meter accepted (public client, TCP)."""
    with cl.GuruxClient("tcp", m.tcp, cl.PUBLIC) as g:
        v = g.read(IC_LN, 1, 2)
    assert isinstance(v, int), repr(v)
    return v


def mgmt(lib, m, transport, ic=None, **kw):
    """A management client of the library; its first invocation counter is above the
    last the meter accepted unless ic is given."""
    if ic is None:
        ic = last_ic(m) + 1
    cls = cl.GuruxClient if lib == "gurux" else cl.CosemClient
    return cls(transport, target(m, transport), cl.MANAGEMENT, invocation_counter=ic, **kw)


def read_ldn(c):
    if isinstance(c, cl.GuruxClient):
        return bytes(c.read(LDN_LN, 1, 2))
    raw = c.get(LDN_LN, 1, 2)
    assert raw[:2] == H("0910"), raw.hex()
    return raw[2:]


def read_clock12(c):
    if isinstance(c, cl.GuruxClient):
        v = c.read(CLOCK_LN, 8, 2)
        assert isinstance(v, (bytes, bytearray)), repr(v)
        return bytes(v)
    raw = c.get(CLOCK_LN, 8, 2)
    assert raw[:2] == H("090C") and len(raw) == 14, raw.hex()
    return raw[2:]


def ber_top(apdu):
    """{tag: content} of the top-level BER elements of an AARE/RLRE."""
    a = bytes(apdu)
    p = 1
    n = a[p]
    p += 1
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(a[p:p + k], "big")
        p += k
    end = p + n
    assert end == len(a), a.hex()
    out = {}
    while p < end:
        tag = a[p]
        ln = a[p + 1]
        q = p + 2
        if ln & 0x80:
            k = ln & 0x7F
            ln = int.from_bytes(a[q:q + k], "big")
            q += k
        out[tag] = a[q:q + ln]
        p = q + ln
    return out


def acse_user_info(apdu):
    """The xDLMS APDU inside an AARE/RLRE's user-information (BE 04 ..), or None."""
    ui = ber_top(apdu).get(0xBE)
    if ui is None:
        return None
    assert ui[0] == 0x04, ui.hex()
    ln = ui[1]
    assert ln < 0x80 and len(ui) == 2 + ln, ui.hex()
    return ui[2:]


def aare_result(apdu):
    assert apdu[0] == 0x61, "not an AARE: %s" % bytes(apdu).hex()
    r = ber_top(apdu)[0xA2]
    assert r[:2] == H("0201"), r.hex()
    return r[2]


def check_replies(apdus, ek=cl.MGMT_EK, ak=cl.MGMT_AK):
    """Every reply APDU of a management session: the protected ones (and the AARE's/RLRE's
    glo-initiate-response) carry a valid 12-octet GCM tag under (ek, ak) and the server
    title, the meter's invocation counter increases strictly, and nothing xDLMS comes back
    in plain. Returns [(kind tag, IC, plaintext)]."""
    out = []
    for a in apdus:
        a = bytes(a)
        if a[0] in (0x61, 0x63):
            ui = acse_user_info(a)
            if ui is not None and ui[0] == 0x28:  # glo-initiate-response
                ic, pt = cl.open_ciphered(ui, ek, ak)
                assert pt[0] == 0x08, "InitiateResponse expected: %s" % pt.hex()
                out.append((0x28, ic, pt))
            continue
        assert a[0] not in PLAIN_XDLMS_REPLY_TAGS, "plain xDLMS reply in a ciphered " \
            "association: %s" % a.hex()
        if a[0] in PROTECTED_REPLY_TAGS:
            if a[0] in (0xDB, 0xDC):
                assert a[2:10] == cl.SERVER_TITLE, "general-glo title %s" % a[2:10].hex()
            ic, pt = cl.open_ciphered(a, ek, ak)
            out.append((a[0], ic, pt))
    ics = [x[1] for x in out]
    assert ics and ics[0] >= 1, ics
    assert all(x < y for x, y in zip(ics, ics[1:])), "meter IC not strictly increasing: %r" % ics
    return out


def client_plaintexts(c, title, ek=cl.MGMT_EK, ak=cl.MGMT_AK):
    """The client's own protected xDLMS requests, opened (also a check of the clients)."""
    out = []
    for a in cl.split_apdus(b"".join(c.io.tx_log), c.transport):
        if a and (0xC8 <= a[0] <= 0xCB or a[0] in (0xDB,)):
            out.append(cl.open_ciphered(a, ek, ak, title)[1])
    return out


def cosem_datetime(t):
    """12-octet COSEM date-time of an aware UTC datetime, deviation 0 (the contract: UTC)."""
    return (t.year.to_bytes(2, "big") + bytes([t.month, t.day, t.isoweekday(), t.hour,
                                                t.minute, t.second, 0]) + H("000000"))


def still_serves(m, lib, transport):
    """A fresh valid management session reads the logical device name."""
    with mgmt(lib, m, transport) as c:
        assert len(read_ldn(c)) == 16


def refused_association(c):
    """Open must fail; the meter's answer is an AARE rejected with nothing protected (no
    ciphered initiate-response, no data). Returns the AARE bytes."""
    with pytest.raises(Exception):
        c.open()
    if isinstance(c, cl.CosemClient):
        try:
            c.client.disconnect()
        except Exception:
            pass
    replies = c.reply_apdus(c.io.rx_log)
    aares = [a for a in replies if a[:1] == b"\x61"]
    assert aares, "no AARE: %r" % [a.hex() for a in replies]
    aare = aares[-1]
    assert aare_result(aare) != 0, "association accepted: %s" % aare.hex()
    ui = acse_user_info(aare)
    assert ui is None or ui[0] != 0x28, "refusal carries a ciphered initiate-response"
    assert all(a[0] in (0x61,) for a in replies), [a.hex() for a in replies]
    return aare


# ------------------------------------------------------------------------------ sessions
def session_data(c):
    ldn = read_ldn(c)
    assert len(ldn) == 16
    clk = read_clock12(c)
    cl.check_clock(clk)
    objs = c.object_list()
    names = cl.check_object_list(objs, cl.MANAGEMENT)
    missing = MGMT_AT_LEAST - names
    assert not missing, "management does not see %s" % sorted(missing)
    return {"ldn": ldn, "objects": objs, "object_list_raw": c.object_list_raw()}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_hls_session_object_list(vmeter, lib, transport):
    """HLS-GMAC association, object list, LDN, clock, release; again with a 128-octet PDU
    (and HDLC info field) so that GET blocks and segmentation happen: same data."""
    c = mgmt(lib, vmeter, transport)
    with c:
        big = session_data(c)
    if lib == "gurux":
        from gurux_dlms.enums import Command
        assert c.rlre_command == Command.RELEASE_RESPONSE, c.rlre_command
    else:
        assert c.rlre is not None, "no RLRE"
    seen = check_replies(c.reply_apdus(c.io.rx_log))
    kinds = {k for k, _ic, _pt in seen}
    # gurux: glo-action-response CF (HLS pass 4), glo-get-response CC; dlms-cosem: DB only
    want = {0x28, 0xCF, 0xCC} if lib == "gurux" else {0x28, 0xDB}
    assert kinds == want, "protection kinds %s, expected %s" % (
        sorted("%02X" % k for k in kinds), sorted("%02X" % k for k in want))
    # the reply to the LDN GET decrypts to GET-Response-Normal with the 16 octets
    plain = [pt for _k, _ic, pt in seen]
    assert H("C401C1000910") + big["ldn"] in plain, [pt.hex() for pt in plain]

    small = mgmt(lib, vmeter, transport,
                 **({"max_pdu": 128, "max_info": 128} if lib == "gurux" else {"max_pdu": 128}))
    with small:
        data = session_data(small)
    assert data == big
    seen = check_replies(small.reply_apdus(small.io.rx_log))
    blocks = [pt for _k, _ic, pt in seen if pt[:2] == H("C402")]
    assert len(blocks) >= 2, "no GET-Response-With-Datablock with a 128-octet PDU"
    title = cl.GURUX_TITLE if lib == "gurux" else cl.COSEM_TITLE
    nexts = [pt for pt in client_plaintexts(small, title) if pt[:2] == H("C002")]
    assert len(nexts) >= 2, "no GET-Request-Next"
    for cc in (c, small):
        if transport == "hdlc":
            # the object list (about 1 kB with PDU 1024) comes in 128-octet HDLC segments
            fr = cl.split_hdlc_frames(cc.io.rx_bytes)
            assert max(len(f) - 10 for f in fr) <= 128
            if cc is c:
                assert any(f[0] & 0x08 for f in fr), "no segmented frame from the meter"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_set_clock(fresh_meter, lib, transport):
    m = fresh_meter
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    want = now - datetime.timedelta(days=3, hours=5, minutes=7)
    with mgmt(lib, m, transport) as c:
        before = cl.decode_cosem_datetime(read_clock12(c))["utc"]
        if lib == "gurux":
            from gurux_dlms import GXDateTime
            clk = c.make_object(CLOCK_LN, 8)
            clk.time = GXDateTime(want)
            c.write_object(clk, 2)  # raises on a refusal
        else:
            from dlms_cosem import enumerations
            r = c.set(CLOCK_LN, 8, 2, H("090C") + cosem_datetime(want))
            assert r.result == enumerations.DataAccessResult.SUCCESS, r
        got = cl.decode_cosem_datetime(read_clock12(c))
    assert got["deviation"] == 0, got
    assert abs((got["utc"] - want).total_seconds()) < 5, (got, want)
    assert abs((got["utc"] - before).total_seconds()) > 3 * 86400, (before, got)
    # a new association sees it too
    with mgmt(lib, m, transport) as c:
        later = cl.decode_cosem_datetime(read_clock12(c))["utc"]
    assert abs((later - want).total_seconds()) < 10, (later, want)


# ------------------------------------------------------------------------------ keys
NEW_EK = H("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
NEW_AK = H("B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF")


def key_transfer(c, keys):
    """Global key transfer (Security setup method 2), keys: [(key_id, key)] wrapped with
    RFC 3394 under the contract's master key. gurux: its own globalKeyTransfer; dlms-cosem:
    the ACTION built here."""
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    if isinstance(c, cl.GuruxClient):
        from gurux_dlms.objects import GXDLMSSecuritySetup

        ss = GXDLMSSecuritySetup(SECURITY_SETUP_LN)
        n0 = len(c.io.tx_log)
        c.read_data_block(ss.globalKeyTransfer(c.c, bytearray(cl.MGMT_KEK),
                                               [(k, bytearray(v)) for k, v in keys]))
        # what gurux sent is what the Blue Book asks for (checked independently)
        (req,) = [cl.open_ciphered(a, title=cl.GURUX_TITLE)[1]
                  for a in cl.split_apdus(b"".join(c.io.tx_log[n0:]), c.transport)]
        assert req[:3] == H("C301C1") and req[3:12] == H("0040") + cl.obis_bytes(
            SECURITY_SETUP_LN) + H("02"), req.hex()
        for k, v in keys:
            assert H("0202160%d0918" % k) + aes_key_wrap(cl.MGMT_KEK, v) in req, req.hex()
        reply = c.reply_apdus(c.io.rx_log)[-1]
        _ic, pt = cl.open_ciphered(reply)
        assert pt[:4] == H("C701C100"), "action-response %s" % pt.hex()
    else:
        data = bytes([0x01, len(keys)])
        for k, v in keys:
            data += H("020216%02X0918" % k) + aes_key_wrap(cl.MGMT_KEK, v)
        c.action(SECURITY_SETUP_LN, 64, 2, data)  # raises ActionError unless success


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_global_key_transfer(fresh_meter, lib, transport):
    m = fresh_meter
    with mgmt(lib, m, transport, ic=1000) as c:
        key_transfer(c, [(0, NEW_EK), (2, NEW_AK)])
        # nothing else in this association (see test_key_transfer_keeps_replay_protection);
        # but dlms-cosem's RLRQ is ciphered (glo-initiate-request, old keys, IC 1003)
    after_release = last_ic(m)
    # new keys: the counter sequence restarts, so 1 should be accepted again
    restarted = True
    c = mgmt(lib, m, transport, ic=1, ek=NEW_EK, ak=NEW_AK)
    try:
        c.open()
    except Exception as e:
        restarted = e
        c = mgmt(lib, m, transport, ek=NEW_EK, ak=NEW_AK)  # above the meter's record
        c.open()
    assert len(read_ldn(c)) == 16
    c.close()
    check_replies(c.reply_apdus(c.io.rx_log), NEW_EK, NEW_AK)
    with pytest.raises(Exception):  # and they are really the new keys
        check_replies(c.reply_apdus(c.io.rx_log))
    top = last_ic(m)
    # the old keys are refused, whatever the counter
    refused_association(mgmt(lib, m, transport, ic=5000))
    # the new sequence is replay-protected too
    refused_association(mgmt(lib, m, transport, ic=top, ek=NEW_EK, ak=NEW_AK))
    with mgmt(lib, m, transport, ek=NEW_EK, ak=NEW_AK) as c:
        assert len(read_ldn(c)) == 16
    # the keys are kept across a restart (SIGTERM)
    m.stop()
    m2 = vm.start_meter(os.path.dirname(m.state_dir))
    try:
        with mgmt(lib, m2, transport, ek=NEW_EK, ak=NEW_AK) as c:
            assert len(read_ldn(c)) == 16
        refused_association(mgmt(lib, m2, transport, ic=last_ic(m2) + 1))  # old keys
    finally:
        m2.stop()
    # last: did the sequence of the new key really restart? The meter restarts it with the
    # first association on the new key (the association that made the transfer went on with
    # the old key and its replay protection), so 0.0.43.1.0.255 read between the release
    # and that association still shows the old sequence (>= 1000), and an association with
    # the new keys from IC 1 is accepted.
    assert after_release >= 1000, after_release
    assert restarted is True, (
        "an association with the new keys from IC 1 was refused (%s): the old association's "
        "protected APDUs were counted against the new key's sequence" % restarted)


@pytest.mark.parametrize("lib", LIBS)
def test_key_transfer_keeps_replay_protection(fresh_meter, lib):
    """The association that changes the unicast key goes on with its old keys; a request
    it already sent must still be refused as a replay after the transfer (the meter resets
    the client-counter sequence at the transfer; it must not reopen the old sequence)."""
    m = fresh_meter
    with mgmt(lib, m, "tcp", ic=100) as c:
        req = (c.protected_read_apdu(LDN_LN, 1, 2) if lib == "gurux"
               else c.protected_get(LDN_LN, 1, 2))
        first = c.exchange_apdu(req)
        assert first[0] in PROTECTED_REPLY_TAGS, first.hex()
        key_transfer(c, [(0, NEW_EK)])
        again = c.exchange_apdu(req)
        assert again[0] == 0xD8 and again[2] == 0x06, (
            "replay of %s (IC %d) after the key transfer answered %s (expected ExceptionResponse "
            "D8 xx 06 invocation-counter-error)" % (req[:16].hex(), cl.ciphered_header(req)[3],
                                                    again.hex()))


# ------------------------------------------------------------------------------ negatives
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_wrong_authentication_key_refused(vmeter, lib, transport):
    aare = refused_association(mgmt(lib, vmeter, transport, ak=H("D0" * 16)))
    assert aare_result(aare) == 1, aare.hex()  # rejected-permanent
    still_serves(vmeter, lib, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_wrong_encryption_key_refused(vmeter, lib, transport):
    refused_association(mgmt(lib, vmeter, transport, ek=H("00" * 16)))
    still_serves(vmeter, lib, transport)


def protected_ldn_get(c):
    return (c.protected_read_apdu(LDN_LN, 1, 2) if isinstance(c, cl.GuruxClient)
            else c.protected_get(LDN_LN, 1, 2))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_replayed_request_refused(vmeter, lib, transport):
    with mgmt(lib, vmeter, transport) as c:
        ldn = read_ldn(c)
        req = protected_ldn_get(c)
        first = c.exchange_apdu(req)
        _ic, pt = cl.open_ciphered(first)
        assert pt.endswith(H("0910") + ldn), pt.hex()
        second = c.exchange_apdu(req)
        assert second[0] == 0xD8 and second[2] == 0x06, (
            "replayed %s answered %s" % (req.hex(), second.hex()))
    still_serves(vmeter, lib, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_flipped_tag_bit_refused(vmeter, lib, transport):
    with mgmt(lib, vmeter, transport) as c:
        req = bytearray(protected_ldn_get(c))
        req[-3] ^= 0x10  # one bit of the 12-octet tag
        r = c.exchange_apdu(bytes(req))
        assert r[0] == 0xD8 and r[2] == 0x05, "tampered tag answered %s" % r.hex()
        # the association goes on: the next valid request is served
        assert len(read_ldn(c)) == 16
    still_serves(vmeter, lib, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_lowered_counter_refused(vmeter, lib, transport):
    start = last_ic(vmeter) + 1
    with mgmt(lib, vmeter, transport, ic=start) as c:
        read_ldn(c)
    top = last_ic(vmeter)
    assert top >= start + 2, (start, top)  # the AARQ, HLS pass 3 and the GET were counted
    refused_association(mgmt(lib, vmeter, transport, ic=start))
    refused_association(mgmt(lib, vmeter, transport, ic=top))  # equal is a replay too
    assert last_ic(vmeter) == top
    still_serves(vmeter, lib, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_plain_get_refused(vmeter, lib, transport):
    with mgmt(lib, vmeter, transport) as c:
        r = c.exchange_apdu(GET_LDN_PLAIN)
        assert r[0] == 0xD8, "plain GET in a ciphered association answered %s" % r.hex()
        assert b"MMM" not in r and len(r) == 3, r.hex()
    still_serves(vmeter, lib, transport)


# ------------------------------------------------------------------------------ meter IC
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBS)
def test_meter_invocation_counter_increases(tmp_path, lib, transport):
    """The meter's own IC (in every protected reply) increases strictly within a session,
    across sessions, across a SIGTERM restart and across a SIGKILL (power cut)."""
    ics = []
    m = vm.start_meter(tmp_path)
    try:
        for how in ("first", "again", "stop", "kill"):
            if how == "stop":
                m.stop()
                m = vm.start_meter(tmp_path)
            elif how == "kill":
                m.kill()
                m = vm.start_meter(tmp_path)
            with mgmt(lib, m, transport) as c:
                read_ldn(c)
                read_clock12(c)
            got = [ic for _k, ic, _pt in check_replies(c.reply_apdus(c.io.rx_log))]
            assert len(got) >= 3, got
            ics.append((how, got))
    finally:
        if m.alive():
            m.stop()
    flat = [ic for _h, got in ics for ic in got]
    assert all(x < y for x, y in zip(flat, flat[1:])), "meter IC went back: %r" % ics
