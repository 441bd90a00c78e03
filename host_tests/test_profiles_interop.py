"""Profile Generic interop: the load profile (1.0.99.1.0.255), the daily billing values
(1.0.98.1.0.255) and the standard event log (0.0.99.98.0.255) read by two independent
clients, gurux-dlms and dlms-cosem, over the TCP wrapper and over HDLC on the pty.

One state directory is seeded with ``tools/seed_history.py`` (once per pytest run,
host_tests/history_seed.py): 40 days of 15-minute load-profile rows and 40 daily billing
rows ending 2026-03-01 00:00 UTC; the module's meter starts on a copy of it at that time
and captures one more row of each (3,841 load profile rows: 3,840 seeded + its own). The
seeded values follow the tool's documented model (1000 W import, 333 W reactive import,
nothing exported, AMR status 0), so every row a selective read returns is checked
exactly: its time, its values and the count. The meter's own row carries what its
registers held at the start: a fresh meter, so about 0 Wh (the tool seeds no energy
totals), checked to be at most what the registers read later; the energies are checked
non-decreasing over the seeded rows.

* range_descriptor (selector 1) on the clock column: gurux ``readRowsByRange`` sends the
  dates with deviation 0, dlms-cosem's ``RangeDescriptor`` with deviation 0x8000 (the
  meter's local time, UTC here) or, for an aware datetime, the real deviation (-60 for
  UTC+1 is tested too);
* entry_descriptor (selector 2): gurux ``readRowsByEntry``; dlms-cosem cannot encode one
  (``EntryDescriptor.to_bytes`` raises NotImplementedError) but its ``DlmsClient.get``
  takes any access descriptor object with ``to_bytes()``, so the test hands it one that
  encodes the A-XDR itself (vector 5.3 of dlms-vectors.md);
* the whole 40-day profile at max PDU 128 and 1024 by both clients over both transports;
* the billing profile and the event log by both clients;
* the public client (16) gets object-undefined for all three; management (HLS) reads them.

Client quirks met here (not meter bugs):
* gurux-dlms 1.0.203 ``readRowsByEntry(..., columns)`` sends to_selected_value as a column
  *count* (columns 3..4 go out as from 3, to 2), where the Blue Book has the index of the
  last column; the meter answers other-reason to that. Column selection by entry is
  therefore tested with gurux only from column 1 (where count = index) and with dlms-cosem
  for columns 3..4.
* dlms-cosem over HDLC finds the end of a frame by the next 7E; plain load-profile data
  contains 7E octets, and a frame whose FCS ends in 7E leaves it waiting its whole timeout
  (a 40-day download took 35 s instead of 4 s). The helper's length-driven framing
  (``_RecordingIO.length_framing``) is switched on for every dlms-cosem HDLC client here.
"""

import datetime

import pytest

import history_seed
from clients import (GuruxClient, CosemClient, GuruxError, LLS_PASSWORD, MANAGEMENT, PUBLIC,
                     READER, decode_cosem_datetime, quiet_structlog, split_apdus)
from history_seed import END, UTC
from running_meter import start_meter

DAYS = 40
FIRST = END - datetime.timedelta(days=DAYS)  # time of the oldest seeded row
PERIOD = datetime.timedelta(minutes=15)
SEEDED = DAYS * 96  # 3,840 load-profile rows written by seed_history
TOTAL = SEEDED + 1  # + the row the meter captures when it starts at END

LOAD = "1.0.99.1.0.255"
BILLING = "1.0.98.1.0.255"
EVENTS = "0.0.99.98.0.255"
CLOCK_LN = "0.0.1.0.0.255"
LOAD_COLUMNS = [(8, CLOCK_LN, 2), (1, "0.0.96.10.1.255", 2), (3, "1.0.1.8.0.255", 2),
                (3, "1.0.2.8.0.255", 2), (3, "1.0.3.8.0.255", 2), (3, "1.0.4.8.0.255", 2)]
BILLING_COLUMNS = [LOAD_COLUMNS[0]] + LOAD_COLUMNS[2:]
EVENT_COLUMNS = [(8, CLOCK_LN, 2), (1, "0.0.96.11.0.255", 2)]
ENERGY_LNS = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255")

EV_FIRMWARE_START = 230  # meter.history
EV_AUTH_FAILURE = 231

TRANSPORTS = ("tcp", "hdlc")
CLIENTS = ("gurux", "cosem")


