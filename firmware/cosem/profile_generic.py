"""Profile Generic (interface class 7, version 1; Blue Book 4.3.6): load profile, daily
billing values, event log.

Attributes (version 1):
 1 logical_name      octet-string
 2 buffer            array of structure (one per row, the capture objects' values)
 3 capture_objects   array of capture_object_definition
                     {class_id long-unsigned, logical_name octet-string(6),
                      attribute_index integer, data_index long-unsigned}
 4 capture_period    double-long-unsigned, seconds; 0 = no automatic capture
 5 sort_method       enum: 1 fifo (rows in capture order, oldest first)
 6 sort_object       capture_object_definition (the clock column; fifo does not use it)
 7 entries_in_use    double-long-unsigned
 8 profile_entries   double-long-unsigned
Methods: 1 reset (integer 0): empties the buffer; 2 capture (integer 0): one row now.

This meter: the buffer lives in flash (``meter.profile_log.ProfileLog``), one fixed-size
binary row per capture; capture_objects are fixed (the object table decides them), so
attribute 3 is read-only; capture_period is writable where the table grants it (a value
that does not divide a day evenly is refused with other-reason, so captures stay on local
clock boundaries); profile_entries is fixed by the flash budget.

Selective access on the buffer (attribute 2):
* selector 1, range_descriptor {restricting_object, from_value, to_value, selected_values}:
  the restricting object must be the clock column (class 8, attribute 2, data index 0);
  from/to are date-times (octet-string(12) or the date-time type) with any deviation,
  ``8000`` (the meter's local time) included, and any status; rows with from <= time <= to.
  selected_values: an empty array means every column, else the listed capture objects
  (each must be a column; shown in the buffer's column order).
* selector 2, entry_descriptor {from_entry, to_entry, from_selected_value,
  to_selected_value}: entries and columns counted from 1 in the shown buffer, 0 meaning the
  last; a from past the end gives an empty array.
Anything else in the access parameters answers other-reason (a wrong type:
type-unmatched).

The buffer is streamed one row per pump step, read from flash on demand: RAM does not grow
with the number of rows. The rows of a reply are fixed when the reply starts (captures
during a long download are not added to it). For a range on a profile whose times only
increase (load profile, billing), the bounds are found by binary search over the rows
(O(log n) flash reads); the event log (times can repeat or go back with clock setting) is
scanned.

Row storage per column kind: CLOCK 5 octets (u32 UTC seconds since 2000, then the
clock_status bits that were true at capture: invalid, doubtful), U8 1, U16 2, U32 4.
A clock column is shown in the meter's current time zone and daylight-saving rules, with
the stored status (and the DST bit for that instant).

RAM: the column table and a row buffer per profile; a small state per download.
"""

import struct

from cosem.base import CosemObject, expect
from dlms import axdr
from dlms import xdlms

CLOCK = 0
U8 = 1
U16 = 2
U32 = 3
_SIZE = (5, 1, 2, 4)

SORT_FIFO = 1

_STATUS_DST = 0x80


def column(class_id, ln, attr, kind, source=None):
    """One capture object: (class_id, ln 6 octets, attribute, kind, source), source a
    callable returning the int to store (None: 0)."""
    return (class_id, ln, attr, kind, source)


def _is_int(value):
    return value is not None and value[0] in (
        axdr.DOUBLE_LONG_UNSIGNED, axdr.LONG_UNSIGNED, axdr.UNSIGNED, axdr.DOUBLE_LONG,
        axdr.LONG, axdr.INTEGER, axdr.LONG64_UNSIGNED, axdr.LONG64)


