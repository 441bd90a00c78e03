"""A register-level simulation of the Microchip ATM90E32AS metering IC, for the virtual meter
and the driver tests. It plugs into ``spi_sim.FakeSPI`` (``present``, ``begin``,
``exchange``, ``end``) so that ``firmware/drivers/atm90e32.py`` runs unchanged against it.

What it models (design/metering-ic.md, "What the simulated chip must model"):

* Bus: exactly one 4-byte frame per CS-low (``0x80|a9:8, a7:0, 0, 0`` read,
  ``a9:8, a7:0, hi, lo`` write); anything else is rejected (counted in ``rejected``, no
  effect). The address arrives in bytes 0..1 and the value goes out on MISO in bytes 2..3.
  A frame takes effect when CS rises: a write is committed, a read-clear register cleared.
* Register file with reset defaults; SoftReset (0x70 = 0x789A) restores them, clears the
  energy registers and keeps the chip busy for 6 ms of virtual time (frames ignored, MISO 0);
  configuration writes (addresses below 0x70) are ignored unless CfgRegAccEn (0x7F) holds
  0x55AA (any other value locks); LastSPIData (0x78) holds the value of the last read or
  write of any other register, ignored writes included (reading 0x78 does not change it);
  EMMIntState0/1 (0x73/0x74) are write-1-to-clear.
* Physics per phase from a list of ``load_spec.Phase`` and a frequency, on the virtual
  clock ``now_ms()``: P = V I pf, Q = +/-sqrt(S^2 - P^2), S = V I, seen through the
  board's front end (``v_scale``/``i_scale`` per phase: transformer and burden tolerances)
  and the chip's gain registers (value / 32768: the sim's scale), plus a zero-input floor
  (``v_floor`` V, ``i_floor`` A, ``p_floor`` W, ``q_floor`` var) that the offset registers
  cancel: Urms:LSB + (Uoffset << 7), Irms:LSB + (Ioffset << 7), Pmean:LSB + Poffset.
  So an uncalibrated chip reads a few percent wrong, and offsets-then-gains calibration
  converges. (Simplification: the real chip removes RMS offsets in the squared domain.)
* Measurement registers refresh every ``REFRESH_MS`` (100 ms) of virtual time, not per
  read, with seeded noise (relative ``noise``, default 0.1 %, approx. Gaussian from an own
  xorshift32 so CPython and MicroPython agree) quantised to the register LSB.
* Energy: the noise-free power is integrated exactly (integer remainder) into forward or
  reverse registers by sign, in 0.01-pulse units: counts = 4 * n * dt_ms / PLconst where n is
  the power in 0.00032 W (so PLconst 140625000 = MC 3200 gives 3125 uWh a count). The
  fraction is kept across read-clear; registers wrap at 16 bits; a phase below PStartTh
  counts nothing, a phase below PPhaseTh is left out of the total (thresholds compared with
  the 32-bit power, 0.00032 W a unit: the sim's assumption). Totals (T) count the arithmetic
  sum of the phases by its sign. Apparent energy (0x90..0x93) counts S.
  ``counted[q][p]`` is the ground truth: every count ever produced, unwrapped.

Fault switches (attributes and methods, all off by default):

* ``present = False``: the chip is absent, MISO floats high (FakeSPI reads 0xFF).
* ``flip_miso = p``: each read frame's answer gets one bit flipped with probability p
  (the driver sees a LastSPIData mismatch). ``flips`` counts them.
* ``spontaneous_reset()``: the chip resets on its own: MeterEn -> 0, configuration and
  energy registers lost.
* ``tear = n``: the next n reads of a 32-bit power high word (0xB0..0xBB) are followed by
  an extra refresh that moves every power value by ``TEAR_STEP`` (or back), so the high
  word changes between the driver's hi and lo reads; the next regular refresh drops the
  offset. ``tears`` counts them.
* ``preload_energy(value, q=None, p=None)``: set energy registers, e.g. to 0xFFF0, to force
  a 16-bit wrap.
* ``drop_write(addr, count=-1)``: the next ``count`` (-1: every) write frames to ``addr``
  are lost on the bus (not committed, LastSPIData unchanged).
* ``jam_config = True``: configuration writes are ignored as if locked (LastSPIData still
  echoes them): only a read-back catches it.
* ``raise_status(addr, bits)``: set bits in a status register (EMMState/EMMIntState).

Time: the chip reads ``now_ms()`` at the start of every frame (and in ``update()``) and
catches up: energy integrated over the gap, one measurement refresh if a 100 ms boundary
was crossed. ``VirtualClock`` below is a ready ``now_ms``/``sleep_ms`` pair; the virtual
meter may pass its own faster-than-real clock. ``set_load(phases, hz)`` changes the load at
the current time.

Runs under CPython and MicroPython (floats and big ints are fine here: this is the
simulated world, not firmware).
"""

