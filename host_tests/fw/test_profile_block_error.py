"""A profile buffer whose source fails in the middle of a GET block transfer (CPython and
MicroPython).

When a value source raises after the first block (on a board: MemoryError, the heap being
fragmented by another association, as the virtual meter does near its smallest --heap),
the pump turns it into hardware-fault and the meter answers the client's GET-Request-Next
with the last block carrying that result (GET-Response-With-Datablock, last-block TRUE,
data-access-result). Its block-number must be the number of the block being answered (one
more than the one the client acknowledged), as for every other block: gurux-dlms rejects
anything else ("Invalid Block number. It is 0 and it should be 2." seen against the
virtual meter), dlms-cosem does not check it.

The failing source here is a stand-in ring (the ProfileLog interface the profile uses:
start/next/first/in_use/entries/read/read_u32) that serves synthetic 15-minute rows and
raises MemoryError from row FAIL_AT on.
"""

import binascii
import struct

from cosem import objects
from dlms import association
from meter.clock import Clock
from meter.history import History


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


class FixedRTC:
    def datetime(self):
        return (2026, 3, 1, 6, 0, 0, 0, 0)


IDENTITY = {"name": b"MMM0000012345678", "serial": b"12345678", "firmware": b"fw 1"}
# reader (client 32), LLS "12345678", client max receive PDU 256 (the last two octets)
AARQ_LLS_256 = h("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
                 "BE10040E01000000065F1F0400007E1F0100")
GET_LOAD_PROFILE = h("C001C1 0007 0100630100FF 02 00")
READER = 32
ROWS = 200
FAIL_AT = 100
T0 = 825120000  # 2026-02-23 00:00 UTC in seconds since 2000


class FailingRing:
    """Rows of the load profile's layout (clock 5, status 1, four energies 4 each)."""

    row_size = 22

    def __init__(self, rows, fail_at):
        self.first = 0
        self.next = rows
        self.entries = 4320
        self.fail_at = fail_at
        self.buf = bytearray(self.row_size)
        self.reads = 0

    def start(self):
        return 0

    def in_use(self):
        return self.next

    def read(self, a, out=None):
        self.reads += 1
        if a >= self.fail_at:
            raise MemoryError("memory allocation failed, allocating 304 bytes")
        b = self.buf
        struct.pack_into(">IBBIIII", b, 0, T0 + 900 * a, 0, 0, 250 * a, 0, 83 * a, 0)
        return memoryview(b)

    def read_u32(self, a, off=0):
        r = self.read(a)
        return struct.unpack_from(">I", r, off)[0]

    def close(self):
        pass


class Session:
    def __init__(self, ring):
        clock = Clock(FixedRTC())
        dev = objects.build(clock, IDENTITY, history=History(clock), logs={"load": ring})
        self.assoc = association.Association(dev)
        self.out = bytearray(1024)

    def ask(self, apdu):
        n = self.assoc.handle(READER, apdu, len(apdu), memoryview(self.out))
        return bytes(self.out[:n])


def download(s):
    """GET the load profile buffer, acknowledging every block; returns the replies."""
    aare = s.ask(AARQ_LLS_256)
    assert aare[0] == 0x61 and h("A203020100") in aare, aare
    replies = [s.ask(GET_LOAD_PROFILE)]
    while replies[-1][:2] == h("C402") and replies[-1][3] == 0 and len(replies) < 1000:
        block = replies[-1][4:8]
        replies.append(s.ask(h("C002C1") + block))
    return replies


def test_a_good_buffer_streams_in_numbered_blocks():
    s = Session(FailingRing(ROWS, ROWS))  # never fails
    replies = download(s)
    assert len(replies) > 5
    for i, r in enumerate(replies):
        assert r[:3] == h("C402C1"), r
        assert struct.unpack(">I", r[4:8])[0] == i + 1, (i, r[:12])
        assert r[8] == 0, r[:12]  # raw-data
    assert replies[-1][3] == 1


def test_source_failing_mid_transfer_ends_with_the_number_of_the_block_answered():
    ring = FailingRing(ROWS, FAIL_AT)
    s = Session(ring)
    replies = download(s)
    assert ring.reads > FAIL_AT  # the failure came after the first block
    good, last = replies[:-1], replies[-1]
    assert len(good) >= 2, "the failure must come after block transfer started"
    for i, r in enumerate(good):
        assert r[:4] == h("C402C100") and struct.unpack(">I", r[4:8])[0] == i + 1, r[:12]
    acknowledged = len(good)
    # C4 02 invoke | last-block TRUE | block-number | data-access-result: hardware-fault
    want = h("C402C1 01") + struct.pack(">I", acknowledged + 1) + h("01 01")
    assert last == want, "error block %s, expected %s" % (
        binascii.hexlify(last).decode(), binascii.hexlify(want).decode())
    # and the association goes on: a new GET is served
    r = s.ask(h("C001C2 0001 00002A0000FF 02 00"))
    assert r[:4] == h("C401C200"), r
