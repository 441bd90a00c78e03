"""HDLC link layer (IEC 62056-46): frame codec and server state machine.

Runs under CPython and MicroPython. Wherever dlms-vectors.md section 2 publishes the bytes of a
frame, the test feeds or expects those exact bytes; our own encoder (hdlc_tools.frame) only
builds the client frames that no vector provides.
"""

import binascii

from dlms import hdlc, hdlc_tools


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def hx(b):
    return binascii.hexlify(b).decode().upper()


# --- published frames (dlms-vectors.md section 2) ---
V21_SNRM = h("7EA00802232193BD647E")
V22_SNRM4 = h("7EA00A00020023219318717E")
V23_UA = h("7EA023210002002373F6C58180140502008006020080070400000001080400000001CE6A7E")
V24_UA = h("7EA01F21022373E6C781801205019A06019A070400000001080400000001CCA27E")
V25_UA = h("7EA023030002002373C0488180140502008006020080070400000001080400000001CE6A7E")
V26_UA = h("7EA00721037301407E")
V27_AARQ = h("7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000065F1F0400001E1DFF"
             "FFC5E47E")
V28_AARE = h("7EA0382102233034E7E6E7006129A109060760857405080101A203020100A305A103020100BE10040E08"
             "00065F1F0400001E1D04C80007B86A7E")
V210_SNRM = h("7E A0 14 03 21 93 63 E7 81 80 08 05 02 01 00 06 02 01 00 56 96 7E")
V211_RR = h("7E A0 08 02 23 21 F1 A9 24 7E")
V212_DISC = h("7E A0 08 02 23 21 53 B1 A2 7E")
V212_UA = h("7E A0 08 21 02 23 73 7A 43 7E")


def v29(body, fcs):
    """A 2.9 pair as a complete frame: flag, body, FCS, flag."""
    return h("7E" + body + fcs + "7E")


V29_AARQ = v29("A02E0002002321107ECBE6E600601DA109060760857405080101BE10040E01000000065F1F040000"
               "301DFFFF", "D4C5")
V29_AARE = v29("A03A2100020023309941E6E7006129A109060760857405080101A203020100A305A103020100BE1004"
               "0E0800065F1F040000301D19000007", "0C52")
V29_GET1 = v29("A0199575546835E6E600C0018100080000010000FF0100", "0DFD")
V29_GET1_RSP = v29("A018759574E9E8E6E700C401810009060000010000FF", "FD49")
V29_GET2 = v29("A0199575767837E6E600C0018100080000010000FF0200", "65D7")
V29_GET2_RSP = v29("A01E7595966F67E6E700C4018100090C07D20C04030A060BFF007800", "F330")
V29_SET = v29("A027957598B8DBE6E600C1018100080000010000FF0200090C07D20C04030A060BFF007800", "62FB")
V29_SET_RSP = v29("A0107595B85101E6E700C5018100", "36CF")

AARQ_APDU = h("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")
AARE_APDU = h("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400001E1D04C8"
              "0007")
LLC_REQ = h("E6E600")
LLC_RSP = h("E6E700")

C16 = b"\x21"  # client 16 (public client)
C1 = b"\x03"  # client 1 (management)
S1 = b"\x03"  # server logical 1, 1-byte form
S2 = b"\x02\x23"  # logical 1, physical 17
S4 = b"\x00\x02\x00\x23"
DEFAULT_UA_INFO = h("818012 050180 060180 07040000000108040000 0001")


# --- harness ---


def pump(link, data, now=0, step=0, responder=None, reqs=None):
    """Feed data (in chunks of `step` bytes, 0 = all at once) and return the output frames.
    Requests go to responder(apdu) -> response bytes or None (no_reply); they are also
    appended to reqs as (apdu, client, broadcast, ui)."""
    outs = []
    pos = 0
    while True:
        while link.output_len():
            outs.append(bytes(link.output_view[: link.output_len()]))
            link.output_done()
        n = link.request_len()
        if n:
            apdu = bytes(link.request_view[:n])
            if reqs is not None:
                reqs.append((apdu, link.request_client, link.request_broadcast, link.request_ui))
            rsp = responder(apdu) if responder else None
            if rsp is None:
                link.no_reply()
            else:
                link.reply_view()[: len(rsp)] = rsp
                link.reply(len(rsp))
            continue
        if pos >= len(data):
            return outs
        end = len(data) if not step else min(len(data), pos + step)
        used = link.feed(data, pos, end, now)
        assert used > 0 or link.output_len() or link.request_len(), "feed made no progress"
        pos += used


def one(outs):
    assert len(outs) == 1, [hx(o) for o in outs]
    return outs[0]


def dec(f):
    d = hdlc_tools.decode_frame(f)
    assert d is not None, hx(f)
    return d  # segmented, dst, dst_len, src, src_len, control, info


def ctrl_of(f):
    return dec(f)[5]


def i_ctrl(ns, nr, pf=True):
    return (nr << 5) | (0x10 if pf else 0) | (ns << 1)


def rr_ctrl(nr, pf=True):
    return (nr << 5) | (0x10 if pf else 0) | 0x01


def cframe(ctrl, info=b"", dst=S2, src=C16, seg=False):
    return hdlc_tools.frame(dst, src, ctrl, info, seg)


