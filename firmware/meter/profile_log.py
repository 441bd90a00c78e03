"""A fixed-size ring of fixed-size rows in flash: the storage of a Profile Generic buffer
(load profile, daily billing values, event log).

Layout: the ring is a sequence of *segment files* ``<root>/<name>.<k>`` (k = 0, 1, 2, ...
for ever), each holding up to ``seg_rows`` records; a record is the row (``row_size``
octets) followed by its CRC-32 (4 octets). Rows are numbered absolutely: row ``a`` lives in
segment ``a // seg_rows`` at record ``a % seg_rows``. Nothing else is stored: the ring is
recovered at boot from the directory listing and the size of the newest segment.

Why segments: littlefs writes copy-on-write, so rewriting a record in the middle of one big
ring file would rewrite the rest of that file; appending to a small file rewrites at most
its last block. A full segment is never written again; after every append, while the
newer segments still hold ``entries + seg_rows`` rows without the oldest, the oldest file
is deleted. So the ring holds between ``entries`` and ``entries + 2 * seg_rows`` rows on
flash and shows the newest ``entries`` (``profile_entries``).

Power cuts: a row is appended with one ``write`` of the whole record and the file is closed
at once; littlefs commits a file at close (sync) atomically, so after a cut the segment
holds the old rows or the old rows plus the new one, never part of a record. Deleting the
oldest segment happens after the new record is committed; a cut in between leaves one
segment too many, which the next start-up deletes. A record that fails its CRC anyway
(flash corruption) reads as missing; a partial record at the end of a segment (not
possible with littlefs, possible on another filesystem) is ignored: start-up cuts it off
(the whole records are copied to a new file renamed over the segment), so the next row
is written in its place.

A reader keeps at most one segment file open (``read``); rows stay readable while
captures go on, because a segment is deleted only after ``seg_rows`` newer rows exist
beyond the shown window: a download that started with the oldest row shown finishes before
its rows go away unless ``seg_rows`` captures happen during it.

RAM: the row/CRC buffer (``row_size + 4``), a 4-byte CRC buffer, one open file while
reading.
"""

import binascii
import os
import struct

_CRC = 4

try:
    _ilistdir = os.ilistdir
except AttributeError:  # CPython (the host tests): no ilistdir

    def _ilistdir(path):
        return ((n,) for n in os.listdir(path))


class ProfileLog:
    def __init__(self, root, name, row_size, entries, seg_rows=None):
        if entries < 1 or row_size < 1:
            raise ValueError("profile size")
        self.root = root
        self.name = name
        self.row_size = row_size
        self.rec = row_size + _CRC
        if seg_rows is None:
            # about one 4 KB flash block per segment; a small ring (billing values, event
            # log) in segments of half its depth: every file costs at least one flash block,
            # so few files beat fine granularity (a ring keeps up to 2 x seg_rows extra rows)
            seg_rows = 4096 // self.rec
            if seg_rows * 2 > entries:
                seg_rows = entries // 2 if entries >= 4 else 2
        self.seg_rows = seg_rows
        self.entries = entries
        self.buf = bytearray(self.rec)
        self._crc = bytearray(_CRC)
        self._rf = None  # the segment file open for reading, and its number
        self._rseg = -1
        self.appends = 0
        self._recover()

    # ------------------------------------------------------------------ files
    def _path(self, seg):
        return "%s/%s.%d" % (self.root, self.name, seg)

    def _segments(self):
        prefix = self.name + "."
        n = len(prefix)
        segs = []
        for item in _ilistdir(self.root):
            fname = item[0]
            if fname.startswith(prefix) and fname[n:].isdigit():
                segs.append(int(fname[n:]))
        segs.sort()
        return segs

    def _size(self, seg):
        try:
            return os.stat(self._path(seg))[6]
        except OSError:
            return 0

    def _recover(self):
        segs = self._segments()
        if not segs:
            self.first = 0  # oldest row on flash
            self.next = 0  # number of the next row to be written
            return
        last = segs[-1]
        self.first = segs[0] * self.seg_rows
        size = self._size(last)
        if size % self.rec:
            try:
                self._drop_tail(last, size // self.rec)
            except OSError:
                pass  # tried again at the next start-up; the meter starts anyway
        self.next = last * self.seg_rows + size // self.rec
        self._trim()

    def _drop_tail(self, seg, records):
        """Rewrite segment ``seg`` with only its first ``records`` whole records."""
        path = self._path(seg)
        tmp = path + ".new"
        b = self.buf
        with open(path, "rb") as src:
            with open(tmp, "wb") as dst:
                for _ in range(records):
                    src.readinto(b)
                    dst.write(b)
        os.rename(tmp, path)

    def _trim(self):
        """Delete the oldest segments while the rest still hold entries + seg_rows rows."""
        k = self.seg_rows
        while self.next - (self.first // k + 1) * k >= self.entries + k:
            self._close_reader()
            try:
                os.remove(self._path(self.first // k))
            except OSError:
                pass
            self.first = (self.first // k + 1) * k

    def _close_reader(self):
        if self._rf is not None:
            self._rf.close()
            self._rf = None
            self._rseg = -1

    # ------------------------------------------------------------------ the window
    def start(self):
        """Absolute number of the oldest row shown (profile_entries newest rows)."""
        s = self.next - self.entries
        return s if s > self.first else self.first

    def in_use(self):
        """entries_in_use."""
        return self.next - self.start()

    # ------------------------------------------------------------------ writing
    def append(self, row):
        """Store one row (``row_size`` octets) whole. OSError if the flash refuses."""
        if len(row) != self.row_size:
            raise ValueError("row size")
        b = self.buf
        b[: self.row_size] = row
        struct.pack_into(">I", b, self.row_size, binascii.crc32(row) & 0xFFFFFFFF)
        seg = self.next // self.seg_rows
        if seg == self._rseg:
            self._close_reader()
        with open(self._path(seg), "ab") as f:
            f.write(b)
        self.next += 1
        self.appends += 1
        self._trim()

    def reset(self):
        """Empty the ring (Profile Generic method reset). Numbering goes on."""
        self._close_reader()
        for seg in self._segments():
            try:
                os.remove(self._path(seg))
            except OSError:
                pass
        k = self.seg_rows
        self.next = (self.next + k - 1) // k * k  # a fresh segment
        self.first = self.next

    # ------------------------------------------------------------------ reading
    def read(self, a, out=None):
        """Row number ``a`` (absolute) into ``out`` (default: the internal buffer), or None
        if it is not on flash or fails its CRC. Returns a memoryview of the row."""
        if not self.first <= a < self.next:
            return None
        k = self.seg_rows
        seg = a // k
        b = self.buf if out is None else out
        try:
            if seg != self._rseg:
                self._close_reader()
                self._rf = open(self._path(seg), "rb")
                self._rseg = seg
            f = self._rf
            f.seek((a % k) * self.rec)
            n = f.readinto(b)
        except OSError:
            self._close_reader()
            return None
        if n != self.rec:
            return None
        mv = memoryview(b)[: self.row_size]
        if struct.unpack_from(">I", b, self.row_size)[0] != binascii.crc32(mv) & 0xFFFFFFFF:
            return None
        return mv

    def read_u32(self, a, off=0):
        """The big-endian u32 at ``off`` of row ``a`` (the capture time), or None."""
        r = self.read(a)
        if r is None:
            return None
        return struct.unpack_from(">I", r, off)[0]

    def last(self):
        """The newest row (a memoryview) or None."""
        return self.read(self.next - 1) if self.next > self.first else None

    def close(self):
        self._close_reader()
