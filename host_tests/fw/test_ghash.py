"""GHASH (NIST SP 800-38D clause 6.4): the pure and the viper implementation, same cases.

Runs under CPython (pure only: viper does not exist there) and MicroPython, where every test
also runs ``ghash_viper`` and the first test fails if it cannot be loaded, so the viper path
is really exercised. Expected values: the gcm-spec (McGrew & Viega) test cases 2-4, whose
GHASH values were recomputed as tag xor E_K(J0) with pyca cryptography; and a bit-by-bit
multiplication written straight from SP 800-38D Algorithm 1, checked against both.
"""

import binascii
import sys

from dlms import ghash

MICROPYTHON = sys.implementation.name == "micropython"


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


def implementations():
    """(name, Ghash class, xor_into) for each implementation this runtime can load."""
    impls = [("pure", ghash.Ghash, ghash.xor_into)]
    try:
        from dlms import ghash_viper
    except ImportError:  # CPython: no viper
        return impls
    impls.append(("viper", ghash_viper.Ghash, ghash_viper.xor_into))
    return impls


def ref_mul(x, y):
    """X * Y in GF(2^128), SP 800-38D Algorithm 1, bit by bit on 16-byte strings."""
    xi = int.from_bytes(x, "big")
    v = int.from_bytes(y, "big")
    z = 0
    for i in range(128):
        if (xi >> (127 - i)) & 1:  # bit i of X, counted from the most significant
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z.to_bytes(16, "big")


def ref_ghash(hkey, data):
    """GHASH of whole blocks with the reference multiplication."""
    y = bytes(16)
    for p in range(0, len(data), 16):
        x = bytes(a ^ b for a, b in zip(y, data[p : p + 16]))
        y = ref_mul(x, hkey)
    return y


def digest(g):
    out = bytearray(16)
    g.digest_into(out)
    return bytes(out)


def one_shot(cls, hkey, data):
    g = cls(hkey)
    g.update(data)
    g.pad()
    return digest(g)


class Lcg:
    """Deterministic pseudo-random bytes (same on both runtimes)."""

    def __init__(self, seed):
        self.s = seed

    def bytes(self, n):
        out = bytearray(n)
        for i in range(n):
            self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (self.s >> 16) & 0xFF
        return bytes(out)


# gcm-spec test case 2: K = 0, P = 0^128, no AAD.
TC2_H = h("66e94bd4ef8a2c3b884cfa59ca342b2e")
TC2_C = h("0388dace60b6a392f328c2b971b2fe78")
TC2_GHASH = h("f38cbb1ad69223dcc3457ae5b6b0f885")
# test cases 3 and 4: K = feffe992..., 64-byte (TC3) and 60-byte + 20-byte AAD (TC4).
TC34_H = h("b83b533708bf535d0aa6e52980d53b78")
TC3_C = h(
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985"
)
TC3_GHASH = h("7f1b32b81b820d02614f8895ac1d4eac")
TC4_A = h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
TC4_GHASH = h("698e57f70e6ecc7fd9463b7260a9ae5f")


def lengths(alen, clen):
    return (alen * 8).to_bytes(8, "big") + (clen * 8).to_bytes(8, "big")


def test_viper_is_loaded_under_micropython():
    names = [n for n, _, _ in implementations()]
    if MICROPYTHON:
        assert names == ["pure", "viper"], names
    else:
        assert names == ["pure"], names


def test_reference_multiplication_is_the_field_of_sp800_38d():
    # x^0 (0x80 00..) is the multiplicative identity; x^127 * x = x^128 = x^7 + x^2 + x + 1.
    one = h("80" + "00" * 15)
    for y in (TC2_H, TC34_H):
        assert ref_mul(one, y) == y
        assert ref_mul(y, one) == y
    x = h("40" + "00" * 15)
    x127 = h("00" * 15 + "01")
    assert ref_mul(x127, x) == h("e1" + "00" * 15)
    assert ref_ghash(TC2_H, TC2_C + lengths(0, 16)) == TC2_GHASH


def test_gcm_spec_values():
    for name, cls, _ in implementations():
        g = cls(TC2_H)
        g.update(TC2_C)
        g.update(lengths(0, 16))
        assert digest(g) == TC2_GHASH, name
        g = cls(TC34_H)
        g.update(TC3_C)
        g.update(lengths(0, 64))
        assert digest(g) == TC3_GHASH, name
        g.reset()
        g.update(TC4_A)
        g.pad()
        g.update(TC3_C[:60])
        g.pad()
        g.update(lengths(20, 60))
        assert digest(g) == TC4_GHASH, name


def test_single_blocks_against_the_reference():
    rnd = Lcg(1)
    keys = [h("80" + "00" * 15), h("00" * 15 + "01"), b"\xff" * 16, TC2_H, TC34_H]
    keys += [rnd.bytes(16) for _ in range(5)]
    blocks = [bytes(16), h("80" + "00" * 15), h("00" * 15 + "01"), b"\xff" * 16,
              h("00000001" * 4), h("80000000" * 4), h("7fffffff" * 4)]
    blocks += [rnd.bytes(16) for _ in range(5)]
    for hkey in keys:
        for blk in blocks:
            want = ref_mul(blk, hkey)  # one block: Y1 = (0 xor X1) * H
            for name, cls, _ in implementations():
                assert one_shot(cls, hkey, blk) == want, (name, hkey, blk)


