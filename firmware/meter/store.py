"""Versioned, CRC-checked records on the board's filesystem (littlefs).

A record is one small file:  magic "DR" | version (1) | length (2) | payload | CRC-32 (4).
Writing goes to ``name.new`` first and is then renamed over ``name``: littlefs makes the
rename atomic, so after a power cut at any point the record is either the old one or the new
one, never a mixture. A record that fails its CRC or has another version is reported as
missing, so the caller falls back to its defaults (never to garbage).

One writer per record kind (rule 7 of the architecture). Records are written at a bounded
interval and on clean shutdown, never per sample.

RAM: nothing kept between calls.
"""

import binascii
import os
import struct

_MAGIC = b"DR"


class Store:
    def __init__(self, root):
        self.root = root
        self.writes = 0

    def _path(self, name):
        return self.root + "/" + name

    def save(self, name, version, payload):
        path = self._path(name)
        tmp = path + ".new"
        head = _MAGIC + struct.pack(">BH", version, len(payload))
        crc = binascii.crc32(payload, binascii.crc32(head))
        with open(tmp, "wb") as f:
            f.write(head)
            f.write(payload)
            f.write(struct.pack(">I", crc & 0xFFFFFFFF))
        os.rename(tmp, path)
        self.writes += 1

    def load(self, name, version):
        """The payload of a valid record of this version, else None."""
        try:
            with open(self._path(name), "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < 9 or data[:2] != _MAGIC:
            return None
        ver, n = struct.unpack(">BH", data[2:5])
        if ver != version or len(data) != 9 + n:
            return None
        crc = binascii.crc32(data[5 : 5 + n], binascii.crc32(data[:5])) & 0xFFFFFFFF
        if struct.unpack(">I", data[5 + n :])[0] != crc:
            return None
        return data[5 : 5 + n]
