"""CRC-16/X.25 (HCS/FCS of IEC 62056-46 frames) against published vectors.

Runs under CPython and MicroPython. Under MicroPython every test also runs the viper twin
(dlms/fcs_viper.py) with the same vectors.
"""

import binascii

from dlms import fcs


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def implementations():
    """(name, fcs16, fcs16_update) for each implementation this runtime can load."""
    impls = [("pure", fcs.fcs16, fcs.fcs16_update)]
    try:
        from dlms import fcs_viper
    except ImportError:  # CPython: no viper
        return impls
    impls.append(("viper", fcs_viper.fcs16, fcs_viper.fcs16_update))
    return impls


# dlms-vectors.md 2.9 (jDLMS FcsCalcTest): frame without flags/FCS -> FCS as on the wire.
PAIRS = [
    ("A00A000200232193", "1871"),
    ("A02E0002002321107ECBE6E600601DA109060760857405080101BE10040E01000000065F1F040000301DFFFF",
     "D4C5"),
    ("A03A2100020023309941E6E7006129A109060760857405080101A203020100A305A103020100BE10040E"
     "0800065F1F040000301D19000007", "0C52"),
    ("A0199575546835E6E600C0018100080000010000FF0100", "0DFD"),
    ("A018759574E9E8E6E700C401810009060000010000FF", "FD49"),
    ("A0199575767837E6E600C0018100080000010000FF0200", "65D7"),
    ("A01E7595966F67E6E700C4018100090C07D20C04030A060BFF007800", "F330"),
    ("A027957598B8DBE6E600C1018100080000010000FF0200090C07D20C04030A060BFF007800", "62FB"),
    ("A0107595B85101E6E700C5018100", "36CF"),
]

# dlms-vectors.md 2.1-2.8, 2.10, 2.11 (RR), 2.12: complete frames with flags.
FRAMES = [
    "7EA00802232193BD647E",
    "7EA00A00020023219318717E",
    "7EA023210002002373F6C58180140502008006020080070400000001080400000001CE6A7E",
    "7EA01F21022373E6C781801205019A06019A070400000001080400000001CCA27E",
    "7EA023030002002373C0488180140502008006020080070400000001080400000001CE6A7E",
    "7EA00721037301407E",
    "7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF"
    "C5E47E",
    "7EA0382102233034E7E6E7006129A109060760857405080101A203020100A305A103020100BE10040E0800"
    "065F1F0400001E1D04C80007B86A7E",
    "7E A0 14 03 21 93 63 E7 81 80 08 05 02 01 00 06 02 01 00 56 96 7E",
    "7E A0 08 02 23 21 F1 A9 24 7E",
    "7E A0 08 02 23 21 53 B1 A2 7E",
    "7E A0 08 21 02 23 73 7A 43 7E",
]


def header_length(frame):
    """Offset of the HCS in a flagged frame: flag, format, dst, src, control."""
    p = 3
    while not frame[p] & 1:  # destination address
        p += 1
    p += 1
    while not frame[p] & 1:  # source address
        p += 1
    return p + 2


def test_check_value():
    # The catalogue check value of CRC-16/X.25 (CRC-16/IBM-SDLC) for "123456789".
    for name, f16, _ in implementations():
        assert f16(b"123456789", 0, 9) == 0x906E, name


def test_vector_pairs():
    for name, f16, _ in implementations():
        for data, wire in PAIRS:
            d = h(data)
            w = h(wire)
            v = f16(d, 0, len(d))
            assert v & 0xFF == w[0] and v >> 8 == w[1], (name, data)


def test_full_frames_hcs_and_fcs():
    for name, f16, _ in implementations():
        for text in FRAMES:
            f = h(text)
            end = len(f) - 3  # FCS, closing flag
            fcs_wire = f[end] | (f[end + 1] << 8)
            assert f16(f, 1, end) == fcs_wire, (name, text)
            p = header_length(f)
            if p < end:  # the frame has an information field: check the HCS too
                assert f16(f, 1, p) == f[p] | (f[p + 1] << 8), (name, text)


def test_a_flipped_bit_changes_the_fcs():
    for name, f16, _ in implementations():
        d = bytearray(h(PAIRS[1][0]))
        good = f16(d, 0, len(d))
        for i in (0, 10, len(d) - 1):
            for bit in (0x01, 0x80):
                d[i] ^= bit
                assert f16(d, 0, len(d)) != good, (name, i, bit)
                d[i] ^= bit


def test_offsets_buffer_types_and_pieces():
    d = h("00" + PAIRS[3][0] + "FFFF")
    n = len(d)
    for name, f16, upd in implementations():
        ref = f16(d, 1, n - 2)
        assert ref == 0xFD0D, name  # wire 0D FD
        assert f16(bytearray(d), 1, n - 2) == ref, name
        assert f16(memoryview(d), 1, n - 2) == ref, name
        assert f16(memoryview(d)[1:], 0, n - 3) == ref, name
        crc = fcs.FCS_INIT
        cuts = (1, 4, 5, 17, n - 2)
        for i in range(len(cuts) - 1):  # the same span in pieces
            crc = upd(crc, d, cuts[i], cuts[i + 1])
        assert crc ^ fcs.FCS_XOROUT == ref, name
        assert f16(d, 5, 5) == 0x0000, name  # empty span: 0xFFFF ^ 0xFFFF


def test_table_is_compact():
    assert len(fcs.TABLE) == 256
    assert not isinstance(fcs.TABLE, list)
    assert fcs.TABLE[1] == 0x1189 and fcs.TABLE[128] == 0x8408 and fcs.TABLE[255] == 0x0F78


def test_implementations_agree_on_all_bytes():
    impls = implementations()
    buf = bytearray(range(256)) + bytearray(range(255, -1, -1))
    for start in (0, 1, 7):
        for end in (start, start + 1, 300, 512):
            ref = impls[0][1](buf, start, end)
            for name, f16, _ in impls[1:]:
                assert f16(buf, start, end) == ref, (name, start, end)
