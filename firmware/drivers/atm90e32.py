"""Driver for the Microchip ATM90E32AS three-phase metering IC (datasheet Atmel-46003-SE-M90E32AS:
"SPI Interface", "Register" tables; application note Atmel-46103 for calibration), implementing
``drivers/interface.py``. Design notes: design/metering-ic.md.

One frame on the bus (SPI mode 3, MSB first, <= 1 MHz, CS low for exactly 4 bytes, one
16-bit register per frame)::

    read   0x80 | a9:8   a7:0   0x00   0x00     -> value in bytes 2..3, big-endian
    write  a9:8          a7:0   hi     lo

There is no bus checksum. After every access the driver reads LastSPIData (0x78), which echoes
the last value read or written, and retries (at most ``_TRIES`` times) when it differs.
Reading LastSPIData does not overwrite it (it would otherwise only ever echo itself; the
simulation models it so; worth confirming on a board): that is what makes the read-clear
energy registers safe (``_read_clear``). A write lost on the bus whose value equals the
previous access's cannot show in LastSPIData: configure() therefore also reads every register
back.

What the driver does (start-up steps of design/metering-ic.md):

* ``detect()``: there is no chip-ID register; unlock (CfgRegAccEn 0x7F = 0x55AA) and lock
  (0x0000) must both echo through LastSPIData (MISO stuck high or low fails).
* ``configure()``: drain every energy register first (a warm MCU reboot keeps the chip powered;
  the soft reset would throw unread energy away: what is read is kept in ``_carry`` and comes
  out of the next ``drain_energy()``), SoftReset (0x70 = 0x789A), wait, check the reset
  defaults, unlock, write the configuration (``_SETUP`` then ``_CALIBRATION``, each write
  checked through LastSPIData), clear the interrupt status (write 1 to clear), read every
  register back, lock. A register that does not read back as written raises ChipError.
* ``read_instant()``: MeterEn first (0xFFFF: absent; not 1: the chip reset on its own and
  needs ``configure()``), then the measurement registers listed in ``_INSTANT``. 32-bit
  values (power: high word + LSB word) are read hi, lo, hi again and re-read when the high
  word changed, so a refresh between the two reads never gives a torn value.
* ``drain_energy()``: reads each energy register once (they clear on read) per quantity
  (active/reactive, forward/reverse = import/export) and phase (T, A, B, C).
* ``calibrate_offsets()`` / ``calibrate_gains(reference)``: application note procedure.

Energy that can be lost, and why it is bounded: a read-clear register whose read cannot be
verified. The register is already zero in the chip, but LastSPIData still holds its value;
the driver re-reads LastSPIData up to ``_TRIES`` times and trusts any two reads that agree.
Only when the energy read and 1 + ``_TRIES`` LastSPIData reads all disagree (a bus that is
corrupting nearly every frame) is that register's content dropped, counted in
``lost_reads``; that is at most the energy of one quantity and phase since the previous drain
(engine: 5 s; at 10 kW per phase about 14 Wh), never more than 65535 counts (204.8 Wh at MC
3200) since that is all the register can hold. A 16-bit wrap between two drains (drain
interval longer than 65536 counts at the present power) cannot be seen in the register at
all: the only defence is the drain cadence; drains that found a register past half range are
counted in ``near_wrap`` so the cadence can be shortened. A spontaneous chip reset loses what
the chip had counted since the last drain (the chip clears the registers, not the driver).

Units (interface.py): 0.01 V, mA, 0.1 W/var/VA, 0.001 PF, 0.1 degree, 0.01 Hz; energy counts
of ``energy_lsb_uwh`` micro-Wh: one count is 0.01 pulse, Wh = n * 10 / MC, MC = 4.5e11 /
PLconst pulses per kWh, so uWh per count = PLconst / 45000 (3125 for the default MC 3200).

Scaling of the chip registers: Urms 0.01 V, Irms 0.001 A (LSB registers add bits 15:8),
Pmean/Qmean/Smean signed 32 bit (hi << 16 | lo) x 0.00032 W, PFmean signed x 0.001, PAngle
signed x 0.1 degree, Freq x 0.01 Hz.

RAM: two 4-byte buffers, a 4 x 4 list of carried counts, the configuration dict (about 40
small ints), a few counters. Nothing is allocated per frame; powers above about 343 kW
(30-bit raw values) would become long ints on the boards.
"""

