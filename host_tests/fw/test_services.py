"""xDLMS SET and ACTION through the association, on a small purpose-built logical device
(the contract's table grants writes only to the management client, which needs HLS).
Runs under CPython and MicroPython."""

import binascii

from cosem import objects
from cosem.base import CosemObject, expect
from cosem.data import Data
from dlms import acse
from dlms import association
from dlms import axdr
from dlms import xdlms


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


AARQ_PUBLIC = h("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")


class Counter(CosemObject):
    """A test class: attribute 2 a writable long-unsigned, method 1 add(n) returning the sum,
    method 2 reset (no parameter)."""

    CLASS_ID = 9999
    ATTRS = (("logical_name", axdr.OCTET_STRING), ("value", axdr.LONG_UNSIGNED))
    METHODS = ("add", "reset")

    def __init__(self, ln):
        super().__init__(ln)
        self.value = 5

    def get_attr(self, attr, w, ctx):
        if attr == 2:
            w.long_unsigned(self.value)
            return 0
        return super().get_attr(attr, w, ctx)

    def set_attr(self, attr, value, ctx):
        if attr == 2:
            v = expect(value, axdr.LONG_UNSIGNED)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            self.value = v
            return 0
        return super().set_attr(attr, value, ctx)

    def action(self, method, param, w, ctx):
        if method == 1:
            n = expect(param, axdr.LONG_UNSIGNED)
            if n is None:
                return xdlms.DAR_TYPE_UNMATCHED
            self.value += n
            w.long_unsigned(self.value)
            return 0
        if method == 2:
            if param is not None and param[0] != axdr.INTEGER:
                return xdlms.DAR_TYPE_UNMATCHED
            self.value = 0
            return 0
        return super().action(method, param, w, ctx)


class Blob(Data):
    """A writable octet-string, for long values written in blocks."""

    def set_attr(self, attr, value, ctx):
        if attr == 2:
            if expect(value, axdr.OCTET_STRING) is None:
                return xdlms.DAR_TYPE_UNMATCHED
            self.value = (axdr.OCTET_STRING, bytes(value[1]))
            return 0
        return super().set_attr(attr, value, ctx)


class Echo(CosemObject):
    """Method 1 returns its parameter: long parameters and long replies."""

    CLASS_ID = 9998
    ATTRS = (("logical_name", axdr.OCTET_STRING),)
    METHODS = ("echo",)

    def action(self, method, param, w, ctx):
        if method == 1 and param is not None:
            w.data(param)
            return 0
        return super().action(method, param, w, ctx)


CONF = (acse.CONF_GET | acse.CONF_SET | acse.CONF_ACTION | acse.CONF_MULTIPLE_REFERENCES
        | acse.CONF_BLOCK_TRANSFER_WITH_GET | acse.CONF_BLOCK_TRANSFER_WITH_SET)
CTR = (0, 0, 96, 99, 0, 255)
RO = (0, 0, 96, 99, 1, 255)
BLOB = (0, 0, 96, 99, 2, 255)


ECHO = (0, 0, 96, 99, 3, 255)


def make(conformance=CONF, max_pdu=None):
    dev = objects.LogicalDevice(b"MMM0000012345678")
    dev.policies[objects.PUBLIC] = acse.Policy(mechanism=0, conformance=conformance)
    ctr = dev.add(Counter("0.0.96.99.0.255"), pub=("rb", "x-"))
    ro = dev.add(Counter("0.0.96.99.1.255"), pub=("rr", "--"))
    blob = dev.add(Blob("0.0.96.99.2.255", (axdr.OCTET_STRING, b"")), pub="rb")
    dev.add(Echo("0.0.96.99.3.255"), pub=("r", "x"))
    dev.done()
    a = association.Association(dev)
    out = bytearray(1024)
    aarq = AARQ_PUBLIC
    if max_pdu is not None:
        aarq = aarq[:-2] + bytes([max_pdu >> 8, max_pdu & 0xFF])
    n = a.handle(16, aarq, len(aarq), memoryview(out))
    assert out[0] == 0x61 and a.associated
    return a, ctr, ro, blob


def ask(a, apdu):
    out = bytearray(1024)
    n = a.handle(16, apdu, len(apdu), memoryview(out))
    return bytes(out[:n])