def connect(link, dst=S2, src=C16, info=b"", now=0):
    """SNRM -> UA; returns the UA frame."""
    ua = one(pump(link, cframe(0x93, info, dst, src), now))
    assert ctrl_of(ua) == 0x73 and link.connected
    return ua


def echo(apdu):
    return b"\xaa" + apdu


class Prng:
    """Deterministic LCG (same sequence on both runtimes)."""

    def __init__(self, seed):
        self.x = seed

    def byte(self):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 16) & 0xFF


# --- codec helpers ---


def test_address_encoding():
    assert hdlc_tools.encode_address(16, 1) == h("21")
    assert hdlc_tools.encode_address(1, 1) == h("03")
    assert hdlc_tools.encode_address(0x4A, 1) == h("95")
    assert hdlc_tools.server_address(1, 17, 2) == 0x91
    assert hdlc_tools.encode_address(0x91, 2) == h("0223")
    assert hdlc_tools.server_address(1, 17, 4) == 0x4011
    assert hdlc_tools.encode_address(0x4011, 4) == h("00020023")
    assert hdlc_tools.encode_address(hdlc_tools.server_address(1, 0, 2), 2) == h("0201")
    assert hdlc_tools.decode_address(h("00020023"), 0, 4) == (0x4011, 4)
    assert hdlc_tools.decode_address(h("0223"), 0, 2) == (0x91, 2)
    assert hdlc_tools.decode_address(h("21"), 0, 1) == (16, 1)
    assert hdlc_tools.decode_address(h("0002002200"), 0, 5) == (-1, 0)  # no end within 4 bytes
    assert hdlc_tools.decode_address(h("0002"), 0, 2) == (-1, 0)  # runs off the end


def test_decode_published_frames():
    cases = [
        (V21_SNRM, 0x91, 2, 16, 0x93, b""),
        (V22_SNRM4, 0x4011, 4, 16, 0x93, b""),
        (V26_UA, 16, 1, 1, 0x73, b""),
        (V27_AARQ, 0x91, 2, 16, 0x10, LLC_REQ + AARQ_APDU),
        (V28_AARE, 16, 1, 0x91, 0x30, LLC_RSP + AARE_APDU),
        (V211_RR, 0x91, 2, 16, 0xF1, b""),
        (V212_DISC, 0x91, 2, 16, 0x53, b""),
        (V212_UA, 16, 1, 0x91, 0x73, b""),
        (V29_GET1, 0x4A, 1, 0x3A, 0x54, LLC_REQ + h("C0018100080000010000FF0100")),
    ]
    for f, dst, dl, src, ctrl, info in cases:
        seg, d, l, s, sl, c, i = dec(f)
        assert (seg, d, l, s, sl, c, i) == (False, dst, dl, src, 1 if src < 128 else 2, ctrl,
                                            info), hx(f)
    # a flipped bit anywhere (header, HCS, info, FCS) makes the frame invalid
    for pos in (3, 7, 9, 20, len(V27_AARQ) - 3):
        bad = bytearray(V27_AARQ)
        bad[pos] ^= 0x04
        assert hdlc_tools.decode_frame(bytes(bad)) is None, pos


def test_encoder_reproduces_published_frames():
    assert cframe(0x93) == V21_SNRM
    assert cframe(0x93, dst=S4) == V22_SNRM4
    assert cframe(0x10, LLC_REQ + AARQ_APDU) == V27_AARQ
    assert hdlc_tools.frame(C16, S2, 0x30, LLC_RSP + AARE_APDU) == V28_AARE
    assert hdlc_tools.frame(S1, C16, 0x93, hdlc_tools.snrm_info(256, 256, size=2)) == V210_SNRM
    assert cframe(rr_ctrl(7)) == V211_RR
    assert cframe(0x53) == V212_DISC
    assert hdlc_tools.frame(C16, S2, 0x73) == V212_UA
    assert hdlc_tools.frame(C16, S1, 0x73) == V26_UA
    get1 = LLC_REQ + h("C0018100080000010000FF0100")
    assert hdlc_tools.frame(b"\x95", b"\x75", 0x54, get1) == V29_GET1
    seg = hdlc_tools.frame(C16, S2, 0x30, b"\x01", True)
    assert seg[1] == 0xA8 and dec(seg)[0] is True


def test_parse_params_of_published_ua_and_snrm():
    assert hdlc_tools.parse_params(dec(V23_UA)[6]) == (128, 128, 1, 1)  # 2-byte values
    assert hdlc_tools.parse_params(dec(V24_UA)[6]) == (154, 154, 1, 1)  # 1-byte values
    assert hdlc_tools.parse_params(dec(V25_UA)[6]) == (128, 128, 1, 1)
    assert hdlc_tools.parse_params(dec(V210_SNRM)[6]) == (256, 256, 1, 1)
    assert hdlc_tools.parse_params(b"") == (128, 128, 1, 1)
    assert hdlc_tools.parse_params(h("818006 05012A 060128")) == (42, 40, 1, 1)
    assert hdlc_tools.parse_params(h("818007 0504000000FF 09")) is None  # truncated item
    assert hdlc_tools.parse_params(h("818004 050180")) is None  # group length wrong
    assert hdlc_tools.parse_params(h("818003 050500")) is None  # value length 5
    assert hdlc_tools.parse_params(h("828003 050180")) is None  # format identifier


# --- connection set-up and addressing ---


