"""Register-level simulation of an Analog Devices ADE7953 on a board, for the virtual meter
and the driver tests: it sits behind ``spi_sim.FakeSPI`` (``present``, ``begin()``,
``exchange(index, byte_in) -> byte_out``, ``end(count)``), so ``drivers/ade7953.py`` runs
unchanged.

What it models (datasheet "SPI interface", "Register map", "Energy calculation"):

* Bus: header address high, address low, 0x80 read / 0x00 write, then data as wide as the
  address page (0x0xx 8 bit, 0x1xx 16, 0x2xx 24, 0x3xx 32; other pages 8). A transaction of
  any other length, or with another third byte, is ignored. Read data is latched when the
  header is complete; side effects (read-with-reset, the last-communication record) happen
  when CS rises on a transaction of the right length.
* Register file with the datasheet defaults; 0x3xx is the 32-bit view of the 24-bit 0x2xx
  registers (signed ones sign-extended, others zero-extended; a 32-bit write keeps the low
  24 bits). Unknown addresses read 0 and ignore writes; read-only registers ignore writes.
* VERSION (0x702) reads ``VERSION`` (an arbitrary revision: the datasheet does not give one).
* LAST_OP (0x35 read / 0xCA write), LAST_ADD, LAST_RWDATA per width (0x0FF, 0x1FF, 0x2FF,
  0x3FF) record every completed transaction except reads of the record itself (a modelling
  choice: the record is of the last communication, so reading it must not overwrite it).
* Unlock: 0xAD written to 0xFE arms the next write; a write to 0x120 takes effect only when
  armed. Any write disarms.
* CONFIG bit 7 (SWRST) and ``inject_reset()``: every register back to its default, energy
  and remainders cleared, IRQSTATA = RESET (bit 20). The chip answers at once.
* Physics, from a ``load_spec.Phase`` (channel A), a frequency and an optional channel-B
  Phase, driven by ``now_ms()``: the board front end gives ``v_lsb_per_v`` VRMS codes per
  volt etc. (``BOARD``), times the analog error of the board (``v_error``...: 1.0 = the
  default scaling of the driver is exact), times the gain registers (0x400000 = 1): AVGAIN,
  AIGAIN on everything downstream, AWGAIN/AVARGAIN/AVAGAIN on power and energy, BIGAIN on
  IRMSB; offset registers add to their codes (VRMSOS, AIRMSOS, BIRMSOS, AWATTOS, AVAROS).
  PGA and phase-calibration registers are stored, not modelled.
* Measurements (VRMS, IRMSA, IRMSB, AWATT, AVAR, AVA, PFA, ANGLE_A, PERIOD) refresh every
  ``REFRESH_MS`` of virtual time, not per read, with seeded noise (triangular, +/- 0.1 %)
  quantised to the register LSB; PFA = AWATT / AVA * 32768 (sign of active power); PERIOD =
  223750 / f - 1; ANGLE_A = phase of the current behind the voltage in PERIOD ticks.
* Energy: AENERGYA, RENERGYA, APENERGYA integrate the noiseless measured power exactly
  over virtual time in ``energy_lsb_uwh`` codes, keeping the fractional remainder across
  reads and resets-on-read; signed (ACCMODE 0); no accumulation below the no-load threshold
  (|AWATT| < AP_NOLOAD / 256, likewise VAR/VA; a simplification of the datasheet's
  threshold; DISNOLOAD bits 0..2 switch it off). Read-with-reset when LCYCMODE bit 6
  (RSTREAD, default on). Overflow: the 24-bit register wraps (two's complement) and sets
  IRQSTATA AEOF (bit 3) / VAREOF (bit 4) / VAEOF (bit 5); RSTIRQSTATA (0x22E) returns
  IRQSTATA and clears it.
* Faults: ``present = False`` (MISO floats high, nothing is received); ``flip_miso``
  (probability per data byte on MISO that one random bit flips; the chip's state is right,
  only the wire is wrong); ``inject_reset()``; energy overflow by not draining (``poke``
  pre-loads a register to get there quickly).

Noise and faults use a small xorshift32 generator seeded by ``seed``: identical sequences
under CPython and MicroPython.
"""

import math

import load_spec