from drivers.interface import (
    ABSENT,
    BUS_ERROR,
    OK,
    RESET,
    ChipError,
)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_READ = const(0x80)
_METER_EN = const(0x00)
_SOFT_RESET = const(0x70)
_EMM_INT_STATE0 = const(0x73)
_EMM_INT_STATE1 = const(0x74)
_LAST_SPI_DATA = const(0x78)
_CFG_REG_ACC_EN = const(0x7F)
_FREQ = const(0xF8)
_UNLOCK = const(0x55AA)
_LOCK = const(0x0000)  # sources differ on the lock value: any value but 0x55AA locks
_RESET_KEY = const(0x789A)
_RESET_WAIT_MS = const(10)  # datasheet: >= 6 ms after SoftReset
_TRIES = const(3)  # attempts per access before giving up (bus error)
_ABSENT_WORD = const(0xFFFF)  # MISO floating high
_NEAR_WRAP = const(0x8000)  # an energy register past half range: the drain cadence is too slow
_UWH_PER_PLCONST = const(45000)  # uWh per count = PLconst / 45000 (MC = 4.5e11 / PLconst)
_FREQ60_BIT = const(12)  # MMode0 bit for 60 Hz mains (sources say 12 or 11: board constant)

# Configuration written by configure(), in this order (design/metering-ic.md step 2):
# (name, address, default). Thresholds in 0.00032 W (var, VA) units: 6250 = 2 W.
_SETUP = (
    ("MeterEn", 0x00, 0x0001),  # metering on
    ("PLconstH", 0x31, 0x0861),  # PLconst = 0x0861C468: MC 3200 pulses/kWh
    ("PLconstL", 0x32, 0xC468),
    ("ZXConfig", 0x07, 0x0000),  # zero-crossing outputs: not used
    ("MMode0", 0x33, 0x0087),  # metering mode; the 60 Hz bit is set from mains_hz
    ("MMode1", 0x34, 0x0000),  # PGA gains 1x
    ("FreqLoTh", 0x0C, 4900),  # 0.01 Hz; 5900 for 60 Hz mains
    ("FreqHiTh", 0x0D, 5100),  # 6100 for 60 Hz mains
    ("PStartTh", 0x35, 6250),  # below this no active energy is counted (no-load creep)
    ("QStartTh", 0x36, 6250),
    ("SStartTh", 0x37, 6250),
    ("PPhaseTh", 0x38, 625),  # a phase below this is left out of the total
    ("QPhaseTh", 0x39, 625),
    ("SPhaseTh", 0x3A, 625),
)

# Calibration constants (what calibration() returns and flash keeps): gains and offsets.
_CALIBRATION = (
    ("UgainA", 0x61, 0x8000),
    ("IgainA", 0x62, 0x8000),
    ("UoffsetA", 0x63, 0x0000),
    ("IoffsetA", 0x64, 0x0000),
    ("UgainB", 0x65, 0x8000),
    ("IgainB", 0x66, 0x8000),
    ("UoffsetB", 0x67, 0x0000),
    ("IoffsetB", 0x68, 0x0000),
    ("UgainC", 0x69, 0x8000),
    ("IgainC", 0x6A, 0x8000),
    ("UoffsetC", 0x6B, 0x0000),
    ("IoffsetC", 0x6C, 0x0000),
    ("PoffsetA", 0x41, 0x0000),
    ("QoffsetA", 0x42, 0x0000),
    ("PoffsetB", 0x43, 0x0000),
    ("QoffsetB", 0x44, 0x0000),
    ("PoffsetC", 0x45, 0x0000),
    ("QoffsetC", 0x46, 0x0000),
)

# Soft-reset defaults the driver checks to know the reset happened (address, value).
_RESET_DEFAULTS = ((0x00, 0x0000), (0x31, 0x0861), (0x32, 0xC468), (0x33, 0x0087))

