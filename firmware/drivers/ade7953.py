"""Analog Devices ADE7953 single-phase metering IC (voltage, current A, current B): the second
driver behind ``drivers/interface.py``, written against the ADI ADE7953 datasheet (SPI
interface, register map and register descriptions, energy accumulation, power factor, period
and angle measurement).

It is here to prove the interface is not shaped around the ATM90E32AS. Differences it
absorbs: registers are 8/16/24/32 bits wide by address page, not all 16; energies are signed
read-with-reset accumulators, not split forward/reverse counters; there is no read-back echo
register but a record of the last communication (LAST_OP, LAST_ADD, LAST_RWDATA); presence
and identity come from VERSION; measurements are raw codes whose scaling is the board's.

SPI transaction (datasheet "SPI interface"; mode 3, MSB first, CS active low): three header
bytes, address high, address low, 0x80 (read) or 0x00 (write), then the data, MSB first, as
wide as the address page says: 0x0xx 8 bit, 0x1xx 16, 0x2xx 24, 0x3xx 32. The 24-bit
registers exist twice: 0x2xx as 24 bits and 0x3xx as 32 bits (signed ones sign-extended).
This driver uses the 24-bit page (AENERGYA 0x21E = 0x31E, AWATT 0x212 = 0x312, ...) and
sign-extends itself: one byte less per read, and every value stays a small int on 32-bit
ports (a sign-extended 32-bit word would be a heap-allocated long int).

Every read is checked against the chip's record of the last communication: after reading a
register, the driver reads LAST_RWDATA of the same width (0x0FF, 0x1FF, 0x2FF, 0x3FF) and
takes the value once two reads agree. Reading the record does not change it, so after a
corrupted read of a read-with-reset energy register the value is still in the chip and is
recovered: a bit flip on MISO loses no energy. Writes are verified by reading them back.

Configuration (``configure``): drain the energy registers (kept and handed out by the next
``drain_energy``), software reset (CONFIG.SWRST), wait, write the settings table below (each
verified), then the performance setting the datasheet requires: 0xAD to 0xFE (unlock)
immediately followed by 0x0030 to register 0x120. Register 0x120 is also the reset
sentinel: it reads 0x0000 (its default) after any reset, so ``health`` sees a chip that lost
its configuration in one read.

Single phase in the interface: ``Instant(phases=1)`` / ``EnergyDelta(phases=1)``. Index 1 is
the phase (current channel A); index 0 is the total, which for one phase equals index 1 for
every power, power factor and energy value, exactly as a 3-phase chip's total is the sum of
its phases. Voltage, current and angle at index 0 stay 0 (the interface leaves them unused).
So the engine reads totals at index 0 and phases at 1..phases for every chip alike. Current
channel B (a second load or the neutral, depending on the board) is ``current_b_ma``.

Energy signs (interface.py): AENERGYA > 0 is active import (+A), < 0 export (-A); RENERGYA > 0
(inductive, quadrants I+II) is reactive import (+R), < 0 reactive export (-R). The chip nets
import and export inside one drain interval; drain every <= 10 s (the energy registers
overflow after 2**23 counts; an overflow flagged in IRQSTATA is undone, see drain_energy).

Scaling is board-specific (front-end resistors, shunt or CT, PGA), given in ``config`` with
the defaults of ``DEFAULTS``: VRMS/IRMS codes per volt/ampere, power codes per watt (AWATT,
AVAR, AVA share one full scale), micro-Wh per energy code. Calibration (gain and offset
registers) makes the board meet these round numbers; ``calibration()`` returns them all.

RAM: two 7-byte transfer buffers and their views, a 9-entry list of raw measurements, a
9-entry list for confirming reads, the merged config dict, four pending energy counters.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from drivers.interface import (
    ABSENT,
    ACTIVE_EXPORT,
    ACTIVE_IMPORT,
    BUS_ERROR,
    OK,
    QUANTITIES,
    REACTIVE_EXPORT,
    REACTIVE_IMPORT,
    RESET,
    ChipError,
)

# Header byte 3 (datasheet "SPI interface")
_READ = const(0x80)
_WRITE = const(0x00)

# 8-bit registers
_DISNOLOAD = const(0x001)
_LCYCMODE = const(0x004)  # bit 6 RSTREAD: energy registers are read-with-reset (default 0x40)
_PGA_V = const(0x007)
_PGA_IA = const(0x008)
_PGA_IB = const(0x009)
_LAST_OP = const(0x0FD)  # 0x35 after a read, 0xCA after a write
_UNLOCK = const(0x0FE)  # 0xAD here unlocks the next write to 0x120
_VERSION = const(0x702)
# 16-bit registers
_CONFIG = const(0x102)  # default 0x8004: bit 15 COMM_LOCK, bit 2 HPFEN; bit 7 SWRST
_PFA = const(0x10A)  # signed, 1.0 = 32768
_ANGLE_A = const(0x10C)  # signed, zero-crossing delay V -> IA in PERIOD clock ticks
_PERIOD = const(0x10E)  # line period: f = 223750 / (PERIOD + 1) Hz
_RESERVED_120 = const(0x120)  # write 0x0030 (after unlock) to meet the datasheet's specs
_LAST_ADD = const(0x1FE)
# 24-bit registers (the 32-bit aliases are these + 0x100)
_ACCMODE = const(0x201)
_AP_NOLOAD = const(0x203)
_VAR_NOLOAD = const(0x204)
_AVA = const(0x210)
_AWATT = const(0x212)
_AVAR = const(0x214)
_IRMSA = const(0x21A)
_IRMSB = const(0x21B)
_VRMS = const(0x21C)
_AENERGYA = const(0x21E)
_RENERGYA = const(0x220)
_RSTIRQSTATA = const(0x22E)  # IRQSTATA, cleared by the read
_AIGAIN = const(0x280)
_AVGAIN = const(0x281)
_AWGAIN = const(0x282)
_AVARGAIN = const(0x283)
_AVAGAIN = const(0x284)
_AIRMSOS = const(0x286)
_VRMSOS = const(0x288)
_AWATTOS = const(0x289)
_AVAROS = const(0x28A)
_BIGAIN = const(0x28C)
_BIRMSOS = const(0x292)

_OP_READ = const(0x35)
_CONFIG_DEFAULT = const(0x8004)
_SWRST = const(0x0080)
_UNLOCK_KEY = const(0xAD)
_OPT_SETTING = const(0x0030)
_AEOF = const(0x08)  # IRQSTATA bit 3: active energy (A) overflow or underflow
_VAREOF = const(0x10)  # IRQSTATA bit 4: reactive energy (A) overflow or underflow
_WRAP24 = const(0x1000000)
_PERIOD_CLOCK_X100 = const(22375000)  # 223750 Hz in 0.01 Hz
_CHECK_READS = const(3)  # LAST_RWDATA reads to find agreement (measurements, status)
_ENERGY_CHECK_READS = const(8)  # ... for read-with-reset registers: the value is only there
_WRITE_TRIES = const(3)

# Board scaling and chip settings: config key -> default. The scaling keys are the board's
# (a Shelly-like front end: VRMS 26000 codes/V, IRMS 100000 codes/A, AWATT 155 codes/W, with
# default gains); the rest are register values written by configure() (SETTINGS below).
DEFAULTS = {
    "v_lsb_per_v": 26000,  # VRMS codes per volt
    "ia_lsb_per_a": 100000,  # IRMSA codes per ampere
    "ib_lsb_per_a": 100000,  # IRMSB codes per ampere
    "p_lsb_per_w": 155,  # AWATT / AVAR / AVA codes per W / var / VA
    "energy_lsb_uwh": 100,  # AENERGYA / RENERGYA: micro-Wh (micro-varh) per code
    "version": None,  # expected VERSION (silicon revision); None: any chip that answers
    "reset_wait_ms": 100,  # after CONFIG.SWRST
    "lcycmode": 0x40,  # RSTREAD on, no line-cycle accumulation
    "disnoload": 0x00,  # no-load detection on for active, reactive, apparent
    "pga_v": 0,  # PGA gain codes 0..5 = x1, x2, x4, x8, x16, x22
    "pga_ia": 0,
    "pga_ib": 0,
    "accmode": 0x000000,  # signed accumulation of active and reactive energy
    "ap_noload": 0x00E419,  # no-load thresholds (datasheet defaults)
    "var_noload": 0x00E419,
    "aigain": 0x400000,  # gains: 0x400000 = 1.0
    "avgain": 0x400000,
    "awgain": 0x400000,
    "avargain": 0x400000,
    "avagain": 0x400000,
    "bigain": 0x400000,
    "airmsos": 0,  # offsets: signed 24 bit
    "vrmsos": 0,
    "birmsos": 0,
    "awattos": 0,
    "avaros": 0,
}

# Registers configure() writes, in order, each verified by read-back: (config key, address,
# signed). Width from the address page.
SETTINGS = (
    ("lcycmode", _LCYCMODE, False),
    ("disnoload", _DISNOLOAD, False),
    ("pga_v", _PGA_V, False),
    ("pga_ia", _PGA_IA, False),
    ("pga_ib", _PGA_IB, False),
    ("accmode", _ACCMODE, False),
    ("ap_noload", _AP_NOLOAD, False),
    ("var_noload", _VAR_NOLOAD, False),
    ("aigain", _AIGAIN, False),
    ("avgain", _AVGAIN, False),
    ("awgain", _AWGAIN, False),
    ("avargain", _AVARGAIN, False),
    ("avagain", _AVAGAIN, False),
    ("bigain", _BIGAIN, False),
    ("airmsos", _AIRMSOS, True),
    ("vrmsos", _VRMSOS, True),
    ("birmsos", _BIRMSOS, True),
    ("awattos", _AWATTOS, True),
    ("avaros", _AVAROS, True),
)

# What read_instant() reads, in order: (address, signed) -> self._raw[i]
MEASUREMENTS = (
    (_VRMS, False),
    (_IRMSA, False),
    (_AWATT, True),
    (_AVAR, True),
    (_AVA, True),
    (_PFA, True),
    (_ANGLE_A, True),
    (_PERIOD, False),
    (_IRMSB, False),
)


def width(addr):
    """Data bytes of a register, from its address page (datasheet "SPI interface")."""
    page = addr >> 8
    if 1 <= page <= 3:
        return page + 1
    return 1  # 0x0xx and the odd 8-bit ones: VERSION 0x702, EX_REF 0x800


def _signed(v, n):
    """Sign-extend an n-byte big-endian code."""
    bit = 1 << (8 * n - 1)
    return v - (bit << 1) if v & bit else v


def _div(n, d):
    """n / d rounded to nearest, halves away from zero (d > 0), integers only."""
    if n >= 0:
        return (2 * n + d) // (2 * d)
    return -((d - 2 * n) // (2 * d))


class Ade7953:
    """One ADE7953 on an SPI bus. ``spi``: machine.SPI-like (mode 3, <= 2 MHz); ``cs``:
    Pin-like; ``sleep_ms``: callable; ``config``: dict overriding ``DEFAULTS``."""

    phases = 1

    def __init__(self, spi, cs, sleep_ms, config=None):
        self._spi = spi
        self._cs = cs
        self._sleep_ms = sleep_ms
        cfg = dict(DEFAULTS)
        if config:
            for k in config:
                if k not in DEFAULTS:
                    raise ValueError("unknown ADE7953 setting: " + k)
                cfg[k] = config[k]
        self.config = cfg
        self.energy_lsb_uwh = cfg["energy_lsb_uwh"]  # as EnergyDelta.energy_lsb_uwh
        self._tx = bytearray(7)  # 3 header bytes + up to 4 data bytes
        self._rx = bytearray(7)
        tv = memoryview(self._tx)
        rv = memoryview(self._rx)
        self._txv = [tv[: 3 + n] for n in (1, 2, 3, 4)]
        self._rxv = [rv[: 3 + n] for n in (1, 2, 3, 4)]
        self._raw = [0] * len(MEASUREMENTS)
        self._seen = [0] * (_ENERGY_CHECK_READS + 1)  # values read while confirming one
        self._pending = [0] * QUANTITIES  # energy drained by configure(), not yet handed out
        self.current_b_ma = 0  # current channel B, filled by read_instant()
        self.version = None  # VERSION as read by detect()

    # -- bus ---------------------------------------------------------------------------

    def _xfer(self, addr, op, value=0):
        """One CS-low transaction; returns the data read (unsigned, as on the wire)."""
        n = width(addr)
        tx = self._tx
        tx[0] = (addr >> 8) & 0xFF
        tx[1] = addr & 0xFF
        tx[2] = op
        for i in range(n):
            tx[3 + i] = (value >> (8 * (n - 1 - i))) & 0xFF
        rx = self._rx
        self._cs.value(0)
        try:
            self._spi.write_readinto(self._txv[n - 1], self._rxv[n - 1])
        finally:
            self._cs.value(1)
        v = 0
        for i in range(3, 3 + n):
            v = (v << 8) | rx[i]
        return v

    def _write(self, addr, value):
        """Write without verification (the unlock sequence must not be interrupted)."""
        self._xfer(addr, _WRITE, value & ((1 << (8 * width(addr))) - 1))

    def _read(self, addr, signed=False, tries=_CHECK_READS):
        """Read a register and confirm it through LAST_RWDATA of the same width."""
        n = width(addr)
        v = self._confirm(addr, ((n - 1) << 8) | 0xFF, tries)  # 0x0FF, 0x1FF, 0x2FF, 0x3FF
        return _signed(v, n) if signed else v

    def _read_record(self, addr):
        """Read LAST_OP / LAST_ADD, which no LAST_RWDATA covers: confirmed by reading again."""
        return self._confirm(addr, addr, _CHECK_READS)

    def _confirm(self, addr, again, tries):
        """Read ``addr``, then ``again`` up to ``tries`` times: the first value seen twice
        wins. ChipError(BUS_ERROR) when none is."""
        seen = self._seen
        seen[0] = self._xfer(addr, _READ)
        for i in range(1, tries + 1):
            c = self._xfer(again, _READ)
            for j in range(i):
                if seen[j] == c:
                    return c
            seen[i] = c
        raise ChipError(BUS_ERROR, "ADE7953 read 0x%03x unconfirmed" % addr)

    def _set(self, addr, value, signed=False):
        """Write and verify by read-back; ChipError(BUS_ERROR) if the chip will not take it."""
        for _ in range(_WRITE_TRIES):
            self._write(addr, value)
            try:
                if self._read(addr, signed) == value:
                    return
            except ChipError:
                pass
        raise ChipError(BUS_ERROR, "ADE7953 write 0x%03x not taken" % addr)

    def _unlock_setting(self):
        """0xAD to 0xFE, then at once 0x0030 to 0x120 (the datasheet requires it to meet its
        Table 1 specifications); verify by reading 0x120 back."""
        for _ in range(_WRITE_TRIES):
            self._write(_UNLOCK, _UNLOCK_KEY)
            self._write(_RESERVED_120, _OPT_SETTING)
            try:
                if self._read(_RESERVED_120) == _OPT_SETTING:
                    return
            except ChipError:
                pass
        raise ChipError(BUS_ERROR, "ADE7953 register 0x120 not taken")

    def _sentinel(self):
        """Register 0x120: OK, ABSENT (all ones) or RESET (back to default 0)."""
        v = self._read(_RESERVED_120)
        if v == 0xFFFF:
            return ABSENT
        return OK if v == _OPT_SETTING else RESET

    # -- interface ---------------------------------------------------------------------

    def detect(self):
        """True if an ADE7953 answers: VERSION is not all ones, and the chip's record of the
        last communication names that read (LAST_ADD = 0x702, LAST_OP = read)."""
        try:
            v = self._read(_VERSION)
            if v == 0xFF:
                return False
            if self._read_record(_LAST_ADD) != _VERSION:
                return False
            if self._read_record(_LAST_OP) != _OP_READ:
                return False
        except ChipError:
            return False
        want = self.config["version"]
        if want is not None and v != want:
            return False
        self.version = v
        return True

    def configure(self):
        """Drain energies (kept for the next drain_energy), software reset, write and verify
        every setting, then the unlock + 0x120 performance setting. Raises ChipError."""
        if not self.detect():
            raise ChipError(ABSENT, "no ADE7953")
        self._drain(self._pending)  # a warm MCU reboot: the chip kept counting
        self._write(_CONFIG, _CONFIG_DEFAULT | _SWRST)
        self._sleep_ms(self.config["reset_wait_ms"])
        if not self.detect():
            raise ChipError(ABSENT, "ADE7953 gone after reset")
        cfg = self.config
        for key, addr, signed in SETTINGS:
            self._set(addr, cfg[key], signed)
        self._unlock_setting()
        # the reset left its overflow/reset flags: clear them so drain_energy sees only new ones
        self._read(_RSTIRQSTATA, False, _ENERGY_CHECK_READS)

    def health(self):
        """OK / ABSENT / BUS_ERROR / RESET, from two raw reads each checked once against
        LAST_RWDATA (no retries: this reports the wire as it is)."""
        v = self._xfer(_VERSION, _READ)
        if v == 0xFF:
            return ABSENT
        if self._xfer(0x0FF, _READ) != v:
            return BUS_ERROR
        want = self.config["version"]
        if want is not None and v != want:
            return ABSENT
        s = self._xfer(_RESERVED_120, _READ)
        if s == 0xFFFF:
            return ABSENT
        if self._xfer(0x1FF, _READ) != s:
            return BUS_ERROR
        return OK if s == _OPT_SETTING else RESET

    def read_instant(self, inst):
        """Fill ``inst`` (an Instant(phases=1)) from VRMS, IRMSA, AWATT, AVAR, AVA, PFA,
        ANGLE_A, PERIOD; IRMSB -> self.current_b_ma. ChipError(ABSENT / RESET / BUS_ERROR)."""
        inst.valid = False
        state = self._sentinel()
        if state != OK:
            raise ChipError(state, "ADE7953 absent" if state == ABSENT else "ADE7953 reset")
        raw = self._raw
        for i in range(len(MEASUREMENTS)):
            addr, signed = MEASUREMENTS[i]
            raw[i] = self._read(addr, signed)
        state = self._sentinel()  # again: a chip that reset meanwhile gave uncalibrated values
        if state != OK:
            raise ChipError(state, "ADE7953 absent" if state == ABSENT else "ADE7953 reset")
        vrms, irmsa, awatt, avar, ava, pfa, angle, period, irmsb = raw
        cfg = self.config
        p_lsb = cfg["p_lsb_per_w"]
        inst.voltage[1] = _div(vrms * 100, cfg["v_lsb_per_v"])  # 0.01 V
        inst.current[1] = _div(irmsa * 1000, cfg["ia_lsb_per_a"])  # mA
        p = _div(awatt * 10, p_lsb)  # 0.1 W
        q = _div(avar * 10, p_lsb)
        s = _div(ava * 10, p_lsb)
        pf = _div(pfa * 1000, 32768)  # 0.001; its sign follows active power
        inst.active[0] = inst.active[1] = p
        inst.reactive[0] = inst.reactive[1] = q
        inst.apparent[0] = inst.apparent[1] = s
        inst.pf[0] = inst.pf[1] = pf
        # ANGLE_A and PERIOD count the same 223.75 kHz clock: degrees = 360 ANGLE / (PERIOD+1)
        inst.angle[1] = _div(angle * 3600, period + 1)  # 0.1 degree, + = current lags
        inst.frequency = _div(_PERIOD_CLOCK_X100, period + 1) if period else 0
        self.current_b_ma = _div(irmsb * 1000, cfg["ib_lsb_per_a"])
        inst.valid = True

    def drain_energy(self, acc):
        """Add active/reactive energy since the last drain to ``acc`` (EnergyDelta(phases=1)),
        index 0 (total) and 1 (the phase) alike, and set ``acc.energy_lsb_uwh``. Raises
        ChipError(ABSENT) before reading anything; ChipError(BUS_ERROR) when a read cannot be
        confirmed (what was already read out of the chip is in ``acc``); ChipError(RESET) after
        draining a chip that lost its configuration (the counts since its reset are in
        ``acc``)."""
        state = self._sentinel()
        if state == ABSENT:
            raise ChipError(ABSENT, "ADE7953 absent")
        pend = self._pending
        try:
            self._drain(pend)
        finally:
            acc.energy_lsb_uwh = self.energy_lsb_uwh
            counts = acc.counts
            for q in range(QUANTITIES):
                d = pend[q]
                if d:
                    counts[q][0] += d
                    counts[q][1] += d
                    pend[q] = 0
        if state == RESET:  # counted since the reset, now in acc; configure() again
            raise ChipError(RESET, "ADE7953 reset")

    def calibration(self):
        """Every board constant and register setting in use (persist and pass back as
        ``config``)."""
        return dict(self.config)

    # -- energy ------------------------------------------------------------------------

    def _drain(self, pend):
        """Read AENERGYA, RENERGYA (read-with-reset), then RSTIRQSTATA for overflow flags;
        add the counts to ``pend`` by quantity. If a later read fails, the values already taken
        out of the chip are still added before the ChipError goes up. An overflow flag
        means the register wrapped once (2**24 counts) in the direction opposite to the
        sign it now shows: the wrap is undone (drained every <= 10 s it cannot wrap twice)."""
        a = self._read(_AENERGYA, True, _ENERGY_CHECK_READS)
        try:
            r = self._read(_RENERGYA, True, _ENERGY_CHECK_READS)
        except ChipError:
            _add(pend, ACTIVE_IMPORT, ACTIVE_EXPORT, a)
            raise
        try:
            irq = self._read(_RSTIRQSTATA, False, _ENERGY_CHECK_READS)
        except ChipError:
            _add(pend, ACTIVE_IMPORT, ACTIVE_EXPORT, a)
            _add(pend, REACTIVE_IMPORT, REACTIVE_EXPORT, r)
            raise
        if irq & _AEOF:
            a = a + _WRAP24 if a < 0 else a - _WRAP24
        if irq & _VAREOF:
            r = r + _WRAP24 if r < 0 else r - _WRAP24
        _add(pend, ACTIVE_IMPORT, ACTIVE_EXPORT, a)
        _add(pend, REACTIVE_IMPORT, REACTIVE_EXPORT, r)


def _add(pend, imp, exp, v):
    """Signed counts -> the import (v > 0) or export (v < 0) counter."""
    if v > 0:
        pend[imp] += v
    elif v < 0:
        pend[exp] -= v