def test_bare_snrm_2byte_address_gives_default_ua():
    link = hdlc.Link()
    cid = link.connection_id
    ua = one(pump(link, V21_SNRM))
    seg, dst, dl, src, sl, c, info = dec(ua)
    assert (dst, dl, src, sl, c) == (16, 1, 0x91, 2, 0x73)
    assert info == DEFAULT_UA_INFO
    assert ua[:9] == V24_UA[:9]  # same header and HCS as the published 2-byte UA
    assert link.connected and link.client == 16 and link.connection_id != cid
    assert (link.max_info_tx_neg, link.max_info_rx_neg) == (128, 128)
    assert (link.window_tx_neg, link.window_rx_neg) == (1, 1)


def test_snrm_4byte_address():
    link = hdlc.Link()
    ua = one(pump(link, V22_SNRM4))
    assert ua[3:9] == h("21 00020023 73")  # answered in the 4-byte form, like vector 2.3
    assert hdlc_tools.parse_params(dec(ua)[6]) == hdlc_tools.parse_params(dec(V23_UA)[6])


def test_snrm_1byte_address_and_disc_gives_published_ua():
    link = hdlc.Link()
    ua = connect(link, dst=S1)
    assert ua[3:6] == h("21 03 73")
    assert one(pump(link, cframe(0x53, dst=S1))) == V26_UA  # UA without info, 1-byte source
    assert not link.connected


def test_snrm_with_parameters_vector_2_10():
    link = hdlc.Link()  # server limits 128: the smaller value wins
    ua = one(pump(link, V210_SNRM))
    assert ua[3:5] == h("21 03")
    assert dec(ua)[6] == DEFAULT_UA_INFO
    link = hdlc.Link(max_info_rx=154, max_info_tx=154)
    ua = one(pump(link, V210_SNRM))
    assert hdlc_tools.parse_params(dec(ua)[6]) == (154, 154, 1, 1)
    # the same proposal to the 2-byte address gives exactly the published UA 2.4
    link = hdlc.Link(max_info_rx=154, max_info_tx=154)
    assert one(pump(link, cframe(0x93, dec(V210_SNRM)[6]))) == V24_UA
    link = hdlc.Link(max_info_rx=512, max_info_tx=512)
    ua = one(pump(link, V210_SNRM))
    assert dec(ua)[6] == h("818014 05020100 06020100 070400000001 080400000001")
    assert (link.max_info_tx_neg, link.max_info_rx_neg) == (256, 256)


def test_snrm_40_42_negative_case():
    link = hdlc.Link()
    ua = connect(link, info=h("818006 05012A 060128"))
    assert dec(ua)[6] == h("818012 050128 06012A 070400000001 080400000001")
    assert (link.max_info_tx_neg, link.max_info_rx_neg) == (40, 42)


def test_snrm_value_forms_and_windows():
    for size in (1, 2, 4):
        link = hdlc.Link(window_rx=7, window_tx=3)
        info = hdlc_tools.snrm_info(100, 90, 5, 2, size=size)
        ua = connect(link, info=info)
        # client TX 100 -> server RX 100; client RX 90 -> server TX 90;
        # client window TX 5 -> server RX min(5, 7); client window RX 2 -> server TX min(2, 3)
        assert hdlc_tools.parse_params(dec(ua)[6]) == (90, 100, 2, 5), size
        assert (link.max_info_tx_neg, link.max_info_rx_neg) == (90, 100)
        assert (link.window_tx_neg, link.window_rx_neg) == (2, 5)
    # unknown parameters are skipped; big 4-byte values are clamped to the server's limits
    link = hdlc.Link()
    connect(link, info=h("818010 0904DEADBEEF 0504FFFFFFFF 07020007"))
    assert (link.max_info_rx_neg, link.window_rx_neg, link.max_info_tx_neg) == (128, 1, 128)


def test_unacceptable_snrm_gets_dm():
    for info in (hdlc_tools.snrm_info(max_info_rx=20), hdlc_tools.snrm_info(window_rx=0),
                 h("818005 0501"), h("81")):
        link = hdlc.Link()
        dm = one(pump(link, cframe(0x93, info)))
        assert ctrl_of(dm) == 0x1F and not link.connected, hx(info)
    # in NRM a bad SNRM disconnects
    link = hdlc.Link()
    connect(link)
    cid = link.connection_id
    assert ctrl_of(one(pump(link, cframe(0x93, h("81"))))) == 0x1F
    assert not link.connected and link.connection_id != cid


def test_wrong_addresses_are_ignored():
    for dst in (h("05"), h("0423"), h("0225"), h("00020025"), h("00040023"), h("01"),
                h("0001"), h("000223")):
        link = hdlc.Link()
        assert pump(link, cframe(0x93, dst=dst)) == [], hx(dst)
        assert not link.connected and link.frames_other == 1
        connect(link)  # still serving
    for src in (h("01"), h("FF"), h("0021")):  # no-station, all-station, 2-byte client
        link = hdlc.Link()
        assert pump(link, cframe(0x93, src=src)) == [], hx(src)
        assert not link.connected


def test_other_server_configuration():
    link = hdlc.Link(upper=0x4A, lower=0x1234)
    dst = hdlc_tools.encode_address(hdlc_tools.server_address(0x4A, 0x1234, 4), 4)
    ua = connect(link, dst=dst)
    assert dec(ua)[3] == hdlc_tools.server_address(0x4A, 0x1234, 4)
    assert pump(link, cframe(0x53, dst=h("95"))) != []  # 1-byte form: logical device only