# ------------------------------------------------------------------------------ expected
def seeded_load_row(i):
    """Row i (0 = oldest) as seed_history writes it: (time, AMR status, +A, -A, +R, -R)."""
    return history_seed.seeded_load_row(i, DAYS)


def seeded_billing_row(d):
    return history_seed.seeded_billing_row(d, DAYS)


def expected_load(indices, meter_row):
    """Rows by index; index SEEDED is the meter's own row (as the full download read it)."""
    return [meter_row if i == SEEDED else seeded_load_row(i) for i in indices]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def meter(tmp_path_factory):
    """The meter of this module, on its own copy of the 40-day seed (seeded once per pytest
    process, see history_seed), started at END."""
    base = tmp_path_factory.mktemp("meter")
    state = history_seed.fresh_copy(history_seed.seeded_state(tmp_path_factory, DAYS),
                                    base / "state")
    m = start_meter(base, state=state, extra_args=["--start-time", history_seed.END_ISO])
    try:
        yield m
    finally:
        if m.alive():
            m.stop()
        else:
            m.returncode = m.proc.returncode
        assert m.returncode == 0, "meter ended with %r:\n%s" % (m.returncode,
                                                               m.stderr()[-3000:])


def target(meter, transport):
    return meter.tcp if transport == "tcp" else meter.serial


def cosem_client(transport, tgt, **kw):
    c = CosemClient(transport, tgt, **kw)
    if transport == "hdlc":
        c.io.length_framing = True  # see the module docstring
    return c


def reader(client, meter, transport, max_pdu=None):
    tgt = target(meter, transport)
    if client == "gurux":
        return GuruxClient(transport, tgt, client=READER, password=LLS_PASSWORD,
                           max_pdu=max_pdu)
    kw = {} if max_pdu is None else {"max_pdu": max_pdu}
    return cosem_client(transport, tgt, client=READER, password=LLS_PASSWORD, **kw)


# ------------------------------------------------------------------------------ row parsing
def utc_of(v):
    """The instant of a clock column value: a gurux GXDateTime, or the 12 raw octets (both
    clients' raw values), checked against the contract (deviation 0, clock status 0)."""
    if hasattr(v, "value") and isinstance(v.value, datetime.datetime):
        return v.value.astimezone(UTC)
    f = decode_cosem_datetime(bytes(v))
    assert f["deviation"] == 0, "clock column deviation %r: %s" % (f["deviation"],
                                                                 bytes(v).hex())
    assert f["status"] == 0, "clock column status %02x: %s" % (f["status"], bytes(v).hex())
    assert f["utc"] is not None, "clock column not fully specified: %s" % bytes(v).hex()
    assert f["dow"] == f["utc"].isoweekday(), "day of week %r for %s" % (f["dow"], f["utc"])
    return f["utc"]


def norm(rows, clock_col=0):
    """Rows as tuples with the clock column (if any) as an aware UTC datetime."""
    out = []
    for r in rows:
        r = list(r)
        if clock_col is not None:
            r[clock_col] = utc_of(r[clock_col])
        out.append(tuple(int(x) if isinstance(x, int) else x for x in r))
    return out


def columns_of_gurux(obj):
    return [(int(k.objectType), k.logicalName, v.attributeIndex) for k, v in obj.captureObjects]


def columns_of_cosem(raw_attr3):
    from dlms_cosem import utils

    out = []
    for cid, ln, attr, idx in utils.parse_as_dlms_data(raw_attr3):
        assert idx == 0, "data_index %r" % idx
        out.append((cid, ".".join(str(x) for x in bytes(ln)), attr))
    return out


