#!/usr/bin/env python3
"""Seed inputs for every fuzz target, from the published vectors (shared/vectors/
dlms-vectors.md: Green Book, dlms-cosem, jDLMS, Gurux CT; the hex is repeated here) and the
recorded real sessions (``sessions/*.txt``, made by ``record_sessions.py``).

    .venv/bin/python host_tests/fuzz/seeds.py OUT_DIR      # OUT_DIR/<target>/seed-NNNN

``campaign.py --minimise`` merges these with what the fuzzer found into the committed,
minimised corpus ``corpus/<target>/``.
"""

import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import targets as T  # noqa: E402
from record_sessions import sessions  # noqa: E402


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


# --- published vectors (dlms-vectors.md section numbers) ---------------------------------
HDLC_FRAMES = [
    "7EA00802232193BD647E",  # 2.1 SNRM
    "7EA00A00020023219318717E",  # 2.2 SNRM, 4-byte server address
    "7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFFC5E47E",
    "7EA0140321936 3E7818008050201000602010056967E".replace(" ", ""),  # 2.10
    "7EA00802232 1F1A9247E".replace(" ", ""),  # 2.11 RR
    "7EA008022321 53B1A27E".replace(" ", ""),  # 2.12 DISC
]
AARQS = [
    "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0",  # 3.1
    "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400007E1F04B0",  # 3.2
    "6036A1090607608574050801018A0207808B0760857405080205AC0A80084B35366956616759BE10040E01000000065F1F0400007E1F04B0",  # 3.3
    "6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B0760857405080201AC0A80083132333435363738BE34043221303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855",  # 3.4
    "601DA109060760857405080101BE10040E01000000055F1F0400000010FFFF",  # Gurux CT
    "601DA109060760857405080101BE10040E01000000065F1F0400000000FFFF",
    "601DA109060760857405080101BE10040E01000000065F1F0400000010003B",
    "602FA1090607608574050801018A0207808B0760857405080201AC03800131BE10040E01000000065F1F0400000010FFFF",
    "6203800100",  # 3.9 RLRQ
    "6239800100BE34043221303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855",  # 3.10
    "01000000065F1F0400007E1F04B0",  # 3.14 InitiateRequest
    "01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0",  # 1.2
]
XDLMS = [
    "C001C1000100002B0100FF0200",  # 4.1
    "C002C100000001",  # 4.4
    "C003C102000100002A0000FF020000080000010000FF0200",  # 4.5
    "C101C100080000010000FF0200090C07E50118FF0E303950FFC400",  # 4.7
    "C301C0000F0000280000FF010109111000001A90E6D2221FA2FD85EED61ACC22",  # 4.9
    "C301C0000F0000280000FF0100",  # 4.10
    "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E20601FF000300FFFF8880090C07E50106FF000300FFFFC4000100",  # 5.1
    "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E10A010700000000FFC480090C07E10A010701000000FFC4800100",  # 5.2
    "C001C100070100630100FF020102020406000000020600000004120001120000",  # 5.3
]
CIPHERED = [
    "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B",  # 1.1
    "DB082F192291991641033B30000001E5025CE9D2271FD78BE8C204211A916A9D7F587E0A7A814CADEA89E9593F01F92EA8C087B5BDFDEFEAB6BECF282DFE49C08F5BE6DC8400",  # 6.1
    "DB001E30800000D181EC9EC4BF53E9776EF0C453969FBDFE11BE9B791AACC0FF8C",  # 6.2
]
GLO_INITIATE = ("21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE68"
                "41DB204D39EE6FDB8E356855")  # 1.2
AXDR = [
    "0600001391", "090C07D20C04030A060BFF007800", "0101020412000809060000010000FF0F021200",
    "1302041200090600000000000001000000020000000003", "04820100" + "AA" * 32,
    "0204020412000809060000010000FF0F02120000090C07E20601FF000300FFFF8880090C07E50106FF000300FFFFC4000100",
    "020406000000020600000004120001120000", "17 3F800000", "18 3FF0000000000000", "1BFF",
]


# --- recorded sessions --------------------------------------------------------------------
def _session_apdus(tx, transport):
    from clients import split_apdus

    return split_apdus(b"".join(tx), transport)


def _reply_data(rx, transport):
    """A-XDR values of GET-Response-Normal data in the meter's replies."""
    from clients import split_apdus

    out = []
    for a in split_apdus(b"".join(rx), transport):
        if a[:2] == b"\xc4\x01" and len(a) > 4 and a[3] == 0:
            out.append(a[4:])
    return out


def _plain_of(apdu, lib):
    """The plaintext of a protected request the client sent (its own title)."""
    from clients import COSEM_TITLE, GURUX_TITLE, ciphered_header, open_ciphered

    a = bytes(apdu)
    if not a or a[0] not in (0xC8, 0xC9, 0xCB, 0xDB, 0x21):
        return None
    try:
        ciphered_header(a)
        return open_ciphered(a, title=GURUX_TITLE if lib == "gurux" else COSEM_TITLE)[1]
    except Exception:
        return None


