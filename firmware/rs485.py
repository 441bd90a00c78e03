"""RS-485 half duplex: a UART and a driver-enable pin, as one stream for ``ports.HdlcPort``.

Neither the ESP32 nor the RP2040 port of MicroPython has an RS-485 mode, so the transceiver's
DE (driver enable) is a GPIO: every ``write()`` raises DE, writes the whole frame, waits with
``uart.flush()`` until the last stop bit has left the shift register, and only then lowers DE,
so the bus is driven for exactly one frame and released at once for the client's answer.
(Lowering DE after ``write()`` alone would cut the frame: ``write()`` returns when the bytes
are queued, not sent.)

Echo: with /RE tied to DE (the usual wiring, one GPIO for both) the receiver is off while the
meter transmits and there is **no echo**: ``echo=False``, the default, reads nothing back.
A transceiver whose receiver stays on (/RE tied low, or a board with automatic direction
control) hears the meter's own frame; with ``echo=True`` ``write()`` drops it: after DE goes
low it reads back up to as many bytes as it wrote, comparing each with what it sent, waiting
at most ``echo_wait_ms`` for bytes still in the UART's receive FIFO. Dropped bytes are
counted in ``echo_dropped``; a byte that differs (a collision on the bus) is dropped too and
counted in ``echo_errors``. Nothing else is read there: the client answers only after the
whole frame. (Were some echo to reach the HDLC receiver anyway, e.g. a frame longer than the
UART's receive buffer - rp2 keeps 256 bytes unless ``rxbuf=`` is larger - it would be
discarded there: the meter's frames are addressed to the client, never to the meter.)

``poll_obj`` is the UART: ``ports.Server`` registers it with ``select.poll`` (this wrapper is
not pollable itself). ``readinto()`` and ``write()`` keep the stream interface.

Allocation: ``write()`` of a whole frame allocates nothing (a partial write slices the
buffer); the echo scratch buffer (``echo_chunk`` bytes) is allocated once.
"""

import time

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
    _sleep_ms = time.sleep_ms
except AttributeError:  # CPython (tests)

    def _ticks_ms():
        return int(time.monotonic() * 1000)

    def _ticks_diff(a, b):
        return a - b

    def _sleep_ms(ms):
        time.sleep(ms / 1000)


class HalfDuplex:
    """uart: ``machine.UART`` (``write``, ``flush``, ``readinto``, ``any``); de: ``machine.Pin``
    in output mode driving DE (and /RE when tied to it)."""

    def __init__(self, uart, de, echo=False, echo_wait_ms=5, echo_chunk=32, ticks_ms=None,
                 sleep_ms=None):
        self.uart = uart
        self.de = de
        self.poll_obj = uart
        self.echo = echo
        self.echo_wait_ms = echo_wait_ms
        self._ticks = ticks_ms or _ticks_ms
        self._sleep = sleep_ms or _sleep_ms
        self._scratch = bytearray(echo_chunk) if echo else None
        self.frames = 0
        self.echo_dropped = 0
        self.echo_errors = 0
        de.value(0)  # receive

    def readinto(self, buf):
        return self.uart.readinto(buf)

    def write(self, b):
        """Send b completely with DE high; returns len(b)."""
        n = len(b)
        uart = self.uart
        de = self.de
        de.value(1)
        try:
            off = 0
            spins = 0
            while off < n:
                k = uart.write(b if off == 0 else b[off:])
                if not k:
                    spins += 1
                    if spins > 2000:
                        raise OSError(110)  # the UART does not take bytes: give up
                    self._sleep(1)
                    continue
                off += k
            uart.flush()  # the last stop bit is out
        finally:
            de.value(0)
        self.frames += 1
        if self.echo:
            self._drop_echo(b, n)
        return n

    def _drop_echo(self, b, n):
        """Read back our own n bytes (receiver on during transmission), comparing them."""
        uart = self.uart
        scratch = self._scratch
        size = len(scratch)
        got = 0
        last = self._ticks()
        while got < n:
            k = uart.any()
            if k:
                if k > n - got:
                    k = n - got
                if k > size:
                    k = size
                k = uart.readinto(scratch, k) or 0
            if not k:
                if _ticks_diff(self._ticks(), last) >= self.echo_wait_ms:
                    break  # no (more) echo
                self._sleep(1)
                continue
            for i in range(k):
                if scratch[i] != b[got + i]:
                    self.echo_errors += 1
                    break
            got += k
            last = self._ticks()
        self.echo_dropped += got
