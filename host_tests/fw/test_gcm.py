"""AES-GCM-128 / GMAC (dlms/gcm.py) against published vectors, under CPython and MicroPython.

Vectors: shared/vectors/dlms-vectors.md section 1 (Green Book suite 0 examples 1.1-1.3,
HLS-GMAC 1.5-1.7), gcm-spec test cases 2-4, the three NIST samples quoted there, and the
filtered NIST CAVS subset in vectors/gcm_nist_subset.txt (750 encrypt + 750 decrypt cases,
382 of which must fail authentication; all of them run under both runtimes). Under
MicroPython gcm must have picked the viper GHASH, and a test runs the pure one through the
same Gcm code to show both agree; under CPython a test cross-checks pyca cryptography.
"""

import binascii
import sys

from dlms import gcm, ghash

MICROPYTHON = sys.implementation.name == "micropython"
HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


EK = h("000102030405060708090A0B0C0D0E0F")
AK = h("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
ST_SERVER = h("4D4D4D0000BC614E")
ST_CLIENT = h("4D4D4D0000000001")
SC_AE = b"\x30"  # authenticated and encrypted
SC_A = b"\x10"  # authenticated only (HLS-GMAC)

# 1.1 glo-get-request
V11_PT = h("C0010000080000010000FF0200")
V11_IC = h("01234567")
V11_CT = h("411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
V11_APDU = h("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
# 1.2 InitiateRequest with a dedicated key
V12_PT = h("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
V12_CT = h("801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E"
           "356855")
# 1.3 RLRE glo-initiate-response
V13_CT = h("891214A0845E475714383F65BC19745CA235906525E4F3E1C893")
V13_PT = h("0800065F1F0400007C1F04000007")
# 1.4 - 1.7 HLS-GMAC
CTOS = h("4B35366956616759")
STOC = h("503677524A323146")
F_STOC = h("10000000011A52FE7DD3E72748973C1E28")
F_CTOS = h("1001234567FE1466AFB3DBCD4F9389E2B7")
PASS3 = h("C301C1000F0000280000FF01010911" + "10000000011A52FE7DD3E72748973C1E28")
PASS4 = h("C701C10001000911" + "1001234567FE1466AFB3DBCD4F9389E2B7")

# gcm-spec test cases 3 and 4
GS_KEY = h("feffe9928665731c6d6a8f9467308308")
GS_IV = h("cafebabefacedbaddecaf888")
GS_PT = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
GS_CT = h("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
          "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985")
GS3_TAG = h("4d5c2af327cd64a62cf35abd2ba6fab4")
GS4_AAD = h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GS4_TAG = h("5bc94fbc3221a5db94fae95ae7121a47")

# dlms-vectors.md: three NIST samples (Taglen 96)
NIST_SAMPLES = [
    ("562ae8aadb8d23e0f271a99a7d1bd4d1", "f7a5e2399413b89b6ad31aff",
     "bbdc3504d803682aa08a773cde5f231a", "2b9680b886b3efb7c6354b38c63b5373",
     "e2b7e5ed5ff27fc8664148f5a628a46d", "cbf2015184fffb82f2651c36"),
    ("90bf5dc928e91cc2f05f8c55dc1ffbc0", "db658c4362e7d6a03faa8492",
     "99eac872b13b623f255bcdc0eeb1c529", "ee192a6b71e57f3f2b27efc9b1cb385d6c1be0c4",
     "93d95389595d76131b8b763e50a5fe79", "0c37dd797b78bdecceb9c2a7"),
    ("0493024bab2833edef571ce7224750ab", "ab8dedbcdc57f283493fe7b3",
     "5f6691c5813169d128e7af7678281085af09fb1ddacfc89e1a14cf14372d74eda6298a0772a594eb5a80a4c5"
     "6b65744c2347d2", "8aca2645dd27195855b62f7d39ace11e",
     "b5d0733ade2203f5095bff60c9f5abef7770e38a56a9699e9608a69969141a912a0b186f7cabe2dc187cb773"
     "31c625832510e2", "d34a843edbf8234abffeb7de"),
]


def enc(key, iv, aad, pt, tag_len=12):
    out = bytearray(len(pt) + tag_len)
    n = gcm.Gcm(key).encrypt(iv, aad, pt, out, tag_len)
    assert n == len(out)
    return bytes(out)


def dec(key, iv, aad, ct, tag_len=12):
    """plaintext bytes, or None on authentication failure (then out must be untouched)."""
    out = bytearray(b"\x5a" * len(ct))
    n = gcm.Gcm(key).decrypt(iv, aad, ct, out, tag_len)
    if n < 0:
        assert n == -1
        assert out == b"\x5a" * len(ct), "output written on failure"
        return None
    return bytes(out[:n])


def test_implementation_choice():
    assert gcm.GHASH_IMPL == ("viper" if MICROPYTHON else "pure")
    if MICROPYTHON:
        from dlms import ghash_viper

        assert gcm.Ghash is ghash_viper.Ghash
        assert gcm.Gcm(EK)._gh.__class__ is ghash_viper.Ghash
    assert "viper" in repr(gcm.Gcm(EK)) or not MICROPYTHON


def test_self_test():
    assert gcm.self_test() is True


def test_self_test_detects_a_broken_block_cipher():
    class Broken:
        def __init__(self, key):
            self.aes = gcm.aes_ecb(key)

        def encrypt(self, src, dst):
            self.aes.encrypt(src, dst)
            dst[0] ^= 1  # first byte of every ECB call wrong

    assert gcm.self_test(Broken) is False


def test_v11_glo_get_request():
    iv = ST_SERVER + V11_IC
    assert enc(EK, iv, SC_AE + AK, V11_PT) == V11_CT
    assert dec(EK, iv, SC_AE + AK, V11_CT) == V11_PT
    # the whole APDU: tag C8, length, SC, IC, ciphertext || tag
    body = SC_AE + V11_IC + enc(EK, iv, (SC_AE, AK), V11_PT)
    assert bytes([0xC8, len(body)]) + body == V11_APDU


def test_v12_initiate_request():
    iv = ST_SERVER + V11_IC
    assert enc(EK, iv, SC_AE + AK, V12_PT) == V12_CT
    assert dec(EK, iv, SC_AE + AK, V12_CT) == V12_PT


def test_v13_rlre_decrypt():
    iv = ST_SERVER + V11_IC
    assert dec(EK, iv, SC_AE + AK, V13_CT) == V13_PT
    assert enc(EK, iv, SC_AE + AK, V13_PT) == V13_CT


def test_v15_v16_hls_gmac():
    # 1.5: the client proves itself with f(StoC), under its own system title and IC 1
    g = gcm.Gcm(EK)
    ic = h("00000001")
    t = g.gmac(ST_CLIENT + ic, SC_A + AK + STOC)
    assert SC_A + ic + t == F_STOC
    assert g.gmac(ST_CLIENT + ic, (SC_A, AK, STOC)) == t  # pieces: no concatenation needed
    # 1.6: the server answers with f(CtoS), under its system title and IC 01234567
    ic = h("01234567")
    t = g.gmac(ST_SERVER + ic, (SC_A, AK, CTOS))
    assert SC_A + ic + t == F_CTOS
    assert len(t) == 12 and isinstance(t, bytes)
    # 1.7: f() as octet-string(17) in the reply_to_HLS ACTION request / response
    assert PASS3.endswith(b"\x09\x11" + F_STOC)
    assert PASS4.endswith(b"\x09\x11" + F_CTOS)
    # GMAC = the tag of GCM with empty plaintext
    out = bytearray(16)
    assert gcm.Gcm(EK).encrypt(ST_SERVER + ic, SC_A + AK + CTOS, b"", out, 16) == 16
    assert g.gmac(ST_SERVER + ic, SC_A + AK + CTOS, 16) == bytes(out)
    assert bytes(out[:12]) == F_CTOS[5:]


def test_gcm_spec_cases_3_and_4():
    assert enc(GS_KEY, GS_IV, None, GS_PT, 16) == GS_CT + GS3_TAG
    assert enc(GS_KEY, GS_IV, b"", GS_PT, 16) == GS_CT + GS3_TAG
    assert dec(GS_KEY, GS_IV, None, GS_CT + GS3_TAG, 16) == GS_PT
    assert enc(GS_KEY, GS_IV, GS4_AAD, GS_PT[:60], 16) == GS_CT[:60] + GS4_TAG
    assert dec(GS_KEY, GS_IV, GS4_AAD, GS_CT[:60] + GS4_TAG, 16) == GS_PT[:60]
    assert enc(GS_KEY, GS_IV, GS4_AAD, GS_PT[:60], 12) == GS_CT[:60] + GS4_TAG[:12]


def test_nist_samples():
    for key, iv, pt, aad, ct, tag in NIST_SAMPLES:
        key, iv, pt, aad, ct, tag = h(key), h(iv), h(pt), h(aad), h(ct), h(tag)
        assert enc(key, iv, aad, pt) == ct + tag
        assert dec(key, iv, aad, ct + tag) == pt


def nist_cases():
    with open(HERE + "/vectors/gcm_nist_subset.txt") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            yield line.split()


def x(field):
    return b"" if field == "-" else h(field)


def test_nist_cavs_subset():
    n_enc = n_dec = n_fail = 0
    for case in nist_cases():
        kind, key, iv = case[0], x(case[1]), x(case[2])
        g = gcm.Gcm(key)
        if kind == "E":
            pt, aad, ct, tag = x(case[3]), x(case[4]), x(case[5]), x(case[6])
            out = bytearray(len(pt) + len(tag))
            assert g.encrypt(iv, aad, pt, out, len(tag)) == len(out)
            assert out == ct + tag, case
            n_enc += 1
        else:
            ct, aad, tag = x(case[3]), x(case[4]), x(case[5])
            out = bytearray(len(ct))
            n = g.decrypt(iv, aad, ct + tag, out, len(tag))
            if case[6] == "FAIL":
                assert n == -1, case
                assert out == bytes(len(ct)), case
                n_fail += 1
            else:
                assert n == len(ct) and out == x(case[6]), case
            n_dec += 1
    assert (n_enc, n_dec, n_fail) == (750, 750, 382)


def test_any_flipped_bit_fails_and_leaves_no_plaintext():
    iv = ST_SERVER + V11_IC
    g = gcm.Gcm(EK)
    for pos in range(len(V11_CT)):
        for bit in (0x01, 0x80):
            bad = bytearray(V11_CT)
            bad[pos] ^= bit
            out = bytearray(b"\xee" * 32)
            assert g.decrypt(iv, SC_AE + AK, bad, out) == -1, pos
            assert out == b"\xee" * 32
            buf = bytearray(b"\x01\x02" + bad)
            assert g.decrypt_in_place(iv, SC_AE + AK, buf, 2, len(buf)) == -1
            assert buf == b"\x01\x02" + bad  # still the ciphertext, never plaintext
    # wrong AAD, IV, key, tag length
    out = bytearray(32)
    assert g.decrypt(iv, b"\x31" + AK, V11_CT, out) == -1
    assert g.decrypt(ST_CLIENT + V11_IC, SC_AE + AK, V11_CT, out) == -1
    assert gcm.Gcm(AK).decrypt(iv, SC_AE + AK, V11_CT, out) == -1
    assert g.decrypt(iv, SC_AE + AK, V11_CT, out, 16) == -1
    # shorter than a tag
    assert g.decrypt(iv, SC_AE + AK, V11_CT[:11], out) == -1
    assert g.decrypt_in_place(iv, SC_AE + AK, bytearray(11), 0, 11) == -1
    assert out == bytes(32)


def test_in_place_and_pieces():
    iv = ST_SERVER + V11_IC
    g = gcm.Gcm(EK)
    # a security-layer style buffer: header, plaintext, room for the tag, trailing bytes
    buf = bytearray(h("C81E3001234567") + V11_PT + bytes(12) + b"\xff")
    n = g.encrypt_in_place(iv, (SC_AE, AK), buf, 7, 7 + len(V11_PT))
    assert n == len(V11_CT)
    assert buf == V11_APDU + b"\xff"
    n = g.decrypt_in_place(iv, [SC_AE, memoryview(AK)], buf, 7, 7 + len(V11_CT))
    assert n == len(V11_PT) and buf[7:7 + n] == V11_PT
    # memoryview in and out, AAD as a memoryview of a larger buffer
    hdr = bytearray(SC_AE + AK + b"zz")
    out = bytearray(40)
    n = g.encrypt(iv, memoryview(hdr)[0:17], memoryview(V11_PT), memoryview(out)[3:])
    assert n == 25 and out[3:28] == V11_CT
    back = bytearray(13)
    assert g.decrypt(iv, bytes(hdr[:17]), memoryview(out)[3:28], memoryview(back)) == 13
    assert back == V11_PT


def test_tag_lengths():
    iv = ST_SERVER + V11_IC
    full = enc(EK, iv, SC_AE + AK, V11_PT, 16)
    for tl in (12, 13, 14, 15, 16):
        t = enc(EK, iv, SC_AE + AK, V11_PT, tl)
        assert t == full[: len(V11_PT) + tl]
        assert dec(EK, iv, SC_AE + AK, t, tl) == V11_PT
    g = gcm.Gcm(EK)
    for tl in (0, 4, 8, 11, 17):
        for call in (lambda: g.encrypt(iv, b"", V11_PT, bytearray(40), tl),
                     lambda: g.decrypt(iv, b"", V11_CT, bytearray(40), tl),
                     lambda: g.gmac(iv, b"", tl)):
            try:
                call()
            except ValueError:
                pass
            else:
                raise AssertionError(tl)


def test_bad_arguments_raise():
    g = gcm.Gcm(EK)
    iv = ST_SERVER + V11_IC
    for call in (lambda: gcm.Gcm(EK[:15]),
                 lambda: g.encrypt(iv[:11], b"", V11_PT, bytearray(40)),
                 lambda: g.gmac(iv + b"\x00", b""),
                 lambda: g.encrypt(iv, b"", V11_PT, bytearray(24)),  # no room for the tag
                 lambda: g.decrypt(iv, SC_AE + AK, V11_CT, bytearray(12)),
                 lambda: g.encrypt_in_place(iv, b"", bytearray(20), 0, 9),
                 lambda: g.decrypt_in_place(iv, b"", bytearray(20), 0, 21)):
        try:
            call()
        except ValueError as e:
            assert EK.hex() not in str(e) and "0001020304" not in str(e)
        else:
            raise AssertionError("no ValueError")
    assert "0001" not in repr(g) and "000102" not in repr(g._aes)


class Lcg:
    def __init__(self, seed):
        self.s = seed

    def bytes(self, n):
        out = bytearray(n)
        for i in range(n):
            self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (self.s >> 16) & 0xFF
        return bytes(out)


LENGTHS = (0, 1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 255, 256, 257, 300, 1024, 1031)


def test_round_trip_over_chunk_boundaries():
    rnd = Lcg(42)
    key = rnd.bytes(16)
    g = gcm.Gcm(key)
    for n in LENGTHS:
        iv, aad, pt = rnd.bytes(12), rnd.bytes(n % 37), rnd.bytes(n)
        out = bytearray(n + 12)
        assert g.encrypt(iv, aad, pt, out) == n + 12
        back = bytearray(n)
        assert g.decrypt(iv, aad, out, back) == n and back == pt, n


def test_viper_and_pure_ghash_give_the_same_gcm():
    if not MICROPYTHON:
        return  # CPython has only the pure GHASH (cross-checked against pyca below)
    rnd = Lcg(11)
    key = rnd.bytes(16)
    fast = gcm.Gcm(key)
    saved = gcm.Ghash, gcm.xor_into
    gcm.Ghash, gcm.xor_into = ghash.Ghash, ghash.xor_into
    try:
        slow = gcm.Gcm(key)
        assert slow._gh.__class__ is ghash.Ghash
        for n in LENGTHS:
            iv, aad, pt = rnd.bytes(12), rnd.bytes(n % 41), rnd.bytes(n)
            a = bytearray(n + 16)
            b = bytearray(n + 16)
            fast.encrypt(iv, aad, pt, a, 16)
            slow.encrypt(iv, aad, pt, b, 16)
            assert a == b, n
    finally:
        gcm.Ghash, gcm.xor_into = saved


def test_against_pyca_cryptography():
    if MICROPYTHON:
        return  # no pyca under MicroPython
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rnd = Lcg(2024)
    for n in LENGTHS:
        key, iv, aad, pt = rnd.bytes(16), rnd.bytes(12), rnd.bytes(n % 53), rnd.bytes(n)
        want = AESGCM(key).encrypt(iv, pt, aad)
        assert enc(key, iv, aad, pt, 16) == want, n
        assert enc(key, iv, aad, pt, 12) == want[:-4], n
        assert dec(key, iv, aad, want, 16) == pt, n
