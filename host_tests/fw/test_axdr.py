"""A-XDR codec tests (firmware/dlms/axdr.py). Run under CPython and the MicroPython Unix port.

Expected bytes come from dlms-vectors.md (sections 4, 5, 7) or are spelled out from the Blue
Book rules next to each case, not produced by the codec under test.
"""

import random
from binascii import hexlify, unhexlify

from dlms import axdr, axdr_tools
from dlms.axdr import BufferFull, DecodeError


def U(s):
    return unhexlify(s.replace(" ", ""))


MAX_DEPTH = 16  # the codec's nesting bound (axdr._MAX_DEPTH)


def H(b):
    return hexlify(bytes(b)).decode().upper()


def enc(value, size=4096):
    buf = bytearray(size)
    w = axdr.Writer(buf)
    w.data(value)
    return bytes(buf[: w.pos])


def dec(b):
    r = axdr.Reader(b)
    v = r.data()
    assert r.remaining() == 0, "bytes left after one Data element"
    return v


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return
    raise AssertionError("expected " + exc.__name__)


DT_4_7 = "07E50118FF0E303950FFC400"  # 2021-01-24 14:48:57.80, deviation -60 (vector 4.7)

# (typed value, expected encoding). The expectation is written from the Blue Book rules.
CASES = [
    ((axdr.NULL, None), "00"),
    ((axdr.BOOLEAN, True), "0301"),
    ((axdr.BOOLEAN, False), "0300"),
    ((axdr.BIT_STRING, (b"", 0)), "0400"),
    ((axdr.BIT_STRING, (b"\xa0", 3)), "0403A0"),
    ((axdr.BIT_STRING, (b"\x12\x34\x50", 20)), "0414123450"),
    ((axdr.DOUBLE_LONG, -1), "05FFFFFFFF"),
    ((axdr.DOUBLE_LONG, -0x80000000), "0580000000"),
    ((axdr.DOUBLE_LONG, 0x7FFFFFFF), "057FFFFFFF"),
    ((axdr.DOUBLE_LONG_UNSIGNED, 5009), "0600001391"),
    ((axdr.DOUBLE_LONG_UNSIGNED, 0xFFFFFFFF), "06FFFFFFFF"),
    ((axdr.OCTET_STRING, b""), "0900"),
    ((axdr.OCTET_STRING, U("0000010000FF")), "09060000010000FF"),
    ((axdr.VISIBLE_STRING, b"ABC"), "0A03414243"),
    ((axdr.UTF8_STRING, b"\xc3\xa9"), "0C02C3A9"),
    ((axdr.BCD, 0x42), "0D42"),
    ((axdr.INTEGER, -128), "0F80"),
    ((axdr.INTEGER, 127), "0F7F"),
    ((axdr.INTEGER, -5), "0FFB"),
    ((axdr.LONG, -2), "10FFFE"),
    ((axdr.LONG, 0x7FFF), "107FFF"),
    ((axdr.UNSIGNED, 255), "11FF"),
    ((axdr.LONG_UNSIGNED, 0), "120000"),
    ((axdr.LONG_UNSIGNED, 0xFFFF), "12FFFF"),
    ((axdr.LONG64, -(2**63)), "148000000000000000"),
    ((axdr.LONG64, 2**63 - 1), "147FFFFFFFFFFFFFFF"),
    ((axdr.LONG64, -3), "14FFFFFFFFFFFFFFFD"),
    ((axdr.LONG64_UNSIGNED, 2**64 - 1), "15FFFFFFFFFFFFFFFF"),
    ((axdr.LONG64_UNSIGNED, 1234567890123), "150000011F71FB04CB"),
    ((axdr.ENUM, 30), "161E"),
    ((axdr.FLOAT32, 1.5), "173FC00000"),
    ((axdr.FLOAT32, -0.25), "17BE800000"),
    ((axdr.FLOAT64, -2.25), "18C002000000000000"),
    ((axdr.DATE_TIME, U(DT_4_7)), "19" + DT_4_7),
    ((axdr.DATE, U("07E5011807")), "1A07E5011807"),
    ((axdr.TIME, U("0E303950")), "1B0E303950"),
    ((axdr.DONT_CARE, None), "FF"),
    ((axdr.ARRAY, []), "0100"),
    ((axdr.STRUCTURE, []), "0200"),
    ((axdr.ARRAY, [(axdr.LONG_UNSIGNED, 1), (axdr.LONG_UNSIGNED, 2)]), "0102120001120002"),
    (
        (axdr.STRUCTURE, [(axdr.NULL, None), (axdr.ARRAY, [(axdr.BOOLEAN, True)])]),
        "0202000101 0301",
    ),
    # compact-array: description | contents length | untagged elements
    ((axdr.COMPACT_ARRAY, (b"\x12", [(18, 1), (18, 2)])), "13 12 04 0001 0002"),
    (
        (
            axdr.COMPACT_ARRAY,
            (b"\x02\x02\x12\x09", [(2, [(18, 1), (9, b"ab")]), (2, [(18, 2), (9, b"")])]),
        ),
        "13 020212 09 08 0001 026162 0002 00",
    ),
    (
        (axdr.COMPACT_ARRAY, (b"\x01\x00\x02\x0f", [(1, [(15, -1), (15, 2)])])),
        "13 0100020F 02 FF02",
    ),
    ((axdr.COMPACT_ARRAY, (b"\x04", [(4, (b"\x80", 1))])), "13 04 02 0180"),
]


