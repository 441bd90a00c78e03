"""ADE7953 driver against its register-level simulation. CPython and MicroPython."""

import load_spec
import sim_ade7953
from drivers import interface
from drivers.ade7953 import DEFAULTS, Ade7953
from spi_sim import FakeCS, FakeSPI

HOUR_MS = 3600 * 1000


class Clock:
    """Virtual time: the sim reads it, the driver's sleep_ms advances it."""

    def __init__(self):
        self.t = 0

    def now_ms(self):
        return self.t

    def sleep_ms(self, ms):
        self.t += ms


def rig(load=None, hz=50.0, load_b=None, board=None, config=None, seed=7):
    clock = Clock()
    sim = sim_ade7953.SimAde7953(clock.now_ms, load, hz, load_b, board, seed)
    spi = FakeSPI(sim)
    ic = Ade7953(spi, FakeCS(spi), clock.sleep_ms, config)
    return clock, sim, ic


def expect_chip_error(kind, fn, *args):
    try:
        fn(*args)
    except interface.ChipError as e:
        assert e.kind == kind, e.kind
        return
    raise AssertionError("no ChipError")


def near(value, target, rel):
    return abs(value - target) <= abs(target) * rel


def expected_counts(watts, ms, lsb_uwh=100):
    return watts * ms / 3.6 / lsb_uwh  # W ms -> uWh -> codes


def test_sim_board_is_the_driver_default_board():
    for k in ("v_lsb_per_v", "ia_lsb_per_a", "ib_lsb_per_a", "p_lsb_per_w", "energy_lsb_uwh"):
        assert sim_ade7953.BOARD[k] == DEFAULTS[k], k


def test_detect():
    clock, sim, ic = rig()
    assert ic.detect() and ic.version == sim_ade7953.VERSION
    sim.present = False
    assert not ic.detect()
    sim.present = True
    assert not Ade7953(ic._spi, ic._cs, clock.sleep_ms, {"version": 0x99}).detect()
    spi = FakeSPI(None)  # empty socket
    assert not Ade7953(spi, FakeCS(spi), clock.sleep_ms).detect()


def test_configure_writes_and_verifies_the_settings():
    cal = {"avgain": 0x3F0000, "awattos": -12, "pga_ia": 2, "ap_noload": 0x1000}
    clock, sim, ic = rig(config=cal)
    sim.poke(0x201, 0x15)  # settings left by an earlier firmware are overwritten
    ic.configure()
    assert sim.resets == 1  # the software reset
    assert clock.t >= DEFAULTS["reset_wait_ms"]
    assert sim.peek(0x120) == 0x0030  # unlock + performance setting took
    assert sim.peek(0x281) == 0x3F0000 and sim.peek(0x289) == (-12) & 0xFFFFFF
    assert sim.peek(0x008) == 2 and sim.peek(0x203) == 0x1000 and sim.peek(0x201) == 0
    assert sim.peek(0x004) == 0x40  # read-with-reset energy registers
    assert ic.health() == interface.OK
    c = ic.calibration()
    assert c["avgain"] == 0x3F0000 and c["awattos"] == -12 and c["p_lsb_per_w"] == 155
    try:
        Ade7953(ic._spi, ic._cs, clock.sleep_ms, {"avgian": 1})
    except ValueError:
        pass
    else:
        raise AssertionError("a misspelt setting must be refused")


def test_0x120_needs_the_unlock_immediately_before():
    clock, sim, ic = rig()
    ic._write(0x120, 0x30)
    assert sim.peek(0x120) == 0
    ic._write(0x0FE, 0xAD)
    ic._write(0x101, 5)  # another write in between disarms
    ic._write(0x120, 0x30)
    assert sim.peek(0x120) == 0
    ic._write(0x0FE, 0xAD)
    ic._write(0x120, 0x30)
    assert sim.peek(0x120) == 0x30


def test_configure_absent_chip_raises():
    clock, sim, ic = rig()
    sim.present = False
    expect_chip_error(interface.ABSENT, ic.configure)


def test_instant_values_follow_the_load():
    clock, sim, ic = rig(load_b=load_spec.Phase(230.0, 2.0, 1.0))
    ic.configure()
    clock.t += 500
    inst = interface.Instant(phases=1)
    ic.read_instant(inst)
    assert inst.valid and inst.phases == 1
    assert near(inst.voltage[1], 23000, 0.003)  # 0.01 V
    assert near(inst.current[1], 5000, 0.003)  # mA
    assert near(inst.active[1], 10925, 0.003)  # 0.1 W: 230 V x 5 A x 0.95 = 1092.5 W
    assert near(inst.apparent[1], 11500, 0.003)
    assert near(inst.reactive[1], 3591, 0.01)  # sqrt(1150^2 - 1092.5^2) = 359.1 var
    assert abs(inst.pf[1] - 950) <= 3
    assert abs(inst.angle[1] - 182) <= 3  # acos(0.95) = 18.2 degrees, current lagging
    assert inst.frequency == 5000
    assert near(ic.current_b_ma, 2000, 0.003)
    # single phase: index 0 (total) is the phase for powers and pf; V, I, angle unused there
    for name in ("active", "reactive", "apparent", "pf"):
        row = getattr(inst, name)
        assert row[0] == row[1], name
    assert inst.voltage[0] == 0 and inst.current[0] == 0