def test_broadcast_is_accepted_but_never_answered():
    ui_info = LLC_REQ + h("C201C1")
    all4 = hdlc_tools.encode_address(hdlc_tools.server_address(1, 0x3FFF, 4), 4)
    all4u = hdlc_tools.encode_address(hdlc_tools.server_address(0x3FFF, 17, 4), 4)
    assert (all4, all4u) == (h("0002FEFF"), h("FEFE0023"))
    for dst in (h("FF"), h("02FF"), h("FE23"), all4, all4u):
        link = hdlc.Link()
        reqs = []
        outs = pump(link, cframe(0x13, ui_info, dst=dst), responder=echo, reqs=reqs)
        assert outs == [] and reqs == [(h("C201C1"), 16, True, True)], hx(dst)
        assert pump(link, cframe(0x93, dst=dst)) == []  # SNRM to all stations: silent
        assert not link.connected
    link = hdlc.Link()
    connect(link)
    outs = pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01", dst=h("02FF")), responder=echo)
    assert outs == []
    assert pump(link, cframe(rr_ctrl(0))) != []  # still connected, sequence unchanged


def test_ui_to_own_address():
    link = hdlc.Link()
    reqs = []
    outs = pump(link, cframe(0x13, LLC_REQ + h("C201C1")), responder=echo, reqs=reqs)
    assert reqs == [(h("C201C1"), 16, False, True)]
    seg, dst, dl, src, sl, c, info = dec(one(outs))
    assert (dst, src, c, info) == (16, 0x91, 0x13, LLC_RSP + h("AAC201C1"))
    # without the P bit nothing may be sent back
    assert pump(link, cframe(0x03, LLC_REQ + h("C201C1")), responder=echo) == []
    # a UI without the request LLC is dropped
    reqs = []
    assert pump(link, cframe(0x13, h("C201C1")), responder=echo, reqs=reqs) == []
    assert reqs == []


# --- data exchange ---


def test_aarq_aare_exchange_vectors_2_7_2_8():
    link = hdlc.Link()
    connect(link)
    reqs = []
    outs = pump(link, V27_AARQ, responder=lambda apdu: AARE_APDU, reqs=reqs)
    assert reqs == [(AARQ_APDU, 16, False, False)]
    assert one(outs) == V28_AARE  # control 0x30: N(R)=1, F, N(S)=0


def test_aarq_aare_exchange_4byte_jdlms_vectors():
    link = hdlc.Link()
    one(pump(link, V22_SNRM4))
    aare = dec(V29_AARE)[6][3:]
    reqs = []
    outs = pump(link, V29_AARQ, responder=lambda apdu: aare, reqs=reqs)  # HCS contains 7E
    assert reqs[0][0] == dec(V29_AARQ)[6][3:]
    assert one(outs) == V29_AARE


def test_get_set_sequence_1byte_jdlms_vectors():
    link = hdlc.Link(upper=0x4A)
    srv, cli = h("95"), h("75")  # server 0x4A, client 0x3A
    connect(link, dst=srv, src=cli)
    for ns in (0, 1):  # two exchanges bring N(S)/N(R) to 2, as in the jDLMS capture
        f = hdlc_tools.frame(srv, cli, i_ctrl(ns, ns), LLC_REQ + b"\x01\x02")
        rsp = one(pump(link, f, responder=echo))
        assert ctrl_of(rsp) == i_ctrl(ns, ns + 1)
    for req, rsp in ((V29_GET1, V29_GET1_RSP), (V29_GET2, V29_GET2_RSP), (V29_SET, V29_SET_RSP)):
        apdu = dec(rsp)[6][3:]
        reqs = []
        assert one(pump(link, req, responder=lambda a: apdu, reqs=reqs)) == rsp
        assert reqs[0][:2] == (dec(req)[6][3:], 0x3A)


def test_i_frame_without_llc_is_dropped():
    link = hdlc.Link()
    connect(link)
    reqs = []
    assert pump(link, cframe(i_ctrl(0, 0), AARQ_APDU), responder=echo, reqs=reqs) == []
    assert reqs == []
    assert one(pump(link, V27_AARQ, responder=lambda a: AARE_APDU)) == V28_AARE  # N(S)=0


def test_llc_alone_delivers_nothing_and_never_holds_the_link():
    """An I-frame or a UI frame whose information field is the LLC alone (no APDU) delivers
    no request: an empty request (request_len() == 0) would hold the link -- feed() takes
    nothing while a request waits -- while the adapter, which answers only requests with
    a length, waits for input. Found by fuzzing (iec21 target): a hang of the whole meter."""
    link = hdlc.Link()
    connect(link)
    reqs = []
    # in sequence, P=1: accepted at the link level (RR N(R)=1), nothing delivered
    rr = one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ), responder=echo, reqs=reqs))
    assert ctrl_of(rr) == rr_ctrl(1) and reqs == []
    # without the poll bit: nothing sent, nothing delivered
    assert pump(link, cframe(i_ctrl(1, 0, False), LLC_REQ), responder=echo, reqs=reqs) == []
    assert reqs == []
    # the link goes on: the next request (N(S)=2) is delivered and answered
    outs = pump(link, cframe(i_ctrl(2, 0), LLC_REQ + h("C001C1")), responder=echo, reqs=reqs)
    assert reqs == [(h("C001C1"), 16, False, False)]
    seg, dst, dl, src, sl, c, info = dec(one(outs))
    assert c == i_ctrl(0, 3) and info == LLC_RSP + h("AAC001C1")
    # a UI frame with the LLC alone is dropped; with an APDU it is delivered
    link = hdlc.Link()
    reqs = []
    assert pump(link, cframe(0x13, LLC_REQ), responder=echo, reqs=reqs) == []
    assert reqs == []
    assert len(pump(link, cframe(0x13, LLC_REQ + h("C201C1")), responder=echo, reqs=reqs)) == 1
    assert reqs == [(h("C201C1"), 16, False, True)]


