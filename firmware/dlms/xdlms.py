"""xDLMS services with Logical Name referencing: request decoding and response encoding
(DLMS UA Green Book, "xDLMS services" and the COSEM APDU ASN.1; IEC 62056-5-3).

What is here:
* decoding of GET-Request (normal, next, with-list) into plain attributes of a reusable
  ``Request`` object (no per-request allocation beyond the selective-access value);
* the response headers (GET-Response normal / with-datablock / with-list);
* ``Pump``: encodes one attribute value *lazily*, item by item, into response blocks. A value
  source is either written whole into a small scratch buffer (short values) or is a
  generator that writes one item (one object-list entry, one profile row) into the scratch
  buffer per step. The pump copies scratch bytes into as many blocks as needed, so the RAM
  used does not depend on how long the value is: one scratch buffer + the response buffer;
* ExceptionResponse.

Nothing here does I/O or reads a clock (sans-IO). The association layer decides what to
answer; this module only knows the shapes of the APDUs.

RAM: ``Pump`` holds SCRATCH_SIZE bytes; ``Request`` a handful of ints and one small object
per attribute reference, grown on demand up to the longest with-list seen (MAX_LIST).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms import axdr

# APDU tags (Green Book, xDLMS APDUs)
GET_REQUEST = const(0xC0)
SET_REQUEST = const(0xC1)
EVENT_NOTIFICATION = const(0xC2)
ACTION_REQUEST = const(0xC3)
GET_RESPONSE = const(0xC4)
SET_RESPONSE = const(0xC5)
ACTION_RESPONSE = const(0xC7)
EXCEPTION_RESPONSE = const(0xD8)

# SET-Request choices (SET-Response: 1 normal, 2 datablock, 3 last-datablock,
# 4 last-datablock-with-list, 5 with-list)
SET_NORMAL = const(1)
SET_FIRST_DATABLOCK = const(2)
SET_DATABLOCK = const(3)
SET_WITH_LIST = const(4)
SET_LIST_FIRST_DATABLOCK = const(5)
SET_RESP_DATABLOCK = const(2)
SET_RESP_LAST_DATABLOCK = const(3)
SET_RESP_LAST_DATABLOCK_LIST = const(4)
SET_RESP_WITH_LIST = const(5)

# ACTION-Request choices (ACTION-Response: 1 normal, 2 with-pblock, 3 with-list,
# 4 next-pblock)
ACTION_NORMAL = const(1)
ACTION_NEXT_PBLOCK = const(2)
ACTION_WITH_LIST = const(3)
ACTION_FIRST_PBLOCK = const(4)
ACTION_LIST_FIRST_PBLOCK = const(5)
ACTION_PBLOCK = const(6)
ACTION_RESP_PBLOCK = const(2)
ACTION_RESP_NEXT_PBLOCK = const(4)

# GET-Request / GET-Response choices
GET_NORMAL = const(1)
GET_NEXT = const(2)
GET_WITH_LIST = const(3)
GET_WITH_DATABLOCK = const(2)  # GET-Response choice 2 (the request's choice 2 is GET_NEXT)

# ExceptionResponse (Green Book): state-error, service-error
STATE_SERVICE_NOT_ALLOWED = const(1)
STATE_SERVICE_UNKNOWN = const(2)
SERVICE_OPERATION_NOT_POSSIBLE = const(1)
SERVICE_NOT_SUPPORTED = const(2)
SERVICE_OTHER_REASON = const(3)
SERVICE_PDU_TOO_LONG = const(4)
SERVICE_DECIPHERING_ERROR = const(5)
SERVICE_INVOCATION_COUNTER_ERROR = const(6)

# Data-Access-Result (Blue Book / Green Book)
DAR_SUCCESS = const(0)
DAR_HARDWARE_FAULT = const(1)
DAR_TEMPORARY_FAILURE = const(2)
DAR_READ_WRITE_DENIED = const(3)
DAR_OBJECT_UNDEFINED = const(4)
DAR_OBJECT_CLASS_INCONSISTENT = const(9)
DAR_OBJECT_UNAVAILABLE = const(11)
DAR_TYPE_UNMATCHED = const(12)
DAR_SCOPE_OF_ACCESS_VIOLATED = const(13)
DAR_DATA_BLOCK_UNAVAILABLE = const(14)
DAR_LONG_GET_ABORTED = const(15)
DAR_NO_LONG_GET_IN_PROGRESS = const(16)
DAR_LONG_SET_ABORTED = const(17)
DAR_NO_LONG_SET_IN_PROGRESS = const(18)
DAR_DATA_BLOCK_NUMBER_INVALID = const(19)
DAR_OTHER_REASON = const(250)

MAX_LIST = const(16)  # most attribute descriptors accepted in one with-list request
SCRATCH_SIZE = const(256)  # largest single item a value source may write in one step
# (an Association LN object-list element, the largest today, takes about 130 bytes)


class RequestError(Exception):
    """A request APDU that cannot be decoded: answered with an ExceptionResponse."""


class AttrRef:
    """One cosem-attribute-descriptor plus its optional selective access."""

    def __init__(self):
        self.class_id = 0
        self.obis = bytearray(6)
        self.attr = 0
        self.selector = 0  # 0 = no selective access
        self.selection = None  # decoded access parameters (typed A-XDR value)


class Request:
    """A decoded GET, SET or ACTION request. Reused from one request to the next."""

    def __init__(self):
        self.kind = 0  # the request's choice (GET_NORMAL, SET_WITH_LIST, ...)
        self.invoke = 0  # invoke-id-and-priority byte, echoed in the response
        self.block = 0  # GET_NEXT: block acknowledged; SET datablocks: this block's number
        self.last = False  # SET datablocks: last-block
        self.raw_start = 0  # SET datablocks: raw-data in the request buffer
        self.raw_end = 0
        self.values = []  # SET / ACTION: typed values (None: ACTION without parameters)
        self.count = 0  # number of refs in use
        self.refs = [AttrRef()]  # grows (up to MAX_LIST) the first time a longer list comes

    def ref(self, i):
        refs = self.refs
        while len(refs) <= i:
            refs.append(AttrRef())
        return refs[i]


def _read_attr_ref(r, ref):
    """cosem-attribute-descriptor ::= class-id long-unsigned, instance-id octet-string(6),
    attribute-id integer; then access-selection OPTIONAL."""
    ref.class_id = r.u16()
    obis = r.raw(6)
    for i in range(6):
        ref.obis[i] = obis[i]
    a = r.u8()
    ref.attr = a - 256 if a > 127 else a
    present = r.u8()
    if present == 0:
        ref.selector = 0
        ref.selection = None
    elif present == 1:
        ref.selector = r.u8()
        ref.selection = r.data()
    else:
        raise RequestError()


def decode_get(buf, n, req):
    """Decode GET-Request buf[0:n] into req. Raises RequestError on malformed input."""
    try:
        r = axdr.Reader(buf, 0, n)
        if r.u8() != GET_REQUEST:
            raise RequestError()
        kind = r.u8()
        req.kind = kind
        req.invoke = r.u8()
        if kind == GET_NORMAL:
            _read_attr_ref(r, req.refs[0])
            req.count = 1
        elif kind == GET_NEXT:
            req.block = r.u32()
            req.count = 0
        elif kind == GET_WITH_LIST:
            count = r.length()
            if count == 0 or count > MAX_LIST:
                raise RequestError()
            for i in range(count):
                _read_attr_ref(r, req.ref(i))
            req.count = count
        else:
            raise RequestError()
        if r.remaining():
            raise RequestError()  # trailing bytes: not a well-formed APDU
    except axdr.DecodeError:
        raise RequestError()


def _read_block_sa(r, req):
    """DataBlock-SA ::= SEQUENCE { last-block BOOLEAN, block-number Unsigned32,
    raw-data OCTET STRING } (the octet string is left in the request buffer)."""
    last = r.u8()
    if last > 1:
        raise RequestError()
    req.last = last == 1
    req.block = r.u32()
    n = r.length()
    req.raw_start = r.pos
    r.raw(n)
    req.raw_end = r.pos


def _read_refs(r, req, method):
    count = r.length()
    if count == 0 or count > MAX_LIST:
        raise RequestError()
    for i in range(count):
        if method:
            _read_method_ref(r, req.ref(i))
        else:
            _read_attr_ref(r, req.ref(i))
    req.count = count
    return count


def _read_method_ref(r, ref):
    """cosem-method-descriptor ::= class-id, instance-id octet-string(6), method-id integer."""
    ref.class_id = r.u16()
    obis = r.raw(6)
    for i in range(6):
        ref.obis[i] = obis[i]
    a = r.u8()
    ref.attr = a - 256 if a > 127 else a
    ref.selector = 0
    ref.selection = None


def decode_set(buf, n, req):
    """Decode SET-Request buf[0:n] into req (values decoded; datablocks left raw)."""
    try:
        r = axdr.Reader(buf, 0, n)
        if r.u8() != SET_REQUEST:
            raise RequestError()
        kind = r.u8()
        req.kind = kind
        req.invoke = r.u8()
        values = req.values
        del values[:]
        if kind == SET_NORMAL:
            _read_attr_ref(r, req.ref(0))
            req.count = 1
            values.append(r.data())
        elif kind == SET_FIRST_DATABLOCK:
            _read_attr_ref(r, req.ref(0))
            req.count = 1
            _read_block_sa(r, req)
        elif kind == SET_DATABLOCK:
            req.count = 0
            _read_block_sa(r, req)
        elif kind == SET_WITH_LIST:
            count = _read_refs(r, req, False)
            if r.length() != count:
                raise RequestError()
            for _ in range(count):
                values.append(r.data())
        elif kind == SET_LIST_FIRST_DATABLOCK:
            _read_refs(r, req, False)
            _read_block_sa(r, req)
        else:
            raise RequestError()
        if r.remaining():
            raise RequestError()
    except axdr.DecodeError:
        raise RequestError()


def decode_action(buf, n, req):
    """Decode ACTION-Request buf[0:n] (every choice) into req; pblocks are left raw."""
    try:
        r = axdr.Reader(buf, 0, n)
        if r.u8() != ACTION_REQUEST:
            raise RequestError()
        kind = r.u8()
        req.kind = kind
        req.invoke = r.u8()
        values = req.values
        del values[:]
        if kind == ACTION_NORMAL:
            _read_method_ref(r, req.ref(0))
            req.count = 1
            present = r.u8()
            if present == 1:
                values.append(r.data())
            elif present == 0:
                values.append(None)
            else:
                raise RequestError()
        elif kind == ACTION_NEXT_PBLOCK:
            req.block = r.u32()
            req.count = 0
        elif kind == ACTION_WITH_LIST:
            count = _read_refs(r, req, True)
            if r.length() != count:
                raise RequestError()
            for _ in range(count):
                values.append(r.data())
        elif kind == ACTION_FIRST_PBLOCK:
            _read_method_ref(r, req.ref(0))
            req.count = 1
            _read_block_sa(r, req)
        elif kind == ACTION_LIST_FIRST_PBLOCK:
            _read_refs(r, req, True)
            _read_block_sa(r, req)
        elif kind == ACTION_PBLOCK:
            req.count = 0
            _read_block_sa(r, req)
        else:
            raise RequestError()
        if r.remaining():
            raise RequestError()
    except axdr.DecodeError:
        raise RequestError()


def encode_exception(w, state_error, service_error):
    """ExceptionResponse ::= [216] SEQUENCE { state-error, service-error }."""
    w.u8(EXCEPTION_RESPONSE)
    w.u8(state_error)
    w.u8(service_error)


class Pump:
    """Streams one attribute value into response blocks, item by item.

    Usage: ``start(source)`` where source is either ``None`` (the value was written whole
    into ``self.w`` already) or a generator that writes one item into ``self.w`` per step.
    Then call ``fill(buf, pos, end)`` for each block until ``done``.
    """

    def __init__(self, scratch_size=SCRATCH_SIZE):
        self.scratch = bytearray(scratch_size)
        self.w = axdr.Writer(self.scratch)
        self.gen = None
        self._off = 0  # bytes of scratch already copied out
        self.done = True
        self.failed = 0  # a Data-Access-Result if the source failed mid-stream

    def reset(self):
        """Forget any value in progress and return the scratch writer, emptied."""
        self.gen = None
        self._off = 0
        self.done = True
        self.failed = 0
        self.w.reset()
        return self.w

    def start(self, source):
        self.gen = source
        self._off = 0
        self.failed = 0
        self.done = False
        if source is not None:
            self.w.reset()
            self._step()

    def _step(self):
        """Ask the generator for the next item; returns False when it is exhausted."""
        self.w.reset()
        self._off = 0
        try:
            next(self.gen)
            return True
        except StopIteration:
            self.gen = None
            return False
        except axdr.BufferFull:
            self._fail(DAR_OTHER_REASON)
        except Exception:  # a value source must not take the meter down
            self._fail(DAR_HARDWARE_FAULT)
        return False

    def _fail(self, dar):
        self.failed = dar
        self.gen = None
        self.w.reset()

    def fill(self, buf, pos, end):
        """Copy value bytes into buf[pos:end]; returns the new pos. Sets ``done``."""
        scratch = self.scratch
        while pos < end:
            avail = self.w.pos - self._off
            if avail == 0:
                if self.gen is None or not self._step():
                    if self.w.pos - self._off == 0:
                        self.done = True
                        return pos
                continue
            n = end - pos
            if n > avail:
                n = avail
            buf[pos : pos + n] = scratch[self._off : self._off + n]
            pos += n
            self._off += n
        # block full: is anything left?
        if self.w.pos - self._off == 0 and (self.gen is None or not self._step()):
            self.done = self.w.pos == 0
        return pos
