"""Versioned, CRC-checked records on the board's filesystem (littlefs), in two copies.

A record kind ``name`` is kept in two files, ``a/name`` and ``b/name`` (two directories
under the store's root), each one record::

    magic "DS" | version (1) | sequence (4) | length (2) | payload | CRC-32 (4)

A save numbers the record one above the newest (odd sequences go to ``a/``, even ones to
``b/``), so it always overwrites the *older* copy and the newest stays untouched. It writes
``<copy>.new`` first and renames it over the copy: littlefs makes the rename atomic, so after
a power cut at any point each copy is whole (the old or the new record), never a mixture.
The two directories are two littlefs metadata pairs: small records live inline in them, and
alternating saves share the commits (and the compactions) between the pairs, so two copies
cost about the flash wear of one (``make bench``, docs/metering.md).

Loading takes the valid copy (magic, version, length, CRC) with the highest sequence. A
power cut cannot make a copy invalid; flash corruption can. Then the other copy, one save
older, is still there: ``stale(name)`` is True when the newest valid copy may not be the
newest record written (the other copy is damaged, or missing although more than one record
was written), and the caller decides what one save older means for it (the transmit
invocation counter skips one reservation; energy is one persist interval older). Before
these two copies a kind was a single file ``name`` (magic "DR", no sequence); it is read as
sequence 0 while neither copy exists, and the first save after it removes it.

One writer per record kind (rule 7 of the architecture). Records are written at a bounded
interval and on clean shutdown, never per sample: two copies take two files per kind, not
more writes.

RAM: the newest sequence and the stale flag of each kind loaded or saved (a small dict).
"""

import binascii
import os
import struct

_MAGIC = b"DS"
_LEGACY = b"DR"
_HEAD = 9  # magic, version, sequence, length


def _parse(data, version):
    """(sequence, payload) of a valid record of this version, else None."""
    if len(data) < _HEAD + 4 or data[:2] != _MAGIC:
        return None
    ver, seq, n = struct.unpack(">BIH", data[2:_HEAD])
    if ver != version or len(data) != _HEAD + 4 + n:
        return None
    crc = binascii.crc32(data[_HEAD:_HEAD + n], binascii.crc32(data[:_HEAD])) & 0xFFFFFFFF
    if struct.unpack(">I", data[_HEAD + n:])[0] != crc:
        return None
    return seq, data[_HEAD:_HEAD + n]


def _parse_legacy(data, version):
    if len(data) < 9 or data[:2] != _LEGACY:
        return None
    ver, n = struct.unpack(">BH", data[2:5])
    if ver != version or len(data) != 9 + n:
        return None
    crc = binascii.crc32(data[5:5 + n], binascii.crc32(data[:5])) & 0xFFFFFFFF
    if struct.unpack(">I", data[5 + n:])[0] != crc:
        return None
    return data[5:5 + n]


class Store:
    def __init__(self, root):
        self.root = root
        self.writes = 0
        self._seq = {}  # name -> newest sequence (loaded or saved)
        self._stale = {}  # name -> True when the newest valid copy may be one save old

    def _path(self, name):
        return self.root + "/" + name

    def _copy(self, name, odd):
        return self.root + ("/a/" if odd else "/b/") + name

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def save(self, name, version, payload):
        seq = self._seq.get(name)
        if seq is None:
            self.load(name, version)  # learn the newest sequence
            seq = self._seq.get(name, 0)
        seq = (seq + 1) & 0xFFFFFFFF or 1
        path = self._copy(name, seq & 1)
        tmp = path + ".new"
        head = _MAGIC + struct.pack(">BIH", version, seq, len(payload))
        crc = binascii.crc32(payload, binascii.crc32(head))
        try:
            f = open(tmp, "wb")
        except OSError:  # the copy's directory does not exist yet
            os.mkdir(self.root + ("/a" if seq & 1 else "/b"))
            f = open(tmp, "wb")
        with f:
            f.write(head)
            f.write(payload)
            f.write(struct.pack(">I", crc & 0xFFFFFFFF))
        os.rename(tmp, path)
        if seq == 1:  # the single file of before, if any, is superseded
            try:
                os.remove(self._path(name))
            except OSError:
                pass
        self._seq[name] = seq
        self._stale[name] = False
        self.writes += 1

    def load(self, name, version):
        """The payload of the newest valid record of this version, else None."""
        best = None
        present = 0  # copies that exist
        valid = 0
        for odd in (1, 0):
            data = self._read(self._copy(name, odd))
            if data is None:
                continue
            present += 1
            rec = _parse(data, version)
            if rec is None:
                continue
            valid += 1
            if best is None or rec[0] > best[0]:
                best = rec
        if best is None and present == 0:
            data = self._read(self._path(name))
            payload = _parse_legacy(data, version) if data is not None else None
            if payload is not None:
                best = (0, payload)
        if best is None:
            self._seq[name] = 0
            self._stale[name] = present > 0
            return None
        self._seq[name] = best[0]
        self._stale[name] = valid < 2 and (present == 2 or best[0] > 1)
        return best[1]

    def stale(self, name):
        """True if the last ``load(name)`` may have returned a record one save older than the
        newest written (a copy damaged by the flash, or gone)."""
        return self._stale.get(name, False)
