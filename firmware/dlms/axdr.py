"""A-XDR encoding of COSEM data (IEC 61334-6 A-XDR as profiled by DLMS UA Blue Book
4.1.5-4.1.6 "Data" CHOICE, and Green Book "A-XDR encoding rules"; IEC 62056-6-2).

What A-XDR is, in three sentences: every value of the Data CHOICE is one tag byte (the
CHOICE index) followed by its content; fixed-size types (integer, long, double-long, enum,
float, date-time ...) are their big-endian bytes with no length; variable-size types
(octet-string, visible-string, utf8-string, bit-string) and the element counts of array /
structure carry a length: one byte below 0x80, else 0x81 xx, 0x82 xxxx (0x83, 0x84 for
longer).

Two classes:

* ``Writer`` encodes into a caller's bytearray/memoryview, in place, and raises
  ``BufferFull`` when there is no room; values out of range for their type raise
  ``ValueError`` (never a silent wrap). ``pos`` is the number of bytes written when started
  at 0.
* ``Reader`` walks a bytes/bytearray/memoryview with an offset and never copies except
  when asked for a value (``data()`` returns a typed value, with ``bytes`` for strings;
  ``raw(n)`` returns a memoryview). One field of a known type is read with ``expect(tag)``
  followed by the untagged readers (``u8``, ``u16``, ``u32``, ``length``, ``raw``); every
  other value with ``data()``. Decoding never trusts a length: every length and count is
  checked against the bytes that remain before use, nesting is bounded (16 levels of arrays,
  structures and compact-array descriptions), and any malformed input raises
  ``DecodeError`` -- never IndexError, struct.error or a hang.

A *typed value* is a plain tuple ``(tag, value)`` (no per-value objects):

    NULL, DONT_CARE        None
    BOOLEAN                bool
    integers, ENUM, BCD    int (BCD: the raw octet, two BCD digits, e.g. 0x42 for "42")
    FLOAT32, FLOAT64       float
    OCTET/VISIBLE/UTF8     bytes
    BIT_STRING             (bytes, number_of_bits)
    DATE_TIME, DATE, TIME  bytes of 12, 5, 4
    ARRAY, STRUCTURE       list of typed values
    COMPACT_ARRAY          (type_description bytes, list of typed values) -- see below

compact-array (Blue Book 4.1.6.3): ``13 | TypeDescription | length | contents``. The
TypeDescription describes one element: a simple tag, ``01 nnnn <td>`` (array of nnnn
elements of <td>) or ``02 <count> <td>...`` (structure). The contents are the elements
without their tags (strings keep their lengths, arrays/structures their counts are implied
by the description); the number of elements follows from the contents length. Element types
whose encoding can be empty (null-data, dont-care, array of such) are refused: they would
make the element count undefined and let a few bytes describe billions of elements.

RAM: nothing at module level except constants; a Writer or Reader holds its buffer
reference, two ints and (Reader) one memoryview. ``data()`` allocates the decoded value.
The module is kept small because a board holds its code in RAM: the COSEM date-time helpers
(``date_time_bytes``, ``parse_date_time``, ``day_of_week``) live in ``axdr_tools``, and the
Reader has no per-type methods (``data()`` decodes every type).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


import struct

# Data CHOICE tags (Blue Book 4.1.5 "Data"). Public: other modules import them.
NULL = const(0)
ARRAY = const(1)
STRUCTURE = const(2)
BOOLEAN = const(3)
BIT_STRING = const(4)
DOUBLE_LONG = const(5)
DOUBLE_LONG_UNSIGNED = const(6)
OCTET_STRING = const(9)
VISIBLE_STRING = const(10)
UTF8_STRING = const(12)
BCD = const(13)
INTEGER = const(15)
LONG = const(16)
UNSIGNED = const(17)
LONG_UNSIGNED = const(18)
COMPACT_ARRAY = const(19)
LONG64 = const(20)
LONG64_UNSIGNED = const(21)
ENUM = const(22)
FLOAT32 = const(23)
FLOAT64 = const(24)
DATE_TIME = const(25)
DATE = const(26)
TIME = const(27)
DONT_CARE = const(255)

_MAX_DEPTH = const(16)  # most nested arrays/structures (and compact-array descriptions)

# Content size per tag, indexed by tag 0..27 (DONT_CARE handled apart):
# 0..12 = fixed size in bytes, _VAR = length-prefixed octets, _BITS = bit-string,
# _CONT = array/structure/compact-array, _BAD = not a Data tag.
_VAR = const(0xFD)
_BITS = const(0xFC)
_CONT = const(0xFE)
_BAD = const(0xFF)
_SIZE = (
    b"\x00\xfe\xfe\x01\xfc\x04\x04\xff\xff\xfd\xfd\xff\xfd\x01"
    b"\xff\x01\x02\x01\x02\xfe\x08\x08\x01\x04\x08\x0c\x05\x04"
)
_FLOAT32_MAX = 3.4028234663852886e38


class DecodeError(ValueError):
    """Malformed A-XDR/BER input. ``args[0]`` is a short text for traces; the layer that
    catches it decides the DLMS answer (exception-response, data-access-result, AARE)."""


class BufferFull(Exception):
    """The caller's buffer has no room for the value being written."""


