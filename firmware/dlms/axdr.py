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
  when asked for a value (``data()`` returns ``bytes`` for strings; the typed readers
  return memoryviews). Decoding never trusts a length: every length and count is checked
  against the bytes that remain before use, nesting is bounded by ``MAX_DEPTH``, and any
  malformed input raises ``DecodeError`` -- never IndexError, struct.error or a hang.

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

MAX_DEPTH = const(16)  # most nested arrays/structures (and compact-array descriptions)

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
# struct format and value range per numeric tag (content only)
_FMT = {
    DOUBLE_LONG: ">i",
    DOUBLE_LONG_UNSIGNED: ">I",
    BCD: ">B",
    INTEGER: ">b",
    LONG: ">h",
    UNSIGNED: ">B",
    LONG_UNSIGNED: ">H",
    LONG64: ">q",
    LONG64_UNSIGNED: ">Q",
    ENUM: ">B",
    FLOAT32: ">f",
    FLOAT64: ">d",
}
_RANGE = {
    DOUBLE_LONG: (-0x80000000, 0x7FFFFFFF),
    DOUBLE_LONG_UNSIGNED: (0, 0xFFFFFFFF),
    BCD: (0, 0xFF),
    INTEGER: (-0x80, 0x7F),
    LONG: (-0x8000, 0x7FFF),
    UNSIGNED: (0, 0xFF),
    LONG_UNSIGNED: (0, 0xFFFF),
    LONG64: (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
    LONG64_UNSIGNED: (0, 0xFFFFFFFFFFFFFFFF),
    ENUM: (0, 0xFF),
}
_FLOAT32_MAX = 3.4028234663852886e38


class DecodeError(ValueError):
    """Malformed A-XDR/BER input. ``args[0]`` is a short text for traces; the layer that
    catches it decides the DLMS answer (exception-response, data-access-result, AARE)."""


class BufferFull(Exception):
    """The caller's buffer has no room for the value being written."""


def _range(v, lo, hi):
    if not lo <= v <= hi:
        raise ValueError("value out of range")


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
    raise ValueError("length too large")


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
        _range(v, 0, 0xFF)
        self.buf[self._room(1)] = v

    def u16(self, v):
        """Unsigned16, big-endian."""
        _range(v, 0, 0xFFFF)
        p = self._room(2)
        self.buf[p] = v >> 8
        self.buf[p + 1] = v & 0xFF

    def u32(self, v):
        """Unsigned32, big-endian."""
        _range(v, 0, 0xFFFFFFFF)
        struct.pack_into(">I", self.buf, self._room(4), v)

    def length(self, n):
        """A-XDR/BER length (shortest form): 0x00-0x7F, 81 xx, 82 xxxx, 83 .., 84 .."""
        if n < 0:
            raise ValueError("negative length")
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
                raise ValueError("value out of range")
        elif tag == FLOAT64:
            v = float(v)
        else:
            lo, hi = _RANGE[tag]
            _range(v, lo, hi)
        size = _SIZE[tag]
        if tagged:
            p = self._room(size + 1)
            self.buf[p] = tag
            p += 1
        else:
            p = self._room(size)
        struct.pack_into(_FMT[tag], self.buf, p, v)

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
            raise ValueError("bit-string size")
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
            raise ValueError("negative count")
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
            if _depth >= MAX_DEPTH:
                raise ValueError("nesting too deep")
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
            raise ValueError("not a simple Data tag")
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
            raise ValueError("bad compact-array type description")
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
            raise ValueError("element does not match the type description")
        if tag == ARRAY:
            count = (td[t + 1] << 8) | td[t + 2]
            if len(v) != count:
                raise ValueError("element does not match the type description")
            sub = t + 3
            t = _td_end(td, sub)
            for item in v:
                self._celem(td, sub, item)
            return t
        if tag == STRUCTURE:
            count, t = _len_at(td, t + 1)
            if len(v) != count:
                raise ValueError("element does not match the type description")
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
    if depth > MAX_DEPTH:
        raise DecodeError("nesting too deep")
    tag = r.u8()
    if tag == ARRAY:
        count = r.u16()
        m = _td_min_size(r, depth + 1)
        if m == 0 and count:
            raise DecodeError("compact-array of empty elements")
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
        raise DecodeError("bad type description")
    if size == _VAR or size == _BITS:
        return 1
    return size


class Reader:
    """A-XDR decoder over ``buf[pos:end]``. Every read is bounds-checked: DecodeError.

    The untagged readers and the typed readers of values up to 32 bits allocate nothing
    (beyond the int itself where it exceeds a small int); raw(), the string readers and
    data() return new objects."""

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
            raise DecodeError("bad length form")
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
            raise DecodeError("length beyond the data")
        return n

    def raw(self, n):
        """The next n bytes as a memoryview (no copy)."""
        if n < 0:
            raise DecodeError("negative size")
        p = self._take(n)
        return self.mv[p : p + n]

    def expect(self, tag):
        """Read a tag byte; DecodeError if it is not ``tag``."""
        if self.u8() != tag:
            raise DecodeError("unexpected tag")

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
            if depth >= MAX_DEPTH:
                raise DecodeError("nesting too deep")
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
            raise DecodeError("unknown tag")
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
        return struct.unpack_from(_FMT[tag], buf, p)[0]

    def _compact(self, depth, build):
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting too deep")
        t = self.pos
        if _td_min_size(self, depth + 1) == 0:
            raise DecodeError("compact-array of empty elements")
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

    # -- typed readers (check the tag, return the content) -------------------------------
    def _fixed(self, tag, fmt, size):
        self.expect(tag)
        return struct.unpack_from(fmt, self.buf, self._take(size))[0]

    def _byte(self, tag):
        self.expect(tag)
        return self.u8()

    def _string(self, tag):
        self.expect(tag)
        return self.raw(self.length())

    def null(self):
        self.expect(NULL)

    def boolean(self):
        return self._byte(BOOLEAN) != 0

    def bit_string(self):
        """-> (memoryview of the octets, number of bits)."""
        self.expect(BIT_STRING)
        nbits = self._len()
        return self.raw((nbits + 7) >> 3), nbits

    def double_long(self):
        self.expect(DOUBLE_LONG)
        v = self.u32()
        return v - 0x100000000 if v & 0x80000000 else v

    def double_long_unsigned(self):
        self.expect(DOUBLE_LONG_UNSIGNED)
        return self.u32()

    def octet_string(self):
        """-> memoryview (no copy)."""
        return self._string(OCTET_STRING)

    def visible_string(self):
        return self._string(VISIBLE_STRING)

    def utf8_string(self):
        return self._string(UTF8_STRING)

    def bcd(self):
        return self._byte(BCD)

    def integer(self):
        v = self._byte(INTEGER)
        return v - 256 if v > 127 else v

    def long(self):
        self.expect(LONG)
        v = self.u16()
        return v - 0x10000 if v & 0x8000 else v

    def unsigned(self):
        return self._byte(UNSIGNED)

    def long_unsigned(self):
        self.expect(LONG_UNSIGNED)
        return self.u16()

    def long64(self):
        return self._fixed(LONG64, ">q", 8)

    def long64_unsigned(self):
        return self._fixed(LONG64_UNSIGNED, ">Q", 8)

    def enum(self):
        return self._byte(ENUM)

    def float32(self):
        return self._fixed(FLOAT32, ">f", 4)

    def float64(self):
        return self._fixed(FLOAT64, ">d", 8)

    def date_time(self):
        """date-time [25] -> memoryview of 12 octets. (COSEM attributes usually carry
        date-time as octet-string(12): use octet_string() for those.)"""
        self.expect(DATE_TIME)
        return self.raw(12)

    def date(self):
        self.expect(DATE)
        return self.raw(5)

    def time(self):
        self.expect(TIME)
        return self.raw(4)

    def array(self):
        """array header -> element count (bounded by the remaining bytes)."""
        self.expect(ARRAY)
        return self.length()

    def structure(self):
        """structure header -> element count (bounded by the remaining bytes)."""
        self.expect(STRUCTURE)
        return self.length()


# -- COSEM date-time (Blue Book 4.1.6.1) -------------------------------------------------
# year(2) month day day-of-week hour minute second hundredths deviation(2, signed minutes,
# local time = UTC - deviation... see the Blue Book) status. 0xFF / 0xFFFF / 0x8000 mean
# "not specified"; month 0xFD/0xFE = DST end/begin, day 0xFD/0xFE = 2nd-last/last day.

DEVIATION_UNSPECIFIED = const(0x8000)
_DOW = b"\x00\x03\x02\x05\x00\x03\x05\x01\x04\x06\x02\x04"


def day_of_week(year, month, day):
    """1 = Monday .. 7 = Sunday (proleptic Gregorian calendar)."""
    y = year - 1 if month < 3 else year
    w = (y + y // 4 - y // 100 + y // 400 + _DOW[month - 1] + day) % 7  # 0 = Sunday
    return 7 if w == 0 else w


def _field(v, lo, hi, extra):
    if not (lo <= v <= hi or v in extra):
        raise ValueError("date-time field out of range")


def date_time_bytes(
    year,
    month,
    day,
    hour,
    minute,
    second,
    hundredths=0,
    deviation=DEVIATION_UNSPECIFIED,
    status=0,
    weekday=None,
):
    """The 12 octets of a COSEM date-time. ``weekday=None`` computes it (1=Monday..
    7=Sunday) when year, month and day are all specified, else 0xFF. Deviation is in
    minutes, -720..720, or 0x8000 (not specified). Out-of-range fields: ValueError."""
    _field(year, 0, 0xFFFF, ())
    _field(month, 1, 12, (0xFD, 0xFE, 0xFF))
    _field(day, 1, 31, (0xFD, 0xFE, 0xFF))
    _field(hour, 0, 23, (0xFF,))
    _field(minute, 0, 59, (0xFF,))
    _field(second, 0, 59, (0xFF,))
    _field(hundredths, 0, 99, (0xFF,))
    _field(status, 0, 0xFF, ())
    if deviation == DEVIATION_UNSPECIFIED or deviation == -0x8000:
        dev = 0x8000
    else:
        _field(deviation, -720, 720, ())
        dev = deviation & 0xFFFF
    if weekday is None:
        if year != 0xFFFF and 1 <= month <= 12 and 1 <= day <= 31:
            weekday = day_of_week(year, month, day)
        else:
            weekday = 0xFF
    _field(weekday, 1, 7, (0xFF,))
    b = bytearray(12)
    b[0] = year >> 8
    b[1] = year & 0xFF
    b[2] = month
    b[3] = day
    b[4] = weekday
    b[5] = hour
    b[6] = minute
    b[7] = second
    b[8] = hundredths
    b[9] = dev >> 8
    b[10] = dev & 0xFF
    b[11] = status
    return bytes(b)


def parse_date_time(b12):
    """-> (year, month, day, weekday, hour, minute, second, hundredths, deviation, status).
    Not-specified values are kept (0xFFFF, 0xFF, deviation 0x8000); a specified deviation
    comes back signed. DecodeError unless exactly 12 octets."""
    if len(b12) != 12:
        raise DecodeError("date-time is 12 octets")
    dev = (b12[9] << 8) | b12[10]
    if dev != 0x8000 and dev & 0x8000:
        dev -= 0x10000
    return (
        (b12[0] << 8) | b12[1],
        b12[2],
        b12[3],
        b12[4],
        b12[5],
        b12[6],
        b12[7],
        b12[8],
        dev,
        b12[11],
    )
