"""A fake ``machine`` module for importing the microcontroller boards (boards/esp32,
boards/rp2040) on the Unix port: every peripheral records how it was built and what was
done with it. Installed by host_tests/boards_fake/board_check.py as sys.modules["machine"]
before the board is imported (the Unix port's own machine module has no UART, SPI, ...).

    log            [(class name, id, kwargs), ...] in construction order
    chip_bus       set to a boards/unix/spi_sim.FakeSPI: SPI objects talk to that simulated
                   chip, and the Pin numbered ``cs_pin`` drives its chip select
"""

import io
import time

log = []
timers = []  # Timer objects, to see how they were started
wdts = []  # WDT objects
chip_bus = None
cs_pin = None
UID = b"\xe6\x61\x41\x04\x03\x2b\x5e\x2a"
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
reset_cause_value = WDT_RESET
resets = []


def unique_id():
    return UID


def reset_cause():
    return reset_cause_value


def reset():
    resets.append(time.ticks_ms())
    raise SystemExit("machine.reset()")


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.history = []
        self._v = 0
        log.append(("Pin", id, {"mode": mode, "value": value}))
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
        self.history.append(self._v)
        if chip_bus is not None and self.id == cs_pin:
            if self._v:
                chip_bus._end()
            else:
                chip_bus._begin()
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class UART(io.IOBase):
    """Bytes a test puts in ``rx`` are read by the meter; what it writes lands in ``tx``."""

    def __init__(self, id, **kw):
        self.id = id
        self.kw = kw
        self.rx = bytearray()
        self.tx = bytearray()
        self.inits = []
        log.append(("UART", id, kw))

    def init(self, **kw):
        self.inits.append(kw)
        self.kw.update(kw)

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        if not n:
            return None
        buf[:n] = self.rx[:n]
        self.rx[:n] = b""
        return n

    def read(self, n=-1):
        if not self.rx:
            return None
        n = len(self.rx) if n < 0 else min(n, len(self.rx))
        out = bytes(self.rx[:n])
        self.rx[:n] = b""
        return out

    def write(self, buf):
        self.tx.extend(buf)
        return len(buf)

    def flush(self):
        pass

    def txdone(self):
        return True

    def ioctl(self, req, arg):
        if req == 3:  # poll
            r = 0
            if arg & 1 and self.rx:
                r |= 1
            if arg & 4:
                r |= 4
            return r
        if req == 4:
            return 0
        return -1  # not a file descriptor (10): never poll stdin instead


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id, **kw):
        self.id = id
        self.kw = kw
        log.append(("SPI", id, kw))

    def init(self, **kw):
        self.kw.update(kw)

    def write_readinto(self, w, r):
        if chip_bus is None:
            for i in range(len(r)):
                r[i] = 0xFF
        else:
            chip_bus.write_readinto(w, r)

    def write(self, w):
        if chip_bus is not None:
            chip_bus.write(w)

    def readinto(self, r, write=0):
        if chip_bus is None:
            for i in range(len(r)):
                r[i] = 0xFF
        else:
            chip_bus.readinto(r, write)

    def read(self, n, write=0):
        b = bytearray(n)
        self.readinto(b, write)
        return bytes(b)


class RTC:
    """Where a Pico's RTC is after a reset (2021-01-01, UTC); it does not tick here."""

    def __init__(self):
        self._t = (2021, 1, 1, 4, 0, 0, 0, 0)
        log.append(("RTC", None, {}))

    def datetime(self, t=None):
        if t is None:
            return self._t
        self._t = tuple(t)
        return None


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, id=-1):
        self.id = id
        self.kw = None
        timers.append(self)
        log.append(("Timer", id, {}))

    def init(self, **kw):
        self.kw = kw


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        wdts.append(self)
        log.append(("WDT", id, {"timeout": timeout}))

    def feed(self):
        self.feeds += 1