import math

REFRESH_MS = 100  # measurement cadence of the simulated chip
RESET_BUSY_MS = 6  # after a SoftReset the chip ignores the bus this long
TEAR_STEP = 0x18000  # 32-bit power units (about 31.5 W) added/removed by a forced tear

_LAST = 0x78
_CFG_ACC = 0x7F
_SOFT_RESET = 0x70
_UNLOCK = 0x55AA
_RESET_KEY = 0x789A
_METER_EN = 0x00
_W1C = (0x73, 0x74)  # EMMIntState0/1
_STATUS_RO = (0x71, 0x72)  # EMMState0/1

# Reset values of the registers the sim keeps (datasheet defaults where the design notes
# give them: PLconst 0x0861C468, MMode0 0x0087, MeterEn 0; the rest is the sim's choice).
_DEFAULTS = {
    0x00: 0x0000,  # MeterEn
    0x07: 0x0000,  # ZXConfig
    0x0C: 4900,  # FreqLoTh, 0.01 Hz
    0x0D: 5100,  # FreqHiTh
    0x31: 0x0861,  # PLconstH
    0x32: 0xC468,  # PLconstL
    0x33: 0x0087,  # MMode0
    0x34: 0x0000,  # MMode1
    0x35: 0, 0x36: 0, 0x37: 0,  # PStartTh, QStartTh, SStartTh
    0x38: 0, 0x39: 0, 0x3A: 0,  # PPhaseTh, QPhaseTh, SPhaseTh
    0x41: 0, 0x42: 0, 0x43: 0, 0x44: 0, 0x45: 0, 0x46: 0,  # Poffset/Qoffset A..C
    0x47: 0, 0x48: 0, 0x49: 0, 0x4A: 0, 0x4B: 0, 0x4C: 0,  # PQGain/Phi A..C (kept only)
    0x61: 0x8000, 0x62: 0x8000, 0x63: 0, 0x64: 0,  # UgainA IgainA UoffsetA IoffsetA
    0x65: 0x8000, 0x66: 0x8000, 0x67: 0, 0x68: 0,  # B
    0x69: 0x8000, 0x6A: 0x8000, 0x6B: 0, 0x6C: 0,  # C
    0x71: 0, 0x72: 0, 0x73: 0, 0x74: 0, 0x75: 0, 0x76: 0,  # EMMState, EMMIntState, EMMIntEn
    0x78: 0,  # LastSPIData
    0x7F: 0,  # CfgRegAccEn
}

Q_AP, Q_AN, Q_RP, Q_RN, Q_SA = 0, 1, 2, 3, 4  # energy register groups at 0x80 + 4 * q
_ENERGY_FIRST = 0x80
_ENERGY_LAST = 0x93


def _s16(v):
    return v - 0x10000 if v & 0x8000 else v


class VirtualClock:
    """A virtual millisecond clock: ``now_ms()`` for the chip, ``sleep_ms()`` for the driver."""

    def __init__(self, t_ms=0):
        self.t = t_ms

    def now_ms(self):
        return self.t

    def sleep_ms(self, ms):
        self.t += ms

    advance = sleep_ms


