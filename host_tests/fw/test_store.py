"""meter.store: CRC-checked records in two copies (CPython and MicroPython; power cuts on
littlefs are in mp_test_powercut.py and mp_test_powercut_all.py). A copy damaged by the
flash falls back to the other, one save older, and says so (``stale``); the secrets built
on it never repeat a transmit counter and never fall back to the development keys."""

import binascii
import os
import struct

from meter import secrets
from meter.store import Store
from tmpdirs import rmtree, tmpdir


def damage(path, at=-1):
    """Flip one bit of a file (a bit error in the flash)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[at] ^= 0x10
    with open(path, "wb") as f:
        f.write(data)


def files(d):
    """The copies under d: ["a/energy", ...]."""
    out = []
    for sub in sorted(os.listdir(d)):
        try:
            names = os.listdir(d + "/" + sub)
        except OSError:  # a file
            out.append(sub)
            continue
        out += [sub + "/" + n for n in sorted(names)]
    return out


def test_saves_alternate_between_the_copies_and_the_newest_wins():
    d = tmpdir("st-alt")
    try:
        st = Store(d)
        assert st.load("energy", 1) is None and not st.stale("energy")
        st.save("energy", 1, b"one")
        assert files(d) == ["a/energy"]
        st.save("energy", 1, b"two")
        assert files(d) == ["a/energy", "b/energy"]
        st.save("energy", 1, b"three")  # overwrites the older copy (a/)
        assert files(d) == ["a/energy", "b/energy"]
        again = Store(d)  # a restart
        assert again.load("energy", 1) == b"three" and not again.stale("energy")
        again.save("energy", 1, b"four")  # goes to b/: a/ holds the newest
        assert Store(d).load("energy", 1) == b"four"
        assert st.writes == 3 and again.writes == 1
        assert Store(d).load("energy", 2) is None  # another version: no record
    finally:
        rmtree(d)


def test_a_damaged_newest_copy_falls_back_to_the_older_and_says_stale():
    for at in (0, 4, 9, -1):  # magic, sequence, payload, CRC
        d = tmpdir("st-dmg")
        try:
            st = Store(d)
            for v in (b"v1", b"v2", b"v3"):
                st.save("energy", 1, v)
            damage(d + "/a/energy", at)  # v3 (sequence 3) is in a/
            r = Store(d)
            assert r.load("energy", 1) == b"v2", at
            assert r.stale("energy"), at
            r.save("energy", 1, b"v4")  # sequence 3 again, over the damaged copy
            r2 = Store(d)
            assert r2.load("energy", 1) == b"v4" and not r2.stale("energy")
        finally:
            rmtree(d)


def test_a_damaged_or_missing_older_copy_leaves_the_newest_stale():
    d = tmpdir("st-old")
    try:
        st = Store(d)
        for v in (b"v1", b"v2", b"v3"):
            st.save("energy", 1, v)
        damage(d + "/b/energy")  # the older copy (v2)
        r = Store(d)
        assert r.load("energy", 1) == b"v3"
        # the newest is intact but the copy beside it is damaged: the newest valid copy
        # cannot prove it is the newest written (the damaged one could be newer)
        assert r.stale("energy")
        os.remove(d + "/b/energy")
        r = Store(d)
        assert r.load("energy", 1) == b"v3" and r.stale("energy")  # sequence 3 needs a b/ copy
        d2 = tmpdir("st-one")
        try:
            Store(d2).save("x", 1, b"only")
            r = Store(d2)
            assert r.load("x", 1) == b"only" and not r.stale("x")  # one save ever
        finally:
            rmtree(d2)
    finally:
        rmtree(d)


def test_both_copies_damaged_is_no_record():
    d = tmpdir("st-both")
    try:
        st = Store(d)
        st.save("energy", 1, b"v1")
        st.save("energy", 1, b"v2")
        damage(d + "/a/energy")
        damage(d + "/b/energy")
        r = Store(d)
        assert r.load("energy", 1) is None and r.stale("energy")
    finally:
        rmtree(d)


def test_a_single_file_record_of_before_is_read_and_then_superseded():
    d = tmpdir("st-legacy")
    try:
        payload = b"\x00" * 8 + b"\x01"
        head = b"DR" + struct.pack(">BH", 1, len(payload))
        crc = binascii.crc32(payload, binascii.crc32(head)) & 0xFFFFFFFF
        with open(d + "/energy", "wb") as f:
            f.write(head + payload + struct.pack(">I", crc))
        st = Store(d)
        assert st.load("energy", 1) == payload and not st.stale("energy")
        st.save("energy", 1, b"next")
        assert files(d) == ["a/energy"]  # the old file is gone
        assert Store(d).load("energy", 1) == b"next"
    finally:
        rmtree(d)


def test_tx_counter_skips_the_lost_reservation_when_its_newest_copy_is_damaged():
    d = tmpdir("st-ictx")
    try:
        st = Store(d)
        tx = secrets.TxCounter(st, reserve=8)
        used = [tx.next() for _ in range(20)]  # reservations: bounds 9, 17, 25
        damage(d + "/a/ictx")  # bound 25 (sequence 3) lost; b/ holds bound 17
        tx2 = secrets.TxCounter(Store(d), reserve=8)
        nxt = tx2.next()
        assert nxt > max(used), (nxt, used)
        assert nxt == 17 + 8  # one reservation beyond the surviving bound
    finally:
        rmtree(d)


def test_keys_fall_back_to_the_previous_keys_not_the_defaults():
    d = tmpdir("st-keys")
    defaults = [bytes([i]) * 16 for i in range(4)]
    first = [(secrets.KEY_EK, b"\x11" * 16)]
    second = [(secrets.KEY_EK, b"\x22" * 16)]
    try:
        ks = secrets.KeyStore(Store(d), defaults)
        ks.set_keys(first)
        ks.set_keys(second)
        assert secrets.KeyStore(Store(d), defaults).get(secrets.KEY_EK) == b"\x22" * 16
        damage(d + "/b/keys")  # the second transfer (sequence 2)
        assert secrets.KeyStore(Store(d), defaults).get(secrets.KEY_EK) == b"\x11" * 16
    finally:
        rmtree(d)