def test_measurements_refresh_at_a_cadence_with_noise():
    clock, sim, ic = rig()
    ic.configure()
    clock.t += 500
    a = ic._read(0x21C)
    assert ic._read(0x21C) == a  # same refresh period: same value
    seen = set()
    for _ in range(20):
        clock.t += sim_ade7953.REFRESH_MS
        v = ic._read(0x21C)
        seen.add(v)
        assert near(v, 230 * 26000, 0.0011)
    assert len(seen) > 5  # noise


def test_frequency_60hz_and_capacitive_load():
    clock, sim, ic = rig(load=load_spec.Phase(120.0, 10.0, 0.8, inductive=False), hz=60.0)
    ic.configure()
    clock.t += 500
    inst = interface.Instant(phases=1)
    ic.read_instant(inst)
    assert inst.frequency == 6000
    assert near(inst.active[1], 9600, 0.003) and near(inst.reactive[1], -7200, 0.003)
    assert abs(inst.angle[1] + 369) <= 3  # current leads by 36.9 degrees


def test_export_load_counts_export_energy():
    clock, sim, ic = rig(load=load_spec.Phase(230.0, 5.0, -0.95))
    ic.configure()
    acc = interface.EnergyDelta(phases=1)
    ic.drain_energy(acc)
    acc.clear()
    clock.t += 500
    inst = interface.Instant(phases=1)
    ic.read_instant(inst)
    assert near(inst.active[1], -10925, 0.003) and abs(inst.pf[1] + 950) <= 3
    assert abs(inst.angle[1] - 1618) <= 3  # quadrant II
    clock.t += 9500
    ic.drain_energy(acc)
    exp = expected_counts(1092.5, 10000)
    c = acc.counts
    assert c[interface.ACTIVE_IMPORT] == [0, 0]
    assert abs(c[interface.ACTIVE_EXPORT][0] - exp) <= 1
    assert c[interface.ACTIVE_EXPORT][1] == c[interface.ACTIVE_EXPORT][0]
    q = expected_counts((1150.0**2 - 1092.5**2) ** 0.5, 10000)
    assert abs(c[interface.REACTIVE_IMPORT][0] - q) <= 1  # inductive: quadrant II, +R
    assert c[interface.REACTIVE_EXPORT] == [0, 0]
    assert acc.energy_lsb_uwh == 100


def test_one_hour_at_fixed_load_is_exact_to_one_lsb():
    clock, sim, ic = rig()
    ic.configure()
    acc = interface.EnergyDelta(phases=1)
    ic.drain_energy(acc)
    acc.clear()
    inst = interface.Instant(phases=1)
    t0 = clock.t
    while clock.t - t0 < HOUR_MS:
        clock.t += 10000  # drain every 10 s of virtual time
        ic.drain_energy(acc)
        ic.read_instant(inst)
    assert clock.t - t0 == HOUR_MS
    exp = expected_counts(1092.5, HOUR_MS)  # 1092.5 Wh = 10 925 000 x 100 uWh
    got = acc.counts[interface.ACTIVE_IMPORT]
    assert abs(got[0] - exp) <= 1, (got[0], exp)
    assert got[1] == got[0]
    assert abs(got[0] * acc.energy_lsb_uwh / 1e6 - 1092.5) <= 1e-4  # Wh
    q = expected_counts((1150.0**2 - 1092.5**2) ** 0.5, HOUR_MS)
    assert abs(acc.counts[interface.REACTIVE_IMPORT][0] - q) <= 1
    assert acc.counts[interface.ACTIVE_EXPORT] == [0, 0]


def test_no_load_counts_nothing():
    clock, sim, ic = rig(load=load_spec.Phase(230.0, 0.005, 1.0))  # 1.15 W < threshold
    ic.configure()
    clock.t += 60000
    acc = interface.EnergyDelta(phases=1)
    ic.drain_energy(acc)
    assert acc.counts[interface.ACTIVE_IMPORT] == [0, 0]


def test_warm_reboot_keeps_the_energy_counted_before_it():
    clock, sim, ic = rig()
    ic.configure()
    clock.t = 5000
    ic2 = Ade7953(ic._spi, ic._cs, clock.sleep_ms)  # MCU restarts, chip stays powered
    ic2.configure()  # drains before its software reset
    clock.t = 20000
    acc = interface.EnergyDelta(phases=1)
    ic2.drain_energy(acc)
    exp = expected_counts(1092.5, 20000)
    assert abs(acc.counts[interface.ACTIVE_IMPORT][0] - exp) <= 2  # 2 resets: 2 remainders


