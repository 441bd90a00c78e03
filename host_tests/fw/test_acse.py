"""ACSE tests (firmware/dlms/ber.py, firmware/dlms/acse.py): dlms-vectors.md section 3, the
negative association table, the decision rules, and hostile AARQs. Runs under CPython and
the MicroPython Unix port."""

import random
from binascii import hexlify, unhexlify

from dlms import acse, axdr, ber
from dlms.axdr import BufferFull, DecodeError


def U(s):
    return unhexlify(s.replace(" ", ""))


def H(b):
    return hexlify(bytes(b)).decode().upper()


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return
    raise AssertionError("expected " + exc.__name__)


# dlms-vectors.md section 3
AARQ_3_1 = "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
AARQ_3_2 = (
    "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
    "BE10040E01000000065F1F0400007E1F04B0"
)
AARQ_3_3 = (
    "6036A1090607608574050801018A0207808B0760857405080205AC0A80084B35366956616759"
    "BE10040E01000000065F1F0400007E1F04B0"
)
GLO_INITIATE = (
    "21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39"
    "EE6FDB8E356855"
)
AARQ_3_4 = (
    "6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B0760857405080201AC0A8008"
    "3132333435363738BE340432" + GLO_INITIATE
)
AARE_3_5 = "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007"
AARE_3_6 = "6129A109060760857405080101A203020101A305A103020102BE10040E0800065F1F040000501F01F40007"
AARE_3_7 = "611FA109060760857405080101A203020101A305A103020101BE0604040E010601"
AARE_3_8 = (
    "6142A109060760857405080101A203020100A305A10302010E88020780890760857405080205AA0A8008"
    "503677524A323146BE10040E0800065F1F040000501F01F40007"
)
RLRQ_3_10 = "6239800100BE340432" + GLO_INITIATE
AARQ_2_7 = "601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF"
AARE_2_8 = "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400001E1D04C80007"

# the negative association cases (Gurux CT)
NEG_VERSION_5 = "601DA109060760857405080101BE10040E01000000055F1F0400000010FFFF"
NEG_NO_CONFORMANCE = "601DA109060760857405080101BE10040E01000000065F1F0400000000FFFF"
NEG_PDU_59 = "601DA109060760857405080101BE10040E01000000065F1F0400000010003B"
NEG_LLS_WRONG = (
    "602FA1090607608574050801018A0207808B0760857405080201AC03800131"
    "BE10040E01000000065F1F0400000010FFFF"
)
REJECT_HEAD = "611FA109060760857405080101A203020101A305A103020101BE0604040E"

ALL_AARQS = (
    AARQ_3_1, AARQ_3_2, AARQ_3_3, AARQ_3_4, AARQ_2_7,
    NEG_VERSION_5, NEG_NO_CONFORMANCE, NEG_PDU_59, NEG_LLS_WRONG,
)

CTX_FIELD = "A109060760857405080101"  # application-context-name LN
UI_3_1 = "BE10040E01000000065F1F0400007E1F04B0"  # user-information of 3.1