def test_no_reply_answers_rr_and_rr_with_nothing_to_send():
    link = hdlc.Link()
    connect(link)
    assert ctrl_of(one(pump(link, V27_AARQ))) == rr_ctrl(1)  # no_reply(): RR N(R)=1
    assert ctrl_of(one(pump(link, cframe(rr_ctrl(0))))) == rr_ctrl(1)
    assert pump(link, cframe(rr_ctrl(0, False))) == []  # no poll, no answer


def test_out_of_sequence_i_frame():
    link = hdlc.Link()
    connect(link)
    reqs = []
    rr = one(pump(link, cframe(i_ctrl(3, 0), LLC_REQ + b"\x01"), responder=echo, reqs=reqs))
    assert ctrl_of(rr) == rr_ctrl(0) and reqs == []
    rsp = one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=echo, reqs=reqs))
    assert ctrl_of(rsp) == i_ctrl(0, 1) and len(reqs) == 1


def test_lost_response_is_sent_again():
    link = hdlc.Link()
    connect(link)
    reqs = []
    first = one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=echo, reqs=reqs))
    lost = one(pump(link, cframe(i_ctrl(1, 1), LLC_REQ + b"\x02"), responder=echo, reqs=reqs))
    assert ctrl_of(first) == i_ctrl(0, 1) and ctrl_of(lost) == i_ctrl(1, 2)
    # the client repeats its frame (N(S)=1, N(R)=1 says our N(S)=1 did not arrive)
    again = one(pump(link, cframe(i_ctrl(1, 1), LLC_REQ + b"\x02"), responder=echo, reqs=reqs))
    assert again == lost and len(reqs) == 2
    # or polls with RR N(R)=1
    assert one(pump(link, cframe(rr_ctrl(1)))) == lost
    # then acknowledges and goes on
    nxt = one(pump(link, cframe(i_ctrl(2, 2), LLC_REQ + b"\x03"), responder=echo, reqs=reqs))
    assert ctrl_of(nxt) == i_ctrl(2, 3) and len(reqs) == 3


def test_segmented_reply_window_1():
    link = hdlc.Link()
    connect(link, info=hdlc_tools.snrm_info(max_info_rx=64))
    apdu = bytes(i & 0xFF for i in range(200))
    outs = pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=lambda a: apdu)
    got = b""
    nr = 1
    for k in range(4):  # 203 bytes of LSDU: 64 + 64 + 64 + 11
        f = one(outs)
        seg, dst, dl, src, sl, c, info = dec(f)
        assert c == i_ctrl(k, 1) and seg == (k < 3) and f[1] == (0xA8 if k < 3 else 0xA0)
        assert len(info) == (64 if k < 3 else 11)
        got += info
        nr = k + 1
        if k < 3:
            outs = pump(link, cframe(rr_ctrl(nr)))
    assert got == LLC_RSP + apdu
    # the next request acknowledges the last segment
    assert ctrl_of(one(pump(link, cframe(i_ctrl(1, 4), LLC_REQ + b"\x02"), responder=echo))) == \
        i_ctrl(4, 2)


def test_segmented_reply_window_3_bursts():
    link = hdlc.Link(window_tx=3)
    connect(link, info=hdlc_tools.snrm_info(max_info_rx=64, window_rx=3))
    assert link.window_tx_neg == 3
    apdu = bytes(300)
    outs = pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=lambda a: apdu)
    assert len(outs) == 3  # 303 bytes: 5 segments, 3 in the first burst
    assert [ctrl_of(f) for f in outs] == [i_ctrl(0, 1, False), i_ctrl(1, 1, False), i_ctrl(2, 1)]
    assert [f[1] for f in outs] == [0xA8, 0xA8, 0xA8]
    outs2 = pump(link, cframe(rr_ctrl(3)))
    assert [ctrl_of(f) for f in outs2] == [i_ctrl(3, 1, False), i_ctrl(4, 1)]
    assert [f[1] for f in outs2] == [0xA8, 0xA0]
    assert b"".join(dec(f)[6] for f in outs + outs2) == LLC_RSP + apdu
    # a lost frame in a burst: RR N(R)=4 makes the server go back to N(S)=4
    assert one(pump(link, cframe(rr_ctrl(4)))) == outs2[1]


def test_gurux_rr_vector_2_11_continues_segmentation():
    link = hdlc.Link()
    connect(link)
    for ns in range(6):  # six exchanges: the client's N(S) reaches 6, ours 6
        one(pump(link, cframe(i_ctrl(ns, ns), LLC_REQ + b"\x01"), responder=echo))
    first = one(pump(link, cframe(i_ctrl(6, 6), LLC_REQ + b"\x01"),
                     responder=lambda a: bytes(200)))
    assert first[1] == 0xA8 and first[3:7] == h("21 02 23 FC")  # as in the gurux capture
    last = one(pump(link, V211_RR))  # the captured RR, N(R)=7
    assert last[1] == 0xA0 and last[3:7] == h("21 02 23 FE")
    assert len(dec(first)[6]) + len(dec(last)[6]) == 203


