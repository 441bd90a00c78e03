"""ATM90E32AS driver against the register-level simulation (boards/unix/sim_atm90e32.py),
through the fake SPI bus. CPython and MicroPython.

Time is a VirtualClock the tests move: the chip integrates energy and refreshes its
measurements (every 100 ms) on that clock, and the driver's sleep_ms() moves it too.
"""

import load_spec
from drivers import interface as ic
from drivers.atm90e32 import Atm90e32
from sim_atm90e32 import Q_AP, Q_RP, Atm90e32Sim, VirtualClock
from spi_sim import FakeCS, FakeSPI

HOUSE = load_spec.DEFAULT  # 230 V, 5 A, pf 0.95 on each phase: 1092.5 W


def rig(spec=HOUSE, ideal=True, noise=0.0, seed=1, config=None):
    phases, hz = load_spec.parse(spec)
    clock = VirtualClock(1000)
    sim = Atm90e32Sim(phases, hz, clock.now_ms, seed=seed, noise=noise, ideal=ideal)
    spi = FakeSPI(sim)
    cs = FakeCS(spi)
    drv = Atm90e32(spi, cs, clock.sleep_ms, config)
    return clock, sim, spi, cs, drv


def running(spec=HOUSE, **kw):
    clock, sim, spi, cs, drv = rig(spec, **kw)
    drv.configure()
    clock.advance(200)  # past a measurement refresh
    drv.drain_energy(ic.EnergyDelta())  # start from empty registers
    return clock, sim, spi, cs, drv


def frame(spi, cs, data):
    rx = bytearray(len(data))
    cs.value(0)
    spi.write_readinto(bytes(data), rx)
    cs.value(1)
    return (rx[2] << 8) | rx[3] if len(rx) >= 4 else None


def rd(spi, cs, addr):
    return frame(spi, cs, (0x80 | (addr >> 8), addr & 0xFF, 0, 0))


def wr(spi, cs, addr, v):
    frame(spi, cs, (addr >> 8, addr & 0xFF, v >> 8, v & 0xFF))


def near(value, target, rel):
    return abs(value - target) <= abs(target) * rel


# ---------------------------------------------------------------------- the simulated chip
def test_sim_frames_lastspidata_and_rejection():
    clock, sim, spi, cs, drv = rig()
    wr(spi, cs, 0x7F, 0x55AA)
    assert rd(spi, cs, 0x78) == 0x55AA
    assert rd(spi, cs, 0x78) == 0x55AA  # reading LastSPIData does not change it
    assert rd(spi, cs, 0x33) == 0x0087  # MMode0 reset default
    assert rd(spi, cs, 0x78) == 0x0087
    wr(spi, cs, 0x34, 0x1234)  # unlocked: taken
    assert rd(spi, cs, 0x34) == 0x1234
    before = sim.rejected
    frame(spi, cs, (0x00, 0x34, 0x43, 0x21, 0x00))  # 5 bytes: rejected
    frame(spi, cs, (0x00, 0x34, 0x43))  # 3 bytes: rejected
    assert sim.rejected == before + 2
    assert rd(spi, cs, 0x34) == 0x1234
    assert rd(spi, cs, 0x31) == 0x0861 and rd(spi, cs, 0x32) == 0xC468  # PLconst defaults


def test_sim_lock_soft_reset_and_write_one_to_clear():
    clock, sim, spi, cs, drv = rig()
    wr(spi, cs, 0x33, 0x1087)  # locked after reset: ignored ...
    assert rd(spi, cs, 0x33) == 0x0087
    wr(spi, cs, 0x33, 0x1087)
    assert rd(spi, cs, 0x78) == 0x1087  # ... though LastSPIData echoes it
    wr(spi, cs, 0x7F, 0x55AA)
    wr(spi, cs, 0x33, 0x1087)
    wr(spi, cs, 0x7F, 0x0000)
    assert rd(spi, cs, 0x33) == 0x1087
    sim.raise_status(0x73, 0x0005)
    wr(spi, cs, 0x73, 0x0001)
    assert rd(spi, cs, 0x73) == 0x0004
    wr(spi, cs, 0x70, 0x789A)  # SoftReset
    assert rd(spi, cs, 0x33) == 0  # busy for 6 ms: frames ignored
    clock.advance(6)
    assert rd(spi, cs, 0x33) == 0x0087 and rd(spi, cs, 0x73) == 0