def test_multi_block_against_the_reference():
    rnd = Lcg(7)
    for nblocks in (2, 3, 8, 17):
        hkey = rnd.bytes(16)
        data = rnd.bytes(16 * nblocks)
        want = ref_ghash(hkey, data)
        for name, cls, _ in implementations():
            assert one_shot(cls, hkey, data) == want, (name, nblocks)


def test_implementations_agree_on_pseudo_random_data():
    rnd = Lcg(99)
    impls = implementations()
    for n in range(0, 100, 7):
        hkey = rnd.bytes(16)
        data = rnd.bytes(n)
        results = [one_shot(cls, hkey, data) for _, cls, _ in impls]
        for r in results:
            assert r == results[0], n
        padded = data + bytes(-n % 16)
        assert results[0] == ref_ghash(hkey, padded), n


def test_streaming_in_pieces_equals_one_shot():
    rnd = Lcg(5)
    hkey = rnd.bytes(16)
    data = rnd.bytes(83)
    cuts_list = [(), (1,), (15,), (16,), (17,), (3, 5, 40), (16, 32, 48, 64, 80), (1, 2, 3, 4)]
    for name, cls, _ in implementations():
        want = one_shot(cls, hkey, data)
        for cuts in cuts_list:
            g = cls(hkey)
            prev = 0
            for c in cuts + (len(data),):
                g.update(data, prev, c)
                prev = c
            g.pad()
            assert digest(g) == want, (name, cuts)


def test_pad_separates_segments():
    # GCM pads AAD and ciphertext separately: A=1 byte, C=1 byte is not A||C hashed together.
    for name, cls, _ in implementations():
        g = cls(TC34_H)
        g.update(b"\x01")
        g.pad()
        g.update(b"\x02")
        g.pad()
        two = digest(g)
        want = ref_ghash(TC34_H, b"\x01" + bytes(15) + b"\x02" + bytes(15))
        assert two == want, name
        g.reset()
        g.update(b"\x01\x02")
        g.pad()
        assert digest(g) != two, name
        g.pad()  # nothing pending: no effect
        assert digest(g) == ref_ghash(TC34_H, b"\x01\x02" + bytes(14)), name


def test_buffer_types_and_offsets():
    rnd = Lcg(3)
    hkey = rnd.bytes(16)
    data = rnd.bytes(50)
    framed = b"\xaa" * 3 + data + b"\xbb" * 5
    for name, cls, _ in implementations():
        want = one_shot(cls, hkey, data)
        assert one_shot(cls, hkey, bytearray(data)) == want, name
        assert one_shot(cls, hkey, memoryview(data)) == want, name
        assert one_shot(cls, hkey, memoryview(framed)[3:53]) == want, name
        g = cls(hkey)
        g.update(framed, 3, 53)
        g.pad()
        assert digest(g) == want, name
        g = cls(bytearray(hkey))
        g.update(bytearray(framed), 3, 53)
        g.pad()
        assert digest(g) == want, name


def test_reset_and_digest_do_not_disturb():
    for name, cls, _ in implementations():
        g = cls(TC2_H)
        g.update(b"junk that must be forgotten")
        g.reset()
        g.update(TC2_C)
        first = digest(g)
        assert digest(g) == first, name  # digest_into does not change the state
        g.update(lengths(0, 16))
        assert digest(g) == TC2_GHASH, name


def test_bad_ranges_and_sizes_raise():
    for name, cls, _ in implementations():
        g = cls(TC2_H)
        for start, end in ((-1, 4), (5, 4), (0, 17)):
            try:
                g.update(bytes(16), start, end)
            except ValueError:
                pass
            else:
                raise AssertionError((name, start, end))
        try:
            g.digest_into(bytearray(15))
        except ValueError:
            pass
        else:
            raise AssertionError(name)
        try:
            cls(bytes(15))
        except ValueError:
            pass
        else:
            raise AssertionError(name)


def test_xor_into():
    for name, _, xor_into in implementations():
        buf = bytearray(b"\x0f" * 20)
        xor_into(buf, 3, b"\xff\x01\x10", 3)
        assert buf == b"\x0f" * 3 + b"\xf0\x0e\x1f" + b"\x0f" * 14, name
        xor_into(buf, 0, b"", 0)
        assert buf[0] == 0x0F
    from dlms import gcm

    if MICROPYTHON:
        from dlms import ghash_viper

        for args in ((bytearray(4), 2, b"\x00" * 4, 3), (bytearray(4), 0, b"\x00", 2)):
            try:
                ghash_viper.xor_into(*args)
            except ValueError:
                pass
            else:
                raise AssertionError(args)
    assert gcm.xor_into is implementations()[-1][2]