VERSION = 0x05
REFRESH_MS = 100
NOISE = 0.001  # +/- 0.1 %, triangular

# The simulated board: front-end scaling (codes per unit, at unity gain registers) and its
# analog error. The driver's DEFAULTS describe the same board.
BOARD = {
    "v_lsb_per_v": 26000,
    "ia_lsb_per_a": 100000,
    "ib_lsb_per_a": 100000,
    "p_lsb_per_w": 155,
    "energy_lsb_uwh": 100,
    "v_error": 1.0,
    "ia_error": 1.0,
    "ib_error": 1.0,
}

_RW = 0  # read/write
_RO = 1  # read only (measurements, status)
_RR = 2  # energy: read-with-reset when LCYCMODE.RSTREAD
_REC = 3  # record of the last communication

# canonical address (0x3xx -> 0x2xx): (default, signed, kind)
REGISTERS = {
    0x000: (0x00, False, _RW),  # SAGCYC
    0x001: (0x00, False, _RW),  # DISNOLOAD
    0x004: (0x40, False, _RW),  # LCYCMODE
    0x007: (0x00, False, _RW),  # PGA_V
    0x008: (0x00, False, _RW),  # PGA_IA
    0x009: (0x00, False, _RW),  # PGA_IB
    0x040: (0x00, False, _RW),  # WRITE_PROTECT (stored, not modelled)
    0x0FD: (0x00, False, _REC),  # LAST_OP
    0x0FE: (0x00, False, _RW),  # unlock key for 0x120
    0x0FF: (0x00, False, _REC),  # LAST_RWDATA (8 bit)
    0x702: (VERSION, False, _RO),  # VERSION
    0x800: (0x00, False, _RW),  # EX_REF
    0x100: (0xFFFF, False, _RW),  # ZXTOUT
    0x101: (0x0000, False, _RW),  # LINECYC
    0x102: (0x8004, False, _RW),  # CONFIG
    0x103: (0x003F, False, _RW),  # CF1DEN
    0x104: (0x003F, False, _RW),  # CF2DEN
    0x107: (0x0300, False, _RW),  # CFMODE
    0x108: (0x0000, False, _RW),  # PHCALA
    0x109: (0x0000, False, _RW),  # PHCALB
    0x10A: (0x0000, True, _RO),  # PFA
    0x10B: (0x0000, True, _RO),  # PFB
    0x10C: (0x0000, True, _RO),  # ANGLE_A
    0x10D: (0x0000, True, _RO),  # ANGLE_B
    0x10E: (0x0000, False, _RO),  # PERIOD
    0x110: (0x0000, False, _RW),  # ALT_OUTPUT
    0x120: (0x0000, False, _RW),  # reserved: 0x0030 after unlock
    0x1FE: (0x0000, False, _REC),  # LAST_ADD
    0x1FF: (0x0000, False, _REC),  # LAST_RWDATA (16 bit)
    0x200: (0x000000, False, _RW),  # SAGLVL
    0x201: (0x000000, False, _RW),  # ACCMODE
    0x203: (0x00E419, False, _RW),  # AP_NOLOAD
    0x204: (0x00E419, False, _RW),  # VAR_NOLOAD
    0x205: (0x000000, False, _RW),  # VA_NOLOAD
    0x210: (0, True, _RO),  # AVA
    0x211: (0, True, _RO),  # BVA
    0x212: (0, True, _RO),  # AWATT
    0x213: (0, True, _RO),  # BWATT
    0x214: (0, True, _RO),  # AVAR
    0x215: (0, True, _RO),  # BVAR
    0x216: (0, True, _RO),  # IA (waveform: not modelled)
    0x217: (0, True, _RO),  # IB
    0x218: (0, True, _RO),  # V
    0x21A: (0, False, _RO),  # IRMSA
    0x21B: (0, False, _RO),  # IRMSB
    0x21C: (0, False, _RO),  # VRMS
    0x21E: (0, True, _RR),  # AENERGYA
    0x21F: (0, True, _RR),  # AENERGYB (not modelled: stays 0)
    0x220: (0, True, _RR),  # RENERGYA
    0x221: (0, True, _RR),  # RENERGYB
    0x222: (0, True, _RR),  # APENERGYA
    0x223: (0, True, _RR),  # APENERGYB
    0x224: (0xFFFFFF, False, _RW),  # OVLVL
    0x225: (0xFFFFFF, False, _RW),  # OILVL
    0x22C: (0x100000, False, _RW),  # IRQENA
    0x22D: (0x000000, False, _RO),  # IRQSTATA
    0x22E: (0x000000, False, _RO),  # RSTIRQSTATA: IRQSTATA, cleared by the read
    0x22F: (0x000000, False, _RW),  # IRQENB
    0x230: (0x000000, False, _RO),  # IRQSTATB
    0x231: (0x000000, False, _RO),  # RSTIRQSTATB
    0x280: (0x400000, False, _RW),  # AIGAIN
    0x281: (0x400000, False, _RW),  # AVGAIN
    0x282: (0x400000, False, _RW),  # AWGAIN
    0x283: (0x400000, False, _RW),  # AVARGAIN
    0x284: (0x400000, False, _RW),  # AVAGAIN
    0x286: (0, True, _RW),  # AIRMSOS
    0x288: (0, True, _RW),  # VRMSOS
    0x289: (0, True, _RW),  # AWATTOS
    0x28A: (0, True, _RW),  # AVAROS
    0x28B: (0, True, _RW),  # AVAOS
    0x28C: (0x400000, False, _RW),  # BIGAIN
    0x28D: (0x400000, False, _RW),  # BVGAIN
    0x28E: (0x400000, False, _RW),  # BWGAIN
    0x28F: (0x400000, False, _RW),  # BVARGAIN
    0x290: (0x400000, False, _RW),  # BVAGAIN
    0x292: (0, True, _RW),  # BIRMSOS
    0x295: (0, True, _RW),  # BWATTOS
    0x296: (0, True, _RW),  # BVAROS
    0x297: (0, True, _RW),  # BVAOS
    0x2FF: (0, False, _REC),  # LAST_RWDATA (24 bit)
    0x3FF: (0, False, _REC),  # LAST_RWDATA (32 bit)
}