def test_sim_measurements_refresh_at_cadence_and_noise_is_seeded():
    clock, sim, spi, cs, drv = running(ideal=False, noise=0.001, seed=7)
    a = [rd(spi, cs, 0xC1) for _ in range(5)]
    assert a == [a[0]] * 5  # same refresh period: same value
    clock.advance(100)
    assert rd(spi, cs, 0xC1) != a[0]
    # same seed, same reads: same values (own xorshift, so CPython and MicroPython agree)
    clock2, sim2, spi2, cs2, drv2 = running(ideal=False, noise=0.001, seed=7)
    assert [rd(spi2, cs2, 0xC1) for _ in range(5)] == a
    vals = []
    for _ in range(5):
        clock2.advance(100)
        vals.append(rd(spi2, cs2, 0xB1) << 16 | rd(spi2, cs2, 0xC1))
    assert vals == [3369907, 3371476, 3365529, 3371083, 3373651]  # same on both runtimes


# ---------------------------------------------------------------------- detect, configure
def test_detect_present_and_absent():
    clock, sim, spi, cs, drv = rig()
    assert drv.detect()
    sim.present = False
    assert not drv.detect()
    bus = FakeSPI(None)  # nothing on the bus at all
    assert Atm90e32(bus, FakeCS(bus), clock.sleep_ms).detect() is False


def test_configure_writes_verified_registers_and_locks():
    clock, sim, spi, cs, drv = rig(config={"mains_hz": 60, "UgainB": 30000, "PoffsetA": -12})
    drv.configure()
    r = sim.regs
    assert r[0x00] == 1 and r[0x33] == 0x0087 | 1 << 12  # MeterEn; 60 Hz bit
    assert r[0x0C] == 5900 and r[0x0D] == 6100
    assert r[0x65] == 30000 and r[0x41] == 0xFFF4
    assert r[0x7F] != 0x55AA  # locked
    assert drv.health() == ic.OK
    assert drv.calibration()["UgainB"] == 30000
    try:
        Atm90e32(spi, cs, clock.sleep_ms, {"Ugian": 1})
    except ValueError:
        pass
    else:
        raise AssertionError("unknown setting accepted")


def test_configure_write_dropped_on_the_bus():
    clock, sim, spi, cs, drv = rig(config={"UgainA": 30000})
    sim.drop_write(0x33, 1)  # once: the verification sees it and the retry fixes it
    drv.configure()
    assert drv.bus_errors == 1 and sim.regs[0x33] == 0x0087
    assert drv.health() == ic.BUS_ERROR and drv.health() == ic.OK
    sim.drop_write(0x61)  # always: ChipError
    try:
        drv.configure()
    except ic.ChipError as e:
        assert e.kind == ic.BUS_ERROR
    else:
        raise AssertionError("dropped write not noticed")


def test_configure_write_ignored_by_the_chip_is_caught_by_read_back():
    clock, sim, spi, cs, drv = rig()
    sim.jam_config = True  # LastSPIData echoes every write, the registers keep their value
    try:
        drv.configure()
    except ic.ChipError as e:
        assert e.kind == ic.BUS_ERROR and "MeterEn" in str(e)
    else:
        raise AssertionError("ignored configuration not noticed")


# ---------------------------------------------------------------------- measurements
def test_read_instant_household_load():
    clock, sim, spi, cs, drv = running(ideal=True, noise=0.001, seed=3)
    inst = ic.Instant()
    drv.read_instant(inst)
    assert inst.valid and inst.frequency == 5000
    for p in (1, 2, 3):
        assert near(inst.voltage[p], 23000, 0.005)  # 0.01 V
        assert near(inst.current[p], 5000, 0.005)  # mA
        assert near(inst.active[p], 10925, 0.005)  # 0.1 W: 1092.5 W
        assert near(inst.reactive[p], 3591, 0.01)  # 359.1 var, inductive
        assert near(inst.apparent[p], 11500, 0.005)
        assert abs(inst.pf[p] - 950) <= 3
        assert abs(inst.angle[p] - 182) <= 3  # acos(0.95) = 18.2 degrees
    assert near(inst.active[0], 32775, 0.005) and abs(inst.pf[0] - 950) <= 3


