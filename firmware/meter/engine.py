"""The metering engine: polls the metering IC, keeps the energy totals, and never lets a
power cut lose more than a documented amount or show a client a value that later goes
backwards.

Schedule (meter time, in ms, passed in by the caller; nothing here reads a clock):
* instantaneous values (V, I, P, Q, S, PF, frequency) every second;
* energy every 5 s (the ATM90E32AS's 16-bit counters overflow after about 74 s at 10 kW
  per phase: metering-ic.md); the chip's counts are added to 64-bit totals in micro-Wh
  (micro-varh) per quantity and phase;
* persistence of the totals at most every PERSIST_MS (60 s) of meter time, and on clean
  shutdown (record ``energy``: CRC-checked, written new-then-rename by meter.store).

Power cuts: a cut loses at most the energy counted since the last persisted record
(<= 60 s of consumption, plus <= 5 s still in the chip): at a household 3 kW that is about
55 Wh; at the 3 x 230 V x 100 A maximum about 1.25 kWh. And it never makes a value go
backwards that a client has *seen*: before a total is revealed to a client (a GET), it is
persisted if the record is older than the total (``reveal``) -- at most once every
REVEAL_GAP_MS; within that gap the client is shown the persisted value instead. So after a
restart from the same flash, every energy value read before the cut is <= what is read
after it.

Chip faults never crash the meter: instantaneous values become unavailable (the registers
answer temporary-failure), an event is raised once per fault episode, and the engine
configures the chip again at once after a spontaneous reset, or every RETRY_MS while it is
absent or unreadable, until it recovers. A bus error that a retry already corrected is only
counted. Energy is never lost by a
fault: the chip keeps counting, and read-clear registers are only cleared by reads that the
driver verified.

Signs follow IEC 62053: active import (+A) and export (-A), reactive import (+R, quadrants
I and II) and export (-R, III and IV); the driver already sorts counts that way.

RAM: one Instant, one EnergyDelta, 2 x 4 x (phases + 1) ints for the totals.
"""

import struct

from drivers import interface as ic_if

INSTANT_MS = 1000
ENERGY_MS = 5000
PERSIST_MS = 60000
REVEAL_GAP_MS = 5000
RETRY_MS = 5000
_VERSION = 1


def _due(now, t):
    return t is None or now - t >= 0