def test_rnr_holds_segments_back():
    link = hdlc.Link()
    connect(link, info=hdlc_tools.snrm_info(max_info_rx=64))
    outs = pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=lambda a: bytes(100))
    assert ctrl_of(one(outs)) == i_ctrl(0, 1)
    assert ctrl_of(one(pump(link, cframe((1 << 5) | 0x15)))) == rr_ctrl(1)  # RNR N(R)=1, P
    assert ctrl_of(one(pump(link, cframe(rr_ctrl(1))))) == i_ctrl(1, 1)


def test_segmented_request_is_reassembled():
    apdu = bytes(range(100))
    lsdu = LLC_REQ + apdu
    parts = (lsdu[:40], lsdu[40:80], lsdu[80:])
    link = hdlc.Link()
    connect(link)
    reqs = []
    for k, part in enumerate(parts):
        last = k == 2
        outs = pump(link, cframe(i_ctrl(k, 0), part, seg=not last), responder=echo, reqs=reqs)
        if not last:
            assert ctrl_of(one(outs)) == rr_ctrl(k + 1) and reqs == []
    assert reqs == [(apdu, 16, False, False)]
    assert ctrl_of(one(outs)) == i_ctrl(0, 3) and dec(outs[0])[6] == LLC_RSP + echo(apdu)
    # with window 3 the client sends P=1 only on the last frame: no RR in between
    link = hdlc.Link(window_rx=3)
    connect(link, info=hdlc_tools.snrm_info(window_tx=3))
    assert link.window_rx_neg == 3
    reqs = []
    stream = b"".join(cframe(i_ctrl(k, 0, k == 2), p, seg=k < 2) for k, p in enumerate(parts))
    outs = pump(link, stream, responder=echo, reqs=reqs)
    assert reqs == [(apdu, 16, False, False)] and ctrl_of(one(outs)) == i_ctrl(0, 3)


def test_repeated_segment_is_not_appended_twice():
    link = hdlc.Link()
    connect(link)
    reqs = []
    f0 = cframe(i_ctrl(0, 0), LLC_REQ + b"AB", seg=True)
    assert ctrl_of(one(pump(link, f0))) == rr_ctrl(1)
    assert ctrl_of(one(pump(link, f0))) == rr_ctrl(1)  # our RR got lost: RR again
    pump(link, cframe(i_ctrl(1, 0), b"CD"), responder=echo, reqs=reqs)
    assert reqs[0][0] == b"ABCD"


def test_reassembly_overflow_is_rejected_not_crashed():
    link = hdlc.Link(max_apdu=64)
    connect(link)
    outs = []
    for k in range(3):
        outs += pump(link, cframe(i_ctrl(k, 0), (LLC_REQ if k == 0 else b"") + bytes(40),
                                  seg=True))
    f = outs[-1]
    assert ctrl_of(f) == 0x97 and dec(f)[6][2] == 0x04  # FRMR, Y
    assert ctrl_of(one(pump(link, V21_SNRM))) == 0x73  # SNRM recovers
    assert one(pump(link, V27_AARQ, responder=lambda a: AARE_APDU)) == V28_AARE


# --- link control and errors ---


def test_i_frame_and_rr_in_ndm_get_dm():
    link = hdlc.Link()
    dm = one(pump(link, V27_AARQ, responder=echo))
    assert dm == hdlc_tools.frame(C16, S2, 0x1F)
    assert ctrl_of(one(pump(link, cframe(rr_ctrl(0))))) == 0x1F
    assert pump(link, cframe(i_ctrl(0, 0, False), LLC_REQ + b"\x01")) == []  # no P: silence
    assert not link.connected


def test_disc_twice():
    link = hdlc.Link()
    connect(link)
    cid = link.connection_id
    assert one(pump(link, V212_DISC)) == V212_UA
    assert not link.connected and link.client == 0 and link.connection_id != cid
    cid = link.connection_id
    assert ctrl_of(one(pump(link, V212_DISC))) == 0x1F  # DM
    assert link.connection_id == cid


def test_snrm_in_nrm_resets_sequence_numbers():
    link = hdlc.Link()
    connect(link)
    one(pump(link, V27_AARQ, responder=lambda a: AARE_APDU))
    cid = link.connection_id
    connect(link)
    assert link.connection_id != cid
    assert one(pump(link, V27_AARQ, responder=lambda a: AARE_APDU)) == V28_AARE


def test_snrm_in_nrm_drops_partial_reassembly_and_pending_segments():
    link = hdlc.Link()
    connect(link)
    assert ctrl_of(one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"old", seg=True)))) == \
        rr_ctrl(1)
    connect(link)
    reqs = []
    one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"new"), responder=lambda a: bytes(300),
             reqs=reqs))
    assert reqs[0][0] == b"new"
    connect(link)  # abandons the segmented reply
    assert ctrl_of(one(pump(link, cframe(rr_ctrl(0))))) == rr_ctrl(0)


