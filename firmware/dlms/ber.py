"""Small BER helpers (ISO/IEC 8825-1 Basic Encoding Rules) for the ACSE APDUs.

The association APDUs (AARQ, AARE, RLRQ, RLRE; ISO/IEC 8650-1 ACSE as profiled by the
DLMS UA Green Book, "COSEM application layer", ACSE services) are BER: each field is
tag | length | contents, and constructed fields nest. Only what ACSE needs is here:

* ``read_tlv``: one TLV inside ``buf[pos:end]`` -> (tag, content start, content end).
  Definite lengths only (short form, 0x81..0x84); the indefinite form 0x80 is refused.
  The content end is checked against ``end``: a length is never trusted.
* ``start`` / ``close``: write a constructed TLV whose length is known only afterwards.
  ``start`` writes the tag and a one-byte length slot; ``close`` fills it in and, for
  contents of 128 bytes or more, moves the contents up to make room for the long form.
* ``tlv``: tag, length and given contents in one go.

Writers are ``axdr.Writer`` objects (same buffer discipline, same ``BufferFull``); malformed
input raises ``axdr.DecodeError``.

RAM: none beyond the caller's buffers (``close`` copies the contents once in the rare
long-form case).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms.axdr import BufferFull, DecodeError

_MAX_TAG_BYTES = const(4)


def read_tlv(buf, pos, end):
    """One TLV in buf[pos:end] -> (tag, content_start, content_end).

    ``tag`` is the identifier octet, or for a high-tag-number form (low five bits all 1)
    the identifier octets joined big-endian (e.g. 0x5F1F). DecodeError if anything lies
    outside buf[pos:end]."""
    if pos >= end:
        raise DecodeError("truncated")
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        for _ in range(_MAX_TAG_BYTES - 1):
            if pos >= end:
                raise DecodeError("truncated")
            b = buf[pos]
            pos += 1
            tag = (tag << 8) | b
            if not b & 0x80:
                break
        else:
            raise DecodeError("long tag")  # tag too long
    if pos >= end:
        raise DecodeError("truncated")
    n = buf[pos]
    pos += 1
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise DecodeError("bad length")  # bad length form
        if k > end - pos:
            raise DecodeError("truncated")
        n = 0
        for i in range(k):
            n = (n << 8) | buf[pos + i]
        pos += k
    if n > end - pos:
        raise DecodeError("truncated")  # length beyond the data
    return tag, pos, pos + n


def read_inner(buf, cs, ce, tag):
    """The single TLV that must fill buf[cs:ce] exactly and carry ``tag`` (e.g. the
    OBJECT IDENTIFIER inside application-context-name) -> (content_start, content_end)."""
    t, s, e = read_tlv(buf, cs, ce)
    if t != tag or e != ce:
        raise DecodeError("bad field")
    return s, e


def read_uint(buf, cs, ce):
    """A small non-negative INTEGER content (1..4 octets); DecodeError otherwise."""
    n = ce - cs
    if n < 1 or n > 4 or buf[cs] & 0x80:
        raise DecodeError("bad int")
    v = 0
    for i in range(cs, ce):
        v = (v << 8) | buf[i]
    return v


def _tag(w, tag):
    if tag > 0xFF:
        w.u8(tag >> 8)
        tag &= 0xFF
    w.u8(tag)


def start(w, tag):
    """Write ``tag`` and a one-byte length slot; return the slot position for close()."""
    _tag(w, tag)
    mark = w.pos
    w.u8(0)
    return mark


def close(w, mark):
    """Fill the length slot written by start() with the number of bytes written since."""
    buf = w.buf
    n = w.pos - mark - 1
    if n < 0x80:
        buf[mark] = n
        return
    k = 1 if n <= 0xFF else 2 if n <= 0xFFFF else 3
    if w.pos + k > w.end:
        raise BufferFull()
    buf[mark + 1 + k : w.pos + k] = bytes(buf[mark + 1 : w.pos])
    w.pos += k
    buf[mark] = 0x80 | k
    for i in range(k, 0, -1):
        buf[mark + i] = n & 0xFF
        n >>= 8


def tlv(w, tag, data):
    """tag | length | data (bytes-like)."""
    _tag(w, tag)
    w.length(len(data))
    w.raw(data)


def small_int(w, tag, v):
    """tag | 01 | v: an INTEGER (or ENUMERATED) of value 0..127 in one octet."""
    if not 0 <= v <= 0x7F:
        raise ValueError("overflow")  # value out of range
    _tag(w, tag)
    w.u8(1)
    w.u8(v)