class Engine:
    def __init__(self, ic, phases, store=None, on_event=None):
        self.ic = ic
        self.phases = phases
        self.store = store
        self.on_event = on_event
        self.inst = ic_if.Instant(phases)
        self.delta = ic_if.EnergyDelta(phases)
        n = phases + 1
        self.totals = [[0] * n for _ in range(ic_if.QUANTITIES)]  # micro-Wh / micro-varh
        self.saved = [[0] * n for _ in range(ic_if.QUANTITIES)]  # what the record holds
        self.health = ic_if.ABSENT
        self.configured = False
        self.faults = 0
        self.bus_errors = 0  # recovered bus errors (verified by a retry)
        self.persists = 0
        self._t_instant = None
        self._t_energy = None
        self._t_persist = None
        self._t_retry = None
        self._t_reveal = None
        self._in_fault = False
        self._load()

    # ------------------------------------------------------------------ persistence
    def _load(self):
        if self.store is None:
            return
        n = ic_if.QUANTITIES * (self.phases + 1)
        rec = self.store.load("energy", _VERSION)
        if rec is None or len(rec) != 8 * n:
            return
        vals = struct.unpack(">%dQ" % n, rec)
        k = 0
        for q in range(ic_if.QUANTITIES):
            for p in range(self.phases + 1):
                self.totals[q][p] = vals[k]
                self.saved[q][p] = vals[k]
                k += 1

    def persist(self, now=None):
        """Write the totals (if they changed since the last record)."""
        if self.store is None or self.totals == self.saved:
            self._t_persist = now
            return False
        vals = []
        for row in self.totals:
            vals.extend(row)
        self.store.save("energy", _VERSION, struct.pack(">%dQ" % len(vals), *vals))
        for q in range(ic_if.QUANTITIES):
            for p in range(self.phases + 1):
                self.saved[q][p] = self.totals[q][p]
        self.persists += 1
        self._t_persist = now
        return True

    # ------------------------------------------------------------------ chip
    def start(self, now):
        """Bring the chip up (detect, configure); a failure is a fault, not an error."""
        self._configure(now)
        self._t_instant = now
        self._t_energy = now
        self._t_persist = now

    def _configure(self, now):
        try:
            if not self.ic.detect():
                raise ic_if.ChipError(ic_if.ABSENT, "not detected")
            self.ic.configure()
        except ic_if.ChipError as e:
            self._fault(e.kind, now)
            return False
        self.configured = True
        self.health = ic_if.OK
        if self._in_fault:
            self._in_fault = False
            self._event("chip-recovered", 0)
        return True

    def _fault(self, kind, now):
        self.health = kind
        self.inst.valid = False
        self.configured = kind != ic_if.RESET and self.configured
        self.faults += 1
        # a chip that reset on its own meters nothing until configured: do it at once;
        # an absent or garbled chip is retried every RETRY_MS
        self._t_retry = now if kind == ic_if.RESET else now + RETRY_MS
        if not self._in_fault:
            self._in_fault = True
            self._event("chip-fault", kind)

    def _event(self, kind, detail):
        if self.on_event is not None:
            self.on_event(kind, detail)

    def poll(self, now):
        """Do whatever is due at meter time ``now`` (ms). Cheap when nothing is due."""
        if self._in_fault:
            if _due(now, self._t_retry):
                if self._configure(now):
                    self._drain(now)
            return
        if _due(now, self._t_energy):
            self._t_energy = now + ENERGY_MS
            self._drain(now)
        if self._in_fault:
            return
        if _due(now, self._t_instant):
            self._t_instant = now + INSTANT_MS
            try:
                self.ic.read_instant(self.inst)
                self.inst.valid = True
                h = self.ic.health()
                if h == ic_if.BUS_ERROR:
                    # an access failed its check but a retry got a verified value: count it,
                    # do not reset a chip that is metering correctly
                    self.bus_errors += 1
                elif h != ic_if.OK:
                    raise ic_if.ChipError(h, "health")
            except ic_if.ChipError as e:
                self._fault(e.kind, now)
        if self._t_persist is None or now - self._t_persist >= PERSIST_MS:
            self.persist(now)

    def _drain(self, now):
        d = self.delta
        try:
            self.ic.drain_energy(d)
        except ic_if.ChipError as e:
            self._fault(e.kind, now)
        # counts already verified by the driver are kept even if a later read failed
        lsb = d.energy_lsb_uwh
        for q in range(ic_if.QUANTITIES):
            row = d.counts[q]
            tot = self.totals[q]
            for p in range(self.phases + 1):
                if row[p]:
                    tot[p] += row[p] * lsb
        d.clear()

    def shutdown(self, now=None):
        """Clean shutdown: take what the chip has counted, then persist."""
        if not self._in_fault:
            self._drain(now)
        self.persist(now)

    # ------------------------------------------------------------------ values for COSEM
    def reveal(self, now):
        """Called before an energy value is shown to a client: make sure the record is not
        older than what is shown. Returns the totals table to show (the live one, or the
        persisted one when a write happened less than REVEAL_GAP_MS ago)."""
        if self.totals == self.saved:
            return self.totals
        if self.store is None:
            return self.totals
        if self._t_reveal is not None and now - self._t_reveal < REVEAL_GAP_MS:
            return self.saved
        self._t_reveal = now
        self.persist(now)
        return self.totals

    def energy_wh(self, quantity, phase, now):
        """Whole Wh (varh) of a total, safe to reveal (see reveal())."""
        return self.reveal(now)[quantity][phase] // 1000000

    def instant(self):
        """The latest instantaneous values, or None while they are not valid."""
        return self.inst if self.inst.valid else None