def apdu(tag, *parts):
    """tag | short length | parts (hex): builds AARQ variants with correct lengths."""
    body = "".join(parts).replace(" ", "")
    assert len(body) // 2 < 0x80
    return "%02X%02X" % (tag, len(body) // 2) + body


GB_POLICY_CONF = 0x00501F  # conformance and PDU size of the GB example AAREs
GB_PDU = 0x01F4


def initiate_of(aarq):
    """What the association layer does for an unciphered AARQ."""
    if aarq.user_info is None:
        return None
    try:
        return acse.parse_initiate_request(aarq.user_info, 0, len(aarq.user_info))
    except DecodeError:
        return None


def answer(aarq_hex, policy, stoc=None):
    b = U(aarq_hex) if isinstance(aarq_hex, str) else aarq_hex
    a = acse.parse_aarq(b, 0, len(b))
    d = acse.evaluate(a, policy, initiate_of(a))
    buf = bytearray(300)
    w = axdr.Writer(buf)
    acse.respond(w, a, d, policy, stoc)
    return H(buf[: w.pos]), d


def test_parse_3_1_no_security():
    b = U(AARQ_3_1)
    a = acse.parse_aarq(b, 0, len(b))
    assert a.application_context == acse.CTX_LN
    assert a.acse_version1 is True
    assert a.mechanism is None and a.auth_value is None and a.calling_ap_title is None
    assert a.sender_acse_requirements == 0
    assert H(a.user_info) == "01000000065F1F0400007E1F04B0"
    ir = acse.parse_initiate_request(a.user_info, 0, len(a.user_info))
    assert ir.dedicated_key is None and ir.response_allowed is True and ir.proposed_qos is None
    assert ir.dlms_version == 6 and ir.conformance == 0x007E1F and ir.max_pdu == 0x04B0


def test_parse_3_2_lls_and_3_3_hls():
    b = U(AARQ_3_2)
    a = acse.parse_aarq(b, 0, len(b))
    assert a.sender_acse_requirements == 1
    assert a.mechanism == acse.MECH_LLS and a.auth_value == b"12345678"
    b = U(AARQ_3_3)
    a = acse.parse_aarq(b, 0, len(b))
    assert a.mechanism == acse.MECH_HLS_GMAC and a.auth_value == b"K56iVagY"
    assert a.application_context == acse.CTX_LN


def test_parse_3_4_ciphered_context():
    b = U(AARQ_3_4)
    a = acse.parse_aarq(b, 0, len(b))
    assert a.application_context == acse.CTX_LN_CIPHERED
    assert H(a.calling_ap_title) == "4D4D4D0000BC614E"
    assert a.mechanism == acse.MECH_LLS and a.auth_value == b"12345678"
    assert H(a.user_info) == GLO_INITIATE
    assert a.user_info[0] == 0x21  # glo-initiate-request
    # a window inside a larger buffer (as after an HDLC LLC header)
    big = b"\xe6\xe6\x00" + b + b"\x7e"
    a = acse.parse_aarq(big, 3, 3 + len(b))
    assert H(a.user_info) == GLO_INITIATE


def test_initiate_request_variants():
    v12 = U("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")  # vector 1.2
    ir = acse.parse_initiate_request(v12, 0, len(v12))
    assert H(ir.dedicated_key) == "00112233445566778899AABBCCDDEEFF"
    assert ir.conformance == 0x007E1F and ir.max_pdu == 1200 and ir.dlms_version == 6
    b = U("0100 0100 01F6 06 5F1F0400001010 0000")  # response-allowed FALSE, qos -10
    ir = acse.parse_initiate_request(b, 0, len(b))
    assert ir.response_allowed is False and ir.proposed_qos == -10 and ir.max_pdu == 0
    for bad in (
        "08000000065F1F0400007E1F04B0",  # not an InitiateRequest
        "01020000065F1F0400007E1F04B0",  # usage flag 2
        "01000000065F1E0400007E1F04B0",  # not 5F 1F
        "01000000065F1F0300007E1F04B0",  # conformance length 3
        "01000000065F1F0408007E1F04B0",  # 8 unused bits
        "01000000065F1F0400007E1F04B000",  # trailing byte
        "0101FF00000000065F1F0400007E1F04B0",  # key length beyond the data
    ):
        raises(DecodeError, acse.parse_initiate_request, U(bad), 0, len(U(bad)))
    for i in range(len(v12)):
        raises(DecodeError, acse.parse_initiate_request, v12, 0, i)


def test_initiate_response_3_14():
    buf = bytearray(32)
    w = axdr.Writer(buf)
    acse.encode_initiate_response(w, 0x00501F, 0x01F4)
    assert H(buf[: w.pos]) == "0800065F1F040000501F01F40007"
    w.reset()
    acse.encode_initiate_response(w, 0x001E1D, 0x04C8, qos=0)
    assert H(buf[: w.pos]) == "080100065F1F0400001E1D04C80007"
    w.reset()
    acse.encode_confirmed_service_error(w, 1, 6, 1)
    assert H(buf[: w.pos]) == "0E010601"
    raises(ValueError, acse.encode_initiate_response, w, 0x1000000, 100)


def test_aare_3_5_accepted():
    p = acse.Policy(acse.MECH_NONE, conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    got, d = answer(AARQ_3_1, p)
    assert got == AARE_3_5
    assert d.accepted and d.conformance == 0x00501F and d.client_max_pdu == 0x04B0
    assert d.error is None and not d.auth_pending


def test_aare_3_6_context_not_supported():
    p = acse.Policy(acse.MECH_NONE, conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    sn = apdu(0x60, "A109060760857405080102", UI_3_1)  # application context SN (…0102)
    got, d = answer(sn, p)
    assert got == AARE_3_6
    assert d.result == 1 and d.diag_source == 1 and d.diagnostic == 2 and not d.accepted
    # a ciphered context to an unciphered SAP: the same refusal
    got, d = answer(AARQ_3_4, acse.Policy(acse.MECH_LLS, b"12345678"))
    assert d.diagnostic == 2 and d.result == 1
    assert got.endswith("BE0604040E010600")  # initiate undecipherable here: no InitiateResponse


def test_aare_3_7_and_negative_table():
    p = acse.Policy(acse.MECH_NONE, conformance=GB_POLICY_CONF, max_pdu=1024)
    got, d = answer(NEG_VERSION_5, p)
    assert got == AARE_3_7
    assert d.error == (6, 1) and d.result == 1 and d.diagnostic == 1
    assert answer(NEG_NO_CONFORMANCE, p)[0] == REJECT_HEAD + "010602"
    assert answer(NEG_PDU_59, p)[0] == REJECT_HEAD + "010603"
    lls = acse.Policy(acse.MECH_LLS, b"12345678", max_pdu=1024)
    got, d = answer(NEG_LLS_WRONG, lls)
    assert got == (
        "6129A109060760857405080101A203020101A305A10302010DBE10040E0800065F1F040000001004000007"
    )
    assert d.diagnostic == acse.DIAG_AUTHENTICATION_FAILURE and d.error is None


def test_aare_3_8_hls_pending():
    p = acse.Policy(acse.MECH_HLS_GMAC, conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    got, d = answer(AARQ_3_3, p, stoc=b"P6wRJ21F")
    assert got == AARE_3_8
    assert d.auth_pending and d.result == 0 and d.diagnostic == 14 and not d.accepted
    raises(ValueError, answer, AARQ_3_3, p)  # the caller must supply StoC


def test_aare_2_8_for_aarq_2_7():
    p = acse.Policy(acse.MECH_NONE, conformance=0x00FFFF, max_pdu=0x04C8)
    got, d = answer(AARQ_2_7, p)
    assert got == AARE_2_8
    assert d.client_max_pdu == 0xFFFF


def test_lls_accepted_carries_only_the_result():
    p = acse.Policy(acse.MECH_LLS, b"12345678", conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    got, d = answer(AARQ_3_2, p)
    assert got == AARE_3_5 and d.accepted


def test_mechanism_rules():
    none = acse.Policy(acse.MECH_NONE)
    lls = acse.Policy(acse.MECH_LLS, b"12345678")
    hls = acse.Policy(acse.MECH_HLS_GMAC)
    # authentication requested from a SAP that has none: not recognised (11)
    assert answer(AARQ_3_2, none)[1].diagnostic == acse.DIAG_MECHANISM_NOT_RECOGNISED
    assert answer(AARQ_3_3, none)[1].diagnostic == 11
    # lowest-level-security (mechanism 0) named explicitly: accepted
    m0 = AARQ_3_2.replace("8B0760857405080201", "8B0760857405080200", 1)
    assert m0 != AARQ_3_2
    assert answer(m0, none)[1].accepted
    # no mechanism to a SAP that requires one: required (12)
    assert answer(AARQ_3_1, lls)[1].diagnostic == acse.DIAG_MECHANISM_REQUIRED
    assert answer(AARQ_3_1, hls)[1].diagnostic == 12
    # the wrong mechanism: not recognised (11)
    assert answer(AARQ_3_3, lls)[1].diagnostic == 11
    assert answer(AARQ_3_2, hls)[1].diagnostic == 11
    # a mechanism OID from elsewhere
    foreign = AARQ_3_2.replace("8B07608574050802", "8B07608574050902", 1)
    assert foreign != AARQ_3_2
    a = acse.parse_aarq(U(foreign), 0, len(U(foreign)))
    assert a.mechanism == -1
    assert answer(foreign, lls)[1].diagnostic == 11
    # LLS secrets: exact match only
    mech_lls = "8A0207808B0760857405080201"
    assert answer(apdu(0x60, CTX_FIELD, mech_lls, apdu(0xAC, apdu(0x80, H(b"12345678"))),
                       UI_3_1), lls)[1].accepted
    for pw in (b"1234567", b"123456789", b"12345679", b""):
        aarq = apdu(0x60, CTX_FIELD, mech_lls, apdu(0xAC, apdu(0x80, H(pw))), UI_3_1)
        assert answer(aarq, lls)[1].diagnostic == acse.DIAG_AUTHENTICATION_FAILURE, pw
    # the password in another Authentication-value choice (bitstring [1]): not accepted
    aarq = apdu(0x60, CTX_FIELD, mech_lls, apdu(0xAC, apdu(0x81, H(b"12345678"))), UI_3_1)
    assert answer(aarq, lls)[1].diagnostic == 13
    # LLS without a calling-authentication-value
    assert answer(apdu(0x60, CTX_FIELD, mech_lls, UI_3_1), lls)[1].diagnostic == 13
    # HLS challenge shorter than 8 octets / longer than 64
    mech_gmac = "8A0207808B0760857405080205"
    for ctos in (b"A" * 7, b"A" * 65):
        aarq = apdu(0x60, CTX_FIELD, mech_gmac, apdu(0xAC, apdu(0x80, H(ctos))), UI_3_1)
        assert answer(aarq, hls)[1].diagnostic == 13
    assert answer(AARQ_3_3, hls, b"S" * 16)[1].auth_pending


def test_xdlms_rules():
    p = acse.Policy(acse.MECH_NONE, conformance=acse.CONF_GET | acse.CONF_SET)
    # negotiated conformance is the intersection
    d = answer(AARQ_3_1, p)[1]
    assert d.conformance == acse.CONF_GET | acse.CONF_SET and d.accepted
    # max PDU: 0 means no limit, 64 is the smallest accepted, 63 is too short
    for pdu, code in ((0, None), (64, None), (63, 3), (0xFFFF, None)):
        aarq = AARQ_3_1[:-4] + "%04X" % pdu
        d = answer(aarq, p)[1]
        assert (d.error[1] if d.error else None) == code, pdu
    assert answer(AARQ_3_1[:-4] + "0000", p)[1].client_max_pdu == 0xFFFF
    # a dedicated key in an unciphered context is refused (other)
    ded = apdu(
        0x60,
        CTX_FIELD,
        apdu(0xBE, apdu(0x04, "01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")),
    )
    got, d = answer(ded, p)
    assert d.result == 1 and d.diagnostic == 1 and d.error == (6, 0)
    assert got.endswith("BE0604040E010600")
    # no user-information at all
    bare = apdu(0x60, CTX_FIELD)
    got, d = answer(bare, p)
    assert d.result == 1 and d.diagnostic == 1 and got.endswith("BE0604040E010600")
    # version 7 is fine (the server answers 6)
    v7 = AARQ_3_1.replace("0000065F", "0000075F")
    assert v7 != AARQ_3_1 and answer(v7, p)[1].accepted


def test_ciphered_context_rules():
    p = acse.Policy(acse.MECH_LLS, b"12345678", app_context=acse.CTX_LN_CIPHERED)
    b = U(AARQ_3_4)
    a = acse.parse_aarq(b, 0, len(b))
    v12 = U("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
    ini = acse.parse_initiate_request(v12, 0, len(v12))  # the deciphered user-information
    d = acse.evaluate(a, p, ini)
    assert d.accepted and d.error is None  # dedicated key welcome in a ciphered context
    # the caller supplies the ciphered user-information and the server system title
    buf = bytearray(128)
    w = axdr.Writer(buf)
    acse.respond(w, a, d, p, user_info=U("280102"), responding_ap_title=U("4D4D4D0000BC614E"))
    assert H(buf[: w.pos]) == (
        "612AA109060760857405080103A203020100A305A103020100A40A04084D4D4D0000BC614E"
        "BE050403280102"
    )
    # without a calling-AP-title (client system title): not recognised (3)
    a.calling_ap_title = None
    assert acse.evaluate(a, p, ini).diagnostic == acse.DIAG_CALLING_AP_TITLE_NOT_RECOGNISED
    a.calling_ap_title = b"1234567"
    assert acse.evaluate(a, p, ini).diagnostic == 3


def test_calling_ap_title_ignored_when_unciphered():
    # dlms-cosem style: "uti" + 5 random bytes as calling-AP-title
    aarq = apdu(0x60, CTX_FIELD, "A60A04087574690102030405", UI_3_1)
    p = acse.Policy(acse.MECH_NONE, conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    got, d = answer(aarq, p)
    assert got == AARE_3_5


def test_acse_protocol_version():
    aarq = apdu(0x60, "80020700", CTX_FIELD, UI_3_1)  # protocol-version without version1
    p = acse.Policy(acse.MECH_NONE, conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    got, d = answer(aarq, p)
    assert d.diag_source == acse.SOURCE_PROVIDER and d.diagnostic == 2
    assert got == (
        "6129A109060760857405080101A203020101A305A203020102BE10040E0800065F1F040000501F01F40007"
    )
    assert answer(apdu(0x60, "80020780", CTX_FIELD, UI_3_1), p)[0] == AARE_3_5  # version1


def test_parse_skips_unknown_fields_and_refuses_malformed():
    # called-AP-title [2] and implementation-information [29] are skipped
    skipped = apdu(0x60, CTX_FIELD, "A203040141", "9D0141", UI_3_1)
    p = acse.Policy(acse.MECH_NONE, conformance=GB_POLICY_CONF, max_pdu=GB_PDU)
    assert answer(skipped, p)[0] == AARE_3_5
    foreign_ctx = apdu(0x60, "A109060760857406080101", UI_3_1)
    a = acse.parse_aarq(U(foreign_ctx), 0, len(U(foreign_ctx)))
    assert a.application_context == -1
    for bad in (
        apdu(0x61, CTX_FIELD, UI_3_1),  # not an AARQ
        AARQ_3_1 + "00",  # trailing byte
        "6080" + CTX_FIELD + UI_3_1 + "0000",  # indefinite length
        apdu(0x60, "A109040760857405080101", UI_3_1),  # the OID sent as an OCTET STRING
        apdu(0x60, "8109060760857405080101", UI_3_1),  # primitive [1] instead of A1
        apdu(0x60, "A10A06076085740508010100", UI_3_1),  # OID does not fill [1]
        apdu(0x60, "A109060860857405080101", UI_3_1),  # OID length beyond [1]
        "6028",  # truncated
        apdu(0x60, CTX_FIELD, CTX_FIELD, UI_3_1),  # repeated [1]
        apdu(0x60, CTX_FIELD, "BE10050E01000000065F1F0400007E1F04B0"),  # user-info not 04
        apdu(0x60, CTX_FIELD, "BE10040F01000000065F1F0400007E1F04B0"),  # inner length
        apdu(0x60, CTX_FIELD, "BF1F0100", UI_3_1),  # high tag number field
        apdu(0x60, CTX_FIELD, "300100", UI_3_1),  # universal class field
        apdu(0x60, CTX_FIELD, "4A0100", UI_3_1),  # application class field
        apdu(0x60, "A185" + CTX_FIELD[4:], UI_3_1),  # length form 85
        apdu(0x60, CTX_FIELD, "8A00", UI_3_1),  # empty bit string
        apdu(0x60, CTX_FIELD, "A903020180", UI_3_1),  # negative invocation id
        apdu(0x60, CTX_FIELD, "A6080604010203040506", UI_3_1),  # AP-title not OCTET STRING
        apdu(0x60, CTX_FIELD, "AC0480024142AA", UI_3_1),  # auth value not filling [12]
        apdu(0x60, CTX_FIELD, "8B0760857405080201", "8B0760857405080201", UI_3_1),  # repeated
    ):
        b = U(bad)
        raises(DecodeError, acse.parse_aarq, b, 0, len(b))


def _patched_truncations(full):
    """Every prefix of an AARQ, with the outer length patched to the prefix length, so that
    the inner fields are the ones cut short."""
    for i in range(len(full)):
        b = bytearray(full[:i])
        if i >= 2 and b[1] < 0x80:
            b[1] = i - 2
        yield bytes(b)


def _pipeline(b):
    """The association layer's path for one AARQ: only DecodeError may escape."""
    try:
        a = acse.parse_aarq(b, 0, len(b))
    except DecodeError:
        return None
    for p in (
        acse.Policy(acse.MECH_NONE),
        acse.Policy(acse.MECH_LLS, b"12345678"),
        acse.Policy(acse.MECH_HLS_GMAC),
        acse.Policy(acse.MECH_HLS_GMAC, app_context=acse.CTX_LN_CIPHERED),
    ):
        d = acse.evaluate(a, p, initiate_of(a))
        buf = bytearray(256)
        acse.respond(axdr.Writer(buf), a, d, p, stoc=b"12345678")
    return a


def test_every_truncated_aarq_is_refused():
    for h in ALL_AARQS:
        full = U(h)
        for i in range(len(full)):
            raises(DecodeError, acse.parse_aarq, full, 0, i)
            raises(DecodeError, acse.parse_aarq, full[:i], 0, i)
        for b in _patched_truncations(full):
            a = _pipeline(b)
            if a is not None:
                # a shorter AARQ can still be well-formed (fields dropped whole); it must
                # then not be accepted with the fields it lost
                d = acse.evaluate(a, acse.Policy(acse.MECH_LLS, b"12345678"), initiate_of(a))
                if d.result == 0:
                    assert a.auth_value == b"12345678" and initiate_of(a) is not None


def test_fuzz_aarqs_only_raise_decode_error():
    rnd = random.Random(99) if hasattr(random, "Random") else None
    if rnd is None:
        random.seed(99)
        rnd = random
    samples = [U(h) for h in ALL_AARQS] + [U(RLRQ_3_10)]
    for i in range(3000):
        b = bytearray(samples[i % len(samples)])
        for _ in range(1 + rnd.getrandbits(2)):
            op = rnd.getrandbits(2)
            p = rnd.getrandbits(16) % len(b) if len(b) else 0
            if op == 0 and len(b):
                b[p] = rnd.getrandbits(8)
            elif op == 1:
                b[p:p] = bytes([rnd.getrandbits(8)])
            elif op == 2 and len(b) > 1:
                b[p : p + 1] = b""
            elif len(b):
                b[p] ^= 0x80
        b = bytes(b)
        _pipeline(b)
        try:
            acse.parse_rlrq(b, 0, len(b))
        except DecodeError:
            pass


def test_rlrq_3_9_and_3_10():
    b = U("6203800100")
    assert acse.parse_rlrq(b, 0, len(b)) == (0, None)
    b = U(RLRQ_3_10)
    reason, ui = acse.parse_rlrq(b, 0, len(b))
    assert reason == 0 and H(ui) == GLO_INITIATE  # normal (0)
    b = U("6200")
    assert acse.parse_rlrq(b, 0, 2) == (None, None)
    b = U(apdu(0x62, "800101", apdu(0xBE, apdu(0x04, "01000000065F1F04000010000400"))))
    reason, ui = acse.parse_rlrq(b, 0, len(b))
    assert reason == 1 and ui[0] == 1  # urgent (1)
    for bad in ("6303800100", "6204800100", "620680010080 0101", "6205800100", "62038000",
                "6202BE00", "6203A00100", "6203BF1F00", "6205BE03050100"):
        x = U(bad)
        raises(DecodeError, acse.parse_rlrq, x, 0, len(x))
    full = U(RLRQ_3_10)
    for i in range(len(full)):
        raises(DecodeError, acse.parse_rlrq, full, 0, i)


def test_rlre_3_11_3_12_3_13():
    buf = bytearray(64)
    w = axdr.Writer(buf)
    acse.encode_rlre(w, 0)  # reason: normal (0)
    assert H(buf[: w.pos]) == "6303800100"
    w.reset()
    acse.encode_rlre(w, 0, U("080100065F1F0400001E1D04C80007"))
    assert H(buf[: w.pos]) == "6316800100BE11040F080100065F1F0400001E1D04C80007"
    w.reset()
    ct = "281F3001234567891214A0845E475714383F65BC19745CA235906525E4F3E1C893"
    acse.encode_rlre(w, 0, U(ct))
    assert H(buf[: w.pos]) == "6328800100BE230421" + ct
    w.reset()
    acse.encode_rlre(w)
    assert H(buf[: w.pos]) == "6300"


def test_long_aare_uses_long_form_lengths():
    ui = bytes(range(200))
    buf = bytearray(300)
    w = axdr.Writer(buf)
    acse.encode_aare(w, 1, 0, 1, 0, user_info=ui)
    out = bytes(buf[: w.pos])
    assert H(out[:3]) == "6181E5"
    assert H(out[26:32]) == "BE81CB0481C8" and out[32:] == ui
    tag, s, e = ber.read_tlv(out, 0, len(out))
    assert tag == 0x61 and s == 3 and e == len(out)
    # no room for the long form: BufferFull, not a corrupt APDU
    raises(BufferFull, acse.encode_aare, axdr.Writer(bytearray(230)), 1, 0, 1, 0, None, None, ui)


def test_ber_helpers():
    b = U("5F1F0400007E1F")
    assert ber.read_tlv(b, 0, len(b)) == (0x5F1F, 3, 7)
    b = U("0481 80") + bytes(128)
    assert ber.read_tlv(b, 0, len(b)) == (4, 3, 131)
    b = U("0484 00000002 AABB")
    assert ber.read_tlv(b, 0, len(b)) == (4, 6, 8)
    for bad in ("04", "0403AABB", "0480AA", "0485000000000000", "1F", "1F8080801F01AA",
                "0482 01", ""):
        x = U(bad)
        raises(DecodeError, ber.read_tlv, x, 0, len(x))
    for n, head in ((0x7F, "A37F"), (0x80, "A38180"), (0x100, "A3820100")):
        buf = bytearray(n + 8)
        w = axdr.Writer(buf)
        m = ber.start(w, 0xA3)
        w.raw(bytes([7]) * n)
        ber.close(w, m)
        assert H(buf[: len(head) // 2]) == head and w.pos == len(head) // 2 + n
        assert buf[len(head) // 2] == 7 and buf[w.pos - 1] == 7
    w = axdr.Writer(bytearray(4))
    ber.tlv(w, 0x5F1F, b"\x01")
    assert H(w.buf[: w.pos]) == "5F1F0101"
    raises(ValueError, ber.small_int, axdr.Writer(bytearray(4)), 2, 128)
    assert ber.read_uint(U("0100"), 0, 2) == 256
    raises(DecodeError, ber.read_uint, U("80"), 0, 1)
    raises(DecodeError, ber.read_uint, b"", 0, 0)


def test_policy_validation_and_defaults():
    raises(ValueError, acse.Policy, 8)
    raises(ValueError, acse.Policy, acse.MECH_LLS)  # LLS without a secret
    raises(ValueError, acse.Policy, 0, None, 5)
    raises(ValueError, acse.Policy, 0, None, 1, 0x1000000)
    p = acse.Policy(acse.MECH_NONE)
    assert p.conformance == acse.DEFAULT_CONFORMANCE and p.max_pdu == 1024 and p.min_pdu == 64
    assert acse.CONF_GET == 0x000010 and acse.CONF_ACTION == 1 and acse.CONF_SET == 8
    assert acse.CONF_BLOCK_TRANSFER_WITH_GET == 0x1000 and acse.CONF_GENERAL_PROTECTION == 0x400000
    assert acse.CONF_SELECTIVE_ACCESS == 4 and acse.CONF_MULTIPLE_REFERENCES == 0x200
    # GB example 0x00501F = priority-mgmt, block-transfer-with-get, get..action
    assert (
        acse.CONF_PRIORITY_MGMT | acse.CONF_BLOCK_TRANSFER_WITH_GET | acse.CONF_GET
        | acse.CONF_SET | acse.CONF_SELECTIVE_ACCESS | acse.CONF_EVENT_NOTIFICATION
        | acse.CONF_ACTION
    ) == 0x00501F
