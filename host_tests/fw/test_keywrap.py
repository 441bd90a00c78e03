"""AES key wrap (RFC 3394, dlms/keywrap.py) against the RFC's section 4 test vectors.

Runs under CPython and MicroPython. MicroPython's cryptolib takes 16- and 32-byte keys only,
so the 192-bit-KEK vectors (4.2, 4.4) run under CPython only; the others (4.1, 4.3, 4.5,
4.6) run under both. The RFC values were also checked against pyca cryptography's
aes_key_wrap.
"""

import binascii
import sys

from dlms import keywrap

MICROPYTHON = sys.implementation.name == "micropython"


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


KEK = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
KEY = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")

# (section, KEK bytes, key data bytes, ciphertext)
RFC3394 = [
    ("4.1", 16, 16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"),
    ("4.2", 24, 16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"),
    ("4.3", 32, 16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"),
    ("4.4", 24, 24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"),
    ("4.5", 32, 24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"),
    ("4.6", 32, 32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B"
                    " FB988B9B7A02DD21"),
]


def vectors():
    for name, kl, dl, ct in RFC3394:
        if MICROPYTHON and kl == 24:
            continue  # cryptolib: no AES-192
        yield name, KEK[:kl], KEY[:dl], h(ct)


def test_rfc3394_wrap():
    count = 0
    for name, kek, key, ct in vectors():
        assert keywrap.wrap(kek, key) == ct, name
        count += 1
    assert count == (4 if MICROPYTHON else 6)


def test_rfc3394_unwrap():
    for name, kek, key, ct in vectors():
        assert keywrap.unwrap(kek, ct) == key, name
        assert keywrap.unwrap(kek, bytearray(ct)) == key, name
        assert keywrap.unwrap(kek, memoryview(ct)) == key, name


def test_tampered_ciphertext_is_rejected():
    for name, kek, key, ct in vectors():
        for pos in range(len(ct)):
            for bit in (0x01, 0x80):
                bad = bytearray(ct)
                bad[pos] ^= bit
                assert keywrap.unwrap(kek, bad) is None, (name, pos, bit)


def test_wrong_kek_is_rejected():
    _, kek, key, ct = next(vectors())
    wrong = bytearray(kek)
    wrong[15] ^= 1
    assert keywrap.unwrap(bytes(wrong), ct) is None


def test_bad_lengths():
    kek = KEK[:16]
    for n in (0, 8, 16, 23, 25, 31):
        assert keywrap.unwrap(kek, bytes(n)) is None, n
    for n in (0, 8, 12, 17):
        try:
            keywrap.wrap(kek, bytes(n))
        except ValueError as e:
            assert "0001020304" not in str(e)
        else:
            raise AssertionError(n)


def test_round_trip_dlms_keys():
    # Security Setup global_key_transfer: 128-bit EK/AK wrapped under a 128-bit master key.
    kek = h("000102030405060708090A0B0C0D0E0F")
    for key in (h("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"), bytes(16), b"\xff" * 16,
                h("00112233445566778899AABBCCDDEEFF")):
        ct = keywrap.wrap(kek, key)
        assert len(ct) == 24 and ct[:8] != keywrap.IV
        assert keywrap.unwrap(kek, ct) == key


def test_injected_block_cipher():
    calls = []

    def factory(key):
        calls.append(len(key))
        from dlms.gcm import aes_ecb

        return aes_ecb(key)

    _, kek, key, ct = next(vectors())
    assert keywrap.wrap(kek, key, factory) == ct
    assert keywrap.unwrap(kek, ct, factory) == key
    assert calls == [16, 16]