def desc(class_id, obis, attr):
    return bytes([class_id >> 8, class_id & 0xFF]) + bytes(obis) + bytes([attr])


def test_set_normal_writes_and_checks_type():
    a, ctr, _ro, _b = make()
    assert ask(a, h("C101C1") + desc(9999, CTR, 2) + h("00 12 0102")) == h("C501C100")
    assert ctr.value == 0x0102
    assert ask(a, h("C101C1") + desc(9999, CTR, 2) + h("00 11 05")) == h("C501C10C")  # type
    assert ctr.value == 0x0102


def test_set_refusals():
    a, _c, ro, _b = make()
    assert ask(a, h("C101C1") + desc(9999, RO, 2) + h("00 12 0001")) == h("C501C103")  # denied
    assert ro.value == 5
    assert ask(a, h("C101C1") + desc(9999, CTR, 1) + h("00 0906 010203040506")) == h("C501C103")
    assert ask(a, h("C101C1") + desc(9999, (9, 9, 9, 9, 9, 9), 2) + h("00 12 0000")) == h(
        "C501C104")  # object-undefined
    assert ask(a, h("C101C1") + desc(1, CTR, 2) + h("00 12 0001")) == h("C501C109")  # class
    assert ask(a, h("C101C1") + desc(9999, CTR, 7) + h("00 12 0001")) == h("C501C10B")


def test_set_with_list():
    a, ctr, ro, blob = make()
    req = h("C104C1 03") + desc(9999, CTR, 2) + h("00") + desc(9999, RO, 2) + h("00")
    req += desc(1, BLOB, 2) + h("00")
    req += h("03 12 0007 12 0008 09 03 414243")
    assert ask(a, req) == h("C505C1 03 00 03 00")
    assert ctr.value == 7 and ro.value == 5 and blob.value == (axdr.OCTET_STRING, b"ABC")


def _blocks(payload, size):
    return [payload[i:i + size] for i in range(0, len(payload), size)]


def test_set_with_datablocks_writes_a_long_value():
    a, _c, _r, blob = make()
    value = bytes(range(256)) * 3
    enc = h("09 82 0300") + value
    parts = _blocks(enc, 100)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        block = bytes([0, 0, 0, i + 1])
        sa = bytes([1 if last else 0]) + block + bytes([len(part)]) + part
        if i == 0:
            r = ask(a, h("C102C1") + desc(1, BLOB, 2) + h("00") + sa)
        else:
            r = ask(a, h("C103C1") + sa)
        if last:
            assert r == h("C503C1 00") + block
        else:
            assert r == h("C502C1") + block
    assert blob.value == (axdr.OCTET_STRING, value)


def test_set_datablock_out_of_sequence_aborts():
    a, _c, _r, blob = make()
    r = ask(a, h("C102C1") + desc(1, BLOB, 2) + h("00") + h("00 00000001 03 098203"))
    assert r == h("C502C1 00000001")
    r = ask(a, h("C103C1") + h("00 00000003 02 0000"))
    assert r == h("C503C1 13 00000003")  # data-block-number-invalid, transfer over
    r = ask(a, h("C103C1") + h("01 00000002 02 0000"))
    assert r == h("C503C1 12 00000002")  # no-long-set-in-progress
    assert blob.value == (axdr.OCTET_STRING, b"")


def test_set_datablock_of_a_malformed_value_is_type_unmatched():
    a, _c, _r, blob = make()
    r = ask(a, h("C102C1") + desc(1, BLOB, 2) + h("00") + h("01 00000001 03 090541"))
    assert r == h("C503C1 0C 00000001")
    assert blob.value == (axdr.OCTET_STRING, b"")


def test_action_normal_with_and_without_return_data():
    a, ctr, _r, _b = make()
    r = ask(a, h("C301C1") + desc(9999, CTR, 1) + h("01 12 0003"))
    assert r == h("C701C1 00 01 00 12 0008")  # 5 + 3, returned as data
    r = ask(a, h("C301C1") + desc(9999, CTR, 1) + h("01 11 03"))
    assert r == h("C701C1 0C 00")  # type-unmatched, no data
    assert ctr.value == 8


