"""meter.engine with a scripted fake metering IC: totals, schedule, faults and recovery,
persistence and the never-backwards rule across power cuts. CPython and MicroPython."""

from drivers import interface as ic_if
from meter import engine as eng


class MemStore:
    def __init__(self):
        self.records = {}
        self.writes = 0

    def save(self, name, version, payload):
        self.records[name] = (version, bytes(payload))
        self.writes += 1

    def load(self, name, version):
        rec = self.records.get(name)
        return rec[1] if rec and rec[0] == version else None


class FakeIC:
    """Counts `rate` LSBs of active import per drain on phase 1 (and the total)."""

    def __init__(self, rate=100, lsb=3125):
        self.rate = rate
        self.lsb = lsb
        self.fail = 0  # 0 ok, else a ChipError kind raised by the next calls
        self.detected = True
        self.configures = 0
        self.pending = 0

    def detect(self):
        return self.detected and self.fail != ic_if.ABSENT

    def configure(self):
        if self.fail:
            raise ic_if.ChipError(self.fail, "scripted")
        self.configures += 1

    def health(self):
        return self.fail or ic_if.OK

    def read_instant(self, inst):
        if self.fail:
            raise ic_if.ChipError(self.fail, "scripted")
        inst.voltage[1] = 23000
        inst.active[1] = 10925
        inst.active[0] = 10925
        inst.frequency = 5000

    def drain_energy(self, acc):
        self.pending += self.rate
        if self.fail:
            raise ic_if.ChipError(self.fail, "scripted")  # the chip keeps counting
        acc.energy_lsb_uwh = self.lsb
        acc.counts[ic_if.ACTIVE_IMPORT][1] += self.pending
        acc.counts[ic_if.ACTIVE_IMPORT][0] += self.pending
        self.pending = 0


def run(e, t0, seconds, step_ms=500):
    t = t0
    while t < t0 + seconds * 1000:
        e.poll(t)
        t += step_ms
    return t


def test_totals_accumulate_every_five_seconds_and_instants_every_second():
    ic = FakeIC()
    e = eng.Engine(ic, 3)
    e.start(0)
    run(e, 0, 60)
    # drains at 0, 5, ..., 55 s: 12 x 100 LSB x 3125 uWh
    assert e.totals[ic_if.ACTIVE_IMPORT][1] == 12 * 100 * 3125
    assert e.energy_wh(ic_if.ACTIVE_IMPORT, 1, 60000) == 3
    assert e.instant().voltage[1] == 23000


def test_persisted_at_a_bounded_interval_not_per_sample():
    st = MemStore()
    e = eng.Engine(FakeIC(), 3, st)
    e.start(0)
    run(e, 0, 600)  # ten minutes
    assert 9 <= st.writes <= 11  # once a minute


def test_fault_makes_values_unavailable_raises_one_event_and_recovers():
    events = []
    ic = FakeIC()
    e = eng.Engine(ic, 3, None, lambda kind, d: events.append(kind))
    e.start(0)
    t = run(e, 0, 10)
    ic.fail = ic_if.BUS_ERROR
    t = run(e, t, 20)
    assert e.instant() is None
    assert events == ["chip-fault"]
    before = e.totals[ic_if.ACTIVE_IMPORT][1]
    ic.fail = 0
    t = run(e, t, 20)
    assert events == ["chip-fault", "chip-recovered"]
    assert e.instant() is not None
    # nothing the chip counted during the fault was lost
    assert e.totals[ic_if.ACTIVE_IMPORT][1] > before
    assert e.totals[ic_if.ACTIVE_IMPORT][1] % (100 * 3125) == 0


def test_absent_chip_at_start_does_not_crash_and_recovers():
    ic = FakeIC()
    ic.detected = False
    events = []
    e = eng.Engine(ic, 3, None, lambda kind, d: events.append(kind))
    e.start(0)
    t = run(e, 0, 12)
    assert e.health == ic_if.ABSENT and e.instant() is None
    ic.detected = True
    run(e, t, 12)
    assert e.health == ic_if.OK and "chip-recovered" in events


def test_a_power_cut_never_shows_a_smaller_value_than_was_revealed():
    st = MemStore()
    e = eng.Engine(FakeIC(rate=1000), 3, st)
    e.start(0)
    t = 0
    seen = []
    for cut in range(20):
        t = run(e, t, 7 + cut)  # odd lengths: cuts land everywhere in the schedule
        seen.append(e.energy_wh(ic_if.ACTIVE_IMPORT, 0, t))
        e = eng.Engine(FakeIC(rate=1000), 3, st)  # power cut: restart from the flash
        e.start(t)
        assert e.energy_wh(ic_if.ACTIVE_IMPORT, 0, t) >= max(seen)


def test_reveal_writes_at_most_once_per_gap():
    st = MemStore()
    e = eng.Engine(FakeIC(), 3, st)
    e.start(0)
    t = run(e, 0, 6)
    w = st.writes
    for i in range(50):  # a client polling every 100 ms
        e.energy_wh(ic_if.ACTIVE_IMPORT, 1, t)
        t += 100
        e.poll(t)
    assert st.writes - w <= 2  # 5 s gap
    assert e.energy_wh(ic_if.ACTIVE_IMPORT, 1, t) * 1000000 <= e.saved[0][1] + 1000000


def test_loss_on_a_cut_is_bounded_by_the_persist_interval():
    st = MemStore()
    ic = FakeIC(rate=1000)
    e = eng.Engine(ic, 3, st)
    e.start(0)
    t = run(e, 0, 300)
    live = e.totals[ic_if.ACTIVE_IMPORT][0]
    e2 = eng.Engine(FakeIC(), 3, st)
    lost = live - e2.totals[ic_if.ACTIVE_IMPORT][0]
    per_second = 1000 * 3125 // 5
    assert 0 <= lost <= (eng.PERSIST_MS // 1000 + eng.ENERGY_MS // 1000) * per_second


def test_clean_shutdown_loses_nothing():
    st = MemStore()
    ic = FakeIC()
    e = eng.Engine(ic, 3, st)
    e.start(0)
    t = run(e, 0, 33)
    e.shutdown(t)
    e2 = eng.Engine(FakeIC(), 3, st)
    assert e2.totals == e.totals


class FlakyIC(FakeIC):
    """Reads are verified by retries, but health() reports that a retry was needed."""

    def health(self):
        return ic_if.BUS_ERROR


def test_a_recovered_bus_error_is_counted_not_treated_as_a_fault():
    ic = FlakyIC()
    e = eng.Engine(ic, 3)
    e.start(0)
    run(e, 0, 30)
    assert e.faults == 0 and e.bus_errors > 10
    assert ic.configures == 1  # never reset the chip
    assert e.instant() is not None


def test_a_spontaneous_reset_is_reconfigured_at_once():
    ic = FakeIC()
    e = eng.Engine(ic, 3)
    e.start(0)
    t = run(e, 0, 3)
    ic.fail = ic_if.RESET
    e.poll(t)  # the instant read sees the reset
    assert e.health == ic_if.RESET
    ic.fail = 0
    e.poll(t + 1)  # retried immediately, not RETRY_MS later
    assert e.health == ic_if.OK and ic.configures == 2
