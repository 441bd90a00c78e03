"""The virtual meter's "board": what a real board.py provides (RTC, byte streams, a
filesystem), built from the Unix port's facilities. Only this folder knows it is not on
hardware.

* RTC: a virtual clock, ``meter = base_meter + (host_now - base_host) * rate``, with the
  ``machine.RTC.datetime()`` interface (settable through COSEM) and ``meter_ms()``, the
  monotonic meter time that drives metering (``--clock-rate`` speeds both up). It keeps
  running while the meter is off, like a battery-backed RTC: the (base_meter, base_host)
  pair is what the meter persists;
* HDLC stream: the master side of a pseudo-terminal created by tools/virtual_meter.py and
  inherited as a file descriptor (non-blocking); with ``--optical`` it is the optical port
  (IEC 62056-21 mode E first) and ``pty_line.PtyLine`` stands for its UART's line settings;
* TCP: a listening socket on 127.0.0.1;
* flash: littlefs on a file image in the state directory (boards/unix/flash.py).
"""

import socket
import time

import flash
from meter.clock import to_seconds

_UNIX_2000 = 946684800  # seconds from 1970-01-01 to 2000-01-01 UTC

MAX_TCP = 24  # concurrent TCP associations (the boards use 2)
NAME = "unix"


class VirtualRTC:
    """machine.RTC-like virtual clock (UTC; datetime() subseconds in us) running ``rate``
    times faster than the host clock. Times are ns since 1970 (the Unix port's epoch)."""

    def __init__(self, rate=1.0):
        if not rate > 0:
            raise ValueError("clock rate")
        self.rate = rate
        self.base_host = time.time_ns()
        self.base_meter = self.base_host

    def now_ns(self):
        d = time.time_ns() - self.base_host
        if self.rate != 1:
            d = int(d * self.rate)
        return self.base_meter + d

    def meter_ms(self):
        """Monotonic meter time in ms (for metering schedules and the simulated chip)."""
        return self.now_ns() // 1000000

    def set_ns(self, meter_ns):
        self.base_host = time.time_ns()
        self.base_meter = meter_ns

    def state(self):
        """(meter ns, host ns) now: what to persist."""
        host = time.time_ns()
        d = host - self.base_host
        if self.rate != 1:
            d = int(d * self.rate)
        return self.base_meter + d, host

    def restore(self, meter_ns, host_ns):
        """Continue from a persisted pair as if the clock had run while the meter was off."""
        self.base_meter = meter_ns
        self.base_host = host_ns

    def datetime(self, t=None):
        """machine.RTC.datetime(): read, or set with (y, mo, d, wd, hh, mi, ss, us) in UTC.
        The host clock is never touched."""
        if t is not None:
            y, mo, d, _wd, hh, mi, ss, us = t
            self.set_ns((to_seconds(y, mo, d, hh, mi, ss) + _UNIX_2000) * 1000000000 + us * 1000)
            return None
        ns = self.now_ns()
        secs = ns // 1000000000
        y, mo, d, hh, mi, ss, wd = time.gmtime(secs)[:7]
        return (y, mo, d, wd, hh, mi, ss, (ns // 1000) % 1000000)


def open_fd_stream(fd):
    """A stream over an inherited file descriptor (the pty master)."""
    return open(fd, "r+b")


def tcp_listener(port, host="127.0.0.1", backlog=8):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ai = socket.getaddrinfo(host, port)[0][-1]
    s.bind(ai)
    s.listen(backlog)
    s.setblocking(False)
    return s


def mount_flash(state_dir):
    return flash.mount(state_dir + "/flash.img")
