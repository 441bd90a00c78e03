"""Association layer: ACSE + GET through the real object table. CPython and MicroPython."""

import binascii

from cosem import objects
from dlms import association
from dlms import axdr
from meter.clock import Clock


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


class FixedRTC:
    """2024-01-15 12:30:45.67 UTC, a Monday."""

    def datetime(self):
        return (2024, 1, 15, 0, 12, 30, 45, 670000)


IDENTITY = {"name": b"MMM0000012345678", "serial": b"12345678", "firmware": b"fw 1"}

AARQ_PUBLIC = h("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")  # GB 3.1
AARQ_LLS = h("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
             "BE10040E01000000065F1F0400007E1F04B0")  # GB 3.2, password 12345678
AARQ_LLS_WRONG = h("602FA1090607608574050801018A0207808B0760857405080201AC03800131"
                   "BE10040E01000000065F1F0400000010FFFF")
RLRQ = h("6203800100")


def aarq_with_max_pdu(pdu):
    b = bytearray(AARQ_PUBLIC)
    b[-2] = pdu >> 8
    b[-1] = pdu & 0xFF
    return bytes(b)


def get_req(class_id, obis, attr, invoke=0xC1):
    return bytes([0xC0, 0x01, invoke, class_id >> 8, class_id & 0xFF]) + bytes(obis) + bytes(
        [attr, 0])


LDN = (0, 0, 42, 0, 0, 255)
CLOCK = (0, 0, 1, 0, 0, 255)
ALN = (0, 0, 40, 0, 0, 255)


class Session:
    def __init__(self, client=16):
        dev = objects.build(Clock(FixedRTC()), IDENTITY)
        self.assoc = association.Association(dev)
        self.client = client
        self.out = bytearray(1024)

    def ask(self, apdu, out_size=1024):
        mv = memoryview(self.out)[:out_size]
        n = self.assoc.handle(self.client, apdu, len(apdu), mv)
        return bytes(self.out[:n])


def aare_result(aare):
    """(result, diagnostic) from an AARE."""
    i = aare.find(h("A2030201"))
    j = aare.find(h("A305A10302"))
    assert i > 0 and j > 0, aare
    return aare[i + 4], aare[j + 6]


def test_public_association_and_get_ldn():
    s = Session(16)
    aare = s.ask(AARQ_PUBLIC)
    assert aare[0] == 0x61
    assert aare_result(aare) == (0, 0)
    assert s.assoc.associated
    r = s.ask(get_req(1, LDN, 2))
    assert r == h("C401C1 00 0910") + IDENTITY["name"]


def test_get_before_aarq_is_an_exception_response():
    s = Session(16)
    assert s.ask(get_req(1, LDN, 2)) == h("D80101")


def test_get_clock_time_from_rtc():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    r = s.ask(get_req(8, CLOCK, 2))
    # 2024-01-15, Monday (1), 12:30:45.67, deviation 0, status 0
    assert r == h("C401C100 090C 07E8010F010C1E2D43 0000 00")


def test_unknown_object_wrong_class_and_attribute():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    assert s.ask(get_req(1, (1, 2, 3, 4, 5, 6), 2)) == h("C401C10104")  # object-undefined
    assert s.ask(get_req(3, LDN, 2)) == h("C401C10109")  # object-class-inconsistent
    assert s.ask(get_req(1, LDN, 3)) == h("C401C1010B")  # object-unavailable


def test_secret_is_never_readable():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    assert s.ask(get_req(15, ALN, 7)) == h("C401C10103")  # read-write-denied


def test_public_does_not_see_the_management_association_object():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    assert s.ask(get_req(15, (0, 0, 40, 0, 3, 255), 1)) == h("C401C10104")


def _object_list_entries(data):
    r = axdr.Reader(data)
    tag, items = r.data()
    assert tag == axdr.ARRAY
    assert r.remaining() == 0
    return items


