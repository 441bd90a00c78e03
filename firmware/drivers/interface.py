"""The interface every metering-IC driver implements (ATM90E32AS, ADE7953, ...).

A driver is given an SPI object (``write``, ``readinto``, ``write_readinto`` as
``machine.SPI``) and a chip-select pin (``value(0/1)`` as ``machine.Pin``) by the board; it
never imports ``machine``, never sleeps on its own (delays go through the ``sleep_ms``
callable it is given) and never reads a clock. The same driver code runs on a board and
against the register-level simulations in ``boards/unix``.

What the metering engine (``meter/engine.py``) calls:

    ic.detect() -> bool                 the chip answers and is the expected one
    ic.configure()                      drain energies, reset, write configuration and
                                        calibration, verify every write, lock; raises
                                        ChipError when the chip does not take it
    ic.health() -> int                  OK / ABSENT / BUS_ERROR / RESET (needs configure())
    ic.read_instant(inst)               fill an ``Instant`` (per phase V, I, P, Q, S, PF,
                                        angle; frequency): raises ChipError on a bus error
    ic.drain_energy(acc)                add the energy counted since the last drain to an
                                        ``EnergyDelta`` (per quantity and phase, in the
                                        chip's LSB with the driver's scale to Wh/varh);
                                        never loses energy: a failed read keeps it in the chip
    ic.calibration() -> dict            the calibration constants in use (to persist)

Units: instantaneous values are integers in fixed units so that nothing needs floats on the
hot path: voltage in 0.01 V, current in mA, power in 0.1 W / var / VA (signed), power factor
in 0.001 (signed), angle in 0.1 degree, frequency in 0.01 Hz. Energy deltas are integers in
``energy_lsb_uwh`` micro-Wh per count (micro-varh for reactive), given by the driver.

Sign conventions (IEC 62053-23 / the Blue Book's quadrant definitions): active energy
import (+A, forward, quadrants I+IV) and export (-A, reverse, II+III); reactive import (+R,
quadrants I+II) and export (-R, III+IV).

RAM: an ``Instant`` holds a few small lists; an ``EnergyDelta`` one list of counters.
"""

OK = 0
ABSENT = 1  # nothing answers (MISO stuck high), or not the expected chip
BUS_ERROR = 2  # the chip answered, but a read-back check (LastSPIData, checksum) failed
RESET = 3  # the chip restarted on its own (configuration lost): configure() again

# Energy quantities, index into EnergyDelta.counts[quantity][phase]; phase 0 = total
ACTIVE_IMPORT = 0
ACTIVE_EXPORT = 1
REACTIVE_IMPORT = 2
REACTIVE_EXPORT = 3
QUANTITIES = 4


class ChipError(Exception):
    """The chip did not answer as it must; carries one of ABSENT, BUS_ERROR, RESET."""

    def __init__(self, kind, what=""):
        super().__init__(what)
        self.kind = kind


class Instant:
    """Instantaneous values; index 0 = total (or the only phase), 1..3 = L1..L3."""

    def __init__(self, phases=3):
        n = phases + 1
        self.phases = phases
        self.voltage = [0] * n  # 0.01 V (index 0 unused)
        self.current = [0] * n  # mA (index 0 unused; neutral not measured)
        self.active = [0] * n  # 0.1 W, signed: + import
        self.reactive = [0] * n  # 0.1 var, signed
        self.apparent = [0] * n  # 0.1 VA
        self.pf = [0] * n  # 0.001, signed
        self.angle = [0] * n  # 0.1 degree
        self.frequency = 0  # 0.01 Hz
        self.valid = False


class EnergyDelta:
    """Energy counted since the last drain, per quantity and phase (0 = total)."""

    def __init__(self, phases=3):
        self.phases = phases
        self.counts = [[0] * (phases + 1) for _ in range(QUANTITIES)]
        self.energy_lsb_uwh = 1  # micro-Wh (micro-varh) per count; set by the driver

    def clear(self):
        for row in self.counts:
            for i in range(len(row)):
                row[i] = 0