# Energy registers, read-clear, 0.01 pulse a count: first address (T, then A, B, C) per
# interface quantity ACTIVE_IMPORT, ACTIVE_EXPORT, REACTIVE_IMPORT, REACTIVE_EXPORT.
_ENERGY_BASE = (
    0x80,  # APenergyT..C: forward active (import, +A)
    0x84,  # ANenergyT..C: reverse active (export, -A)
    0x88,  # RPenergyT..C: forward reactive (+R, quadrants I+II)
    0x8C,  # RNenergyT..C: reverse reactive (-R, quadrants III+IV)
)

# Measurement registers -> Instant fields: (field, index, kind, address, LSB address).
_U16 = const(0)  # unsigned, already in the Instant's unit
_S16 = const(1)  # signed 16 bit, already in the Instant's unit
_P32 = const(2)  # signed 32 bit x 0.00032 W -> 0.1 W (var, VA)
_INSTANT = (
    ("voltage", 1, _U16, 0xD9, 0),  # UrmsA, 0.01 V
    ("voltage", 2, _U16, 0xDA, 0),
    ("voltage", 3, _U16, 0xDB, 0),
    ("current", 1, _U16, 0xDD, 0),  # IrmsA, mA
    ("current", 2, _U16, 0xDE, 0),
    ("current", 3, _U16, 0xDF, 0),
    ("active", 0, _P32, 0xB0, 0xC0),  # PmeanT + PmeanTLSB
    ("active", 1, _P32, 0xB1, 0xC1),
    ("active", 2, _P32, 0xB2, 0xC2),
    ("active", 3, _P32, 0xB3, 0xC3),
    ("reactive", 0, _P32, 0xB4, 0xC4),  # QmeanT..C
    ("reactive", 1, _P32, 0xB5, 0xC5),
    ("reactive", 2, _P32, 0xB6, 0xC6),
    ("reactive", 3, _P32, 0xB7, 0xC7),
    ("apparent", 0, _P32, 0xB8, 0xC8),  # SmeanT..C
    ("apparent", 1, _P32, 0xB9, 0xC9),
    ("apparent", 2, _P32, 0xBA, 0xCA),
    ("apparent", 3, _P32, 0xBB, 0xCB),
    ("pf", 0, _S16, 0xBC, 0),  # PFmeanT..C, 0.001
    ("pf", 1, _S16, 0xBD, 0),
    ("pf", 2, _S16, 0xBE, 0),
    ("pf", 3, _S16, 0xBF, 0),
    ("angle", 1, _S16, 0xF9, 0),  # PAngleA..C, 0.1 degree
    ("angle", 2, _S16, 0xFA, 0),
    ("angle", 3, _S16, 0xFB, 0),
)

# RMS registers for calibration: (Urms, UrmsLSB, Irms, IrmsLSB, Pmean, PmeanLSB, Qmean,
# QmeanLSB) per phase A, B, C.
_RMS = (
    (0xD9, 0xE9, 0xDD, 0xED, 0xB1, 0xC1, 0xB5, 0xC5),
    (0xDA, 0xEA, 0xDE, 0xEE, 0xB2, 0xC2, 0xB6, 0xC6),
    (0xDB, 0xEB, 0xDF, 0xEF, 0xB3, 0xC3, 0xB7, 0xC7),
)


def _signed16(v):
    return v - 0x10000 if v & 0x8000 else v