def test_sign_conventions():
    spec = "230V,5A,pf-0.95;230V,5A,pf0.95,lead;230V,5A,pf-0.5,lead"
    clock, sim, spi, cs, drv = running(spec)
    inst = ic.Instant()
    drv.read_instant(inst)
    assert inst.active[1] < 0 and inst.reactive[1] > 0 and inst.pf[1] < 0  # quadrant II
    assert inst.active[2] > 0 and inst.reactive[2] < 0  # quadrant IV
    assert inst.active[3] < 0 and inst.reactive[3] < 0  # quadrant III
    clock.advance(10000)
    d = ic.EnergyDelta()
    drv.drain_energy(d)
    c = d.counts
    assert c[ic.ACTIVE_EXPORT][1] > 0 and c[ic.ACTIVE_IMPORT][1] == 0
    assert c[ic.REACTIVE_IMPORT][1] > 0 and c[ic.REACTIVE_EXPORT][1] == 0
    assert c[ic.ACTIVE_IMPORT][2] > 0 and c[ic.REACTIVE_EXPORT][2] > 0
    assert c[ic.REACTIVE_IMPORT][2] == 0
    assert c[ic.ACTIVE_EXPORT][3] > 0 and c[ic.REACTIVE_EXPORT][3] > 0
    # total: -1092.5 + 1092.5 - 575 W < 0 -> export
    assert c[ic.ACTIVE_EXPORT][0] > 0 and c[ic.ACTIVE_IMPORT][0] == 0


# ---------------------------------------------------------------------- energy
def test_one_hour_energy_is_p_times_t_within_one_lsb():
    clock, sim, spi, cs, drv = running(noise=0.001)  # noise is on the display, not energy
    d = ic.EnergyDelta()
    for _ in range(360):
        clock.advance(10000)
        drv.drain_energy(d)
    assert d.energy_lsb_uwh == 3125
    per_phase_uwh = 1092.5 * 1e6  # 230 V x 5 A x 0.95 for one hour, in uWh
    for p in (1, 2, 3):
        assert abs(d.counts[ic.ACTIVE_IMPORT][p] * 3125 - per_phase_uwh) <= 3125
        assert d.counts[ic.ACTIVE_EXPORT][p] == 0
    assert abs(d.counts[ic.ACTIVE_IMPORT][0] * 3125 - 3 * per_phase_uwh) <= 3125
    q_uwh = 230 * 5 * (1 - 0.95 * 0.95) ** 0.5 * 1e6
    assert abs(d.counts[ic.REACTIVE_IMPORT][1] * 3125 - q_uwh) <= 3125
    assert drv.lost_reads == 0 and drv.near_wrap == 0


def test_fraction_kept_across_read_clear_and_nothing_below_threshold():
    clock, sim, spi, cs, drv = running("230V,5A,pf1;230V,0.008A,pf1;230V,0A")
    d = ic.EnergyDelta()
    for _ in range(600):  # drained every 100 ms: each read holds ~32 counts and a fraction
        clock.advance(100)
        drv.drain_energy(d)
    # 1150 W for 60 s = 19.1666 Wh = 6133.3 counts: the fraction is not lost per read
    assert 6133 <= d.counts[ic.ACTIVE_IMPORT][1] <= 6134
    assert d.counts[ic.ACTIVE_IMPORT][2] == 0  # 1.84 W: below the 2 W start threshold
    assert d.counts[ic.ACTIVE_IMPORT][3] == 0


def test_warm_reboot_loses_no_energy():
    clock, sim, spi, cs, drv = running()
    base = sim.counted[Q_AP][1]  # running() drained all of it
    clock.advance(7000)  # energy counted by the chip, not yet drained
    pending = sim.pending(Q_AP, 1)
    assert pending >= 679  # 1092.5 W x 7 s
    # the MCU reboots; the chip stays powered: a new driver instance configures the chip
    drv2 = Atm90e32(spi, cs, clock.sleep_ms)
    drv2.configure()  # drains into its carry before the soft reset
    assert sim.pending(Q_AP, 1) == 0
    d = ic.EnergyDelta()
    drv2.drain_energy(d)  # the carry comes out of the first drain
    assert d.counts[ic.ACTIVE_IMPORT][1] >= pending
    assert d.counts[ic.ACTIVE_IMPORT][1] == sim.counted[Q_AP][1] - base  # not one count lost
    # without the drain first, the soft reset would have thrown `pending` counts away


def test_forced_16_bit_wrap_and_near_wrap_flag():
    clock, sim, spi, cs, drv = running()
    sim.preload_energy(0xFFF0, Q_AP, 1)
    clock.advance(1000)  # ~349600 / 3600 = 97 counts: the register wraps
    d = ic.EnergyDelta()
    drv.drain_energy(d)
    got = d.counts[ic.ACTIVE_IMPORT][1]
    assert got < 100  # 65536 counts (204.8 Wh) are gone: no register can show a wrap
    sim.preload_energy(0x9000, Q_AP, 2)
    drv.drain_energy(d)
    assert drv.near_wrap == 1  # a drain that found a register past half range