class Reader:
    """One association of either library, with the same few operations."""

    def __init__(self, kind, conn):
        self.kind = kind
        self.c = conn
        self._objs = {}

    def _obj(self, ln):
        """gurux: the profile object, its capture objects read (attr 3) once."""
        if ln not in self._objs:
            o = self.c.make_object(ln, 7)
            self.c.read_object(o, 3)
            self._objs[ln] = o
        return self._objs[ln]

    def capture_objects(self, ln):
        if self.kind == "gurux":
            return columns_of_gurux(self._obj(ln))
        return columns_of_cosem(self.c.get(ln, 7, 3))

    def buffer(self, ln):
        if self.kind == "gurux":
            o = self._obj(ln)
            self.c.read_object(o, 2)
            return norm(o.buffer)
        from dlms_cosem import utils

        return norm(utils.parse_as_dlms_data(self.c.get(ln, 7, 2)))

    def by_range(self, ln, t0, t1):
        """Rows with t0 <= time <= t1 (aware datetimes: gurux sends them with deviation 0;
        dlms-cosem with 0x8000 when naive (the meter's local time = UTC), else their own)."""
        if self.kind == "gurux":
            o = self._obj(ln)
            reply = self.c.read_data_block(self.c.c.readRowsByRange(o, t0, t1))
            self.c.c.updateValue(o, 2, reply.value)
            return norm(o.buffer)
        return norm(self._cosem_get(ln, _range_descriptor(t0, t1)))

    def by_entry(self, ln, e0, e1, c0=1, c1=0):
        """Entries e0..e1 (from 1; e1 = 0: the last), columns c0..c1 (Blue Book indices)."""
        if self.kind == "gurux":
            o = self._obj(ln)
            count = 0 if e1 == 0 else e1 - e0 + 1
            cols = None
            if (c0, c1) != (1, 0):
                # gurux sends the count of columns as to_selected_value: only a selection
                # from column 1 means the same to gurux and to the Blue Book
                assert c0 == 1, "gurux cannot select columns %d..%d" % (c0, c1)
                cols = o.captureObjects[:c1]
            reply = self.c.read_data_block(self.c.c.readRowsByEntry(o, e0, count, cols))
            rows = reply.value or []
        else:
            rows = self._cosem_get(ln, RawEntryDescriptor(e0, e1, c0, c1))
        return norm(rows, clock_col=0 if c0 == 1 else None)

    def _cosem_get(self, ln, descriptor):
        from dlms_cosem import utils

        raw = self.c.client.get(self.c.attribute(ln, 7, 2), access_descriptor=descriptor)
        return utils.parse_as_dlms_data(raw)

    def read(self, ln, class_id, attr):
        return self.c.read(ln, class_id, attr)


def _range_descriptor(t0, t1):
    from dlms_cosem import cosem, enumerations
    from dlms_cosem.cosem.selective_access import CaptureObject, RangeDescriptor

    clock = cosem.CosemAttribute(enumerations.CosemInterface.CLOCK,
                                 cosem.Obis(0, 0, 1, 0, 0, 255), 2)
    return RangeDescriptor(CaptureObject(clock, 0), t0, t1)


def _entry_descriptor_class():
    from dlms_cosem.cosem.selective_access import EntryDescriptor

    class _Raw(EntryDescriptor):
        """dlms-cosem's EntryDescriptor with the A-XDR it cannot produce: selector 2,
        structure {double-long-unsigned from_entry, to_entry, long-unsigned
        from_selected_value, to_selected_value}."""

        def to_bytes(self):
            return (bytes([2, 0x02, 0x04, 0x06]) + self.from_entry.to_bytes(4, "big") + b"\x06"
                    + self.to_entry.to_bytes(4, "big") + b"\x12"
                    + self.from_selected_value.to_bytes(2, "big") + b"\x12"
                    + self.to_selected_value.to_bytes(2, "big"))

    return _Raw


def RawEntryDescriptor(e0, e1, c0, c1):
    return _entry_descriptor_class()(from_entry=e0, to_entry=e1, from_selected_value=c0,
                                     to_selected_value=c1)


def open_reader(kind, meter, transport, max_pdu=None):
    return Reader(kind, reader(kind, meter, transport, max_pdu).open())


def close_reader(r):
    r.c.close()