def _div_round(n, d):
    """n / d rounded half away from zero (d > 0)."""
    if n >= 0:
        return (n + (d >> 1)) // d
    return -((-n + (d >> 1)) // d)


class Atm90e32:
    """ATM90E32AS on ``spi`` (mode 3) with chip select ``cs``; ``sleep_ms(ms)`` for delays.

    ``config``: register name -> 16-bit value for any name in ``_SETUP``/``_CALIBRATION``
    (negative offsets are accepted), plus ``mains_hz`` (50 or 60) and ``freq60_bit`` (the
    MMode0 bit for 60 Hz: 12 by default). Unknown names raise ValueError.
    """

    phases = 3

    def __init__(self, spi, cs, sleep_ms, config=None):
        self._spi = spi
        self._cs = cs
        self._sleep_ms = sleep_ms
        self._tx = bytearray(4)
        self._rx = bytearray(4)
        cfg = {}
        for name, _addr, default in _SETUP + _CALIBRATION:
            cfg[name] = default
        mains_hz = 50
        bit = _FREQ60_BIT
        given = config or {}
        for name in given:
            if name == "mains_hz":
                mains_hz = given[name]
            elif name == "freq60_bit":
                bit = given[name]
            elif name in cfg:
                cfg[name] = given[name] & 0xFFFF
            else:
                raise ValueError("unknown ATM90E32 setting: " + str(name))
        if mains_hz not in (50, 60):
            raise ValueError("mains_hz must be 50 or 60")
        if mains_hz == 60:
            cfg["MMode0"] |= 1 << bit
            if "FreqLoTh" not in given:
                cfg["FreqLoTh"] = 5900
            if "FreqHiTh" not in given:
                cfg["FreqHiTh"] = 6100
        pl = (cfg["PLconstH"] << 16) | cfg["PLconstL"]
        if pl == 0 or pl % _UWH_PER_PLCONST:
            raise ValueError("PLconst must be a multiple of 45000 (integer uWh per count)")
        self.energy_lsb_uwh = pl // _UWH_PER_PLCONST
        self._cfg = cfg
        self._carry = [[0] * 4 for _ in range(4)]  # counts drained by configure()
        self._error = False  # a bus error since the last health()
        # diagnostics
        self.bus_errors = 0  # LastSPIData mismatches (each one retried)
        self.torn_reads = 0  # 32-bit reads repeated because the high word moved
        self.lost_reads = 0  # energy reads that could not be verified (content dropped)
        self.near_wrap = 0  # energy reads past half range (drain more often)
        self.configures = 0
        cs.value(1)

    # ------------------------------------------------------------------ frames
    def _frame(self, b0, b1, b2, b3):
        """One 4-byte transaction; returns bytes 2..3 of MISO as a 16-bit value."""
        tx = self._tx
        rx = self._rx
        tx[0] = b0
        tx[1] = b1
        tx[2] = b2
        tx[3] = b3
        self._cs.value(0)
        try:
            self._spi.write_readinto(tx, rx)
        finally:
            self._cs.value(1)
        return (rx[2] << 8) | rx[3]

    def _raw_read(self, addr):
        return self._frame(_READ | ((addr >> 8) & 0x03), addr & 0xFF, 0, 0)

    def _raw_write(self, addr, value):
        self._frame((addr >> 8) & 0x03, addr & 0xFF, (value >> 8) & 0xFF, value & 0xFF)

    def _bus_error(self):
        self.bus_errors += 1
        self._error = True

    def _read(self, addr):
        """A register value confirmed by LastSPIData; ChipError(BUS_ERROR) after _TRIES."""
        for _ in range(_TRIES):
            v = self._raw_read(addr)
            if self._raw_read(_LAST_SPI_DATA) == v:
                return v
            self._bus_error()
        raise ChipError(BUS_ERROR, "read not verified")

    def _write(self, addr, value):
        """Write and confirm through LastSPIData; ChipError after _TRIES."""
        value &= 0xFFFF
        last = 0
        for _ in range(_TRIES):
            self._raw_write(addr, value)
            last = self._raw_read(_LAST_SPI_DATA)
            if last == value:
                return
            self._bus_error()
        raise ChipError(ABSENT if last == _ABSENT_WORD else BUS_ERROR, "write not verified")

    def _read_clear(self, addr):
        """Read a read-clear register exactly once. If LastSPIData disagrees, the register is
        already zero in the chip but LastSPIData still holds its value (reading LastSPIData
        does not change it): re-read it and trust two reads that agree. Returns 0 and counts
        ``lost_reads`` when no two agree."""
        v = self._raw_read(addr)
        last = self._raw_read(_LAST_SPI_DATA)
        if v == last:
            return v
        self._bus_error()
        for _ in range(_TRIES):
            again = self._raw_read(_LAST_SPI_DATA)
            if again == v or again == last:
                return again
            last = again
        self.lost_reads += 1
        return 0

    def _read32(self, hi, lo):
        """Signed 32-bit hi:lo value that cannot tear: hi, lo, hi again until hi is stable."""
        for _ in range(_TRIES):
            h = self._read(hi)
            low = self._read(lo)
            if self._read(hi) == h:
                if h & 0x8000:
                    return ((h - 0x10000) << 16) + low
                return (h << 16) + low
            self.torn_reads += 1
        raise ChipError(BUS_ERROR, "32-bit value kept changing")

    def _meter_en(self):
        """MeterEn, mapped to the health code it implies (OK, ABSENT, RESET)."""
        en = self._read(_METER_EN)
        if en == _ABSENT_WORD:
            return ABSENT
        return OK if en == 1 else RESET

    # ------------------------------------------------------------------ interface
    def detect(self):
        """True when a chip echoes unlock and lock through LastSPIData (no chip-ID register)."""
        for _ in range(_TRIES):
            self._raw_write(_CFG_REG_ACC_EN, _UNLOCK)
            if self._raw_read(_LAST_SPI_DATA) != _UNLOCK:
                continue
            self._raw_write(_CFG_REG_ACC_EN, _LOCK)
            if self._raw_read(_LAST_SPI_DATA) == _LOCK:
                return True
        return False

    def configure(self):
        """Drain, soft reset, write and verify the configuration, lock (start-up steps 1-2)."""
        self._drain_into(self._carry, self._meter_en())
        self._soft_reset()
        cfg = self._cfg
        self._write(_CFG_REG_ACC_EN, _UNLOCK)
        for name, addr, _ in _SETUP:
            self._write(addr, cfg[name])
        for name, addr, _ in _CALIBRATION:
            self._write(addr, cfg[name])
        self._write(_EMM_INT_STATE0, 0xFFFF)  # write 1 to clear
        self._write(_EMM_INT_STATE1, 0xFFFF)
        self._verify(_SETUP)
        self._verify(_CALIBRATION)
        self._write(_CFG_REG_ACC_EN, _LOCK)
        self.configures += 1

    def _soft_reset(self):
        for _ in range(_TRIES):
            self._raw_write(_SOFT_RESET, _RESET_KEY)
            self._sleep_ms(_RESET_WAIT_MS)
            ok = True
            for addr, value in _RESET_DEFAULTS:
                if self._read(addr) != value:
                    ok = False
                    break
            if ok:
                return
            self._bus_error()
        raise ChipError(BUS_ERROR, "soft reset not taken")

    def _verify(self, table):
        cfg = self._cfg
        for name, addr, _ in table:
            if self._read(addr) != cfg[name]:
                raise ChipError(BUS_ERROR, "not taken: " + name)

    def health(self):
        """OK / ABSENT / BUS_ERROR (a LastSPIData mismatch since the last call, even one a
        retry recovered) / RESET (MeterEn != 1: configure() again)."""
        try:
            h = self._meter_en()
        except ChipError as e:
            h = e.kind
        if h == OK and self._error:
            h = BUS_ERROR
        self._error = False
        return h

    def read_instant(self, inst):
        """Fill ``inst`` (interface units); ChipError when the chip is absent, reset or the
        bus fails. MeterEn is checked before and after, so values are from a running chip."""
        inst.valid = False
        h = self._meter_en()
        if h != OK:
            raise ChipError(h, "read_instant")
        for field, index, kind, addr, lo in _INSTANT:
            if kind == _P32:
                v = _div_round(self._read32(addr, lo) * 2, 625)  # x 0.00032 W / 0.1 W
            else:
                v = self._read(addr)
                if kind == _S16:
                    v = _signed16(v)
            getattr(inst, field)[index] = v
        inst.frequency = self._read(_FREQ)
        h = self._meter_en()
        if h != OK:
            raise ChipError(h, "read_instant")
        inst.valid = True

    def drain_energy(self, acc):
        """Add the counts since the last drain to ``acc``. Verified counts are in ``acc`` even
        when this raises (ABSENT, BUS_ERROR, RESET); counts read by configure() come first."""
        acc.energy_lsb_uwh = self.energy_lsb_uwh
        counts = acc.counts
        carry = self._carry
        for q in range(4):
            for p in range(4):
                if carry[q][p]:
                    counts[q][p] += carry[q][p]
                    carry[q][p] = 0
        h = self._meter_en()
        self._drain_into(counts, h)
        if h != OK:
            raise ChipError(h, "drain_energy")

    def _drain_into(self, counts, h):
        """Read every energy register once into counts[quantity][phase]."""
        if h == ABSENT:
            raise ChipError(ABSENT, "drain")
        for q in range(4):
            base = _ENERGY_BASE[q]
            row = counts[q]
            for p in range(4):
                v = self._read_clear(base + p)
                if v == _ABSENT_WORD and self._meter_en() == ABSENT:
                    raise ChipError(ABSENT, "drain")  # gone mid-drain: 0xFFFF was not data
                if v >= _NEAR_WRAP:
                    self.near_wrap += 1
                row[p] += v

    def calibration(self):
        """The calibration constants in use (register name -> 16-bit value), to persist and
        pass back as ``config``."""
        cfg = self._cfg
        return {name: cfg[name] for name, _a, _d in _CALIBRATION}

    # ------------------------------------------------------------------ calibration
    def _write_verified(self, values):
        """Unlock, write {name: value} (calibration registers), read back, lock."""
        addrs = {}
        for name, addr, _ in _CALIBRATION:
            addrs[name] = addr
        self._write(_CFG_REG_ACC_EN, _UNLOCK)
        try:
            for name in values:
                v = values[name] & 0xFFFF
                self._write(addrs[name], v)
                if self._read(addrs[name]) != v:
                    raise ChipError(BUS_ERROR, "not taken: " + name)
                self._cfg[name] = v
        finally:
            self._write(_CFG_REG_ACC_EN, _LOCK)

    def _averages(self, samples, interval_ms):
        """Per phase sums of (Urms:LSB, Irms:LSB, Pmean:LSB, Qmean:LSB) over ``samples``
        measurement refreshes, as averages (ints)."""
        sums = [[0, 0, 0, 0] for _ in range(3)]
        for _ in range(samples):
            self._sleep_ms(interval_ms)
            for k in range(3):
                u, ul, i, il, p, pl, q, ql = _RMS[k]
                row = sums[k]
                row[0] += self._read32(u, ul) & 0xFFFFFFFF  # RMS: unsigned
                row[1] += self._read32(i, il) & 0xFFFFFFFF
                row[2] += self._read32(p, pl)
                row[3] += self._read32(q, ql)
        for row in sums:
            for j in range(4):
                row[j] = _div_round(row[j], samples)
        return sums

    def calibrate_offsets(self, samples=8, interval_ms=250):
        """Offset calibration with every input at zero (no voltage, no current): Uoffset =
        -(Urms:LSB >> 7), Ioffset likewise, Poffset = -Pmean:LSB, Qoffset = -Qmean:LSB, from
        averages over ``samples`` refreshes. Raises ValueError when an offset does not fit
        16 bits (inputs not at zero). Returns calibration()."""
        zero = {}
        for name, _a, _d in _CALIBRATION:
            if "offset" in name:
                zero[name] = 0
        self._write_verified(zero)
        avg = self._averages(samples, interval_ms)
        new = {}
        for k in range(3):
            ph = "ABC"[k]
            u, i, p, q = avg[k]
            for name, v in (("Uoffset", -(u >> 7)), ("Ioffset", -(i >> 7)),
                            ("Poffset", -p), ("Qoffset", -q)):
                if not -0x8000 <= v <= 0x7FFF:
                    raise ValueError(name + ph + " out of range: inputs not at zero?")
                new[name + ph] = v & 0xFFFF
        self._write_verified(new)
        return self.calibration()

    def calibrate_gains(self, reference, samples=8, interval_ms=250):
        """Gain calibration against a reference: ``reference`` is an Instant with the true
        voltage (0.01 V) and current (mA) of phases 1..3 (0 = leave that gain alone).
        new gain = old * reference / measured. Raises ValueError when a gain leaves
        1..65535. Returns calibration()."""
        avg = self._averages(samples, interval_ms)
        cfg = self._cfg
        new = {}
        for k in range(3):
            ph = "ABC"[k]
            for name, ref, measured in (("Ugain", reference.voltage[k + 1], avg[k][0]),
                                        ("Igain", reference.current[k + 1], avg[k][1])):
                if not ref:
                    continue
                if measured <= 0:
                    raise ValueError(name + ph + ": nothing measured")
                g = _div_round(cfg[name + ph] * ref * 65536, measured)  # measured: x 65536
                if not 1 <= g <= 0xFFFF:
                    raise ValueError(name + ph + " out of range")
                new[name + ph] = g
        self._write_verified(new)
        return self.calibration()
