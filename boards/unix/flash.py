"""Simulated NOR flash for the virtual meter: a block device backed by one file in the state
directory, with littlefs v2 on top (``vfs.VfsLfs2``, the filesystem the boards use).

Block-device protocol (MicroPython ``vfs``, extended interface): ``readblocks(n, buf, off)``,
``writeblocks(n, buf, off)`` (program; ``off`` None means erase-then-write whole blocks),
``ioctl(op, arg)``: 4 block count, 5 block size, 6 erase block. Erased flash reads 0xFF.

The methods can be called by littlefs with the heap locked, so they do not allocate: the
file is opened once and read with ``readinto`` into the caller's buffer.

Counters ``erases`` and ``programs`` count the operations (the power-cut campaign of the
persistence work cuts power at the N-th one).

RAM: one 256-byte erase pattern, allocated once (an erase writes it block_size/256 times).
"""

import os

BLOCK_SIZE = 4096
_ERASE_CHUNK = 256
BLOCK_COUNT = 256  # 1 MiB: well inside the filesystem of the smallest board (Pico, 1.4 MiB)


class FileFlash:
    def __init__(self, path, block_size=BLOCK_SIZE, block_count=BLOCK_COUNT):
        self.block_size = block_size
        self.block_count = block_count
        size = block_size * block_count
        try:
            st = os.stat(path)
            fresh = st[6] != size
        except OSError:
            fresh = True
        self.erased = bytearray(b"\xff" * _ERASE_CHUNK)
        if fresh:
            with open(path, "wb") as f:
                for _ in range(size // _ERASE_CHUNK):
                    f.write(self.erased)
        self.f = open(path, "r+b")
        self.erases = 0
        self.programs = 0

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.block_size + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:
            self.ioctl(6, n)
            off = 0
        self.programs += 1
        self.f.seek(n * self.block_size + off)
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.block_count
        if op == 5:
            return self.block_size
        if op == 6:
            self.erases += 1
            self.f.seek(arg * self.block_size)
            for _ in range(self.block_size // _ERASE_CHUNK):
                self.f.write(self.erased)
            self.f.flush()
            return 0
        return 0

    def close(self):
        self.f.close()


def mount(path, mountpoint="/flash"):
    """Mount (formatting a blank image first) littlefs on the file image at path."""
    import vfs

    dev = FileFlash(path)
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, mountpoint)
    return dev
