"""GHASH and the AES-GCM encrypt/decrypt paths allocate nothing: heap_lock proof (MicroPython).

Each test warms its path up once with the heap unlocked (first calls may intern names or size
dictionaries), then runs it again with the heap locked: any allocation raises MemoryError.
Results are checked after unlocking. ``gmac`` is left out: it returns a new bytes object.
"""

try:
    import micropython
except ImportError:  # CPython: pytest imports this file when it is named on the command line
    import pytest

    pytest.skip("MicroPython only: runs as mp:: items through host_tests/mptest.py",
                allow_module_level=True)

import binascii

from dlms import gcm, ghash_viper

EK = binascii.unhexlify("000102030405060708090A0B0C0D0E0F")
AK = binascii.unhexlify("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SC = b"\x30"
AAD = (SC, AK)
IV = binascii.unhexlify("4D4D4D0000BC614E01234567")
PT = binascii.unhexlify("C0010000080000010000FF0200")
CT = binascii.unhexlify("411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")


def locked(fn):
    """Run fn() with the heap locked. (No *args here: a star call builds a tuple.)"""
    micropython.heap_lock()
    try:
        return fn()
    finally:
        micropython.heap_unlock()


def test_heap_lock_is_effective():
    try:
        locked(lambda: bytearray(16))
    except MemoryError:
        return
    raise AssertionError("heap_lock did not stop an allocation")


def test_ghash_block_allocates_nothing():
    g = ghash_viper.Ghash(EK)
    block = bytearray(range(16))
    out = bytearray(16)

    def run():
        g.reset()
        g.update(block, 0, 16)
        g.update(block, 0, 5)  # partial block: buffered
        g.pad()
        g.digest_into(out)

    run()
    want = bytes(out)
    locked(run)
    assert out == want


def test_gcm_in_place_allocates_nothing():
    g = gcm.Gcm(EK)
    buf = bytearray(7 + len(CT) + 64)
    buf[7 : 7 + len(PT)] = PT

    def run():
        n = g.encrypt_in_place(IV, AAD, buf, 7, 7 + len(PT))
        m = g.decrypt_in_place(IV, AAD, buf, 7, 7 + n)
        return n * 1000 + m

    assert run() == 25 * 1000 + 13
    assert locked(run) == 25 * 1000 + 13
    assert buf[7 : 7 + len(PT)] == PT
    buf[7 : 7 + len(CT)] = CT
    buf[8] ^= 1
    assert locked(lambda: g.decrypt_in_place(IV, AAD, buf, 7, 7 + len(CT))) == -1


def test_gcm_copying_calls():
    # encrypt copies into out with a slice store (no allocation). decrypt, once the tag is
    # right, makes one memoryview slice of its input (a small object) to copy the ciphertext:
    # so for decrypt only the rejection of a forgery is proven allocation-free.
    g = gcm.Gcm(EK)
    out = bytearray(64)
    big = bytearray(1024)
    out_big = bytearray(1024 + 12)
    g.encrypt(IV, AAD, big, out_big)
    assert locked(lambda: g.encrypt(IV, AAD, PT, out)) == 25
    assert out[:25] == CT
    assert locked(lambda: g.encrypt(IV, AAD, big, out_big)) == 1036
    bad = bytearray(CT)
    bad[-1] ^= 0x80
    back = bytearray(16)
    assert locked(lambda: g.decrypt(IV, AAD, bad, back)) == -1
    assert back == bytes(16)