def test_every_type_encodes_to_the_expected_bytes():
    for value, hexstr in CASES:
        got = H(enc(value))
        assert got == hexstr.replace(" ", ""), (value, got)


def test_every_type_decodes_back():
    for value, hexstr in CASES:
        got = dec(U(hexstr))
        assert got == value, (hexstr, got)


def test_skip_data_agrees_with_data():
    for value, hexstr in CASES:
        b = U(hexstr + "AA")
        r = axdr.Reader(b)
        assert r.skip_data() == value[0]
        assert r.remaining() == 1 and r.u8() == 0xAA


def test_typed_writers_match_generic_encoder():
    buf = bytearray(64)
    w = axdr.Writer(buf)
    calls = [
        (w.null, (), "00"),
        (w.boolean, (1,), "0301"),
        (w.bit_string, (b"\xff", 3), "0403E0"),  # unused bits are sent as 0
        (w.double_long, (-2,), "05FFFFFFFE"),
        (w.double_long_unsigned, (7,), "0600000007"),
        (w.octet_string, (b"xABCy", 1, 4), "0903414243"),
        (w.visible_string, ("AB",), "0A024142"),
        (w.utf8_string, (b"A",), "0C0141"),
        (w.bcd, (0x99,), "0D99"),
        (w.integer, (-1,), "0FFF"),
        (w.long, (-32768,), "108000"),
        (w.unsigned, (7,), "1107"),
        (w.long_unsigned, (0x1234,), "121234"),
        (w.long64, (-1,), "14FFFFFFFFFFFFFFFF"),
        (w.long64_unsigned, (1,), "150000000000000001"),
        (w.enum, (255,), "16FF"),
        (w.float32, (0.0,), "1700000000"),
        (w.float64, (1.0,), "183FF0000000000000"),
        (w.date_time, (U(DT_4_7),), "19" + DT_4_7),
        (w.date, (U("FFFF01FFFF"),), "1AFFFF01FFFF"),
        (w.time, (U("FFFFFFFF"),), "1BFFFFFFFF"),
        (w.array, (3,), "0103"),
        (w.structure, (200,), "0281C8"),
        (w.u8, (0xAB,), "AB"),
        (w.u16, (0xABCD,), "ABCD"),
        (w.u32, (0xFFFFFFFF,), "FFFFFFFF"),
        (w.raw, (b"0123", 1, 3), "3132"),
        (w.raw, (memoryview(b"xy"),), "7879"),
        (w.dont_care, (), "FF"),
    ]
    for fn, args, want in calls:
        w.reset()
        fn(*args)
        assert H(buf[: w.pos]) == want, (args, H(buf[: w.pos]))


