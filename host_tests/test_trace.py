"""The trace decoder (tools/trace.py) and the virtual meter's --trace.

* every hex string of the published vectors (shared/vectors/dlms-vectors.md) decodes
  without an exception and every byte is explained exactly once;
* the vectors, one by one: HDLC fields (FCS/HCS, addresses, control, N(S)/N(R), SNRM/UA
  parameters), the jDLMS FCS list, ACSE and xDLMS fields, OBIS names, the ciphered vectors
  decrypted with their keys (plaintexts as published), HLS-GMAC answers checked;
* bad FCS, bad HCS and a forged tag are flagged; segments and data blocks are reassembled;
* the command line (argument, spaces, stdin, --apdu, exit status);
* the live splitter of --trace (chunks, noise, TCP connections);
* the hook in firmware/ports.py allocates nothing while tracing is off (MicroPython,
  heap_lock), and tracing on does not disturb the meter;
* black box: ``--trace`` prints annotated frames of public and management sessions over
  both transports on stderr, stdout stays the ready line, and every object of the meter's
  object list has a name in the decoder.
"""

import os
import re
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import importlib.util  # noqa: E402

# tools/trace.py, loaded by path: the standard library has a module named trace too
_spec = importlib.util.spec_from_file_location("dlms_trace", os.path.join(ROOT, "tools",
                                                                          "trace.py"))
tr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tr)

from dlms import hdlc_tools  # noqa: E402

# a copy of ../shared/vectors/dlms-vectors.md: CI runs on a clone without ../shared
VECTORS = os.path.join(HERE, "fw", "vectors", "dlms-vectors.md")
TRACE = os.path.join(ROOT, "tools", "trace.py")
PY = sys.executable


def h(s):
    return bytes.fromhex(re.sub(r"\s", "", s))


def tiles(t, data):
    """Every byte of data on exactly one top-level line, in order."""
    pos = 0
    for ln in t.lines:
        if ln.space == "" and ln.off is not None:
            assert ln.off == pos, "gap or overlap at %04X:\n%s" % (pos, t.text())
            pos += len(ln.raw)
    assert pos == len(data), "%d of %d bytes explained:\n%s" % (pos, len(data), t.text())


def dec(data, **kw):
    data = h(data) if isinstance(data, str) else data
    t = tr.decode(data, **kw)
    tiles(t, data)
    return t


def one(t, key):
    v = t.get(key)
    assert v, "no %r in\n%s" % (key, t.text())
    return v[-1]


# ====================================================================== the vectors file
def _vector_hex():
    with open(VECTORS) as f:
        md = f.read()
    out = []
    for m in re.finditer(r"`([^`]+)`", md):
        s = m.group(1).split("…")[0]
        s = re.sub(r"\s", "", s)
        if s and len(s) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", s):
            out.append(s)
    return out


def test_every_vector_decodes_and_every_byte_is_explained():
    hexes = _vector_hex()
    assert len(hexes) > 80
    for s in hexes:
        for kind in ("auto", "apdu"):
            dec(s, kind=kind)  # no exception, every byte on one line


def test_mutated_vectors_never_crash():
    """Hostile input: vectors with bytes changed, cut, inserted or appended decode without an
    exception, every byte still on exactly one line."""
    import random

    rnd = random.Random(62056)
    vecs = [h(s) for s in _vector_hex() if len(s) >= 8]
    for _ in range(400):
        b = bytearray(rnd.choice(vecs))
        for _ in range(rnd.randint(1, 4)):
            op = rnd.randint(0, 3)
            if op == 0:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            elif op == 1 and len(b) > 1:
                del b[rnd.randrange(1, len(b)):]
            elif op == 2:
                b.insert(rnd.randrange(len(b) + 1), rnd.randrange(256))
            else:
                b += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 5)))
        for kind in ("auto", "apdu", "wrapper", "hdlc"):
            dec(bytes(b), kind=kind)