def diff(what, got, want):
    """A readable account of a mismatch (count, first differing row)."""
    if got == want:
        return None
    msg = "%s: %d rows, expected %d" % (what, len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return msg + "; first difference at row %d: got %r, expected %r" % (i, g, w)
    return msg + "; got %r..., expected %r..." % (got[:3], want[:3])


@pytest.fixture(scope="module")
def meter_row(meter):
    """The load-profile row the meter captured itself when it started at END: the last
    row of the whole buffer (no selective access: that is under test), read once by gurux
    over TCP and checked against the energy registers read right after."""
    with GuruxClient("tcp", meter.tcp, client=READER, password=LLS_PASSWORD) as g:
        rows = Reader("gurux", g).buffer(LOAD)
        regs = [g.read(ln, 3, 2) for ln in ENERGY_LNS]
    assert len(rows) == TOTAL, "%d rows in the load profile, expected %d" % (len(rows), TOTAL)
    row = rows[-1]
    assert row[0] == END, "the meter's first capture is stamped %s, expected %s" % (row[0], END)
    assert row[1] == 0, "AMR status %#x at the first capture of a fresh meter" % row[1]
    for v, reg, ln in zip(row[2:], regs, ENERGY_LNS):
        assert 0 <= v <= reg, "%s captured %r but the register reads %r later" % (ln, v, reg)
    return row


# ------------------------------------------------------------------------------ range
RANGE_CASES = [
    # (label, from, to, row indices)
    ("exact quarter-hour bounds, inclusive", datetime.datetime(2026, 2, 10, 1, 0),
     datetime.datetime(2026, 2, 10, 2, 0), range(2020, 2025)),
    ("bounds between captures", datetime.datetime(2026, 2, 10, 1, 7, 30),
     datetime.datetime(2026, 2, 10, 1, 52, 0), range(2021, 2024)),
    ("one instant", datetime.datetime(2026, 2, 15, 12, 15), datetime.datetime(2026, 2, 15, 12, 15),
     [26 * 96 + 49]),
    ("a whole day", datetime.datetime(2026, 2, 1), datetime.datetime(2026, 2, 1, 23, 59, 59),
     range(12 * 96, 13 * 96)),
    ("across the oldest row", datetime.datetime(2026, 1, 19, 23, 0),
     datetime.datetime(2026, 1, 20, 0, 30), range(0, 3)),
    ("before the oldest row", datetime.datetime(2026, 1, 1), datetime.datetime(2026, 1, 19, 23, 59),
     []),
    ("across the newest row (the meter's)", datetime.datetime(2026, 2, 28, 23, 30),
     datetime.datetime(2026, 3, 1, 6, 0), range(SEEDED - 2, TOTAL)),
    ("after the newest row", datetime.datetime(2026, 3, 1, 0, 0, 1),
     datetime.datetime(2026, 3, 2), []),
    ("to before from", datetime.datetime(2026, 2, 10, 2, 0), datetime.datetime(2026, 2, 10, 1, 0),
     []),
]


def _dates(kind, t):
    """gurux: an aware UTC datetime (sent with deviation 0); dlms-cosem: naive (deviation
    0x8000, the meter's local time, which is UTC)."""
    return t.replace(tzinfo=UTC) if kind == "gurux" else t


def _sent_dates(kind, tx_apdus):
    """The from/to octet-strings of the range descriptors in the GET requests sent."""
    out = []
    for a in tx_apdus:
        a = bytes(a)
        if a[:2] == b"\xc0\x01" and len(a) > 14 and a[12] == 1 and a[13] == 1:
            i = a.index(b"\x09\x0c", 14)
            out.append((a[i + 2:i + 14], a[i + 16:i + 28]))
    return out


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_rows_by_range(meter, meter_row, kind, transport):
    r = open_reader(kind, meter, transport)
    try:
        assert r.capture_objects(LOAD) == LOAD_COLUMNS
        n0 = len(r.c.io.tx_log)
        problems = []
        for label, t0, t1, idx in RANGE_CASES:
            got = r.by_range(LOAD, _dates(kind, t0), _dates(kind, t1))
            p = diff("%s [%s .. %s]" % (label, t0, t1), got, expected_load(idx, meter_row))
            if p:
                problems.append(p)
        if kind == "cosem":
            # aware dates: deviation -60 (UTC+1, central European winter time): the same
            # rows as the first case
            cet = datetime.timezone(datetime.timedelta(hours=1))
            got = r.by_range(LOAD, datetime.datetime(2026, 2, 10, 2, 0, tzinfo=cet),
                             datetime.datetime(2026, 2, 10, 3, 0, tzinfo=cet))
            p = diff("deviation -60", got, expected_load(range(2020, 2025), meter_row))
            if p:
                problems.append(p)
        sent = _sent_dates(kind, split_apdus(b"".join(r.c.io.tx_log[n0:]), transport))
    finally:
        close_reader(r)
    assert not problems, "\n".join(problems)
    # the requests really carried the deviation this test is about
    want_dev = b"\x00\x00" if kind == "gurux" else b"\x80\x00"
    assert len(sent) >= len(RANGE_CASES), sent
    for d0, d1 in sent[:len(RANGE_CASES)]:
        assert d0[9:11] == want_dev and d1[9:11] == want_dev, (d0.hex(), d1.hex())
    if kind == "cosem":
        assert sent[-1][0][9:11] == b"\xff\xc4", sent[-1][0].hex()  # -60


# ------------------------------------------------------------------------------ entry
ENTRY_CASES = [
    # (label, from_entry, to_entry, row indices)
    ("the first three", 1, 3, range(0, 3)),
    ("five in the middle", 2021, 2025, range(2020, 2025)),
    ("to_entry 0 = the last", SEEDED, 0, [SEEDED - 1, SEEDED]),
    ("only the last", TOTAL, TOTAL, [SEEDED]),
    ("to_entry past the end", SEEDED - 1, 5000, range(SEEDED - 2, TOTAL)),
    ("from_entry past the end", TOTAL + 1, TOTAL + 10, []),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_rows_by_entry(meter, meter_row, kind, transport):
    r = open_reader(kind, meter, transport)
    problems = []
    try:
        for label, e0, e1, idx in ENTRY_CASES:
            got = r.by_entry(LOAD, e0, e1)
            p = diff("%s (%d..%d)" % (label, e0, e1), got, expected_load(idx, meter_row))
            if p:
                problems.append(p)
        # column selection: gurux from column 1 (clock, status); dlms-cosem the two
        # active energies (columns 3..4)
        c0, c1 = (1, 2) if kind == "gurux" else (3, 4)
        got = r.by_entry(LOAD, 2021, 2023, c0, c1)
        want = [row[c0 - 1:c1] for row in expected_load(range(2020, 2023), meter_row)]
        p = diff("entries 2021..2023, columns %d..%d" % (c0, c1), got, want)
        if p:
            problems.append(p)
    finally:
        close_reader(r)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------ full
@pytest.mark.parametrize("max_pdu", (128, 1024))
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_full_40_day_load_profile(meter, meter_row, kind, transport, max_pdu):
    r = open_reader(kind, meter, transport, max_pdu=max_pdu)
    try:
        n0 = len(r.c.io.rx_log)
        rows = r.buffer(LOAD)
        replies = split_apdus(b"".join(r.c.io.rx_log[n0:]), transport)
    finally:
        close_reader(r)
    assert len(rows) == TOTAL, "%d rows, expected %d" % (len(rows), TOTAL)
    times = [row[0] for row in rows]
    gaps = [(i, times[i - 1], times[i]) for i in range(1, TOTAL)
            if times[i] - times[i - 1] != PERIOD]
    assert not gaps, "not consecutive 15-minute rows: %r" % gaps[:5]
    assert times[0] == FIRST and times[-1] == END
    for col in range(2, 6):
        drops = [i for i in range(1, SEEDED) if rows[i][col] < rows[i - 1][col]]
        assert not drops, "column %d decreases at rows %r" % (col, drops[:5])
    p = diff("40-day load profile", rows, expected_load(range(TOTAL), meter_row))
    assert p is None, p
    # the meter honoured the client's max PDU, so the buffer came in many blocks
    assert max(len(a) for a in replies) <= max_pdu, [len(a) for a in replies][:10]
    blocks = [a for a in replies if a[:2] == b"\xc4\x02"]
    assert len(blocks) >= 140_000 // max_pdu, "%d GET blocks" % len(blocks)


# ------------------------------------------------------------------------------ billing, events
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_billing_profile(meter, meter_row, kind, transport):
    r = open_reader(kind, meter, transport)
    try:
        cols = r.capture_objects(BILLING)
        rows = r.buffer(BILLING)
        period = r.read(BILLING, 7, 4)
        in_use = r.read(BILLING, 7, 7)
        last_days = r.by_range(BILLING, _dates(kind, datetime.datetime(2026, 2, 26, 12)),
                               _dates(kind, datetime.datetime(2026, 3, 1, 12)))
        second = r.by_entry(BILLING, 2, 2)
    finally:
        close_reader(r)
    assert cols == BILLING_COLUMNS
    assert period == 86400 and in_use == DAYS + 1, (period, in_use)
    # 40 seeded midnights, then the meter's own capture at END (the same energies as its
    # first load-profile row: both were captured at that midnight)
    want = [seeded_billing_row(d) for d in range(DAYS)] + [(END,) + meter_row[2:]]
    p = diff("billing buffer", rows, want)
    assert p is None, p
    assert last_days == want[-3:], last_days
    assert second == want[1:2], second


@pytest.fixture(scope="module")
def events_logged(meter):
    """One more event than the start-up one: a reader association with a wrong password
    (authentication failure, event 231)."""
    g = GuruxClient("tcp", meter.tcp, client=READER, password=b"87654321")
    with pytest.raises(Exception, match="(?i)authentication failure"):
        g.open()
    return True


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_event_log(meter, events_logged, kind, transport):
    r = open_reader(kind, meter, transport)
    try:
        cols = r.capture_objects(EVENTS)
        rows = r.buffer(EVENTS)
        code = r.read("0.0.96.11.0.255", 1, 2)
        near = r.by_range(EVENTS, _dates(kind, datetime.datetime(2026, 2, 28, 23)),
                          _dates(kind, datetime.datetime(2026, 3, 1, 1)))
        later = r.by_range(EVENTS, _dates(kind, datetime.datetime(2026, 3, 1, 1)),
                           _dates(kind, datetime.datetime(2026, 3, 2)))
        last = r.by_entry(EVENTS, len(rows), 0)
    finally:
        close_reader(r)
    assert cols == EVENT_COLUMNS
    assert [e[1] for e in rows] == [EV_FIRMWARE_START, EV_AUTH_FAILURE], rows
    for t, _c in rows:  # both happened within the first minutes after the start at END
        assert END <= t <= END + datetime.timedelta(minutes=10), rows
    assert rows[0][0] <= rows[1][0], rows
    assert code == EV_AUTH_FAILURE, "event code object: %r" % code
    assert near == rows, near
    assert later == [], later
    assert last == rows[-1:], last


# ------------------------------------------------------------------------------ access rights
PROFILES = (LOAD, BILLING, EVENTS)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_public_client_gets_object_undefined(meter, transport):
    """The profiles are not the public client's: object-undefined (4) for every attribute
    read, from both libraries, and not in its object list (but in the reader's)."""
    tgt = target(meter, transport)
    with GuruxClient(transport, tgt, client=PUBLIC) as g:
        listed = {o[2] for o in g.object_list()}
        for ln in PROFILES:
            for attr in (1, 2, 3, 7):
                with pytest.raises(GuruxError) as e:
                    g.read(ln, 7, attr)
                assert e.value.error == 4, "%s attr %d: error %r" % (ln, attr, e.value.error)
            # selective access does not get around it
            o = g.make_object(ln, 7)
            with pytest.raises(GuruxError) as e:
                g.read_data_block(g.c.readRowsByEntry(o, 1, 1))
            assert e.value.error == 4, "%s by entry: error %r" % (ln, e.value.error)
    assert not listed & set(PROFILES), "the public object list shows %s" % (
        sorted(listed & set(PROFILES)))
    quiet_structlog()
    from dlms_cosem.client import DataResultError

    with cosem_client(transport, tgt, client=PUBLIC) as d:
        for ln in PROFILES:
            with pytest.raises(DataResultError, match="OBJECT_UNDEFINED"):
                d.get(ln, 7, 2)
        with pytest.raises(DataResultError, match="OBJECT_UNDEFINED"):
            d.client.get(d.attribute(LOAD, 7, 2),
                         access_descriptor=_range_descriptor(datetime.datetime(2026, 2, 1),
                                                             datetime.datetime(2026, 2, 2)))
    if transport == "tcp":
        with GuruxClient("tcp", meter.tcp, client=READER, password=LLS_PASSWORD) as g:
            objs = {o[2]: (o[0], o[1]) for o in g.object_list()}
        for ln in PROFILES:
            assert objs.get(ln) == (7, 1), "reader object list: %s -> %r" % (ln, objs.get(ln))


def test_management_reads_profiles(meter, meter_row):
    """Management (client 1, HLS-GMAC, every APDU ciphered) reads the profiles too: gurux
    by entry over TCP, dlms-cosem by range over HDLC."""
    with GuruxClient("tcp", meter.tcp, client=MANAGEMENT, invocation_counter=1) as g:
        r = Reader("gurux", g)
        got = r.by_entry(LOAD, 2021, 2025)
        bill = r.by_entry(BILLING, 1, 1)
        ev = r.by_entry(EVENTS, 1, 1)
        ic = g.next_ic
    assert got == expected_load(range(2020, 2025), meter_row), got
    assert bill == [seeded_billing_row(0)], bill
    assert [e[1] for e in ev] == [EV_FIRMWARE_START], ev
    d = cosem_client("hdlc", meter.serial, client=MANAGEMENT, invocation_counter=ic)
    with d:
        got = Reader("cosem", d).by_range(LOAD, datetime.datetime(2026, 2, 28, 23, 30),
                                          datetime.datetime(2026, 3, 1, 6))
    assert got == expected_load(range(SEEDED - 2, TOTAL), meter_row), got