class ProfileGeneric(CosemObject):
    CLASS_ID = 7
    VERSION = 1
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("buffer", axdr.ARRAY),
        ("capture_objects", axdr.ARRAY),
        ("capture_period", axdr.DOUBLE_LONG_UNSIGNED),
        ("sort_method", axdr.ENUM),
        ("sort_object", axdr.STRUCTURE),
        ("entries_in_use", axdr.DOUBLE_LONG_UNSIGNED),
        ("profile_entries", axdr.DOUBLE_LONG_UNSIGNED),
    )
    METHODS = ("reset", "capture")

    def __init__(self, ln, log, columns, clock, capture_period=0, increasing=True):
        super().__init__(ln)
        self.log = log  # meter.profile_log.ProfileLog (or None: an empty profile)
        self.columns = columns
        self.clock = clock  # meter.clock.Clock: encodes the clock column
        self.capture_period = capture_period
        self.increasing = increasing  # capture times only increase: binary search works
        size = 0
        for c in columns:
            size += _SIZE[c[3]]
        self.row_size = size
        self.row = bytearray(size)
        self.on_capture = []  # hooks f(profile, utc) after a row was stored
        self.on_reset = []
        self.on_period_change = []  # hooks f(profile): persist capture_period
        self.now = None  # callable () -> (utc seconds, clock status) for method capture
        self.captures = 0

    # ------------------------------------------------------------------ capturing
    def capture(self, utc, status=0):
        """Store one row stamped ``utc`` (seconds since 2000, UTC) with the values of the
        capture objects now. ``status``: clock_status bits (invalid, doubtful) for the clock
        column. Returns True if the row reached flash; False if it did not (the ring or
        flash refused it, or a value source failed, e.g. MemoryError on a full heap: the row
        is missed, never stored with a made-up value, and the caller goes on)."""
        row = self.row
        p = 0
        try:
            for c in self.columns:
                kind = c[3]
                if kind == CLOCK:
                    struct.pack_into(">IB", row, p, utc, status & 0x7F)
                else:
                    v = c[4]() if c[4] is not None else 0
                    if v is None or v < 0:
                        v = 0
                    if kind == U8:
                        row[p] = v & 0xFF
                    elif kind == U16:
                        struct.pack_into(">H", row, p, v & 0xFFFF)
                    else:
                        struct.pack_into(">I", row, p, v & 0xFFFFFFFF)
                p += _SIZE[kind]
            if self.log is None:
                return False
            self.log.append(row)
        except Exception:  # OSError from flash, MemoryError, a failing source
            return False
        self.captures += 1
        for hook in self.on_capture:
            hook(self, utc)
        return True

    def last_time(self):
        """UTC of the newest row (its clock column), or None."""
        log = self.log
        if log is None or log.next == log.first:
            return None
        off = self._clock_offset()
        if off < 0:
            return None
        return log.read_u32(log.next - 1, off)

    def _clock_offset(self):
        p = 0
        for c in self.columns:
            if c[3] == CLOCK:
                return p
            p += _SIZE[c[3]]
        return -1

    # ------------------------------------------------------------------ attributes
    def get(self, attr, w, ctx, ref):
        if attr == 2:
            sel = ref.selector if ref is not None else 0
            return self._buffer(w, sel, ref.selection if sel else None)
        return super().get(attr, w, ctx, ref)

    def get_attr(self, attr, w, ctx):
        if attr == 3:
            w.array(len(self.columns))
            for c in self.columns:
                self._definition(w, c)
        elif attr == 4:
            w.double_long_unsigned(self.capture_period)
        elif attr == 5:
            w.enum(SORT_FIFO)
        elif attr == 6:
            for c in self.columns:
                if c[3] == CLOCK:
                    self._definition(w, c)
                    return 0
            self._definition(w, (0, bytes(6), 0, 0, None))
        elif attr == 7:
            w.double_long_unsigned(self.log.in_use() if self.log else 0)
        elif attr == 8:
            w.double_long_unsigned(self.log.entries if self.log else 0)
        else:
            return xdlms.DAR_OBJECT_UNAVAILABLE
        return 0

    @staticmethod
    def _definition(w, c):
        w.structure(4)
        w.long_unsigned(c[0])
        w.octet_string(c[1])
        w.integer(c[2])
        w.long_unsigned(0)

    def set_attr(self, attr, value, ctx):
        if attr == 4:
            v = expect(value, axdr.DOUBLE_LONG_UNSIGNED)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            if v != 0 and (v > 86400 or 86400 % v):
                return xdlms.DAR_OTHER_REASON
            self.capture_period = v
            for hook in self.on_period_change:
                hook(self)
            return 0
        return xdlms.DAR_READ_WRITE_DENIED

    def action(self, method, param, w, ctx):
        if param is not None and param[0] != axdr.INTEGER:
            return xdlms.DAR_TYPE_UNMATCHED
        if method == 1:
            if self.log is not None:
                self.log.reset()
            for hook in self.on_reset:
                hook(self)
            return 0
        if method == 2:
            if self.now is None:
                return xdlms.DAR_OBJECT_UNAVAILABLE
            utc, status = self.now()
            return 0 if self.capture(utc, status) else xdlms.DAR_HARDWARE_FAULT
        return xdlms.DAR_OBJECT_UNAVAILABLE

    # ------------------------------------------------------------------ the buffer
    def _buffer(self, w, selector, sel):
        log = self.log
        ncol = len(self.columns)
        mask = (1 << ncol) - 1
        if log is None:
            w.array(0)
            return 0
        lo = log.start()
        hi = log.next
        if selector == 1:
            r = self._range(sel, lo, hi)
            if isinstance(r, int):
                return r
            if len(r) == 4:
                return self._rows(w, r[0], r[1], r[2], r[3])
            lo, hi, mask = r
        elif selector == 2:
            r = self._entries(sel, lo, hi)
            if isinstance(r, int):
                return r
            lo, hi, mask = r
        elif selector:
            return xdlms.DAR_OTHER_REASON
        return self._rows(w, lo, hi, mask)

    def _rows(self, w, lo, hi, mask, flt=None):
        log = self.log
        if flt is None:
            count = hi - lo if hi > lo else 0
        else:
            count = 0
            for a in range(lo, hi):
                if self._inside(a, flt):
                    count += 1
        w.array(count)
        yield
        n = 0
        m = mask
        while m:
            n += m & 1
            m >>= 1
        a = lo
        while a < hi and count:
            if flt is not None and not self._inside(a, flt):
                a += 1
                continue
            count -= 1
            row = log.read(a)
            w.structure(n)
            if row is None:
                for _ in range(n):
                    w.null()  # a row lost to flash corruption: its place is kept
            else:
                self._emit(w, row, mask)
            a += 1
            yield
        while count:  # rows counted but gone since (flash error): keep the array's length
            count -= 1
            w.structure(n)
            for _ in range(n):
                w.null()
            yield

    def _inside(self, a, flt):
        t = self.log.read_u32(a, flt[2])
        return t is not None and flt[0] <= t <= flt[1]

    def _emit(self, w, row, mask):
        p = 0
        bit = 1
        for c in self.columns:
            kind = c[3]
            if mask & bit:
                if kind == CLOCK:
                    utc, status = struct.unpack_from(">IB", row, p)
                    b = self.clock.encode(utc)
                    b[11] = status | (b[11] & _STATUS_DST)
                    w.octet_string(b)
                elif kind == U8:
                    w.unsigned(row[p])
                elif kind == U16:
                    w.long_unsigned((row[p] << 8) | row[p + 1])
                else:
                    w.double_long_unsigned(struct.unpack_from(">I", row, p)[0])
            p += _SIZE[kind]
            bit <<= 1

    # ------------------------------------------------------------------ selective access
    def _column_index(self, d):
        """The column a capture_object_definition names, else -1 (or -DAR if malformed)."""
        if d is None or d[0] != axdr.STRUCTURE or len(d[1]) != 4:
            return -xdlms.DAR_TYPE_UNMATCHED
        cid, ln, attr, idx = d[1]
        if not (_is_int(cid) and ln is not None and ln[0] == axdr.OCTET_STRING
                and _is_int(attr) and _is_int(idx)):
            return -xdlms.DAR_TYPE_UNMATCHED
        for i, c in enumerate(self.columns):
            if c[0] == cid[1] and c[1] == ln[1] and c[2] == attr[1] and idx[1] == 0:
                return i
        return -1

    def _selected(self, values):
        """Column mask of selected_values (empty array: all columns), or -DAR."""
        if values is None or values[0] != axdr.ARRAY:
            return -xdlms.DAR_TYPE_UNMATCHED
        if not values[1]:
            return (1 << len(self.columns)) - 1
        mask = 0
        for d in values[1]:
            i = self._column_index(d)
            if i < 0:
                return -xdlms.DAR_OTHER_REASON if i == -1 else i
            mask |= 1 << i
        return mask

    def _date(self, value):
        """UTC seconds of a from/to value, or -DAR."""
        if value is None or value[0] not in (axdr.OCTET_STRING, axdr.DATE_TIME):
            return -xdlms.DAR_TYPE_UNMATCHED
        b = value[1]
        if len(b) != 12:
            return -xdlms.DAR_TYPE_UNMATCHED
        try:
            return self.clock.to_utc(b)[0]
        except ValueError:
            return -xdlms.DAR_OTHER_REASON

    def _range(self, sel, lo, hi):
        if sel is None or sel[0] != axdr.STRUCTURE or len(sel[1]) not in (3, 4):
            return xdlms.DAR_TYPE_UNMATCHED
        items = sel[1]
        col = self._column_index(items[0])
        if col < -1:
            return -col
        if col < 0 or self.columns[col][3] != CLOCK:
            return xdlms.DAR_OTHER_REASON
        t0 = self._date(items[1])
        if t0 < 0:
            return -t0
        t1 = self._date(items[2])
        if t1 < 0:
            return -t1
        mask = self._selected(items[3]) if len(items) == 4 else (1 << len(self.columns)) - 1
        if mask < 0:
            return -mask
        off = 0
        for c in self.columns[:col]:
            off += _SIZE[c[3]]
        if t1 < t0:
            return lo, lo, mask
        if self.increasing:
            a = self._first_at_least(lo, hi, t0, off)
            b = self._first_at_least(a, hi, t1 + 1, off)
            return a, b, mask
        # not ordered (event log: times can go back after a clock setting): every row is
        # tested, once to count and once to emit
        return lo, hi, mask, (t0, t1, off)

    def _first_at_least(self, lo, hi, t, off):
        """First row number in [lo, hi) whose time is >= t (rows ordered by time)."""
        log = self.log
        while lo < hi:
            mid = (lo + hi) // 2
            v = log.read_u32(mid, off)
            if v is not None and v < t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _entries(self, sel, lo, hi):
        if sel is None or sel[0] != axdr.STRUCTURE or len(sel[1]) != 4:
            return xdlms.DAR_TYPE_UNMATCHED
        vals = []
        for v in sel[1]:
            if not _is_int(v):
                return xdlms.DAR_TYPE_UNMATCHED
            if v[1] < 0:
                return xdlms.DAR_OTHER_REASON
            vals.append(v[1])
        e0, e1, c0, c1 = vals
        n = hi - lo
        ncol = len(self.columns)
        if e0 == 0:
            e0 = 1
        if e1 == 0 or e1 > n:
            e1 = n
        if c0 == 0:
            c0 = 1
        if c1 == 0 or c1 > ncol:
            c1 = ncol
        if c0 > c1:
            return xdlms.DAR_OTHER_REASON
        mask = 0
        for i in range(c0 - 1, c1):
            mask |= 1 << i
        if e0 > e1:
            return lo, lo, mask
        return lo + e0 - 1, lo + e1, mask