def test_typed_values_read_in_sequence():
    r = axdr.Reader(
        U(
            "0301 0403A0 05FFFFFFFE 0600001391 0903414243 0A0141 0C0142 0D42 0FFB 10FFFE 11FF"
            " 121234 14FFFFFFFFFFFFFFFD 150000000000000001 1603 173FC00000 18C002000000000000"
            " 19" + DT_4_7 + " 1A07E5011807 1B0E303950 00 0102 0203"
        )
    )
    assert r.data() == (axdr.BOOLEAN, True)
    assert r.data() == (axdr.BIT_STRING, (b"\xa0", 3))
    assert r.data() == (axdr.DOUBLE_LONG, -2)
    assert r.data() == (axdr.DOUBLE_LONG_UNSIGNED, 5009)
    assert r.data() == (axdr.OCTET_STRING, b"ABC")
    assert r.data() == (axdr.VISIBLE_STRING, b"A")
    assert r.data() == (axdr.UTF8_STRING, b"B")
    assert r.data() == (axdr.BCD, 0x42)
    assert r.data() == (axdr.INTEGER, -5)
    assert r.data() == (axdr.LONG, -2)
    assert r.data() == (axdr.UNSIGNED, 255)
    assert r.data() == (axdr.LONG_UNSIGNED, 0x1234)
    assert r.data() == (axdr.LONG64, -3)
    assert r.data() == (axdr.LONG64_UNSIGNED, 1)
    assert r.data() == (axdr.ENUM, 3)
    assert r.data() == (axdr.FLOAT32, 1.5)
    assert r.data() == (axdr.FLOAT64, -2.25)
    assert r.data() == (axdr.DATE_TIME, U(DT_4_7))
    assert r.data() == (axdr.DATE, U("07E5011807"))
    assert r.data() == (axdr.TIME, U("0E303950"))
    assert r.data() == (axdr.NULL, None)
    r.expect(axdr.ARRAY)  # a header read field by field: tag, then the element count
    assert r.length() == 2
    r.expect(axdr.STRUCTURE)
    raises(DecodeError, r.length)  # count 3 > the 0 bytes left
    # expect() refuses another tag
    raises(DecodeError, axdr.Reader(U("1600")).expect, axdr.UNSIGNED)
    raises(DecodeError, axdr.Reader(U("11")).expect, 0x12)


def test_octet_string_read_field_by_field_is_a_view_not_a_copy():
    buf = bytearray(U("0903010203"))
    r = axdr.Reader(buf)
    r.expect(axdr.OCTET_STRING)
    v = r.raw(r.length())
    buf[2] = 0x55
    assert v[0] == 0x55


def test_boolean_any_nonzero_is_true():
    assert dec(U("0302")) == (axdr.BOOLEAN, True)
    assert dec(U("03FF")) == (axdr.BOOLEAN, True)


def test_length_forms_written_shortest():
    buf = bytearray(8)
    w = axdr.Writer(buf)
    for n, want in (
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "8180"),
        (0xFF, "81FF"),
        (0x100, "820100"),
        (0xFFFF, "82FFFF"),
        (0x10000, "83010000"),
        (0xFFFFFF, "83FFFFFF"),
        (0x1000000, "8401000000"),
        (0xFFFFFFFF, "84FFFFFFFF"),
    ):
        w.reset()
        w.length(n)
        assert H(buf[: w.pos]) == want, (n, H(buf[: w.pos]))
    raises(ValueError, w.length, -1)
    raises(ValueError, w.length, 0x100000000)