def _check(tag, v):
    """ValueError unless v is in the range of integer tag (enum and bcd: 0..255). The bounds
    are literals, so checking even a long int allocates nothing."""
    if tag == INTEGER:
        ok = -0x80 <= v <= 0x7F
    elif tag == LONG:
        ok = -0x8000 <= v <= 0x7FFF
    elif tag == DOUBLE_LONG:
        ok = -0x80000000 <= v <= 0x7FFFFFFF
    elif tag == LONG64:
        ok = -0x8000000000000000 <= v <= 0x7FFFFFFFFFFFFFFF
    else:  # unsigned of 1, 2, 4 or 8 octets
        size = _SIZE[tag]
        ok = 0 <= v <= (
            0xFF if size == 1 else 0xFFFF if size == 2 else 0xFFFFFFFF if size == 4 else
            0xFFFFFFFFFFFFFFFF
        )
    if not ok:
        raise ValueError("overflow")  # value out of range


def _fmt(tag):
    """struct format of the content of a fixed-size number tag (integers, enum, bcd, floats)."""
    if tag == INTEGER:
        return ">b"
    if tag == LONG:
        return ">h"
    if tag == DOUBLE_LONG:
        return ">i"
    if tag == LONG64:
        return ">q"
    if tag == FLOAT32:
        return ">f"
    if tag == FLOAT64:
        return ">d"
    size = _SIZE[tag]  # the unsigned ones
    return ">B" if size == 1 else ">H" if size == 2 else ">I" if size == 4 else ">Q"


def _len_size(n):
    """Bytes taken by an A-XDR/BER length of n (shortest form)."""
    if n < 0x80:
        return 1
    if n <= 0xFF:
        return 2
    if n <= 0xFFFF:
        return 3
    if n <= 0xFFFFFF:
        return 4
    if n <= 0xFFFFFFFF:
        return 5
    raise ValueError("too long")  # length too large