_RECORDS = (0x0FD, 0x0FF, 0x1FE, 0x1FF, 0x2FF, 0x3FF)
_LAST_RWDATA = (0x0FF, 0x1FF, 0x2FF, 0x3FF)  # by width - 1

# IRQSTATA bits
IRQ_AEOF = 0x08
IRQ_VAREOF = 0x10
IRQ_VAEOF = 0x20
IRQ_RESET = 0x100000


def width(addr):
    page = addr >> 8
    return page + 1 if 1 <= page <= 3 else 1


def canonical(addr):
    """The register behind an address: 0x3xx is the 32-bit view of 0x2xx."""
    if addr >> 8 == 3 and addr != 0x3FF:
        return addr - 0x100
    return addr


def _s24(v):
    return v - 0x1000000 if v & 0x800000 else v


class SimAde7953:
    """One simulated ADE7953. ``now_ms``: virtual clock (callable -> int ms); ``load``: a
    load_spec.Phase for current channel A (default load_spec's household load); ``hz``: line
    frequency; ``load_b``: Phase on channel B (default none); ``board``: dict overriding
    ``BOARD``; ``seed``: noise and fault generator seed."""

    def __init__(self, now_ms, load=None, hz=50.0, load_b=None, board=None, seed=1):
        self.now_ms = now_ms
        self.board = dict(BOARD)
        if board:
            self.board.update(board)
        self.load = load if load is not None else load_spec.Phase()
        self.load_b = load_b if load_b is not None else load_spec.Phase(amps=0.0)
        self.hz = hz
        self.present = True
        self.flip_miso = 0.0
        self.resets = 0  # how many resets happened (software or injected)
        self._seed = (seed & 0xFFFFFFFF) or 1
        self._t = now_ms()
        self._power_on()
        self.resets = 0
        self._w = -1

    # -- test and virtual-meter controls ---------------------------------------------------

    def set_load(self, load=None, hz=None, load_b=None):
        """Change the mains from now on (energy up to now is counted with the old load)."""
        self._advance()
        if load is not None:
            self.load = load
        if hz is not None:
            self.hz = hz
        if load_b is not None:
            self.load_b = load_b

    def inject_reset(self):
        """A spontaneous reset (brown-out, ESD): every register back to its default."""
        self._advance()
        self._power_on()

    def peek(self, addr):
        """A register as the chip holds it (unsigned code, native width); no bus effects."""
        self._advance()
        return self._reg.get(canonical(addr), 0)

    def poke(self, addr, value):
        """Set a register behind the bus's back (tests: pre-load an energy register)."""
        self._advance()
        a = canonical(addr)
        self._reg[a] = value & ((1 << (8 * width(a))) - 1)

    # -- spi_sim chip protocol ---------------------------------------------------------------

    def begin(self):
        if not self.present:
            return
        self._advance()
        self._addr = 0
        self._op = 0
        self._w = -1
        self._out = 0
        self._data = 0

    def exchange(self, index, byte_in):
        if index == 0:
            self._addr = byte_in << 8
            return 0
        if index == 1:
            self._addr |= byte_in
            self._w = width(self._addr)
            return 0
        if index == 2:
            self._op = byte_in
            if byte_in == 0x80:
                self._out = self._value(self._addr)
            return 0
        i = index - 3
        if i >= self._w:
            return 0
        if self._op != 0x80:
            self._data = (self._data << 8) | byte_in
            return 0
        out = (self._out >> (8 * (self._w - 1 - i))) & 0xFF
        if self.flip_miso and self._random() < self.flip_miso:
            out ^= 1 << (self._rand32() & 7)
        return out

    def end(self, count):
        if not self.present or self._w < 0 or count != 3 + self._w:
            return
        addr = self._addr
        if self._op == 0x80:
            self._commit_read(addr)
        elif self._op == 0x00:
            self._commit_write(addr, self._data)

    # -- register file -----------------------------------------------------------------------

    def _power_on(self):
        self._reg = {a: d[0] for a, d in REGISTERS.items()}
        self._reg[0x22D] = IRQ_RESET
        self._armed = False
        self._frac = [0.0, 0.0, 0.0]  # fractional codes of AENERGYA, RENERGYA, APENERGYA
        self._t_refresh = self._t  # measurements read 0 until the first refresh
        self.resets += 1

    def _value(self, addr):
        """What a read of ``addr`` drives on MISO (unsigned, the page's width)."""
        a = canonical(addr)
        if a == 0x22E:
            a = 0x22D
        v = self._reg.get(a, 0)
        if addr >> 8 == 3 and addr != 0x3FF:
            info = REGISTERS.get(a)
            if info is not None and info[1] and v & 0x800000:
                v |= 0xFF000000
        return v

    def _record(self, addr, op, value):
        self._reg[0x0FD] = op
        self._reg[0x1FE] = addr
        self._reg[_LAST_RWDATA[width(addr) - 1]] = value

    def _commit_read(self, addr):
        if addr in _RECORDS:
            return
        self._record(addr, 0x35, self._out)
        a = canonical(addr)
        if a == 0x22E:
            self._reg[0x22D] = 0
        elif a == 0x231:
            self._reg[0x230] = 0
        else:
            info = REGISTERS.get(a)
            if info is not None and info[2] == _RR and self._reg[0x004] & 0x40:
                self._reg[a] = 0

    def _commit_write(self, addr, value):
        self._record(addr, 0xCA, value)
        armed = self._armed
        self._armed = False
        a = canonical(addr)
        info = REGISTERS.get(a)
        if info is None or info[2] != _RW:
            return
        if a == 0x120 and not armed:
            return
        if a == 0x102 and value & 0x80:  # CONFIG.SWRST
            self._power_on()
            return
        self._reg[a] = value & ((1 << (8 * width(a))) - 1)
        if a == 0x0FE and value == 0xAD:
            self._armed = True

    def _sreg(self, a):
        v = self._reg[a]
        return _s24(v) if width(a) == 3 else v

    # -- physics -------------------------------------------------------------------------

    def _rand32(self):
        x = self._seed
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._seed = x
        return x

    def _random(self):
        return self._rand32() / 4294967296.0

    def _noise(self):
        return 1.0 + NOISE * (self._random() + self._random() - 1.0)

    def _gain(self, a):
        return self._reg[a] / 4194304.0

    def _measured(self):
        """(V, Ia, P W, Q var, S VA, Ib) as the chip sees them: board error and gains."""
        b = self.board
        ld = self.load
        v = ld.volts * b["v_error"] * self._gain(0x281)
        ia = ld.amps * b["ia_error"] * self._gain(0x280)
        s = v * ia
        va = ld.volts * ld.amps
        p = s * ld.pf * self._gain(0x282)
        q = (s * ld.reactive_var() / va if va else 0.0) * self._gain(0x283)
        s = s * self._gain(0x284)
        ib = self.load_b.amps * b["ib_error"] * self._gain(0x28C)
        return v, ia, p, q, s, ib

    def _advance(self):
        now = self.now_ms()
        dt = now - self._t
        if dt > 0:
            self._integrate(dt)
            self._t = now
        if now - self._t_refresh >= REFRESH_MS:
            self._t_refresh = now - (now - self._t_refresh) % REFRESH_MS
            self._refresh()

    def _integrate(self, dt_ms):
        """Energy over dt_ms at the present load (constant between load changes)."""
        _, _, p, q, s, _ = self._measured()
        b = self.board
        lsb_w = b["p_lsb_per_w"]
        p += self._sreg(0x289) / lsb_w  # AWATTOS
        q += self._sreg(0x28A) / lsb_w  # AVAROS
        dis = self._reg[0x001]
        rates = (
            (p, 0x203, 0x01, 0x21E, IRQ_AEOF),
            (q, 0x204, 0x02, 0x220, IRQ_VAREOF),
            (s, 0x205, 0x04, 0x222, IRQ_VAEOF),
        )
        k = b["energy_lsb_uwh"] * 3.6  # W * ms per code (1 uWh = 3.6 W ms)
        for i in range(3):
            w, noload, disbit, reg, ovf = rates[i]
            if not dis & disbit and abs(w * lsb_w) < self._reg[noload] / 256.0:
                continue
            f = self._frac[i] + w * dt_ms / k
            whole = int(f // 1)
            self._frac[i] = f - whole
            if whole:
                v = _s24(self._reg[reg]) + whole
                if v >= 0x800000 or v < -0x800000:
                    self._reg[0x22D] |= ovf
                self._reg[reg] = v & 0xFFFFFF

    def _refresh(self):
        b = self.board
        v, ia, p, q, s, ib = self._measured()
        lsb_w = b["p_lsb_per_w"]
        reg = self._reg
        vrms = _code(v * b["v_lsb_per_v"] * self._noise() + self._sreg(0x288), 0, 0xFFFFFF)
        irmsa = _code(ia * b["ia_lsb_per_a"] * self._noise() + self._sreg(0x286), 0, 0xFFFFFF)
        irmsb = _code(ib * b["ib_lsb_per_a"] * self._noise() + self._sreg(0x292), 0, 0xFFFFFF)
        awatt = _code(p * lsb_w * self._noise() + self._sreg(0x289), -0x800000, 0x7FFFFF)
        avar = _code(q * lsb_w * self._noise() + self._sreg(0x28A), -0x800000, 0x7FFFFF)
        ava = _code(s * lsb_w * self._noise() + self._sreg(0x28B), -0x800000, 0x7FFFFF)
        reg[0x21C] = vrms
        reg[0x21A] = irmsa
        reg[0x21B] = irmsb
        reg[0x212] = awatt & 0xFFFFFF
        reg[0x214] = avar & 0xFFFFFF
        reg[0x210] = ava & 0xFFFFFF
        pf = _code(32768.0 * awatt / ava, -32768, 32767) if ava > 0 else 0
        reg[0x10A] = pf & 0xFFFF
        period = _code(223750.0 / self.hz - 1, 0, 0xFFFF) if self.hz > 0 else 0
        reg[0x10E] = period
        deg = math.atan2(q, p) * 180.0 / math.pi if s > 0 else 0.0
        reg[0x10C] = _code(deg / 360.0 * (period + 1), -32768, 32767) & 0xFFFF


def _code(x, lo, hi):
    """A physical value -> register code: rounded, clamped."""
    n = int(x + 0.5) if x >= 0 else -int(-x + 0.5)
    return lo if n < lo else hi if n > hi else n
