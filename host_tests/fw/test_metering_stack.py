"""The whole metering chain in one process with controlled virtual time: simulated chip ->
SPI -> driver -> engine -> COSEM Register -> association GET. Over a simulated hour at a
fixed load the energy register equals P * t within one register LSB (1 Wh), for both chips,
with the simulated noise on. CPython and MicroPython."""

import binascii

import load_spec
from app import Metering
from cosem import objects
from dlms import acse
from dlms import association
from drivers.ade7953 import Ade7953
from drivers.atm90e32 import Atm90e32
from meter import engine as eng
from sim_ade7953 import SimAde7953
from sim_atm90e32 import Atm90e32Sim, VirtualClock
from spi_sim import FakeCS, FakeSPI

AARQ_PUBLIC = binascii.unhexlify(
    "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")


def stack(chip):
    clock = VirtualClock(1000)
    phases, hz = load_spec.parse("230V,5A,pf0.95,50Hz", 3 if chip == "atm90e32" else 1)
    if chip == "atm90e32":
        sim = Atm90e32Sim(phases, hz, now_ms=clock.now_ms, seed=7)
        spi = FakeSPI(sim)
        ic = Atm90e32(spi, FakeCS(spi), clock.sleep_ms, sim.calibrated_config())
        n = 3
    else:
        sim = SimAde7953(clock.now_ms, load=phases[0], hz=hz, seed=7)
        spi = FakeSPI(sim)
        ic = Ade7953(spi, FakeCS(spi), clock.sleep_ms, None)
        n = 1
    e = eng.Engine(ic, n)
    e.start(clock.now_ms())
    dev = objects.LogicalDevice(b"MMM0000012345678")
    # test-only: let the public client read the registers (the contract gives them to 32/1)
    dev.policies[objects.READER] = acse.Policy(mechanism=0, conformance=objects.CONFORMANCE)
    objects.add_metering(dev, Metering(e, clock.now_ms))
    dev.done()
    a = association.Association(dev)
    out = bytearray(256)
    a.handle(32, AARQ_PUBLIC, len(AARQ_PUBLIC), memoryview(out))
    assert a.associated
    return clock, e, a, phases


def read_u32(a, obis):
    req = bytes([0xC0, 0x01, 0xC1, 0, 3]) + bytes(obis) + bytes([2, 0])
    out = bytearray(64)
    n = a.handle(32, req, len(req), memoryview(out))
    assert bytes(out[:5]) == bytes([0xC4, 0x01, 0xC1, 0x00, 0x06]), bytes(out[:n])
    return int.from_bytes(bytes(out[5:9]), "big")


def hour(chip):
    clock, e, a, phases = stack(chip)
    t0 = clock.now_ms()
    start = read_u32(a, (1, 0, 1, 8, 0, 255))
    t = t0
    while t < t0 + 3600 * 1000:
        t += 500
        clock.advance(500)
        e.poll(t)
    # take what the chip counted up to exactly one hour, then read the register
    e.shutdown(t)
    end = read_u32(a, (1, 0, 1, 8, 0, 255))
    expected = sum(p.active_w() for p in phases)  # Wh in one hour
    return end - start, expected


def test_atm90e32_energy_register_over_one_hour():
    got, expected = hour("atm90e32")
    assert abs(got - expected) <= 1, (got, expected)


def test_ade7953_energy_register_over_one_hour():
    got, expected = hour("ade7953")
    assert abs(got - expected) <= 1, (got, expected)