def test_request_without_poll_is_answered_at_the_next_poll():
    link = hdlc.Link(window_rx=2)
    connect(link, info=hdlc_tools.snrm_info(window_tx=2))
    reqs = []
    req = cframe(i_ctrl(0, 0, False), LLC_REQ + b"\x01")
    assert pump(link, req, responder=echo, reqs=reqs) == [] and len(reqs) == 1
    rsp = one(pump(link, cframe(rr_ctrl(0))))  # the poll releases the waiting response
    assert ctrl_of(rsp) == i_ctrl(0, 1) and dec(rsp)[6] == LLC_RSP + echo(b"\x01")
    # the same when the client repeats its frame with P=1
    link = hdlc.Link(window_rx=2)
    connect(link, info=hdlc_tools.snrm_info(window_tx=2))
    pump(link, req, responder=echo)
    assert one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=echo)) == rsp


def test_ui_is_dropped_while_a_segmented_transfer_runs():
    link = hdlc.Link()
    connect(link)
    pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=lambda a: bytes(300))
    reqs = []
    assert pump(link, cframe(0x13, LLC_REQ + b"\x02"), responder=echo, reqs=reqs) == []
    assert reqs == []
    assert ctrl_of(one(pump(link, cframe(rr_ctrl(1))))) == i_ctrl(1, 1)  # unaffected


def test_other_client_while_connected_gets_dm():
    link = hdlc.Link()
    connect(link)
    assert ctrl_of(one(pump(link, cframe(0x93, src=C1)))) == 0x1F
    assert ctrl_of(one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01", src=C1)))) == 0x1F
    assert link.client == 16
    assert one(pump(link, V27_AARQ, responder=lambda a: AARE_APDU)) == V28_AARE


def test_overlong_information_field_gets_frmr():
    link = hdlc.Link()
    connect(link)  # max_info_rx_neg = 128
    f = one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + bytes(126)), responder=echo))
    assert ctrl_of(f) == 0x97
    assert dec(f)[6] == bytes([i_ctrl(0, 0), 0x00, 0x04])  # rejected ctrl, V(R)/V(S), Y
    # frame-reject condition: every poll gets the FRMR again until SNRM/DISC
    assert one(pump(link, cframe(rr_ctrl(0)))) == f
    assert one(pump(link, V212_DISC)) == V212_UA


def test_invalid_control_and_nr_get_frmr():
    link = hdlc.Link()
    connect(link)
    one(pump(link, cframe(i_ctrl(0, 0), LLC_REQ + b"\x01"), responder=echo))  # V(S)=V(R)=1
    f = one(pump(link, cframe(0x19)))  # REJ, P: not implemented
    assert ctrl_of(f) == 0x97 and dec(f)[6] == h("19 22 01")  # V(R)=1, V(S)=1, W
    link = hdlc.Link()
    connect(link)
    f = one(pump(link, cframe(rr_ctrl(0), b"\x00")))  # RR with an information field
    assert dec(f)[6] == h("11 00 03")  # W + X
    link = hdlc.Link()
    connect(link)
    f = one(pump(link, cframe(i_ctrl(0, 3), LLC_REQ + b"\x01"), responder=echo))  # bad N(R)
    assert dec(f)[6] == bytes([i_ctrl(0, 3), 0x00, 0x08])  # Z
    link = hdlc.Link()
    connect(link)
    assert dec(one(pump(link, cframe(0x73))))[6] == h("73 00 01")  # UA is no command


def test_bad_fcs_bad_hcs_and_missing_flag_are_dropped():
    link = hdlc.Link()
    connect(link)
    positions = (3, 6, 7, 8, 9, 10, 20, len(V27_AARQ) - 3, len(V27_AARQ) - 2,
                 len(V27_AARQ) - 1)
    for pos in positions:
        bad = bytearray(V27_AARQ)
        bad[pos] ^= 0x01
        reqs = []
        assert pump(link, bytes(bad), responder=echo, reqs=reqs) == [] and reqs == [], pos
    assert link.frames_dropped >= len(positions)
    bad = bytearray(V212_DISC)
    bad[7] ^= 0x80  # FCS of a frame without information
    assert pump(link, bytes(bad)) == [] and link.connected
    assert one(pump(link, V27_AARQ, responder=lambda a: AARE_APDU)) == V28_AARE


def test_garbage_between_frames():
    rnd = Prng(12345)

    def garbage(n):
        g = bytearray(rnd.byte() for _ in range(n))
        for k in range(0, n, 7):
            g[k] = 0x7E  # plenty of flags
        return bytes(g)

    # nasty: a false start right in front of a frame, whose length would swallow it
    false_starts = [h("7EA3FF"), h("7EA0"), h("7EA008"), h("7E A0 0A 02 23 21 93"),
                    h("7E A0 08 02 23 21 93 00 00")]
    script = [V21_SNRM, V27_AARQ, cframe(rr_ctrl(1)), V212_DISC]
    for fs in false_starts:
        link = hdlc.Link()
        stream = b""
        for f in script:
            stream += garbage(23) + fs + f
        reqs = []
        outs = pump(link, stream, responder=lambda a: AARE_APDU, reqs=reqs)
        assert [ctrl_of(o) for o in outs] == [0x73, 0x30, 0x31, 0x73], (hx(fs), [hx(o)
                                                                                for o in outs])
        assert outs[1] == V28_AARE and len(reqs) == 1


