"""Power cuts at every erase/program of a persistence cycle, on littlefs over the simulated
flash (MicroPython only: CPython has no littlefs). After each cut the image must mount, and
every record must be the old one or the new one, never garbage; energy never goes down."""

import os
import struct

import vfs

import flash
from meter.store import Store

IMG = "/tmp/dlms-mpy-powercut.img"
MNT = "/pc"


def _fresh():
    try:
        os.remove(IMG)
    except OSError:
        pass
    dev = flash.FileFlash(IMG, block_count=32)
    vfs.VfsLfs2.mkfs(dev)
    return dev


def _mount(dev):
    fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, MNT)
    return fs


def _umount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass


def _energy(n):
    return struct.pack(">4Q", n, n * 2, n * 3, n * 4)


def _cycle(cut):
    """Save record 1 then 2 with power cut at operation `cut` of the second save.
    Returns (cut happened, value found after the restart)."""
    dev = _fresh()
    _mount(dev)
    st = Store(MNT)
    st.save("energy", 1, _energy(1000))
    dev.cut_at = dev.ops + cut
    cut_happened = False
    try:
        st.save("energy", 1, _energy(2000))
    except flash.PowerCut:
        cut_happened = True
    except OSError:
        cut_happened = True  # littlefs reports the failed operation as an I/O error
    _umount()
    dev.close()
    dev2 = flash.FileFlash(IMG, block_count=32)  # restart: the same image, power back
    _mount(dev2)  # must mount
    rec = Store(MNT).load("energy", 1)
    _umount()
    dev2.close()
    return cut_happened, rec


def test_every_cut_point_of_a_record_update_leaves_old_or_new():
    cuts = 0
    for cut in range(200):
        happened, rec = _cycle(cut)
        assert rec in (_energy(1000), _energy(2000)), (cut, rec)
        if not happened:
            assert rec == _energy(2000)
            break
        cuts += 1
    assert cuts >= 3  # the update took several flash operations, each one was cut
    print("power-cut points tried:", cuts)


def test_torn_operation_is_really_torn():
    dev = _fresh()
    dev.cut_at = dev.ops
    try:
        dev.writeblocks(0, b"\x00" * 512, 0)
    except flash.PowerCut:
        pass
    buf = bytearray(512)
    dev.readblocks(0, buf, 0)
    assert buf[:256] == b"\x00" * 256 and buf[256:] == b"\xff" * 256
    try:
        dev.writeblocks(1, b"\x00" * 16, 0)
    except flash.PowerCut:
        pass
    else:
        raise AssertionError("a dead board kept writing")
    dev.close()