def test_jdlms_fcs_list_frames_check_ok():
    """Vector 2.9: frames without flags/FCS and their FCS: complete frames check ok, and
    the GET/SET clock APDUs inside decode."""
    with open(VECTORS) as f:
        row = [ln for ln in f if ln.startswith("| 2.9")][0]
    pairs = re.findall(r"`([0-9A-F]+)`→`([0-9A-F]{4})`", row)
    assert len(pairs) == 9
    for body, fcs in pairs:
        t = dec("7E" + body + fcs + "7E")
        assert one(t, "fcs") is True
        assert not t.failed, t.text()
        if len(t.get("hcs")):
            assert one(t, "hcs") is True
    t = dec("7EA01E7595966F67E6E700C4018100090C07D20C04030A060BFF007800F3307E")
    assert "date-time 2002-12-04 10:06:11" in t.text()
    assert one(t, "llc") == "response" and one(t, "direction") == tr.S2C


# ====================================================================== HDLC (section 2)
def test_snrm_and_ua_vectors():
    t = dec("7EA00802232193BD647E")  # 2.1
    assert one(t, "fcs") is True and one(t, "hdlc.control") == "SNRM"
    assert one(t, "hdlc.dst") == (0x91, 2) and one(t, "hdlc.src") == (16, 1)
    assert one(t, "hdlc.pf") == 1 and one(t, "direction") == tr.C2S
    assert "server upper (logical device) 1 (management logical device), lower (physical " \
           "device) 17 (2-byte form)" in t.text()
    assert "client SAP 16 (public client)" in t.text()
    t = dec("7EA00A00020023219318717E")  # 2.2
    assert one(t, "hdlc.dst") == ((1 << 14) | 17, 4) and one(t, "fcs") is True
    assert "lower (physical device) 17 (4-byte form)" in t.text()
    t = dec("7EA023210002002373F6C58180140502008006020080070400000001080400000001CE6A7E")
    assert one(t, "hdlc.control") == "UA" and one(t, "direction") == tr.S2C
    assert one(t, "hdlc.params") == (128, 128, 1, 1) and one(t, "hcs") is True
    assert "maximum information field length, transmit = 128" in t.text()
    t = dec("7EA01F21022373E6C781801205019A06019A070400000001080400000001CCA27E")  # 2.4
    assert one(t, "hdlc.params") == (154, 154, 1, 1) and one(t, "fcs") is True
    t = dec("7EA023030002002373C0488180140502008006020080070400000001080400000001CE6A7E")
    assert one(t, "hdlc.dst") == (1, 1) and "client SAP 1 (management client)" in t.text()
    t = dec("7EA00721037301407E")  # 2.6: UA with no info, server 1 -> client 16
    assert one(t, "hdlc.control") == "UA" and one(t, "hdlc.src") == (1, 1)
    assert one(t, "fcs") is True and not t.get("hcs")
    t = dec("7E A0 14 03 21 93 63 E7 81 80 08 05 02 01 00 06 02 01 00 56 96 7E")  # 2.10
    assert one(t, "hdlc.params") == (256, 256, 1, 1) and one(t, "hdlc.control") == "SNRM"


def test_i_frame_vectors():
    t = dec("7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000065F1F0400001E"
            "1DFFFFC5E47E")  # 2.7
    assert one(t, "hdlc.control") == "I" and one(t, "hdlc.ns") == 0 and one(t, "hdlc.nr") == 0
    assert one(t, "hdlc.pf") == 1 and one(t, "llc") == "command" and t.get("apdu")[0] == "AARQ"
    assert one(t, "hcs") is True and one(t, "fcs") is True and one(t, "context") == 1
    assert "I (information) N(S)=0 N(R)=0 P=1" in t.text()
    t = dec("7EA0382102233034E7E6E7006129A109060760857405080101A203020100A305A103020100BE1004"
            "0E0800065F1F0400001E1D04C80007B86A7E")  # 2.8
    assert one(t, "hdlc.nr") == 1 and one(t, "hdlc.ns") == 0 and one(t, "llc") == "response"
    assert t.get("apdu")[0] == "AARE" and one(t, "result") == 0 and one(t, "max_pdu") == 1224
    assert "N(S)=0 N(R)=1 F=1" in t.text()