def test_random_noise_never_crashes_and_link_recovers():
    rnd = Prng(777)
    link = hdlc.Link()
    connect(link)
    noise = bytearray(3000)
    for i in range(len(noise)):
        b = rnd.byte()
        noise[i] = (0x7E, 0xA0, 0xA8, 0x23, 0x21, 0x02, 0x10, b, b, b)[b % 10]
    pump(link, bytes(noise), responder=echo)
    connect(link, now=1000)  # after a pause longer than the inter-octet timeout
    assert one(pump(link, V27_AARQ, now=1000, responder=lambda a: AARE_APDU)) == V28_AARE
    assert link.frames_dropped > 10


def test_shared_flags_and_byte_at_a_time_equal_chunks():
    frames = [V21_SNRM, V27_AARQ, cframe(i_ctrl(1, 1), LLC_REQ + b"\x7e\x7e"),
              cframe(rr_ctrl(2)), V212_DISC, V212_DISC]
    separate = b"".join(frames)
    shared = frames[0]
    for f in frames[1:]:
        shared += f[1:]  # the closing flag opens the next frame

    def responder(a):
        return AARE_APDU if a == AARQ_APDU else bytes(300)  # a segmented reply too

    results = []
    for stream in (separate, shared):
        for step in (0, 1, 2, 7, 64):
            link = hdlc.Link()
            reqs = []
            outs = pump(link, stream, step=step, responder=responder, reqs=reqs)
            results.append((outs, reqs))
    ref = results[0]
    assert [ctrl_of(o) for o in ref[0]] == [0x73, 0x30, i_ctrl(1, 2), i_ctrl(2, 2), 0x73, 0x1F]
    assert ref[0][1] == V28_AARE and len(ref[1]) == 2 and ref[1][1][0] == b"\x7e\x7e"
    for r in results[1:]:
        assert r == ref


def test_inter_octet_timeout_discards_partial_frame():
    link = hdlc.Link()
    half = len(V21_SNRM) // 2
    assert link.feed(V21_SNRM, 0, half, 1000) == half
    assert link.feed(V21_SNRM, half, len(V21_SNRM), 1030) == len(V21_SNRM) - half  # 30 ms gap
    assert link.output_len() == 0 and link.inter_octet_timeouts == 1
    link.feed(V21_SNRM, 0, half, 2000)  # within 25 ms: fine
    link.feed(V21_SNRM, half, len(V21_SNRM), 2025)
    assert link.output_len() and link.connected
    link.output_done()
    # the same through tick()
    link.feed(V212_DISC, 0, 5, 3000)
    link.tick(3100)
    link.feed(V212_DISC, 5, len(V212_DISC), 3101)
    assert link.output_len() == 0 and link.connected


def test_inactivity_timeout_returns_to_ndm():
    link = hdlc.Link()
    connect(link, now=1000)
    cid = link.connection_id
    link.tick(1000 + 120000)
    assert link.connected
    link.tick(1000 + 120001)
    assert not link.connected and link.connection_id != cid and link.inactivity_timeouts == 1
    assert ctrl_of(one(pump(link, V27_AARQ, now=1000 + 120002))) == 0x1F
    # valid frames restart the timer; a timeout of 0 disables it
    link = hdlc.Link(inactivity_timeout_ms=0)
    connect(link)
    link.tick(10 ** 8)
    assert link.connected
    # wrapping ticks (time.ticks_ms() on a board wraps at 2**30)
    link = hdlc.Link()
    start = (1 << 30) - 1000
    connect(link, now=start)
    link.tick(50000)  # 51 s after start, across the wrap
    assert link.connected
    link.tick(200000)
    assert not link.connected


def test_request_blocks_feed_until_answered():
    link = hdlc.Link()
    connect(link)
    stream = V27_AARQ + V212_DISC
    used = link.feed(stream, 0, len(stream), 0)
    assert used == len(V27_AARQ) and link.request_len() == len(AARQ_APDU)
    assert link.feed(stream, used, len(stream), 0) == 0  # the request is pending
    assert bytes(link.request_view[: link.request_len()]) == AARQ_APDU
    assert len(link.reply_view()) == 1024 + 64
    link.reply_view()[: len(AARE_APDU)] = AARE_APDU
    link.reply(len(AARE_APDU))
    assert link.feed(stream, used, len(stream), 0) == 0  # the output is pending
    assert bytes(link.output_view[: link.output_len()]) == V28_AARE
    link.output_done()
    assert link.feed(stream, used, len(stream), 0) == len(V212_DISC)
    assert bytes(link.output_view[: link.output_len()]) == V212_UA


def test_reset_returns_to_ndm_without_allocating_new_buffers():
    link = hdlc.Link()
    snrm = h("7EA00802232193BD647E")  # dlms-vectors 2.1
    pos = 0
    while pos < len(snrm):
        pos += link.feed(snrm, pos, len(snrm), 0)
    assert link.connected and link.output_len()
    before = (link.output_view, link.request_view, link.reply_view())
    cid = link.connection_id
    link.reset()
    assert not link.connected and link.output_len() == 0 and link.request_len() == 0
    assert link.connection_id != cid
    assert link.output_view is before[0] and link.request_view is before[1]
    # and it serves again from scratch
    pos = 0
    while pos < len(snrm):
        pos += link.feed(snrm, pos, len(snrm), 0)
    assert link.connected and link.output_len()