# ---------------------------------------------------------------------- faults
def test_absent_chip():
    clock, sim, spi, cs, drv = running()
    sim.present = False
    assert drv.health() == ic.ABSENT
    inst = ic.Instant()
    d = ic.EnergyDelta()
    for call in (lambda: drv.read_instant(inst), lambda: drv.drain_energy(d)):
        try:
            call()
        except ic.ChipError as e:
            assert e.kind == ic.ABSENT
        else:
            raise AssertionError("absent chip not reported")
    assert not inst.valid and d.counts[ic.ACTIVE_IMPORT] == [0, 0, 0, 0]
    clock.advance(5000)
    sim.present = True  # the wire is back; the chip kept counting
    assert drv.health() == ic.OK
    drv.drain_energy(d)
    assert d.counts[ic.ACTIVE_IMPORT][1] >= 5000 * 349600 // 3600000


def test_bit_flips_are_bus_errors_retried_and_lose_no_energy():
    clock, sim, spi, cs, drv = running(noise=0.0, seed=11)
    sim.flip_miso = 0.02  # 2 % of answers corrupted: a very sick bus
    inst = ic.Instant()
    d = ic.EnergyDelta()
    base = [sim.counted[q][p] for q in range(4) for p in range(4)]
    for i in range(30):
        clock.advance(1000)
        drv.read_instant(inst)
        assert near(inst.active[1], 10925, 0.001) and inst.voltage[2] == 23000
        if i % 5 == 4:
            drv.drain_energy(d)
    assert sim.flips > 50 and drv.bus_errors > 50
    assert drv.health() == ic.BUS_ERROR
    sim.flip_miso = 0.0
    drv.drain_energy(d)
    assert drv.health() == ic.OK
    got = [d.counts[q][p] for q in range(4) for p in range(4)]
    now = [sim.counted[q][p] for q in range(4) for p in range(4)]
    assert drv.lost_reads == 0
    assert got == [now[i] - base[i] for i in range(16)]  # every count arrived exactly once
    sim.flip_miso = 0.02
    drv.configure()  # configuration also goes through
    assert sim.regs[0x00] == 1


def test_energy_read_recovered_from_lastspidata():
    clock, sim, spi, cs, drv = running()
    clock.advance(3000)
    want = sim.pending(Q_AP, 1)
    # corrupt exactly the answer of the energy register: the read clears it in the chip,
    # the value survives in LastSPIData
    orig = sim.exchange
    hit = [0]

    def exchange(index, b):
        out = orig(index, b)
        if index == 3 and sim._frame[1] == 0x81 and sim._frame[0] & 0x80 and not hit[0]:
            hit[0] = 1
            out ^= 0x04
        return out

    sim.exchange = exchange
    d = ic.EnergyDelta()
    drv.drain_energy(d)
    assert hit[0] and drv.bus_errors == 1 and drv.lost_reads == 0
    assert d.counts[ic.ACTIVE_IMPORT][1] == want


def test_spontaneous_reset_is_reported_and_reconfigured():
    clock, sim, spi, cs, drv = running(config=None)
    clock.advance(2000)
    sim.spontaneous_reset()  # configuration and the chip's unread energy are gone
    assert drv.health() == ic.RESET
    inst = ic.Instant()
    try:
        drv.read_instant(inst)
    except ic.ChipError as e:
        assert e.kind == ic.RESET
    else:
        raise AssertionError("reset not reported")
    drv.configure()
    assert drv.health() == ic.OK
    clock.advance(200)
    drv.read_instant(inst)
    assert near(inst.active[1], 10925, 0.001)


def test_torn_reads_never_give_a_torn_value():
    clock, sim, spi, cs, drv = running()
    inst = ic.Instant()
    drv.read_instant(inst)
    before = inst.active[1]
    sim.tear = 1  # after the next high-word read the chip refreshes and the value moves
    drv.read_instant(inst)
    assert sim.tears == 1 and drv.torn_reads == 1
    # consistent values only: before, or after the move of TEAR_STEP x 0.00032 W (31.5 W);
    # a torn hi/lo pair would be about 21 W (one high-word step) off either
    for p in (1, 2, 3):
        assert inst.active[p] - before in (0, 314, 315)
    sim.tear = 1000  # never stable: ChipError rather than a wrong value
    try:
        drv.read_instant(inst)
    except ic.ChipError as e:
        assert e.kind == ic.BUS_ERROR and not inst.valid
    else:
        raise AssertionError("unstable value accepted")