class Atm90e32Sim:
    def __init__(self, phases, hz=50.0, now_ms=None, seed=1, noise=0.001, ideal=False,
                 v_scale=(1.031, 0.968, 1.012), i_scale=(0.957, 1.046, 0.988),
                 v_floor=(0.25, 0.31, 0.22), i_floor=(0.015, 0.021, 0.012),
                 p_floor=(1.5, -1.1, 0.9), q_floor=(-0.8, 0.6, 0.7)):
        if now_ms is None:
            self.clock = VirtualClock()
            now_ms = self.clock.now_ms
        self.now_ms = now_ms
        self.load = list(phases)
        self.hz = hz
        if ideal:  # a perfect front end: default gains read true (noise stays as given)
            v_scale = i_scale = (1.0, 1.0, 1.0)
            v_floor = i_floor = p_floor = q_floor = (0.0, 0.0, 0.0)
        self.noise = noise
        self.v_scale, self.i_scale = v_scale, i_scale
        self.v_floor, self.i_floor = v_floor, i_floor
        self.p_floor, self.q_floor = p_floor, q_floor
        self.temp_c = 25
        seed &= 0xFFFFFFFF
        self._rng_noise = seed or 1
        self._rng_bus = (seed * 2654435761 + 12345) & 0xFFFFFFFF or 1
        # fault switches
        self.present = True
        self.flip_miso = 0.0
        self.tear = 0
        self.jam_config = False
        self._drops = {}
        # statistics
        self.frames = 0
        self.rejected = 0
        self.flips = 0
        self.tears = 0
        self.resets = 0
        self.counted = [[0] * 4 for _ in range(5)]
        # state
        self._t = now_ms()
        self._busy_until = self._t - 1
        self._tear_bias = 0
        self._reset_state()
        self._frame = bytearray(4)
        self._resp = 0

    # ------------------------------------------------------------------ state
    def _reset_state(self):
        self.regs = dict(_DEFAULTS)
        self.meas = {}
        self.energy = [[0] * 4 for _ in range(5)]  # register contents, 16 bit
        self._rem = [[0] * 4 for _ in range(5)]  # remainder, in units of 1/PLconst count
        self._model = None
        self._refresh()

    def soft_reset(self):
        """What SoftReset does: registers to defaults, energy registers cleared, busy 6 ms."""
        self._reset_state()
        self.resets += 1
        self._busy_until = self._t + RESET_BUSY_MS

    def spontaneous_reset(self):
        """Fault: the chip restarts on its own (brown-out, ESD): MeterEn reads 0 afterwards."""
        self.update()
        self._reset_state()
        self.resets += 1

    def set_load(self, phases, hz=None):
        """Change the mains load at the current virtual time."""
        self.update()
        self.load = list(phases)
        if hz is not None:
            self.hz = hz
        self._model = None

    def preload_energy(self, value, q=None, p=None):
        """Fault: set energy register(s) to ``value`` (e.g. 0xFFF0 to force a 16-bit wrap)."""
        self.update()
        for qq in range(5) if q is None else (q,):
            for pp in range(4) if p is None else (p,):
                self.energy[qq][pp] = value & 0xFFFF

    def drop_write(self, addr, count=-1):
        self._drops[addr] = count

    def raise_status(self, addr, bits):
        self.regs[addr] = self.regs.get(addr, 0) | (bits & 0xFFFF)

    def calibrated_config(self):
        """The gain and offset registers that calibrate this simulated board (register name ->
        16-bit value): what a bench calibration would find; the virtual meter may start with
        it instead of calibrating."""
        out = {}
        for k in range(3):
            ph = "ABC"[k]
            out["Ugain" + ph] = min(0xFFFF, int(round(32768.0 / self.v_scale[k])))
            out["Igain" + ph] = min(0xFFFF, int(round(32768.0 / self.i_scale[k])))
            out["Uoffset" + ph] = -int(self.v_floor[k] * 6553600.0 / 128) & 0xFFFF
            out["Ioffset" + ph] = -int(self.i_floor[k] * 65536000.0 / 128) & 0xFFFF
            out["Poffset" + ph] = -int(round(self.p_floor[k] / 0.00032)) & 0xFFFF
            out["Qoffset" + ph] = -int(round(self.q_floor[k] / 0.00032)) & 0xFFFF
        return out

    def pending(self, q, p):
        """Counts sitting in an energy register (what a drain would read now)."""
        self.update()
        return self.energy[q][p]

    # ------------------------------------------------------------------ random
    def _rand_noise(self):
        s = self._rng_noise
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self._rng_noise = s
        return s

    def _rand_bus(self):
        s = self._rng_bus
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self._rng_bus = s
        return s

    def _gauss(self):
        # sum of 4 uniforms: mean 2, variance 4/12; scaled to unit variance
        t = 0.0
        for _ in range(4):
            t += self._rand_noise() / 4294967296.0
        return (t - 2.0) * 1.7320508075688772

    def _noisy(self, x):
        if self.noise:
            return x * (1.0 + self.noise * self._gauss())
        return x

    # ------------------------------------------------------------------ physics
    def _compute_model(self):
        """Noise-free chip view of the load: per phase (u32, i32, p32, q32) in register units
        (Urms:LSB 0.01/65536 V, Irms:LSB 0.001/65536 A, power 0.00032 W)."""
        r = self.regs
        m = []
        for k in range(3):
            ph = self.load[k] if k < len(self.load) else None
            volts = ph.volts if ph else 0.0
            amps = ph.amps if ph else 0.0
            gu = r[0x61 + 4 * k] / 32768.0 * self.v_scale[k]
            gi = r[0x62 + 4 * k] / 32768.0 * self.i_scale[k]
            p = ph.active_w() * gu * gi if ph else 0.0
            q = ph.reactive_var() * gu * gi if ph else 0.0
            u32 = (volts * gu + self.v_floor[k]) * 6553600.0 + _s16(r[0x63 + 4 * k]) * 128
            i32 = (amps * gi + self.i_floor[k]) * 65536000.0 + _s16(r[0x64 + 4 * k]) * 128
            p32 = (p + self.p_floor[k]) / 0.00032 + _s16(r[0x41 + 2 * k])
            q32 = (q + self.q_floor[k]) / 0.00032 + _s16(r[0x42 + 2 * k])
            m.append((max(u32, 0.0), max(i32, 0.0), p32, q32))
        self._model = m
        # integer powers for the energy integrator
        self._n_p = [int(round(x[2])) for x in m]
        self._n_q = [int(round(x[3])) for x in m]
        self._n_s = [int(round(self._apparent32(x[0], x[1]))) for x in m]
        return m

    @staticmethod
    def _apparent32(u32, i32):
        return (u32 / 6553600.0) * (i32 / 65536000.0) / 0.00032

    def _set32(self, hi, lo, v):
        v = int(v) & 0xFFFFFFFF
        self.meas[hi] = v >> 16
        self.meas[lo] = v & 0xFFFF

    def _refresh(self):
        """Recompute every measurement register (the chip's 100 ms cadence)."""
        meas = self.meas
        if not (self.regs[_METER_EN] == 1 and self._t >= self._busy_until):
            for a in list(meas):
                meas[a] = 0
            return
        m = self._model or self._compute_model()
        bias = self._tear_bias
        tp = tq = ts = 0
        for k in range(3):
            u32, i32, p32, q32 = m[k]
            u = int(self._noisy(u32)) & ~0xFF
            i = int(self._noisy(i32)) & ~0xFF
            u = max(u, 0)
            i = max(i, 0)
            p = int(round(self._noisy(p32))) + bias
            q = int(round(self._noisy(q32))) + bias
            s = int(round(self._apparent32(u, i))) + bias
            tp += p
            tq += q
            ts += s
            meas[0xD9 + k] = (u >> 16) & 0xFFFF
            meas[0xE9 + k] = u & 0xFF00
            meas[0xDD + k] = (i >> 16) & 0xFFFF
            meas[0xED + k] = i & 0xFF00
            self._set32(0xB1 + k, 0xC1 + k, p)
            self._set32(0xB5 + k, 0xC5 + k, q)
            self._set32(0xB9 + k, 0xC9 + k, s)
            meas[0xBD + k] = self._pf(p, s)
            ang = math.atan2(q - bias, p - bias) * 1800.0 / math.pi if p - bias or q - bias else 0
            meas[0xF9 + k] = int(round(ang)) & 0xFFFF
        self._set32(0xB0, 0xC0, tp)
        self._set32(0xB4, 0xC4, tq)
        self._set32(0xB8, 0xC8, ts)
        meas[0xBC] = self._pf(tp, ts)
        meas[0xF8] = int(round(self.hz * 100))
        meas[0xFC] = self.temp_c & 0xFFFF

    @staticmethod
    def _pf(p, s):
        if s <= 0:
            return 0
        v = int(round(p * 1000.0 / s))
        v = max(-1000, min(1000, v))
        return v & 0xFFFF

    def _integrate(self, dt):
        pl = (self.regs[0x31] << 16) | self.regs[0x32]
        if pl == 0 or dt <= 0:
            return
        if self._model is None:
            self._compute_model()
        r = self.regs
        for vals, fwd, rev, start, phase_th in (
            (self._n_p, Q_AP, Q_AN, r[0x35], r[0x38]),
            (self._n_q, Q_RP, Q_RN, r[0x36], r[0x39]),
            (self._n_s, Q_SA, Q_SA, r[0x37], r[0x3A]),
        ):
            total = 0
            for k in range(3):
                n = vals[k]
                if abs(n) >= phase_th:
                    total += n
                if n == 0 or abs(n) < start:
                    continue
                self._add(fwd if n > 0 else rev, k + 1, abs(n) * dt * 4, pl)
            if total != 0 and abs(total) >= start:
                self._add(fwd if total > 0 else rev, 0, abs(total) * dt * 4, pl)

    def _add(self, q, p, amount, pl):
        rem = self._rem[q][p] + amount
        c = rem // pl
        self._rem[q][p] = rem - c * pl
        if c:
            self.energy[q][p] = (self.energy[q][p] + c) & 0xFFFF
            self.counted[q][p] += c

    def update(self):
        """Catch up with the virtual clock: integrate energy, refresh on a 100 ms boundary."""
        now = self.now_ms()
        t = self._t
        if now <= t:
            return
        if self.regs[_METER_EN] == 1:  # (0 after any reset, so never during the busy time)
            self._integrate(now - t)
        self._t = now
        if now // REFRESH_MS != t // REFRESH_MS:
            self._tear_bias = 0
            self._refresh()

    # ------------------------------------------------------------------ registers
    def _read_reg(self, addr):
        if addr in self.meas:
            return self.meas[addr]
        if _ENERGY_FIRST <= addr <= _ENERGY_LAST:
            a = addr - _ENERGY_FIRST
            return self.energy[a >> 2][a & 3]
        if addr == _SOFT_RESET:
            return 0
        return self.regs.get(addr, 0)

    def _write_reg(self, addr, v):
        r = self.regs
        if addr == _CFG_ACC:
            r[_CFG_ACC] = v
        elif addr == _SOFT_RESET:
            if v == _RESET_KEY:
                self.soft_reset()
                return
        elif addr in _W1C:
            r[addr] &= ~v & 0xFFFF
        elif addr in _STATUS_RO or addr == _LAST:
            pass
        elif addr < 0x70 and addr in r:
            if r[_CFG_ACC] == _UNLOCK and not self.jam_config:
                r[addr] = v
                self._model = None  # takes effect now for energy, at the next refresh on display
        r[_LAST] = v

    # ------------------------------------------------------------------ SPI (spi_sim chip API)
    def begin(self):
        self.update()
        self._resp = 0

    def exchange(self, index, byte_in):
        if index < 4:
            self._frame[index] = byte_in
        if self._t < self._busy_until:
            return 0x00
        if index == 1:
            f = self._frame
            if f[0] & 0x80:
                addr = ((f[0] & 0x03) << 8) | f[1]
                v = self._read_reg(addr)
                if self.flip_miso and self._rand_bus() / 4294967296.0 < self.flip_miso:
                    v ^= 1 << (self._rand_bus() % 16)
                    self.flips += 1
                self._resp = v
            return 0x00
        if index == 2:
            return self._resp >> 8
        if index == 3:
            return self._resp & 0xFF
        return 0x00

    def end(self, count):
        self.frames += 1
        if not self.present:
            return
        if count != 4:
            self.rejected += 1
            return
        if self._t < self._busy_until:
            return
        f = self._frame
        addr = ((f[0] & 0x03) << 8) | f[1]
        if f[0] & 0x80:
            if addr == _LAST:
                return
            v = self._read_reg(addr)
            self.regs[_LAST] = v
            if _ENERGY_FIRST <= addr <= _ENERGY_LAST:
                a = addr - _ENERGY_FIRST
                self.energy[a >> 2][a & 3] = 0
            elif 0xB0 <= addr <= 0xBB and self.tear > 0:
                self.tear -= 1
                self.tears += 1
                self._tear_bias = 0 if self._tear_bias else TEAR_STEP
                self._refresh()
            return
        n = self._drops.get(addr)
        if n is not None and n != 0:
            self._drops[addr] = n - 1 if n > 0 else n
            return
        self._write_reg(addr, (f[2] << 8) | f[3])