def test_supervisory_disc_and_multi_frame_input():
    t = dec("7E A0 08 02 23 21 F1 A9 24 7E")  # 2.11: RR N(R)=7
    assert one(t, "hdlc.control") == "RR" and one(t, "hdlc.nr") == 7
    t = dec("7EA00802232153B1A27E 7EA00821022373 7A437E")  # 2.12: DISC then UA, one input
    assert t.get("hdlc.control") == ["DISC", "UA"]
    assert t.get("direction") == [tr.C2S, tr.S2C] and t.get("fcs") == [True, True]


def test_bad_fcs_and_bad_hcs_are_flagged():
    t = dec("7EA00802232193BD657E")  # 2.1 with the last FCS byte changed
    assert one(t, "fcs") is False and "FCS" in t.failed
    assert "BAD, computed BD 64" in t.text()
    good = "7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000065F1F0400001E" \
           "1DFFFFC5E47E"
    t = dec(good.replace("10AF9F", "10AF9E"))
    assert one(t, "hcs") is False and "HCS" in t.failed
    t = dec(good[:-10] + "EE" + good[-8:])  # one information byte altered
    assert one(t, "hcs") is True and one(t, "fcs") is False
    r = subprocess.run([PY, TRACE, "7EA00802232193BD657E"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "BAD" in r.stdout


def test_segmented_message_is_reassembled():
    """A GET-Response in two I-frames (S=1, then S=0) decodes after the last one; the RR
    between them is shown as such."""
    apdu = h("C401C100") + b"\x09\x81\x96" + bytes(range(150))
    lsdu = b"\xe6\xe7\x00" + apdu
    c16 = b"\x21"
    s2 = b"\x02\x23"
    f1 = hdlc_tools.frame(c16, s2, (0 << 5) | 0x10 | (0 << 1), lsdu[:100], True)
    rr = hdlc_tools.frame(s2, c16, (1 << 5) | 0x11)
    f2 = hdlc_tools.frame(c16, s2, (0 << 5) | 0x10 | (1 << 1), lsdu[100:], False)
    data = f1 + rr + f2
    t = dec(data)
    assert t.get("hdlc.control") == ["I", "RR", "I"]
    assert t.get("hdlc.segmented") == [True, False, False]
    assert t.get("fcs") == [True, True, True]
    assert "reassembled APDU: %d bytes from 2 segments" % len(apdu) in t.text()
    assert "GET-Response" in t.get("apdu")
    assert "octet-string (150)" in t.text()
    assert not t.failed


def test_wrapper_frame():
    t = dec("0001 0010 0001 000D C001C1000100002A0000FF0200")
    assert one(t, "wrapper") == (1, 16, 1, 13)
    assert "source wPort 16: client SAP 16 (public client)" in t.text()
    assert "0.0.42.0.0.255 (COSEM logical device name)" in t.text()
    t = dec("0001 0001 0010 0010 C401C100090631323334 35", kind="wrapper")
    assert one(t, "direction") == tr.S2C and "truncated" in t.text()


# ====================================================================== ACSE (section 3)
def test_acse_vectors():
    t = dec("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10"
            "040E01000000065F1F0400007E1F04B0")  # 3.2 LLS
    assert one(t, "mechanism") == 1 and "password" in t.text() and "'12345678'" in t.text()
    assert one(t, "max_pdu") == 1200
    assert "get" in one(t, "conformance") and "bit 19 get" in t.text()
    t = dec("6129A109060760857405080101A203020101A305A103020102BE10040E0800065F1F040000501F01"
            "F40007")  # 3.6
    assert one(t, "result") == 1
    assert one(t, "diagnostic") == ("acse-service-user", 2)
    assert "application-context-name-not-supported" in t.text()
    t = dec("611FA109060760857405080101A203020101A305A103020101BE0604040E010601")  # 3.7
    assert one(t, "service_error") == (1, 6, 1) and "dlms-version-too-low" in t.text()
    t = dec("6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205AA0A"
            "8008503677524A323146BE10040E0800065F1F040000501F01F40007")  # 3.8
    assert one(t, "diagnostic") == ("acse-service-user", 14) and one(t, "mechanism") == 5
    assert "'P6wRJ21F'" in t.text()
    for s, reason in (("6203800100", 0), ("6303800100", 0),
                      ("6316800100BE11040F080100065F1F0400001E1D04C80007", 0)):
        t = dec(s)
        assert one(t, "release.reason") == reason
    t = dec("6316800100BE11040F080100065F1F0400001E1D04C80007")  # 3.12 with QoS
    assert "negotiated-quality-of-service: 0" in t.text()
    t = dec("601DA109060760857405080101BE10040E01000000055F1F0400000010FFFF")  # Gurux-CT
    assert "proposed-dlms-version-number 5" in t.text()


# ====================================================================== ciphering (1, 3, 6)
def test_glo_get_request_is_decrypted():  # 1.1
    t = dec("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
    assert one(t, "plain") == h("C0010000080000010000FF0200")
    assert one(t, "tag") is True and one(t, "sc") == 0x30 and one(t, "ic") == 0x01234567
    assert "0.0.1.0.0.255 (clock)" in t.text() and "attribute-id 2 (time)" in t.text()
    assert "sender system title 4D4D4D0000BC614E" in t.text()
    forged = dec("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6C")
    assert one(forged, "tag") is False and not forged.get("plain") and "tag" in forged.failed


def test_ciphered_aarq_and_rlre():
    plain = h("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")  # 1.2
    t = dec("6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B07608574050802"
            "01AC0A80083132333435363738BE34043221303001234567801302FF8A7874133D414CED25B425"
            "34D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855")  # 3.4
    assert one(t, "context") == 3 and one(t, "client_title") == h("4D4D4D0000BC614E")
    assert one(t, "plain") == plain and one(t, "tag") is True
    assert "dedicated key 00112233445566778899AABBCCDDEEFF" in t.text()
    t = dec("6328800100BE230421281F3001234567891214A0845E475714383F65BC19745CA235906525E4F3E"
            "1C893")  # 3.13, decrypts to 1.3's InitiateResponse
    assert one(t, "plain") == h("0800065F1F0400007C1F04000007")
    assert one(t, "max_pdu") == 1024
    t = dec("6239800100BE34043221303001234567801302FF8A7874133D414CED25B42534D28DB004772060"
            "6B175BD52211BE6841DB204D39EE6FDB8E356855")  # 3.10
    assert "glo-initiate-request" in t.get("apdu")
    assert one(t, "plain") == plain


def test_general_glo_ciphering():
    key = b"MYDUMMYGLOBALKEY"
    s = tr.Session(ek=key, ak=key)
    t = dec("DB082F192291991641033B30000001E5025CE9D2271FD78BE8C204211A916A9D7F587E0A7A814CAD"
            "EA89E9593F01F92EA8C087B5BDFDEFEAB6BECF282DFE49C08F5BE6DC8400", session=s)  # 6.1
    p = one(t, "plain")
    assert p[0] == 0x0F and one(t, "tag") is True and "DataNotification" in t.get("apdu")
    assert "sender system title 2F19229199164103" in t.text()
    t = dec("0F000001DB000922125A8591360000000049000000110000000A5A8513D014800000000D0000000A"
            "0100")  # 6.3 plain
    assert "DataNotification" in t.get("apdu") and "octet-string (34)" in t.text()
    t = dec("DB001E30800000D181EC9EC4BF53E9776EF0C453969FBDFE11BE9B791AACC0FF8C")  # 6.2
    assert one(t, "ic") == 0x800000D1 and one(t, "tag") is False  # its keys are not published
    assert "(empty: the title agreed at association)" in t.text()


def test_hls_gmac_answers_are_checked():
    """1.4-1.7: the challenges from the AARQ/AARE of the same input check f(StoC) and
    f(CtoS); the client's system title is given, the server's is the default."""
    s = tr.Session(system_title=h("4D4D4D0000000001"))
    dec("6036A1090607608574050801018A0207808B0760857405080205AC0A80084B35366956616759BE100"
        "40E01000000065F1F0400007E1F04B0", session=s)  # 3.3
    dec("6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205AA0A"
        "8008503677524A323146BE10040E0800065F1F040000501F01F40007", session=s)  # 3.8
    t = dec("C3 01 C1 00 0F 0000280000FF 01 01 09 11 10000000011A52FE7DD3E72748973C1E28",
            session=s)  # 1.7 pass 3
    assert one(t, "gmac") is True and "reply_to_HLS_authentication" in t.text()
    t = dec("C7 01 C1 00 01 00 09 11 1001234567FE1466AFB3DBCD4F9389E2B7", session=s)  # pass 4
    assert one(t, "gmac") is True and "f(CtoS), the meter's answer" in t.text()
    t = dec("C7 01 C1 00 01 00 09 11 1001234567FE1466AFB3DBCD4F9389E2B8", session=s)
    assert one(t, "gmac") is False and "HLS GMAC" in t.failed


# ====================================================================== xDLMS (4, 5)
def test_xdlms_vectors():
    t = dec("C001C1000100002B0100FF0200")  # 4.1
    assert one(t, "service") == "GET-Request-Normal" and one(t, "obis") == "0.0.43.1.0.255"
    assert "invocation counter (last accepted" in t.text() and "class-id 1 (Data)" in t.text()
    t = dec("C401C1000600001391")  # 4.2
    assert "double-long-unsigned 5009" in t.text()
    t = dec("C401C10101")  # 4.3
    assert one(t, "dar") == 1 and "hardware-fault" in t.text()
    t = dec("C002C100000001")  # 4.4
    assert one(t, "service") == "GET-Request-Next" and "block-number 1" in t.text()
    t = dec("C003C102000100002A0000FF020000080000010000FF0200")  # 4.5
    assert one(t, "service") == "GET-Request-With-List"
    assert t.get("obis") == ["0.0.42.0.0.255", "0.0.1.0.0.255"]
    t = dec("C101C100080000010000FF0200090C07E50118FF0E303950FFC400")  # 4.7
    assert one(t, "service") == "SET-Request-Normal"
    assert "date-time 2021-01-24 14:48:57.80, deviation -60 min" in t.text()
    t = dec("C501C100")  # 4.8
    assert one(t, "service") == "SET-Response-Normal" and one(t, "dar") == 0
    t = dec("C301C0000F0000280000FF010109111000001A90E6D2221FA2FD85EED61ACC22")  # 4.9
    assert one(t, "service") == "ACTION-Request-Normal"
    assert "method-id 1 (reply_to_HLS_authentication)" in t.text()
    assert "not checked: the challenge was not seen" in t.text()
    for s in ("C701C00000", "C701C000010009111000001AFDE8857B728A3499106AA665D1",
              "C701C0000101FA"):  # 4.11
        t = dec(s)
        assert one(t, "service") == "ACTION-Response-Normal"
    assert "data-access-result 250 (other-reason)" in t.text()
    t = dec("D80102")
    assert one(t, "exception") == (1, 2) and "service-not-supported" in t.text()


def test_selective_access_vectors():
    t = dec("C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E20601"
            "FF000300FFFF8880090C07E50106FF000300FFFFC4000100")  # 5.1
    assert "access-selector 1 (range_descriptor)" in t.text()
    assert "1.0.99.1.0.255 (load profile" in t.text() and "class-id 8 (Clock)" in t.text()
    assert "date-time 2018-06-01 00:03:00" in t.text()
    t = dec("C001C100070100630100FF020102020406000000020600000004120001120000")  # 5.3
    assert "access-selector 2 (entry_descriptor)" in t.text()


def test_datablocks_are_reassembled():
    """GET-Request-Normal, then two GET-Response-With-Datablock: the value is decoded after
    the last block, named after the request."""
    s = tr.Session()
    dec("C001C1000F0000280000FF0200", session=s)
    value = h("0102") + h("020412000809060000010000FF0F0212 0000") * 2
    b1 = h("C402C1 00 00000001 00") + bytes([len(value[:10])]) + value[:10]
    b2 = h("C402C1 01 00000002 00") + bytes([len(value[10:])]) + value[10:]
    dec(b1, session=s)
    t = dec(b2, session=s)
    txt = t.text()
    assert "value reassembled from 2 block(s), %d bytes" % len(value) in txt
    assert "array (2 elements)" in txt and "class-id 8 (Clock)" in txt
    assert not t.failed


def test_obis_names():
    assert tr.obis_name(bytes([1, 0, 32, 7, 0, 255])) == "voltage L1"
    assert tr.obis_name(bytes([1, 0, 1, 8, 1, 255])) == \
        "active energy import (+A), time integral 1 (since the start of measurement), tariff 1"
    assert tr.obis_name(bytes([1, 0, 52, 7, 0, 255])) == "voltage L2"
    assert tr.obis_name(bytes([1, 0, 22, 7, 0, 255])).startswith("active power export (-P) L1")
    assert tr.obis_name(bytes([0, 0, 40, 0, 7, 255])) == "Association LN instance 7"
    assert tr.member_name(8, 2) == "time" and tr.member_name(15, 1, True) == \
        "reply_to_HLS_authentication"
    for ln, (cid, _name) in tr.OBJECTS.items():
        assert cid in tr.CLASS_NAMES, ln


# ====================================================================== command line
def test_command_line_inputs():
    r = subprocess.run([PY, TRACE, "7E", "A0", "08", "02", "23", "21", "93", "BD", "64", "7E"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^0006 +93 +control: SNRM", r.stdout, re.M), r.stdout
    r = subprocess.run([PY, TRACE, "--apdu"], input="C001C1000100002B0100FF0200\nC501C100\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--- 2: 4 bytes" in r.stdout and "SET-Response" in r.stdout
    r = subprocess.run([PY, TRACE, "--system-title", "4D4D4D0000BC614E",
                        "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "d:0000   C0" in r.stdout
    r = subprocess.run([PY, TRACE, "--ek", "00" * 16,
                        "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "BAD with the global unicast key" in r.stdout
    r = subprocess.run([PY, TRACE, "not hex"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not hex" in r.stderr
    r = subprocess.run([PY, TRACE], input="rx hdlc:pty 7EA00802232193BD647E\n"
                       "tx hdlc:pty 7EA00721037301407E\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "client -> meter" in r.stdout and "meter -> client" in r.stdout


# ====================================================================== live splitter
def test_live_splits_chunks_and_reports_noise():
    now = [1000.0]
    live = tr.Live(clock=lambda: now[0])
    snrm = "7EA00802232193BD647E"
    out = live.feed("rx hdlc:pty " + snrm[:8])
    assert out == ""
    out = live.feed("rx hdlc:pty " + snrm[8:] + "7EA0")  # rest + start of the next frame
    assert "rx hdlc:pty client -> meter, 10 bytes" in out and "SNRM" in out
    now[0] += 5  # the partial frame is stale: dropped as noise, like the meter does
    out = live.feed("rx hdlc:pty 0102" + snrm)
    assert "incomplete frame dropped" in out and out.count("SNRM") == 1
    out = live.feed("rx hdlc:pty " + b"/?!\r\n".hex())  # the optical port's sign-on
    assert "IEC 62056-21 characters (mode E opening): /?!<CR><LF>" in out
    out = live.feed("tx hdlc:pty 7EA00721037301407E")
    assert "meter -> client" in out and "UA (unnumbered acknowledge) F=1" in out
    assert live.feed("open tcp:4").endswith("connection opened\n")
    wrap = "0001001000010005" + "6203800100"
    out = live.feed("rx tcp:4 " + wrap[:10]) + live.feed("rx tcp:4 " + wrap[10:])
    assert "RLRQ" in out and "reason 0 (normal)" in out
    assert "connection closed" in live.feed("close tcp:4")
    assert live.failed == 0


# ====================================================================== the hook in ports.py
MP_HOOK_TEST = r"""
import micropython
import ports
from dlms import hdlc_tools

class Stream:
    def __init__(self, data):
        self.data = data
    def readinto(self, buf):
        d = self.data
        for i in range(len(d)):
            buf[i] = d[i]
        return len(d)
    def write(self, mv):
        return len(mv)

# a frame for another server (dropped by the link) after some noise: no reply is written
frame = hdlc_tools.frame(b"\x02\x25", b"\x21", 0x93)
srv = ports.Server(None)
port = ports.HdlcPort(srv, Stream(b"\x01\x02" + frame), "pty", {})
port.on_readable(0)  # warm-up
micropython.heap_lock()
try:
    for _ in range(20):
        port.on_readable(0)
finally:
    micropython.heap_unlock()
print("LOCKED-OK", port.link.frames_dropped if hasattr(port.link, "frames_dropped") else 0)
seen = []
srv.trace = lambda ev, t, c, mv, n: seen.append((ev, t, bytes(mv[:n])))
port.on_readable(0)
print("TRACED", len(seen), seen[0][0], seen[0][1], seen[0][2] == b"\x01\x02" + frame)
"""


def test_trace_hook_allocates_nothing_when_off(tmp_path):
    exe = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    if not os.path.exists(exe):
        pytest.skip("no MicroPython Unix port")
    script = tmp_path / "hook.py"
    script.write_text(MP_HOOK_TEST)
    env = dict(os.environ)
    env["MICROPYPATH"] = os.path.join(ROOT, "firmware")
    r = subprocess.run([exe, "-X", "heapsize=2m", str(script)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert "LOCKED-OK" in r.stdout, r.stdout + r.stderr
    assert "TRACED 1 rx hdlc True" in r.stdout, r.stdout + r.stderr


# ====================================================================== black box
def _wait_for(m, needles, timeout=15.0):
    """The trace process writes asynchronously: wait until stderr holds every needle."""
    deadline = time.monotonic() + timeout
    while True:
        err = m.stderr()
        missing = [n for n in needles if n not in err]
        if not missing or time.monotonic() > deadline:
            return err, missing
        time.sleep(0.2)


def test_virtual_meter_trace_blackbox(tmp_path):
    import running_meter as vm
    import clients as cl

    m = vm.start_meter(tmp_path, extra_args=["--trace"])
    try:
        with cl.GuruxClient("tcp", m.tcp, 16) as g:
            assert len(g.read("0.0.42.0.0.255", 1, 2)) == 16
        with cl.GuruxClient("hdlc", m.serial, 16) as g:
            assert len(g.read("0.0.42.0.0.255", 1, 2)) == 16
            g.object_list()  # longer than one HDLC frame: segmented
        with cl.GuruxClient("tcp", m.tcp, 1) as g:  # HLS-GMAC, every APDU ciphered
            listed = g.object_list()
            g.read("0.0.1.0.0.255", 8, 2)
    finally:
        m.stop()
    assert m.extra_stdout == b"", "stdout must stay the ready line only"
    err, missing = _wait_for(m, [
        "open tcp:1: connection opened",
        "rx tcp:1 client -> meter",
        "tx tcp:1 meter -> client",
        "rx hdlc:pty client -> meter",
        "tx hdlc:pty meter -> client",
        "AARQ (A-ASSOCIATE request)",
        "result 0: accepted",
        "GET-Request-Normal (choice 1)",
        "instance-id (logical name) 0.0.42.0.0.255 (COSEM logical device name)",
        "control: SNRM (set normal response mode) P=1",
        "control: UA (unnumbered acknowledge) F=1",
        "FCS (frame check sequence over format..information): ok",
        "S=1 (segmented: more segments follow)",
        "reassembled APDU",
        "glo-get-request (ciphered GET-Request, global key)",
        "authentication tag (12 bytes): ok",
        "f(StoC), the client's answer",
        "f(CtoS), the meter's answer",
        "0.0.1.0.0.255 (clock)",
        "RLRE (A-RELEASE response)",
        "close tcp:2: connection closed",
    ])
    assert not missing, "missing in the trace: %r\n%s" % (missing, err[-6000:])
    for bad in ("BAD", "undecoded", "malformed", "trace: cannot decode", "noise", "unreadable",
                "not traced"):
        assert bad not in err, "%r in the trace:\n%s" % (bad, err[-6000:])
    # every object the meter lists (management sees them all) has a name, and the objects
    # the decoder lists by name have the class the meter announces
    assert len(listed) >= 30
    for cid, _ver, ln in listed:
        b = bytes(int(x) for x in ln.split("."))
        assert tr.obis_name(b), "no name for %s in tools/trace.py" % ln
        assert cid in tr.CLASS_NAMES, cid
        if ln in tr.OBJECTS:
            assert tr.OBJECTS[ln][0] == cid, ln