class Writer:
    """A-XDR encoder writing into ``buf[pos:end]`` in place. The typed writers allocate
    nothing for integers, headers and whole strings (floats and sliced strings do)."""

    def __init__(self, buf, pos=0, end=None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def reset(self, pos=0):
        """Start writing again at pos (default: the beginning)."""
        self.pos = pos

    def _room(self, n):
        """Reserve n bytes; return their start. BufferFull (nothing reserved) if too few."""
        p = self.pos
        if p + n > self.end:
            raise BufferFull()
        self.pos = p + n
        return p

    def _put_len(self, p, n):
        """Write length n at p (room already reserved); return the position after it."""
        buf = self.buf
        if n < 0x80:
            buf[p] = n
            return p + 1
        k = _len_size(n) - 1
        buf[p] = 0x80 | k
        for i in range(k, 0, -1):
            buf[p + i] = n & 0xFF
            n >>= 8
        return p + k + 1

    # -- untagged building blocks -------------------------------------------------------
    def u8(self, v):
        """One octet 0..255."""
        _check(UNSIGNED, v)
        self.buf[self._room(1)] = v

    def u16(self, v):
        """Unsigned16, big-endian."""
        _check(LONG_UNSIGNED, v)
        p = self._room(2)
        self.buf[p] = v >> 8
        self.buf[p + 1] = v & 0xFF

    def u32(self, v):
        """Unsigned32, big-endian."""
        _check(DOUBLE_LONG_UNSIGNED, v)
        struct.pack_into(">I", self.buf, self._room(4), v)

    def length(self, n):
        """A-XDR/BER length (shortest form): 0x00-0x7F, 81 xx, 82 xxxx, 83 .., 84 .."""
        if n < 0:
            raise ValueError("bad length")  # negative length
        self._put_len(self._room(_len_size(n)), n)

    def raw(self, data, start=0, end=None):
        """Copy data[start:end] verbatim (no tag, no length)."""
        if end is None:
            end = len(data)
        n = end - start
        if n < 0 or start < 0 or end > len(data):
            raise ValueError("bad slice")
        p = self._room(n)
        if start == 0 and end == len(data):
            self.buf[p : p + n] = data
        else:
            self.buf[p : p + n] = memoryview(data)[start:end]

    # -- typed encoders (tag + content) -------------------------------------------------
    def _num(self, tag, v, tagged=True):
        """A fixed-size number (integers, enum, bcd, floats), range-checked first."""
        if tag == FLOAT32:
            v = float(v)
            if v == v and (_FLOAT32_MAX < v < 1e400 or -1e400 < v < -_FLOAT32_MAX):
                raise ValueError("overflow")  # value out of range
        elif tag == FLOAT64:
            v = float(v)
        else:
            _check(tag, v)
        size = _SIZE[tag]
        if tagged:
            p = self._room(size + 1)
            self.buf[p] = tag
            p += 1
        else:
            p = self._room(size)
        struct.pack_into(_fmt(tag), self.buf, p, v)

    def _bytes(self, tag, data, start, n, nlen):
        """[tag] | length nlen | data[start:start+n] (tag 0: untagged, as in compact-array
        contents); all-or-nothing room check. Returns where the octets start."""
        if tag:
            p = self._room(1 + _len_size(nlen) + n)
            self.buf[p] = tag
            p += 1
        else:
            p = self._room(_len_size(nlen) + n)
        p = self._put_len(p, nlen)
        if start == 0 and n == len(data):
            self.buf[p : p + n] = data
        else:
            self.buf[p : p + n] = memoryview(data)[start : start + n]
        return p

    def _bits(self, tag, data, nbits):
        """[tag] | length in *bits* | ceil(nbits/8) octets, unused bits zeroed (tag 0:
        untagged)."""
        nbytes = (nbits + 7) >> 3
        if nbits < 0 or len(data) != nbytes:
            raise ValueError("bad bits")  # bit-string size
        p = self._bytes(tag, data, 0, nbytes, nbits)
        if nbits & 7:
            self.buf[p + nbytes - 1] &= (0xFF << (8 - (nbits & 7))) & 0xFF

    def _exact(self, tag, data, n):
        """A fixed-size octet value (date-time, date, time); tag 0: untagged."""
        if len(data) != n:
            raise ValueError("wrong size")
        if tag:
            p = self._room(1 + n)
            self.buf[p] = tag
            p += 1
        else:
            p = self._room(n)
        self.buf[p : p + n] = data

    def null(self):
        """null-data [0]."""
        self.buf[self._room(1)] = NULL

    def dont_care(self):
        """dont-care [255] (used in selective-access filters)."""
        self.buf[self._room(1)] = DONT_CARE

    def boolean(self, v):
        """boolean [3]: 01 for TRUE, 00 for FALSE."""
        p = self._room(2)
        self.buf[p] = BOOLEAN
        self.buf[p + 1] = 1 if v else 0

    def bit_string(self, data, nbits):
        """bit-string [4]: length in *bits*, then ceil(nbits/8) octets; bit 0 is the MSB of
        the first octet. Unused trailing bits are written as 0."""
        self._bits(BIT_STRING, data, nbits)

    def double_long(self, v):
        """double-long [5]: Integer32."""
        self._num(DOUBLE_LONG, v)

    def double_long_unsigned(self, v):
        """double-long-unsigned [6]: Unsigned32."""
        self._num(DOUBLE_LONG_UNSIGNED, v)

    def octet_string(self, data, start=0, end=None):
        """octet-string [9]: length + data[start:end]."""
        if end is None:
            end = len(data)
        if start < 0 or end < start or end > len(data):
            raise ValueError("bad slice")
        self._bytes(OCTET_STRING, data, start, end - start, end - start)

    def visible_string(self, data):
        """visible-string [10]: length + ASCII octets (a str is encoded first)."""
        if isinstance(data, str):
            data = data.encode()
        self._bytes(VISIBLE_STRING, data, 0, len(data), len(data))

    def utf8_string(self, data):
        """utf8-string [12]: length + UTF-8 octets (a str is encoded first)."""
        if isinstance(data, str):
            data = data.encode()
        self._bytes(UTF8_STRING, data, 0, len(data), len(data))

    def bcd(self, v):
        """bcd [13]: one octet holding two BCD digits (v is the raw octet 0..255)."""
        self._num(BCD, v)

    def integer(self, v):
        """integer [15]: Integer8."""
        self._num(INTEGER, v)

    def long(self, v):
        """long [16]: Integer16."""
        self._num(LONG, v)

    def unsigned(self, v):
        """unsigned [17]: Unsigned8."""
        self._num(UNSIGNED, v)

    def long_unsigned(self, v):
        """long-unsigned [18]: Unsigned16."""
        self._num(LONG_UNSIGNED, v)

    def long64(self, v):
        """long64 [20]: Integer64."""
        self._num(LONG64, v)

    def long64_unsigned(self, v):
        """long64-unsigned [21]: Unsigned64."""
        self._num(LONG64_UNSIGNED, v)

    def enum(self, v):
        """enum [22]: Unsigned8."""
        self._num(ENUM, v)

    def float32(self, v):
        """float32 [23]: IEEE 754 single, big-endian. Finite values beyond its range are
        refused (inf and nan pass)."""
        self._num(FLOAT32, v)

    def float64(self, v):
        """float64 [24]: IEEE 754 double, big-endian."""
        self._num(FLOAT64, v)

    def date_time(self, b12):
        """date-time [25]: the 12 octets of a COSEM date-time (see date_time_bytes)."""
        self._exact(DATE_TIME, b12, 12)

    def date(self, b5):
        """date [26]: year(2) month day day-of-week."""
        self._exact(DATE, b5, 5)

    def time(self, b4):
        """time [27]: hour minute second hundredths."""
        self._exact(TIME, b4, 4)

    def _header(self, tag, count):
        if count < 0:
            raise ValueError("bad count")  # negative count
        p = self._room(1 + _len_size(count))
        self.buf[p] = tag
        self._put_len(p + 1, count)

    def array(self, count):
        """array [1] header; the caller writes ``count`` elements next."""
        self._header(ARRAY, count)

    def structure(self, count):
        """structure [2] header; the caller writes ``count`` elements next."""
        self._header(STRUCTURE, count)

    # -- generic encoder for typed values ------------------------------------------------
    def data(self, value, _depth=0):
        """Encode one typed value ``(tag, value)`` (see the module docstring)."""
        tag, v = value
        if tag == ARRAY or tag == STRUCTURE:
            if _depth >= _MAX_DEPTH:
                raise ValueError("too deep")  # nesting too deep
            self._header(tag, len(v))
            for item in v:
                self.data(item, _depth + 1)
        elif tag == COMPACT_ARRAY:
            self._compact(v, _depth)
        else:
            self._content(tag, v, True)

    def _content(self, tag, v, tagged):
        """A non-container value, with its tag or (compact-array contents) without."""
        size = _SIZE[tag] if 0 <= tag < len(_SIZE) else (0 if tag == DONT_CARE else _BAD)
        if size == _BAD or size == _CONT:
            raise ValueError("bad tag")  # not a simple Data tag
        t = tag if tagged else 0
        if tag == NULL or tag == DONT_CARE:
            if tagged:
                self.buf[self._room(1)] = tag
        elif tag == BOOLEAN:
            if tagged:
                self.boolean(v)
            else:
                self.buf[self._room(1)] = 1 if v else 0
        elif size == _BITS:
            self._bits(t, v[0], v[1])
        elif size == _VAR:
            if isinstance(v, str):
                v = v.encode()
            self._bytes(t, v, 0, len(v), len(v))
        elif tag == DATE_TIME or tag == DATE or tag == TIME:
            self._exact(t, v, size)
        else:
            self._num(tag, v, tagged)

    def _compact(self, v, depth):
        """compact-array [19] from (type_description, elements)."""
        td, items = v
        r = Reader(td)
        if _td_min_size(r, depth + 1) == 0 or r.pos != len(td):
            raise ValueError("bad td")  # bad compact-array type description
        self.u8(COMPACT_ARRAY)
        self.raw(td)
        # contents: written after a one-byte length slot, moved if the length needs more
        slot = self._room(1)
        start = self.pos
        for item in items:
            self._celem(td, 0, item)
        n = self.pos - start
        k = _len_size(n) - 1
        if k:
            self._room(k)
            self.buf[start + k : start + k + n] = bytes(self.buf[start : start + n])
        self._put_len(slot, n)

    def _celem(self, td, t, value):
        """Write one untagged compact-array element described by td[t:]; return the end of
        that description."""
        tag = td[t]
        vtag, v = value
        if vtag != tag:
            raise ValueError("mismatch")  # element does not match the type description
        if tag == ARRAY:
            count = (td[t + 1] << 8) | td[t + 2]
            if len(v) != count:
                raise ValueError("mismatch")  # element does not match the type description
            sub = t + 3
            t = _td_end(td, sub)
            for item in v:
                self._celem(td, sub, item)
            return t
        if tag == STRUCTURE:
            count, t = _len_at(td, t + 1)
            if len(v) != count:
                raise ValueError("mismatch")  # element does not match the type description
            for item in v:
                t = self._celem(td, t, item)
            return t
        self._content(tag, v, False)
        return t + 1


def _len_at(b, p):
    """A length at b[p] in a buffer already validated; returns (n, next position)."""
    n = b[p]
    if n < 0x80:
        return n, p + 1
    k = n & 0x7F
    n = 0
    for i in range(k):
        n = (n << 8) | b[p + 1 + i]
    return n, p + 1 + k


def _td_end(td, t):
    """End of the (validated) type description starting at td[t]."""
    tag = td[t]
    if tag == ARRAY:
        return _td_end(td, t + 3)
    if tag == STRUCTURE:
        count, t = _len_at(td, t + 1)
        for _ in range(count):
            t = _td_end(td, t)
        return t
    return t + 1


_SIZE_CAP = const(0x3FFFFFFF)


def _td_min_size(r, depth):
    """Read and validate one compact-array TypeDescription from Reader r; return the
    smallest number of content bytes one element of that type can take (capped).
    DecodeError on a malformed description or on an array of possibly empty elements."""
    if depth > _MAX_DEPTH:
        raise DecodeError("too deep")  # nesting too deep
    tag = r.u8()
    if tag == ARRAY:
        count = r.u16()
        m = _td_min_size(r, depth + 1)
        if m == 0 and count:
            raise DecodeError("empty elem")  # compact-array of empty elements
        m *= count
        return _SIZE_CAP if m > _SIZE_CAP else m
    if tag == STRUCTURE:
        count = r.length()
        m = 0
        for _ in range(count):
            m += _td_min_size(r, depth + 1)
            if m > _SIZE_CAP:
                m = _SIZE_CAP
        return m
    if tag == DONT_CARE or tag == NULL:
        return 0
    size = _SIZE[tag] if tag < len(_SIZE) else _BAD
    if size == _BAD or size == _CONT:
        raise DecodeError("bad td")  # bad type description
    if size == _VAR or size == _BITS:
        return 1
    return size


class Reader:
    """A-XDR decoder over ``buf[pos:end]``. Every read is bounds-checked: DecodeError.

    The untagged readers and expect() allocate nothing (beyond the int itself where it
    exceeds a small int); raw() and data() return new objects."""

    def __init__(self, buf, pos=0, end=None):
        if end is None:
            end = len(buf)
        if not 0 <= pos <= end <= len(buf):
            raise ValueError("bad window")
        self.buf = buf
        self.mv = memoryview(buf)
        self.pos = pos
        self.end = end

    def remaining(self):
        """Bytes left before ``end``."""
        return self.end - self.pos

    def _take(self, n):
        """Consume n bytes; return where they start."""
        p = self.pos
        if n > self.end - p:
            raise DecodeError("truncated")
        self.pos = p + n
        return p

    # -- untagged building blocks -------------------------------------------------------
    def u8(self):
        return self.buf[self._take(1)]

    def u16(self):
        p = self._take(2)
        return (self.buf[p] << 8) | self.buf[p + 1]

    def u32(self):
        p = self._take(4)
        b = self.buf
        return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]

    def _len(self):
        """A length in any definite form, not yet checked against what remains."""
        n = self.u8()
        if n < 0x80:
            return n
        k = n & 0x7F
        if k == 0 or k > 4:
            raise DecodeError("bad length")  # bad length form
        p = self._take(k)
        n = 0
        for i in range(k):
            n = (n << 8) | self.buf[p + i]
        return n

    def length(self):
        """A-XDR length or element count; DecodeError if larger than what remains (every
        counted item takes at least one byte)."""
        n = self._len()
        if n > self.end - self.pos:
            raise DecodeError("truncated")  # length beyond the data
        return n

    def raw(self, n):
        """The next n bytes as a memoryview (no copy)."""
        if n < 0:
            raise DecodeError("bad size")  # negative size
        p = self._take(n)
        return self.mv[p : p + n]

    def expect(self, tag):
        """Read a tag byte; DecodeError if it is not ``tag``."""
        if self.u8() != tag:
            raise DecodeError("bad tag")  # unexpected tag

    # -- generic decoding ---------------------------------------------------------------
    def data(self):
        """Decode one complete Data element into a typed value (recursive, bounded)."""
        return self._data(0, True)

    def skip_data(self):
        """Validate and skip one Data element without building it; return its tag."""
        p = self.pos
        self._data(0, False)
        return self.buf[p]

    def _data(self, depth, build):
        tag = self.u8()
        if tag == ARRAY or tag == STRUCTURE:
            if depth >= _MAX_DEPTH:
                raise DecodeError("too deep")  # nesting too deep
            n = self.length()
            if not build:
                for _ in range(n):
                    self._data(depth + 1, False)
                return None
            items = []
            for _ in range(n):
                items.append(self._data(depth + 1, True))
            return (tag, items)
        if tag == COMPACT_ARRAY:
            v = self._compact(depth, build)
        else:
            v = self._content(tag, build)
        return (tag, v) if build else None

    def _content(self, tag, build):
        """Content of one non-container value (after its tag, or untagged in a
        compact-array)."""
        if tag == NULL or tag == DONT_CARE:
            return None
        size = _SIZE[tag] if tag < len(_SIZE) else _BAD
        if size == _BAD or size == _CONT:
            raise DecodeError("bad tag")  # unknown tag
        buf = self.buf
        if size == _VAR:
            n = self.length()
            p = self._take(n)
            return bytes(buf[p : p + n]) if build else None
        if size == _BITS:
            nbits = self._len()
            nbytes = (nbits + 7) >> 3
            p = self._take(nbytes)
            return (bytes(buf[p : p + nbytes]), nbits) if build else None
        p = self._take(size)
        if not build:
            return None
        if tag == BOOLEAN:
            return buf[p] != 0
        if tag == UNSIGNED or tag == ENUM or tag == BCD:
            return buf[p]
        if tag == LONG_UNSIGNED:
            return (buf[p] << 8) | buf[p + 1]
        if tag == DATE_TIME or tag == DATE or tag == TIME:
            return bytes(buf[p : p + size])
        return struct.unpack_from(_fmt(tag), buf, p)[0]

    def _compact(self, depth, build):
        if depth >= _MAX_DEPTH:
            raise DecodeError("too deep")  # nesting too deep
        t = self.pos
        if _td_min_size(self, depth + 1) == 0:
            raise DecodeError("empty elem")  # compact-array of empty elements
        td_end = self.pos
        n = self.length()
        cend = self.pos + n
        items = [] if build else None
        saved = self.end
        self.end = cend  # elements may not run past the contents
        try:
            while self.pos < cend:
                v = self._celem(t, build)[0]
                if build:
                    items.append(v)
        finally:
            self.end = saved
        if build:
            return (bytes(self.buf[t:td_end]), items)
        return None

    def _celem(self, t, build):
        """One untagged element described by the (validated) description at buf[t];
        returns (typed value or None, end of the description)."""
        buf = self.buf
        tag = buf[t]
        if tag == ARRAY:
            count = (buf[t + 1] << 8) | buf[t + 2]
            sub = t + 3
            items = [] if build else None
            for _ in range(count):
                v = self._celem(sub, build)[0]
                if build:
                    items.append(v)
            return ((ARRAY, items) if build else None), _td_end(buf, sub)
        if tag == STRUCTURE:
            count, t = _len_at(buf, t + 1)
            items = [] if build else None
            for _ in range(count):
                v, t = self._celem(t, build)
                if build:
                    items.append(v)
            return ((STRUCTURE, items) if build else None), t
        v = self._content(tag, build)
        return ((tag, v) if build else None), t + 1
