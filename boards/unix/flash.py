"""Simulated NOR flash for the virtual meter: a block device backed by one file in the state
directory, with littlefs v2 on top (``vfs.VfsLfs2``, the filesystem the boards use).

Block-device protocol (MicroPython ``vfs``, extended interface): ``readblocks(n, buf, off)``,
``writeblocks(n, buf, off)`` (program; ``off`` None means erase-then-write whole blocks),
``ioctl(op, arg)``: 4 block count, 5 block size, 6 erase block. Erased flash reads 0xFF.

The methods can be called by littlefs with the heap locked, so they do not allocate: the
file is opened once and read with ``readinto`` into the caller's buffer.

Counters ``erases`` and ``programs`` count the operations. Power-cut injection: set
``cut_at`` to an operation number (erases and programs counted together in ``ops``); that
operation is torn -- a program writes only its first half, an erase clears only the first
half of the block -- and ``PowerCut`` is raised. Every later operation raises too, as on a
dead board, until the image is opened again (the restart).

RAM: one 256-byte erase pattern, allocated once (an erase writes it block_size/256 times).
"""

import os

BLOCK_SIZE = 4096
_ERASE_CHUNK = 256
BLOCK_COUNT = 256  # 1 MiB: well inside the filesystem of the smallest board (Pico, 1.4 MiB)


class PowerCut(Exception):
    """The simulated power failed during a flash operation."""


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
        self.ops = 0
        self.cut_at = -1

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.block_size + off)
        self.f.readinto(buf)

    def _tick(self):
        """Count one operation; True if it is the one the power fails in."""
        self.ops += 1
        if 0 <= self.cut_at < self.ops:
            if self.ops == self.cut_at + 1:
                return True
            raise PowerCut()
        return False

    def writeblocks(self, n, buf, off=None):
        if off is None:
            self.ioctl(6, n)
            off = 0
        self.programs += 1
        torn = self._tick()
        self.f.seek(n * self.block_size + off)
        if torn:
            self.f.write(memoryview(buf)[: len(buf) // 2])
            self.f.flush()
            raise PowerCut()
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.block_count
        if op == 5:
            return self.block_size
        if op == 6:
            self.erases += 1
            torn = self._tick()
            self.f.seek(arg * self.block_size)
            chunks = self.block_size // _ERASE_CHUNK
            for _ in range(chunks // 2 if torn else chunks):
                self.f.write(self.erased)
            self.f.flush()
            if torn:
                raise PowerCut()
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