# ---------------------------------------------------------------------- calibration
def test_calibration_converges():
    clock, sim, spi, cs, drv = rig(ideal=False, noise=0.001, seed=5)
    drv.configure()
    clock.advance(200)
    inst = ic.Instant()
    drv.read_instant(inst)
    assert not near(inst.voltage[1], 23000, 0.02)  # uncalibrated: a few % off
    off = load_spec.Phase(0.0, 0.0, 1.0)
    sim.set_load([off, off, off])
    drv.calibrate_offsets()
    ref_phase = load_spec.Phase(230.0, 5.0, 1.0)
    sim.set_load([ref_phase] * 3)
    ref = ic.Instant()
    for p in (1, 2, 3):
        ref.voltage[p] = 23000
        ref.current[p] = 5000
    cal = drv.calibrate_gains(ref)
    house, _ = load_spec.parse("220V,3A,pf0.8")
    sim.set_load(house)
    clock.advance(200)
    drv.read_instant(inst)
    for p in (1, 2, 3):
        assert near(inst.voltage[p], 22000, 0.005)
        assert near(inst.current[p], 3000, 0.005)
        assert near(inst.active[p], 5280, 0.005)  # 528 W
    # persisted constants configure a new driver instance the same way
    drv2 = Atm90e32(spi, cs, clock.sleep_ms, cal)
    drv2.configure()
    clock.advance(200)
    drv2.read_instant(inst)
    assert near(inst.active[2], 5280, 0.005)
    # zero input reads (nearly) zero after the offsets
    sim.set_load([off, off, off])
    clock.advance(200)
    drv2.read_instant(inst)
    assert inst.voltage[1] <= 2 and inst.current[1] <= 1 and abs(inst.active[1]) <= 2
    # the sim's own answer agrees with the calibration found
    ref_cal = sim.calibrated_config()
    for name in ("UgainA", "IgainB", "UgainC"):
        assert abs(cal[name] - ref_cal[name]) <= ref_cal[name] // 200


def test_calibrate_offsets_refuses_live_inputs():
    clock, sim, spi, cs, drv = running(ideal=False)
    try:
        drv.calibrate_offsets(samples=2)
    except ValueError:
        pass
    else:
        raise AssertionError("offsets computed with mains applied")


# ---------------------------------------------------------------------- with the engine
def test_engine_keeps_every_count_through_faults():
    from meter.engine import Engine

    clock, sim, spi, cs, drv = rig(noise=0.001)
    events = []
    eng = Engine(drv, 3, on_event=lambda kind, detail: events.append(kind))
    eng.start(clock.now_ms())
    for second in range(600):  # ten minutes, polled every 250 ms
        if second == 100:
            sim.present = False  # wire off for 20 s: the chip keeps counting
        if second == 120:
            sim.present = True
        if second == 300:
            sim.flip_miso = 0.01
        if second == 400:
            sim.flip_miso = 0.0
        for _ in range(4):
            clock.advance(250)
            eng.poll(clock.now_ms())
    eng.shutdown(clock.now_ms())
    assert "chip-fault" in events and "chip-recovered" in events
    assert drv.lost_reads == 0
    for q, sq in ((ic.ACTIVE_IMPORT, Q_AP), (ic.REACTIVE_IMPORT, Q_RP)):
        for p in range(4):
            assert eng.totals[q][p] == sim.counted[sq][p] * 3125  # every count, exactly once
    assert eng.totals[ic.ACTIVE_EXPORT] == [0, 0, 0, 0]
    # the chip meters all the time except the 10 ms after each soft reset (one per configure),
    # and each reset drops the sub-count fraction of every register
    n = drv.configures
    metered_ms = clock.now_ms() - 1000 - 10 * n
    assert abs(eng.totals[ic.ACTIVE_IMPORT][1] - 1092.5e6 * metered_ms / 3600000) <= 3125 * n


def test_driver_hot_paths_allocate_nothing():
    try:
        import micropython
    except ImportError:
        return  # CPython: nothing to prove
    if not hasattr(micropython, "heap_lock"):
        return

    class Pin:
        def value(self, v=None):
            return None

    class Bus:  # every register answers 0x0001 and LastSPIData echoes it (MeterEn = 1)
        def write_readinto(self, tx, rx):
            rx[2] = 0
            rx[3] = 1

    drv = Atm90e32(Bus(), Pin(), lambda ms: None)
    inst = ic.Instant()
    d = ic.EnergyDelta()

    def cycle():
        drv.read_instant(inst)
        drv.drain_energy(d)
        return drv.health()

    cycle()
    micropython.heap_lock()
    try:
        h = cycle()
    finally:
        micropython.heap_unlock()
    assert h == ic.OK and inst.valid and d.counts[0][0] == 2
