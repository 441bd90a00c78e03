"""Security setup (IC 64 v1) through the association: policy only strengthened, global key
transfer with RFC 3394 wrapping, keys never readable. CPython and MicroPython."""

import binascii

from cosem import objects
from cosem.security_setup import SecuritySetup
from dlms import acse
from dlms import association
from dlms import keywrap
from meter import secrets


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


AARQ_PUBLIC = h("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
KEK = bytes(range(16))
DEFAULTS = [bytes(range(16)), bytes(range(0xD0, 0xE0)), b"\xaa" * 16, KEK]
SS = (0, 0, 43, 0, 0, 255)
ST = h("4D4D4D0000BC614E")


class MemStore:
    def __init__(self):
        self.records = {}

    def save(self, name, version, payload):
        self.records[name] = (version, bytes(payload))

    def load(self, name, version):
        rec = self.records.get(name)
        return rec[1] if rec and rec[0] == version else None


def make():
    store = MemStore()
    ks = secrets.KeyStore(store, DEFAULTS)
    dev = objects.LogicalDevice(b"MMM0000012345678")
    # test-only: the security setup is normally reached by the management client after HLS
    dev.policies[objects.PUBLIC] = acse.Policy(mechanism=0, conformance=objects.CONFORMANCE)
    ss = dev.add(SecuritySetup("0.0.43.0.0.255", ks, ST), pub=("rrrrrr", "xx------"))
    dev.done()
    a = association.Association(dev)
    out = bytearray(512)
    a.handle(16, AARQ_PUBLIC, len(AARQ_PUBLIC), memoryview(out))
    assert a.associated
    return a, ss, ks, store


def ask(a, apdu):
    out = bytearray(512)
    n = a.handle(16, apdu, len(apdu), memoryview(out))
    return bytes(out[:n])


def call(a, method, param):
    return ask(a, h("C301C1 0040") + bytes(SS) + bytes([method, 1]) + param)


def test_attributes():
    a, ss, _ks, _st = make()
    assert ask(a, h("C001C1 0040") + bytes(SS) + h("0200")) == h("C401C100 166C")
    assert ask(a, h("C001C1 0040") + bytes(SS) + h("0300")) == h("C401C100 1600")
    assert ask(a, h("C001C1 0040") + bytes(SS) + h("0500")) == h("C401C100 0908") + ST
    assert ask(a, h("C001C1 0040") + bytes(SS) + h("0600")) == h("C401C100 0100")


def test_policy_can_only_be_strengthened():
    a, ss, _ks, _st = make()
    ss.policy = 0x24
    assert call(a, 1, h("16 20")) == h("C701C1 FA 00")  # would drop a bit
    assert ss.policy == 0x24
    assert call(a, 1, h("16 6C")) == h("C701C1 00 00")
    assert ss.policy == 0x6C
    assert call(a, 1, h("16 FC")) == h("C701C1 FA 00")  # signatures: not in suite 0
    assert call(a, 1, h("11 6C")) == h("C701C1 0C 00")  # wrong type


def _transfer(items):
    body = bytes([0x01, len(items)])
    for kid, wrapped in items:
        body += h("0202 16") + bytes([kid]) + h("0918") + wrapped
    return body


def test_global_key_transfer_stores_all_keys_together():
    a, ss, ks, store = make()
    new_ek = b"\x11" * 16
    new_ak = b"\x22" * 16
    param = _transfer([(0, keywrap.wrap(KEK, new_ek)), (2, keywrap.wrap(KEK, new_ak))])
    assert call(a, 2, param) == h("C701C1 00 00")
    assert ks.get(secrets.KEY_EK) == new_ek and ks.get(secrets.KEY_AK) == new_ak
    assert secrets.KeyStore(store, DEFAULTS).get(secrets.KEY_AK) == new_ak  # persisted


def test_key_transfer_with_a_bad_wrap_changes_nothing():
    a, ss, ks, _st = make()
    good = keywrap.wrap(KEK, b"\x11" * 16)
    bad = bytearray(keywrap.wrap(KEK, b"\x22" * 16))
    bad[5] ^= 1
    assert call(a, 2, _transfer([(0, good), (2, bytes(bad))])) == h("C701C1 FA 00")
    assert ks.get(secrets.KEY_EK) == DEFAULTS[0]
    assert ks.get(secrets.KEY_AK) == DEFAULTS[1]


def test_key_transfer_under_another_kek_is_refused():
    a, ss, ks, _st = make()
    wrong = keywrap.wrap(b"\x55" * 16, b"\x11" * 16)
    assert call(a, 2, _transfer([(0, wrong)])) == h("C701C1 FA 00")
    assert ks.get(secrets.KEY_EK) == DEFAULTS[0]


def test_suite_1_and_2_methods_are_not_granted():
    a, _ss, _ks, _st = make()
    assert call(a, 3, h("0100")) == h("C701C1 03 00")