def test_bit_flips_on_miso_lose_no_energy():
    clock, sim, ic = rig(seed=3)
    sim.flip_miso = 0.02
    ic.configure()  # every read confirmed, every write verified despite the flips
    sim.flip_miso = 0.0
    assert ic.health() == interface.OK and sim.peek(0x120) == 0x30
    acc = interface.EnergyDelta(phases=1)
    ic.drain_energy(acc)
    acc.clear()
    sim.flip_miso = 0.01
    inst = interface.Instant(phases=1)
    t0 = clock.t
    for _ in range(60):
        clock.t += 10000
        ic.drain_energy(acc)
        ic.read_instant(inst)
        assert near(inst.active[1], 10925, 0.003)
    exp = expected_counts(1092.5, clock.t - t0)
    assert abs(acc.counts[interface.ACTIVE_IMPORT][0] - exp) <= 1


def test_fault_absent_detected_and_recovered():
    clock, sim, ic = rig()
    ic.configure()
    sim.present = False
    assert ic.health() == interface.ABSENT
    expect_chip_error(interface.ABSENT, ic.read_instant, interface.Instant(phases=1))
    expect_chip_error(interface.ABSENT, ic.drain_energy, interface.EnergyDelta(phases=1))
    sim.present = True
    assert ic.health() == interface.OK


def test_fault_miso_bit_flips_detected_and_recovered():
    clock, sim, ic = rig()
    ic.configure()
    sim.flip_miso = 1.0
    seen = [ic.health() for _ in range(20)]
    assert interface.OK not in seen and interface.BUS_ERROR in seen
    sim.flip_miso = 0.0
    assert ic.health() == interface.OK


def test_fault_spontaneous_reset_detected_and_recovered():
    clock, sim, ic = rig()
    ic.configure()
    acc = interface.EnergyDelta(phases=1)
    clock.t += 5000
    ic.drain_energy(acc)
    acc.clear()
    sim.inject_reset()
    assert ic.health() == interface.RESET
    expect_chip_error(interface.RESET, ic.read_instant, interface.Instant(phases=1))
    clock.t += 2000
    expect_chip_error(interface.RESET, ic.drain_energy, acc)  # ... with the energy since
    exp = expected_counts(1092.5, 2000)
    assert abs(acc.counts[interface.ACTIVE_IMPORT][0] - exp) <= 1
    ic.configure()
    assert ic.health() == interface.OK
    ic.drain_energy(acc)
    clock.t += 500
    inst = interface.Instant(phases=1)
    ic.read_instant(inst)
    assert near(inst.active[1], 10925, 0.003)


def test_fault_energy_register_wrap_is_undone():
    for pf, q in ((0.95, interface.ACTIVE_IMPORT), (-0.95, interface.ACTIVE_EXPORT)):
        clock, sim, ic = rig(load=load_spec.Phase(230.0, 5.0, pf))
        ic.configure()
        acc = interface.EnergyDelta(phases=1)
        ic.drain_energy(acc)
        acc.clear()
        start = 0x7FFFF0 if pf > 0 else -0x7FFFF0
        sim.poke(0x21E, start)  # as if not drained for ~46 minutes
        clock.t += 10000
        assert sim.peek(0x22D) & sim_ade7953.IRQ_AEOF  # the register wrapped
        ic.drain_energy(acc)
        exp = abs(start) + expected_counts(1092.5, 10000)
        assert abs(acc.counts[q][0] - exp) <= 1, (acc.counts[q][0], exp)
        assert acc.counts[1 - q] == [0, 0]
        assert sim.peek(0x22D) == 0  # flags cleared by the read
        acc.clear()
        clock.t += 10000
        ic.drain_energy(acc)  # and the next interval is normal again
        assert abs(acc.counts[q][0] - expected_counts(1092.5, 10000)) <= 1


def test_32bit_page_sign_extends_the_24bit_registers():
    clock, sim, ic = rig(load=load_spec.Phase(230.0, 5.0, -0.5))
    ic.configure()
    clock.t += 500
    w24 = ic._read(0x212, True)
    w32 = ic._read(0x312, True)
    assert w24 == w32 < 0
    assert ic._read(0x31C) == ic._read(0x21C) > 0  # unsigned: zero-extended


def test_calibration_corrects_a_board_error():
    board = {"v_error": 1.02}
    clock, sim, ic = rig(board=board)
    ic.configure()
    clock.t += 500
    inst = interface.Instant(phases=1)
    ic.read_instant(inst)
    assert near(inst.voltage[1], 23460, 0.003)  # uncalibrated: 2 % high
    gain = int(0x400000 / 1.02 + 0.5)
    clock, sim, ic = rig(board=board, config={"avgain": gain})
    ic.configure()
    clock.t += 500
    ic.read_instant(inst)
    assert near(inst.voltage[1], 23000, 0.003) and near(inst.active[1], 10925, 0.003)
    assert ic.calibration()["avgain"] == gain