def test_strings_of_every_length_form_round_trip():
    for n, head in ((127, "097F"), (128, "098180"), (255, "0981FF"), (256, "09820100"),
                    (1000, "098203E8"), (70000, "0983011170")):
        data = bytes(i & 0xFF for i in range(n))
        e = enc((axdr.OCTET_STRING, data), n + 8)
        assert H(e[: len(head) // 2]) == head, n
        assert len(e) == len(head) // 2 + n
        assert dec(e) == (axdr.OCTET_STRING, data)


def test_long_length_forms_decode_and_are_bounded():
    # non-minimal forms are accepted, bounded by the data
    assert dec(U("0981 03 414243")) == (axdr.OCTET_STRING, b"ABC")
    assert dec(U("0983 000003 414243")) == (axdr.OCTET_STRING, b"ABC")
    assert dec(U("0984 00000003 414243")) == (axdr.OCTET_STRING, b"ABC")
    assert dec(U("0102 1101 1102")) == (axdr.ARRAY, [(17, 1), (17, 2)])
    for bad in ("0980", "0985 0000000003 414243", "09FF", "0984 FFFFFFFF 41", "0983 FFFFFF"):
        raises(DecodeError, axdr.Reader(U(bad)).data)
    r = axdr.Reader(U("8405 0102030405"))
    raises(DecodeError, r.length)


def test_vector_4_2_get_response_normal():
    apdu = U("C401C1000600001391")
    r = axdr.Reader(apdu)
    assert (r.u8(), r.u8(), r.u8(), r.u8()) == (0xC4, 1, 0xC1, 0)
    assert r.data() == (axdr.DOUBLE_LONG_UNSIGNED, 5009)
    assert r.remaining() == 0
    buf = bytearray(16)
    w = axdr.Writer(buf)
    for b in (0xC4, 1, 0xC1, 0):
        w.u8(b)
    w.double_long_unsigned(5009)
    assert bytes(buf[: w.pos]) == apdu


def test_vector_4_6_datablock_header():
    head = U("C402C100 00000001 00 82049E")
    buf = bytearray(16)
    w = axdr.Writer(buf)
    w.u8(0xC4)
    w.u8(2)
    w.u8(0xC1)
    w.u8(0)  # last-block FALSE
    w.u32(1)  # block-number
    w.u8(0)  # raw-data CHOICE
    w.length(1182)
    assert bytes(buf[: w.pos]) == head
    r = axdr.Reader(head + bytes(1182))
    r.raw(4)
    assert r.u32() == 1 and r.u8() == 0 and r.length() == 1182
    assert len(r.raw(1182)) == 1182 and r.remaining() == 0
    # the same header without its 1182 bytes: the length is not trusted
    r = axdr.Reader(head + bytes(100))
    r.raw(9)
    raises(DecodeError, r.length)


def test_vector_4_7_set_clock():
    apdu = U("C101C100080000010000FF0200090C" + DT_4_7)
    b12 = axdr_tools.date_time_bytes(2021, 1, 24, 14, 48, 57, 80, -60, 0, weekday=0xFF)
    assert H(b12) == DT_4_7
    buf = bytearray(40)
    w = axdr.Writer(buf)
    w.raw(apdu, 0, 13)
    w.octet_string(b12)
    assert bytes(buf[: w.pos]) == apdu
    r = axdr.Reader(apdu, 13)
    r.expect(axdr.OCTET_STRING)
    v = r.raw(r.length())
    assert axdr_tools.parse_date_time(v) == (2021, 1, 24, 0xFF, 14, 48, 57, 80, -60, 0)
    # with the weekday computed: 2021-01-24 was a Sunday (7)
    assert axdr_tools.date_time_bytes(2021, 1, 24, 14, 48, 57, 80, -60)[4] == 7


def _obis_clock():
    return (axdr.OCTET_STRING, U("0000010000FF"))


def test_vector_5_1_range_descriptor():
    apdu = U(
        "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E20601FF00"
        "0300FFFF8880090C07E50106FF000300FFFFC4000100"
    )
    r = axdr.Reader(apdu, 14)  # after the descriptor, access-selection flag and selector 1
    assert apdu[12] == 1 and apdu[13] == 1
    v = r.data()
    assert r.remaining() == 0
    tag, (restrict, frm, to, columns) = v
    assert tag == axdr.STRUCTURE
    assert restrict == (axdr.STRUCTURE, [(18, 8), _obis_clock(), (15, 2), (18, 0)])
    assert axdr_tools.parse_date_time(frm[1]) == (2018, 6, 1, 0xFF, 0, 3, 0, 0xFF, -120, 0x80)
    assert axdr_tools.parse_date_time(to[1]) == (2021, 1, 6, 0xFF, 0, 3, 0, 0xFF, -60, 0)
    assert columns == (axdr.ARRAY, [])
    assert enc(v) == bytes(apdu[14:])  # re-encodes to the same bytes


def test_vector_5_2_range_descriptor():
    apdu = U(
        "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E10A0107"
        "00000000FFC480090C07E10A010701000000FFC4800100"
    )
    r = axdr.Reader(apdu, 14)
    v = r.data()
    assert r.remaining() == 0
    frm, to = v[1][1], v[1][2]
    assert axdr_tools.parse_date_time(frm[1]) == (2017, 10, 1, 7, 0, 0, 0, 0, -60, 0x80)
    assert axdr_tools.parse_date_time(to[1]) == (2017, 10, 1, 7, 1, 0, 0, 0, -60, 0x80)
    assert enc(v) == bytes(apdu[14:])


def test_vector_5_3_entry_descriptor():
    apdu = U("C001C100070100630100FF020102020406000000020600000004120001120000")
    assert apdu[13] == 2  # selector 2: entry_descriptor
    r = axdr.Reader(apdu, 14)
    v = r.data()
    assert r.remaining() == 0
    assert v == (axdr.STRUCTURE, [(6, 2), (6, 4), (18, 1), (18, 0)])
    assert enc(v) == bytes(apdu[14:])


def test_vector_5_4_gurux_and_dlms_cosem_dates():
    frag = U("090C07E8010FFF001E0000000000 090C07E8010FFF01000000000000 0100")
    r = axdr.Reader(frag)
    a, b, cols = r.data(), r.data(), r.data()
    assert r.remaining() == 0 and cols == (axdr.ARRAY, [])
    assert axdr_tools.parse_date_time(a[1]) == (2024, 1, 15, 0xFF, 0, 30, 0, 0, 0, 0)
    assert axdr_tools.parse_date_time(b[1]) == (2024, 1, 15, 0xFF, 1, 0, 0, 0, 0, 0)
    c = dec(U("090C07E8010FFF001E0000800000"))
    assert axdr_tools.parse_date_time(c[1])[8] == axdr_tools.DEVIATION_UNSPECIFIED


def test_date_time_helpers():
    assert axdr_tools.day_of_week(2000, 1, 1) == 6  # Saturday
    assert axdr_tools.day_of_week(1970, 1, 1) == 4  # Thursday
    assert axdr_tools.day_of_week(2024, 2, 29) == 4  # Thursday
    assert axdr_tools.day_of_week(2023, 12, 31) == 7  # Sunday
    assert axdr_tools.day_of_week(2024, 3, 4) == 1  # Monday
    assert H(axdr_tools.date_time_bytes(0xFFFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)) == (
        "FFFFFFFFFFFFFFFFFF800000"
    )
    b12 = axdr_tools.date_time_bytes(2024, 1, 15, 0, 30, 0, 0, 0, 0)
    assert H(b12) == "07E8010F01001E0000000000"
    assert H(axdr_tools.date_time_bytes(2024, 0xFE, 0xFE, 2, 0, 0, deviation=-120, status=0x80))[
        4:
    ] == "FEFEFF02000000FF8880"
    for bad in (
        (2024, 13, 1, 0, 0, 0),
        (2024, 1, 0, 0, 0, 0),
        (2024, 1, 32, 0, 0, 0),
        (2024, 1, 1, 24, 0, 0),
        (2024, 1, 1, 0, 60, 0),
        (2024, 1, 1, 0, 0, 60),
        (2024, 1, 1, 0, 0, 0, 100),
        (2024, 1, 1, 0, 0, 0, 0, 721),
        (2024, 1, 1, 0, 0, 0, 0, -721),
        (2024, 1, 1, 0, 0, 0, 0, 0, 256),
        (0x10000, 1, 1, 0, 0, 0),
    ):
        raises(ValueError, axdr_tools.date_time_bytes, *bad)
    raises(ValueError, axdr_tools.date_time_bytes, 2024, 1, 1, 0, 0, 0, 0, 0, 0, 8)
    raises(DecodeError, axdr_tools.parse_date_time, b"\x00" * 11)
    assert axdr_tools.parse_date_time(U("FFFFFFFFFFFFFFFFFF800000"))[0] == 0xFFFF


def test_range_checks_on_encode():
    buf = bytearray(32)
    w = axdr.Writer(buf)
    bad = [
        (w.integer, 128), (w.integer, -129), (w.long, 0x8000), (w.long, -0x8001),
        (w.unsigned, -1), (w.unsigned, 256), (w.long_unsigned, -1), (w.long_unsigned, 0x10000),
        (w.double_long, 2**31), (w.double_long, -(2**31) - 1), (w.double_long_unsigned, -1),
        (w.double_long_unsigned, 2**32), (w.long64, 2**63), (w.long64, -(2**63) - 1),
        (w.long64_unsigned, -1), (w.long64_unsigned, 2**64), (w.enum, 256), (w.enum, -1),
        (w.bcd, 256), (w.float32, 1e39), (w.float32, -1e39), (w.u8, 256), (w.u8, -1),
        (w.u16, 0x10000), (w.u32, 2**32), (w.array, -1), (w.date_time, b"\x00" * 11),
        (w.date, b"\x00" * 4), (w.time, b""),
    ]
    for fn, v in bad:
        raises(ValueError, fn, v)
        assert w.pos == 0, fn
    raises(ValueError, w.bit_string, b"\x00", 9)
    raises(ValueError, w.bit_string, b"\x00\x00", 8)
    raises(ValueError, w.octet_string, b"abc", 2, 1)
    raises(ValueError, w.octet_string, b"abc", 0, 4)
    raises(ValueError, w.data, (axdr.INTEGER, 200))
    raises(ValueError, w.data, (7, 1))  # not a Data tag
    raises(ValueError, w.data, (axdr.COMPACT_ARRAY, (b"\x00", [])))  # empty elements
    raises(ValueError, w.data, (axdr.COMPACT_ARRAY, (b"\x12", [(17, 1)])))  # wrong element
    raises(ValueError, w.data, (axdr.COMPACT_ARRAY, (b"\x12\x12", [])))  # trailing description
    w.float32(float("inf"))  # inf and nan are representable
    w.float32(float("nan"))
    w.float32(3.4e38)


def test_buffer_full_and_nothing_written_past_end():
    for value, hexstr in CASES:
        want = U(hexstr)
        n = len(want)
        buf = bytearray(n + 4)
        w = axdr.Writer(buf, 2, 2 + n)
        w.data(value)
        assert bytes(buf[2 : 2 + n]) == want and w.pos == 2 + n
        buf = bytearray(b"\xee" * (n + 4))
        w = axdr.Writer(buf, 2, 1 + n)
        raises(BufferFull, w.data, value)
        assert buf[1 + n] == 0xEE and buf[0] == 0xEE and buf[1] == 0xEE
    # a simple typed write is all-or-nothing
    w = axdr.Writer(bytearray(4))
    w.u8(0)
    raises(BufferFull, w.double_long, 1)
    assert w.pos == 1
    raises(BufferFull, w.octet_string, b"abc")
    assert w.pos == 1
    w.octet_string(b"a")
    assert w.pos == 4


def test_writer_on_memoryview():
    buf = bytearray(10)
    w = axdr.Writer(memoryview(buf)[2:])
    w.octet_string(b"\x01\x02")
    w.long_unsigned(0x0304)
    assert H(buf) == "000009020102120304" + "00"


def test_compact_array_with_long_contents():
    items = [(18, i) for i in range(100)]
    e = enc((axdr.COMPACT_ARRAY, (b"\x12", items)))
    assert H(e[:4]) == "131281C8" and len(e) == 4 + 200
    assert dec(e) == (axdr.COMPACT_ARRAY, (b"\x12", items))


def test_nesting_depth_is_bounded():
    ok = U("0101" * MAX_DEPTH + "00")
    assert axdr.Reader(ok).skip_data() == axdr.ARRAY
    v = dec(ok)
    assert enc(v) == ok
    for depth in (MAX_DEPTH + 1, 1000):
        raises(DecodeError, axdr.Reader(U("0101" * depth + "00")).data)
        raises(DecodeError, axdr.Reader(U("0201" * depth + "00")).skip_data)
    deep = (axdr.NULL, None)
    for _ in range(MAX_DEPTH + 1):
        deep = (axdr.ARRAY, [deep])
    raises(ValueError, enc, deep)


def test_huge_counts_and_lengths_are_refused():
    for bad in (
        "01 84FFFFFFFF 00",
        "01 82FFFF 000000",
        "02 83FFFFFF 00",
        "01 05 00000000",  # 5 elements announced, 4 bytes left
        "09 05 01020304",
        "0A 81FF 41",
        "04 81FF 00",  # 255 bits need 32 bytes
        "04 84FFFFFFFF 00",
        "13 12 84FFFFFFFF 0001",
    ):
        raises(DecodeError, axdr.Reader(U(bad)).data)
        raises(DecodeError, axdr.Reader(U(bad)).skip_data)


def test_unknown_tags_are_refused():
    for tag in [7, 8, 11, 14] + list(range(28, 255)):
        b = bytes([tag]) + bytes(16)
        raises(DecodeError, axdr.Reader(b).data)
        raises(DecodeError, axdr.Reader(b).skip_data)
        raises(DecodeError, axdr.Reader(b"\x01\x01" + b).data)


def test_hostile_compact_arrays():
    for bad in (
        "13 00 00",  # null-data elements: count undefined
        "13 FF 00",  # dont-care elements
        "13 0100FF00 00",  # array of 255 empty elements
        "13 0200 00",  # empty structure
        "13 02020000 00",  # structure of nulls
        "13 02 02 01FFFF00 11 01 00",  # array of 65535 nulls inside a structure
        "13 13 12 00",  # compact-array inside a description
        "13 01 00",  # truncated description
        "13 07 00",  # unknown type
        "13 12 03 000100",  # contents end inside an element
        "13 09 02 0301",  # octet-string element running past the contents
        "13 12 05 0001",  # contents longer than the data
        "13" + "010001" * 20 + "12 02 0001",  # description nested too deep
    ):
        for tail in ("", "AABBCCDD"):  # with bytes after it: contents must bound elements
            raises(DecodeError, axdr.Reader(U(bad + tail)).data)
            raises(DecodeError, axdr.Reader(U(bad + tail)).skip_data)
    # an element of an array description needs all its elements
    raises(DecodeError, axdr.Reader(U("13 01000312 04 00010002")).data)
    assert dec(U("13 01000212 04 00010002")) == (
        axdr.COMPACT_ARRAY,
        (b"\x01\x00\x02\x12", [(1, [(18, 1), (18, 2)])]),
    )


def _samples():
    out = [U(h) for _, h in CASES]
    out.append(
        U(
            "0204020412000809060000010000FF0F02120000090C07E20601FF000300FFFF8880090C07E50106FF"
            "000300FFFFC4000100"
        )
    )
    out.append(U("020406000000020600000004120001120000"))
    out.append(enc((axdr.OCTET_STRING, bytes(300))))
    out.append(enc((axdr.COMPACT_ARRAY, (b"\x12", [(18, i) for i in range(70)]))))
    return out


def test_truncated_at_every_position():
    for full in _samples():
        for i in range(len(full)):
            raises(DecodeError, axdr.Reader(full[:i]).data)
            raises(DecodeError, axdr.Reader(full, 0, i).data)  # window end, same buffer
            raises(DecodeError, axdr.Reader(full, 0, i).skip_data)


def test_reader_window_is_respected():
    b = U("AA 1102 BB")
    r = axdr.Reader(b, 1, 3)
    assert r.data() == (17, 2) and r.remaining() == 0
    raises(DecodeError, r.u8)
    raises(DecodeError, r.raw, 1)
    raises(DecodeError, r.raw, -1)
    raises(ValueError, axdr.Reader, b, 3, 2)
    raises(ValueError, axdr.Reader, b, 0, 5)


def _check_no_crash(b):
    """Decoding arbitrary bytes either succeeds or raises DecodeError, nothing else."""
    for skip in (False, True):
        r = axdr.Reader(b)
        try:
            if skip:
                r.skip_data()
            else:
                v = r.data()
                # whatever decodes must encode back to the bytes it came from
                # (except non-minimal lengths and non-01 booleans, normalised on encode)
                enc(v, len(b) + 16)
        except DecodeError:
            pass


def test_fuzz_mutations_only_raise_decode_error():
    rnd = random.Random(1234) if hasattr(random, "Random") else None
    if rnd is None:  # MicroPython: module-level functions
        random.seed(1234)
        rnd = random
    samples = _samples()
    for i in range(4000):
        b = bytearray(samples[i % len(samples)])
        kind = rnd.getrandbits(2)
        if kind == 0 and len(b):  # flip bytes
            for _ in range(1 + rnd.getrandbits(2)):
                b[rnd.getrandbits(16) % len(b)] = rnd.getrandbits(8)
        elif kind == 1:  # insert bytes
            p = rnd.getrandbits(16) % (len(b) + 1)
            b[p:p] = bytes([rnd.getrandbits(8) for _ in range(1 + rnd.getrandbits(2))])
        elif kind == 2 and len(b):  # delete a byte
            p = rnd.getrandbits(16) % len(b)
            b[p : p + 1] = b""
        else:  # random bytes
            b = bytearray([rnd.getrandbits(8) for _ in range(rnd.getrandbits(5))])
        _check_no_crash(bytes(b))


def test_hot_paths_do_not_allocate():
    """MicroPython only: encoding a typical GET response value and reading request fields
    must not touch the heap (micropython.heap_lock raises MemoryError on allocation)."""
    try:
        import micropython

        micropython.heap_lock
    except (ImportError, AttributeError):
        return  # CPython: nothing to prove
    buf = bytearray(64)
    w = axdr.Writer(buf)
    obis = b"\x00\x00\x01\x00\x00\xff"
    dt = bytes(12)
    req = U("C001C1 0003 0100010800FF 02 00 0600001391 05FFFFFFFE 10FFFE 11FF")
    r = axdr.Reader(req)
    out = [0] * 8
    typed = (axdr.LONG_UNSIGNED, 7)
    micropython.heap_lock()
    try:
        w.structure(3)
        w.long_unsigned(3)
        w.octet_string(obis)
        w.integer(2)
        w.double_long_unsigned(5009)
        w.unsigned(1)
        w.enum(30)
        w.long(-3)
        w.double_long(-1)
        w.long64_unsigned(12345)
        w.boolean(True)
        w.null()
        w.date_time(dt)
        w.length(300)
        w.data(typed)
        out[0] = r.u8()
        out[1] = r.u8()
        out[2] = r.u8()
        out[3] = r.u16()
        r.pos += 6
        out[4] = r.u8() + r.u8()
        r.expect(axdr.DOUBLE_LONG_UNSIGNED)
        out[5] = r.u32()
        r.expect(axdr.DOUBLE_LONG)
        v = r.u32()  # FFFFFFFE: -2 as Integer32
        r.expect(axdr.LONG)
        out[6] = (v - 0x100000000 if v & 0x80000000 else v) + r.u16() - 0x10000
        r.expect(axdr.UNSIGNED)
        out[7] = r.u8()
    finally:
        micropython.heap_unlock()
    assert out == [0xC0, 1, 0xC1, 3, 2, 5009, -4, 255]
    assert w.pos == 2 + 3 + 8 + 2 + 5 + 2 + 2 + 3 + 5 + 9 + 2 + 1 + 13 + 3 + 3