def test_object_list_normal_and_in_blocks_are_identical():
    big = Session(16)
    big.ask(AARQ_PUBLIC)
    r = big.ask(get_req(15, ALN, 2))
    assert r[:4] == h("C401C100")
    whole = r[4:]
    items = _object_list_entries(whole)
    lns = [bytes(it[1][2][1]) for it in items]
    assert bytes(LDN) in lns and bytes(CLOCK) in lns
    assert bytes((0, 0, 40, 0, 3, 255)) not in lns

    small = Session(16)
    small.ask(aarq_with_max_pdu(64))
    r = small.ask(get_req(15, ALN, 2))
    data = b""
    block = 1
    while True:
        assert r[:3] == h("C402C1"), r
        last = r[3]
        assert r[4:8] == bytes([0, 0, 0, block])
        assert r[8] == 0
        rd = axdr.Reader(r, 9)
        n = rd.length()
        data += r[rd.pos:rd.pos + n]
        assert rd.pos + n == len(r)
        assert len(r) <= 64
        if last:
            break
        r = small.ask(bytes([0xC0, 0x02, 0xC1, 0, 0, 0, block]))
        block += 1
    assert block > 3
    assert data == whole


def test_block_number_out_of_sequence_aborts_cleanly():
    s = Session(16)
    s.ask(aarq_with_max_pdu(64))
    r = s.ask(get_req(15, ALN, 2))
    assert r[:4] == h("C402C100")
    r = s.ask(h("C002C100000005"))  # client acknowledges block 5 instead of 1
    assert r == h("C402C1 01 00000005 01 13")  # last, data-block-number-invalid
    r = s.ask(h("C002C100000001"))
    assert r == h("C402C1 01 00000001 01 10")  # no-long-get-in-progress
    assert s.ask(get_req(1, LDN, 2))[:4] == h("C401C100")


def test_new_request_in_the_middle_abandons_the_transfer():
    s = Session(16)
    s.ask(aarq_with_max_pdu(64))
    assert s.ask(get_req(15, ALN, 2))[:4] == h("C402C100")
    assert s.ask(get_req(1, LDN, 2))[:4] == h("C401C100")
    assert s.ask(h("C002C100000001")) == h("C402C1 01 00000001 01 10")


def test_get_with_list_mixes_results():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    req = h("C003C1 03") + bytes([0, 1]) + bytes(LDN) + h("0200")
    req += bytes([0, 1]) + bytes((9, 9, 9, 9, 9, 9)) + h("0200")
    req += bytes([0, 15]) + bytes(ALN) + h("0700")
    r = s.ask(req)
    assert r == h("C403C1 03 00 0910") + IDENTITY["name"] + h("01 04 01 03")


def test_malformed_get_is_an_exception_and_state_stays_clean():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    r = s.ask(h("C001C10001"))  # truncated descriptor
    assert r[0] == 0xD8
    assert s.ask(get_req(1, LDN, 2))[:4] == h("C401C100")


def test_unknown_apdu_is_an_exception_response():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    assert s.ask(h("C9 00"))[0] == 0xD8


def test_release_then_get_is_refused():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    assert s.ask(RLRQ) == h("6303800100")
    assert not s.assoc.associated
    assert s.ask(get_req(1, LDN, 2)) == h("D80101")


def test_lls_reader_accepts_the_right_password_only():
    s = Session(32)
    assert aare_result(s.ask(AARQ_LLS)) == (0, 0)
    assert s.assoc.associated
    s2 = Session(32)
    res, diag = aare_result(s2.ask(AARQ_LLS_WRONG))
    assert (res, diag) == (1, 13)  # rejected-permanent, authentication-failure
    assert not s2.assoc.associated


def test_reader_without_password_is_refused():
    s = Session(32)
    res, diag = aare_result(s.ask(AARQ_PUBLIC))
    assert res == 1 and diag == 12  # authentication-mechanism-name-required
    assert s.ask(get_req(1, LDN, 2)) == h("D80101")


def test_unknown_client_sap_is_refused():
    s = Session(77)
    res, _diag = aare_result(s.ask(AARQ_PUBLIC))
    assert res == 1
    assert not s.assoc.associated


def test_garbage_never_raises():
    s = Session(16)
    s.ask(AARQ_PUBLIC)
    import random

    rnd = random.Random(7) if hasattr(random, "Random") else None
    for i in range(300):
        if rnd is not None:
            n = rnd.randrange(1, 40)
            data = bytes([rnd.randrange(256) for _ in range(n)])
        else:
            random.seed(i)
            n = random.getrandbits(5) + 1
            data = bytes([random.getrandbits(8) for _ in range(n)])
        s.ask(data)  # must not raise
    s.ask(AARQ_PUBLIC)
    assert s.ask(get_req(1, LDN, 2))[:4] == h("C401C100")
