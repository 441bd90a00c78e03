"""The virtual meter's "board": what a real board.py provides (RTC, byte streams, a
filesystem), built from the Unix port's facilities. Only this folder knows it is not on
hardware.

* RTC: host UTC time plus a persisted offset (the meter's own clock, settable later by
  COSEM), with the ``machine.RTC.datetime()`` interface;
* HDLC stream: the master side of a pseudo-terminal created by tools/virtual_meter.py and
  inherited as a file descriptor (non-blocking);
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
    """machine.RTC-like clock: host time + offset_s. datetime() is UTC, subseconds in us."""

    def __init__(self, offset_s=0):
        self.offset_s = offset_s

    def now_ns(self):
        return time.time_ns() + self.offset_s * 1000000000

    def datetime(self, t=None):
        """machine.RTC.datetime(): read, or set with (y, mo, d, wd, hh, mi, ss, us) in UTC.
        Setting moves offset_s (whole seconds, rounded): the host clock is never touched."""
        if t is not None:
            y, mo, d, _wd, hh, mi, ss, us = t
            target_ns = (to_seconds(y, mo, d, hh, mi, ss) + _UNIX_2000) * 1000000000 + us * 1000
            self.offset_s = (target_ns - time.time_ns() + 500000000) // 1000000000
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