def test_action_refusals():
    a, ctr, _r, _b = make()
    assert ask(a, h("C301C1") + desc(9999, CTR, 2) + h("00")) == h("C701C1 03 00")  # no right
    assert ask(a, h("C301C1") + desc(9999, CTR, 3) + h("00")) == h("C701C1 0B 00")
    assert ask(a, h("C301C1") + desc(3, CTR, 1) + h("00")) == h("C701C1 09 00")  # wrong class
    assert ask(a, h("C301C1") + desc(9999, RO, 1) + h("01 12 0001")) == h("C701C1 03 00")
    assert ctr.value == 5


def test_action_with_list():
    a, ctr, _r, _b = make()
    req = h("C303C1 02") + desc(9999, CTR, 1) + desc(9999, RO, 1) + h("02 12 0001 12 0001")
    assert ask(a, req) == h("C703C1 02 00 01 00 12 0006 03 00")
    assert ctr.value == 6


def test_services_outside_the_negotiated_conformance_are_refused():
    a, ctr, _r, _b = make(conformance=acse.CONF_GET)
    assert ask(a, h("C101C1") + desc(9999, CTR, 2) + h("00 12 0001")) == h("D80102")
    assert ask(a, h("C301C1") + desc(9999, CTR, 1) + h("01 12 0001")) == h("D80102")
    assert ctr.value == 5


def test_truncated_set_and_action_are_exceptions_and_leave_state_clean():
    a, ctr, _r, _b = make()
    full_set = h("C101C1") + desc(9999, CTR, 2) + h("00 12 0102")
    full_act = h("C301C1") + desc(9999, CTR, 1) + h("01 12 0003")
    for full in (full_set, full_act):
        for cut in range(1, len(full)):
            r = ask(a, full[:cut])
            assert r[0] == 0xD8, (cut, r)
    assert ctr.value == 5
    assert ask(a, full_set) == h("C501C100")


def test_action_reply_in_pblocks_when_longer_than_the_client_pdu():
    a, _c, _r, _b = make(max_pdu=64)
    value = bytes(range(150))
    param = h("09 81 96") + value
    r = ask(a, h("C301C1") + desc(9998, ECHO, 1) + h("01") + param)
    data = b""
    block = 1
    while True:
        assert r[:3] == h("C702C1"), r
        assert len(r) <= 64
        assert r[4:8] == bytes([0, 0, 0, block])
        rd = axdr.Reader(r, 8)
        n = rd.length()
        data += r[rd.pos:rd.pos + n]
        assert rd.pos + n == len(r)
        if r[3]:
            break
        r = ask(a, bytes([0xC3, 0x02, 0xC1, 0, 0, 0, block]))
        block += 1
    assert block >= 3
    assert data == param  # the return parameter, as a Data
    # afterwards nothing is pending
    r = ask(a, bytes([0xC3, 0x02, 0xC1, 0, 0, 0, block]))
    assert r == h("C701C1 10 00")  # no-long-action-in-progress


def test_action_pblock_out_of_sequence_aborts():
    a, _c, _r, _b = make(max_pdu=64)
    r = ask(a, h("C301C1") + desc(9998, ECHO, 1) + h("01 09 81 96") + bytes(150))
    assert r[:3] == h("C702C1")
    r = ask(a, h("C302C1 00000007"))
    assert r == h("C701C1 0F 00")  # long-action-aborted
    assert ask(a, h("C302C1 00000001")) == h("C701C1 10 00")


def test_action_parameters_in_pblocks():
    a, ctr, _r, _b = make()
    param = h("09 81 C8") + bytes(range(200))
    parts = _blocks(param, 60)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        block = bytes([0, 0, 0, i + 1])
        sa = bytes([1 if last else 0]) + block + bytes([len(part)]) + part
        if i == 0:
            r = ask(a, h("C304C1") + desc(9998, ECHO, 1) + sa)
        else:
            r = ask(a, h("C306C1") + sa)
        if not last:
            assert r == h("C704C1") + block  # next-pblock, please
    assert r == h("C701C1 00 01 00") + param


def test_action_pblock_without_a_first_block_is_refused():
    a, _c, _r, _b = make()
    assert ask(a, h("C306C1 01 00000002 02 1100")) == h("C701C1 10 00")
