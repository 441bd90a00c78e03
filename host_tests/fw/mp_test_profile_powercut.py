"""Power cuts at every flash operation of a ProfileLog.append, on littlefs over the
simulated flash of boards/unix/flash.py (MicroPython only: CPython has no littlefs).

For each cut point: the append is interrupted (the operation is torn, every later one
fails), the image is opened again as at a restart, and the ring must mount, recover, show
the old rows or the old rows plus the new one (every row readable, none partial), keep
every row on flash intact, and take further appends (also across a restart).

Cases: the first row ever (the first segment file is created), a row in the middle of a
small segment (littlefs keeps it inline in its directory: one program), a row in the middle
of a segment larger than a flash block (littlefs writes the file's blocks), a row that
starts a new segment and deletes the oldest one, and a row whose append deletes the oldest
segment in the middle of a segment."""

try:
    import vfs
except ImportError:  # CPython: pytest imports this file when it is named on the command line
    import pytest

    pytest.skip("MicroPython only: runs as mp:: items through host_tests/mptest.py",
                allow_module_level=True)

import binascii
import os
import struct

import flash
from meter.profile_log import ProfileLog

# one image per process: another run of this file at the same time must not share it
IMG = "/tmp/dlms-mpy-profile-powercut-%s.img" % binascii.hexlify(os.urandom(4)).decode()
MNT = "/ppc"
BLOCKS = 32
ROW = 10
SEG = 4


def row(i, size=ROW):
    r = bytearray(size)
    struct.pack_into(">I", r, 0, i)
    for k in range(4, size):
        r[k] = (i * 13 + k) & 0xFF
    return bytes(r)


def _fresh():
    try:
        os.remove(IMG)
    except OSError:
        pass
    dev = flash.FileFlash(IMG, block_count=BLOCKS)
    vfs.VfsLfs2.mkfs(dev)
    return dev


def _discard():
    try:
        os.remove(IMG)
    except OSError:
        pass


def _mount(dev):
    vfs.mount(vfs.VfsLfs2(dev), MNT)


def _umount():
    try:
        vfs.umount(MNT)
    except Exception:  # a dead board: whatever the unmount tries may fail
        pass


def _files():
    out = {}
    for item in os.ilistdir(MNT):
        out[item[0]] = os.stat(MNT + "/" + item[0])[6]
    return out


def _check(log, entries):
    """Every row on flash reads back as written (row a holds row(a)), the window is the
    newest `entries`, every segment file holds whole records."""
    size = log.row_size
    for a in range(log.first, log.next):
        r = log.read(a)
        assert r is not None, ("row unreadable", a, log.first, log.next)
        assert bytes(r) == row(a, size), ("row changed", a)
    n = log.next
    assert log.in_use() == (n if n < entries else entries)
    for name, fsize in _files().items():
        if name.startswith("lp."):
            assert name[3:].isdigit(), name  # no temporary file left behind
            assert fsize % (size + 4) == 0, (name, fsize)


def _image(entries, nrows, seg, size):
    """The flash image (its bytes) after nrows appends to a fresh ring."""
    dev = _fresh()
    _mount(dev)
    log = ProfileLog(MNT, "lp", size, entries, seg_rows=seg)
    for i in range(nrows):
        log.append(row(i, size))
    log.close()
    _umount()
    dev.close()
    with open(IMG, "rb") as f:
        return f.read()


def _cycle(entries, nrows, cut, seg, size, image):
    """From the image of nrows rows (booted: the ring recovered), the append of row nrows
    with the power cut at operation `cut` of it. Returns whether the cut happened (False:
    the append completed first) and how many flash operations the append made."""
    with open(IMG, "wb") as f:
        f.write(image)
    dev = flash.FileFlash(IMG, block_count=BLOCKS)
    _mount(dev)
    log = ProfileLog(MNT, "lp", size, entries, seg_rows=seg)
    assert log.next == nrows
    before = dev.ops
    dev.cut_at = dev.ops + cut
    happened = False
    try:
        log.append(row(nrows, size))
    except flash.PowerCut:
        happened = True
    except OSError:
        happened = True  # littlefs reports the failed operation as an I/O error
    ops = dev.ops - before
    _umount()
    dev.close()
    # restart: the same image, power back
    dev2 = flash.FileFlash(IMG, block_count=BLOCKS)
    _mount(dev2)
    try:
        log2 = ProfileLog(MNT, "lp", size, entries, seg_rows=seg)
        if happened:
            assert log2.next in (nrows, nrows + 1), (cut, log2.next)
        else:
            assert log2.next == nrows + 1, (cut, log2.next)
        _check(log2, entries)
        # the ring goes on, across one more restart as well
        for _ in range(9):
            log2.append(row(log2.next, size))
        _check(log2, entries)
        log2.close()
        log3 = ProfileLog(MNT, "lp", size, entries, seg_rows=seg)
        _check(log3, entries)
        assert (log3.first, log3.next) == (log2.first, log2.next)
        log3.close()
    finally:
        _umount()
        dev2.close()
        _discard()
    return happened, ops


def _every_cut(entries, nrows, seg=SEG, size=ROW):
    image = _image(entries, nrows, seg, size)
    cuts = 0
    for cut in range(300):
        happened, ops = _cycle(entries, nrows, cut, seg, size, image)
        if not happened:
            break
        cuts += 1
    else:
        raise AssertionError("the append never completed")
    print("entries", entries, "rows", nrows, "cut points tried:", cuts, "ops", ops)
    return cuts


def test_cut_in_the_first_append():
    assert _every_cut(9, 0) >= 2


def test_cut_in_an_append_inside_a_small_segment():
    assert _every_cut(9, 6) >= 1


def test_cut_in_an_append_inside_a_segment_larger_than_a_block():
    # 22-octet rows (the load profile's) in 200-row segments: 5200 octets, two blocks;
    # the record of row 157 crosses into the second block, row 160 goes on in it
    assert _every_cut(400, 157, 200, 22) >= 2
    assert _every_cut(400, 160, 200, 22) >= 2


def test_cut_in_an_append_that_starts_a_segment_and_deletes_the_oldest():
    # entries 9, 4-row segments: the 17th row starts segment 4 and segment 0 goes
    dev = _fresh()
    _mount(dev)
    log = ProfileLog(MNT, "lp", ROW, 9, seg_rows=SEG)
    for i in range(16):
        log.append(row(i))
    assert log.first == 0
    log.append(row(16))
    assert log.first == SEG and "lp.0" not in _files() and "lp.4" in _files()
    _umount()
    dev.close()
    _discard()
    assert _every_cut(9, 16) >= 3


def test_cut_in_an_append_that_deletes_the_oldest_inside_a_segment():
    # entries 10: the 18th row (second of segment 4) is the one after which segment 0 goes
    dev = _fresh()
    _mount(dev)
    log = ProfileLog(MNT, "lp", ROW, 10, seg_rows=SEG)
    for i in range(17):
        log.append(row(i))
    assert log.first == 0
    log.append(row(17))
    assert log.first == SEG and "lp.0" not in _files()
    _umount()
    dev.close()
    _discard()
    assert _every_cut(10, 17) >= 2


def test_torn_images_do_not_leak_between_tests():
    dev = _fresh()
    _mount(dev)
    assert [n for n in _files() if n.startswith("lp.")] == []
    _umount()
    dev.close()
    _discard()