def segmented_session(apdu, info=128, client=0x21, server=b"\x02\x23"):
    """HDLC records (framed by the harness) of a client that sends SNRM, then ``apdu`` in
    segments of ``info`` octets (N(S) counting up, S bit on all but the last), then DISC:
    the recorded clients never segment a request, the link must still reassemble one."""
    recs = [(T.HDLC_FRAME, server + bytes([client, 0x93]))]
    data = b"\xe6\xe6\x00" + bytes(apdu)
    ns = 0
    for i in range(0, len(data), info):
        chunk = data[i:i + info]
        more = i + info < len(data)
        ctrl = 0x10 | ((ns & 7) << 1)
        recs.append((T.HDLC_FRAME | (T.HDLC_SEGMENT if more else 0),
                     server + bytes([client, ctrl]) + chunk))
        ns += 1
    recs.append((T.HDLC_FRAME, server + bytes([client, 0x53])))
    return recs


def build(out):
    """Write every target's seeds into out/<target>/; returns {target: count}."""
    seeds = {name: [] for name in T.TARGETS}
    rec = sessions()
    for name, (lib, role, transport, tx, rx) in rec.items():
        if transport == "hdlc":
            for cfg in (0, 1):
                s = bytes([cfg]) + T.encode_records([(0, c) for c in tx])
                seeds["hdlc"].append(s)
                seeds["stack_hdlc"].append(s)
            # the same frames as bodies the harness frames (HCS/FCS always right)
            framed = []
            for c in tx:
                b = T.hdlc_body(c)
                if b is None:
                    framed.append((0, c))
                else:
                    framed.append((T.HDLC_FRAME | (T.HDLC_SEGMENT if b[1] else 0), b[0]))
            s = b"\x00" + T.encode_records(framed)
            seeds["hdlc"].append(s)
            seeds["stack_hdlc"].append(s)
            # a frame split into single bytes and slow bytes
            seeds["hdlc"].append(b"\x06" + T.encode_records([(0x11, c) for c in tx[:6]]))
            # the same session behind the IEC 62056-21 mode E opening of the optical port
            # (iec21 target: Local port setup byte, link/address byte, then records)
            for c0, c1, req, wait, ack in (
                    (0x14, 0x00, b"/?!\r\n", 3, b"\x06252\r\n"),  # 9600 proposed and taken
                    (0x54, 0x10, b"/?12345678!\r\n", 5, b"\x06232\r\n"),  # address, 200 ms
                    (0x18, 0x01, b"/?!\r\n", 3, b"\x06262\r\n")):  # 19200, 512-byte frames
                opening = [(0, req), (wait, b""), (0, ack)]
                seeds["iec21"].append(bytes([c0, c1])
                                      + T.encode_records(opening + [(0, c) for c in tx]))
            seeds["iec21"].append(b"\x14\x00" + T.encode_records([(0, c) for c in tx]))  # direct
            seeds["iec21"].append(b"\x15\x00" + T.encode_records([(0, c) for c in tx]))  # mode 1
        else:
            seeds["wrapper"].append(T.encode_records([(0, c) for c in tx]))
        apdus = _session_apdus(tx, transport)
        for v in _reply_data(rx, transport):
            seeds["axdr"].append(v)
        plain = []
        for a in apdus:
            p = _plain_of(a, lib) if role == "mgmt" else a
            if p is not None:
                plain.append(bytes(p))
            if a[:1] in (b"\x60", b"\x62"):
                seeds["acse"].append(a)
                if role == "mgmt":  # its user-information: a glo-initiate-request
                    i = a.find(b"\xbe")
                    if i > 0:
                        seeds["security"].append(b"\x01" + a[i + 4:])
            elif role == "mgmt":
                seeds["security"].append(b"\x00" + a)
        for p in plain:
            if p[:1] in (b"\xc0", b"\xc1", b"\xc3"):
                seeds["xdlms"].append(p)
                seeds["security"].append(b"\x02" + p)
                if p[:1] == b"\xc0" and b"\x00\x07" in p[:5]:
                    seeds["profile"].append(p)
        if role == "public":
            seeds["assoc_public"].append(T.encode_records([(0, a) for a in apdus]))
        elif role == "reader":
            seeds["assoc_reader"].append(T.encode_records([(0, a) for a in apdus]))
            seeds["assoc_public"].append(T.encode_records([(0, a) for a in apdus]))
        else:
            seeds["assoc_mgmt"].append(T.encode_records([(0, a) for a in apdus]))
            # the same requests behind an authentication the harness can complete
            mode = T.M_GLO if lib == "gurux" else T.M_GENERAL
            recs = [(T.M_AARQ << 4, b""), ((T.M_HLS << 4) | (0x80 if lib == "cosem" else 0), b"")]
            recs += [(mode << 4, p) for p in plain if p[:1] in (b"\xc0", b"\xc1", b"\xc3")]
            recs += [(0, b"\x62\x03\x80\x01\x00")]
            seeds["assoc_mgmt"].append(T.encode_records(recs))
    # sign-on messages the meter must refuse or drop (iec21): a rate above the proposed one,
    # programming mode (V = '1'), another device address, an option select too late, a
    # request broken off by a new one, the parity bit set on every character
    for c0, c1, recs in (
            (0x14, 0, [(0, b"/?!\r\n"), (3, b""), (0, b"\x06292\r\n")]),
            (0x14, 0, [(0, b"/?!\r\n"), (3, b""), (0, b"\x06151\r\n")]),
            (0x14, 0x10, [(0, b"/?87654321!\r\n"), (3, b""), (0, b"\x06252\r\n")]),
            (0x14, 0, [(0, b"/?!\r\n"), (3, b""), (7, b""), (0, b"\x06252\r\n")]),
            (0x14, 0, [(0, b"/?12/?!\r\n"), (3, b""), (0x10, b"\x06252\r\n")]),
            (0x94, 0, [(0, b"/?!\r\n"), (3, b""), (0, b"\x06252\r\n"), (0, h(HDLC_FRAMES[0]))])):
        seeds["iec21"].append(bytes([c0, c1]) + T.encode_records(recs))
    # frames whose information field is the LLC alone (an I-frame in sequence, a UI frame),
    # then a request: they once held the link (the hang the iec21 target found)
    snrm, aarq = T.hdlc_body(h(HDLC_FRAMES[0]))[0], T.hdlc_body(h(HDLC_FRAMES[2]))[0]
    llc_i = aarq[:3] + bytes([0x10]) + b"\xe6\xe6\x00"  # addresses, I N(S)=0 N(R)=0 P, LLC
    llc_ui = aarq[:3] + bytes([0x13]) + b"\xe6\xe6\x00"
    for cfg in (0, 8):
        s_ = bytes([cfg]) + T.encode_records([(T.HDLC_FRAME, snrm), (T.HDLC_FRAME, llc_i),
                                              (T.HDLC_FRAME, llc_ui),
                                              (T.HDLC_FRAME, aarq[:3] + b"\x12" + aarq[4:])])
        seeds["hdlc"].append(s_)
        seeds["stack_hdlc"].append(s_)
    # vectors
    for f in HDLC_FRAMES:
        seeds["hdlc"].append(b"\x00" + T.encode_records([(0, h(f))]))
    seeds["hdlc"].append(b"\x00" + T.encode_records([(0, h(f)) for f in HDLC_FRAMES]))
    # long requests in segments: a SET of a 1000-octet value, a GET with-list of 16
    long_set = h("C101C1 0001 00002A0000FF 02 00 09 8203E8") + bytes(range(256)) * 3 + bytes(232)
    get16 = h("C003C1 10") + h("0001 00002A0000FF 02 00") * 16
    for cfg, info in ((0, 128), (1, 512), (8, 32)):
        for apdu in (long_set, get16, long_set + b"\x00" * 60):
            s = bytes([cfg]) + T.encode_records(segmented_session(apdu, info))
            seeds["hdlc"].append(s)
            seeds["stack_hdlc"].append(s)
    for a in AARQS:
        seeds["acse"].append(h(a))
    for x in XDLMS:
        seeds["xdlms"].append(h(x))
        seeds["security"].append(b"\x02" + h(x))
        seeds["security"].append(b"\x06" + h(x))
    for x in XDLMS[6:]:
        seeds["profile"].append(h(x))
    for c in CIPHERED:
        seeds["security"].append(b"\x00" + h(c))
    seeds["security"].append(b"\x01" + h(GLO_INITIATE))
    seeds["security"].append(b"\x03" + h("10000000011A52FE7DD3E72748973C1E28"))
    for v in AXDR:
        seeds["axdr"].append(h(v))
    seeds["wrapper"].append(T.encode_records([(0, h("0001001000010005") + h("6203800100"))]))
    seeds["assoc_public"].append(T.encode_records([(0, h(AARQS[0])), (0, h(XDLMS[0])),
                                                    (0, h(XDLMS[2])), (0, h(AARQS[8]))]))
    seeds["assoc_reader"].append(T.encode_records([(0, h(AARQS[1])), (0, h(XDLMS[6])),
                                                    (0, h(XDLMS[8])), (0, h(AARQS[8]))]))
    seeds["assoc_mgmt"].append(T.encode_records([
        (T.M_AARQ << 4, h("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")),
        (T.M_HLS << 4, b""), (T.M_DED << 4, h(XDLMS[0])), (T.M_AUTH << 4, h(XDLMS[0])),
        (T.M_REPLAY << 4, b""), (0, h(AARQS[8]))]))
    counts = {}
    for name, items in seeds.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        seen = set()
        for s in items:
            k = hashlib.sha1(s).hexdigest()
            if k in seen:
                continue
            seen.add(k)
            with open(os.path.join(d, "seed-" + k[:16]), "wb") as f:
                f.write(s)
        counts[name] = len(seen)
    return counts


if __name__ == "__main__":
    print(build(sys.argv[1]))
