"""The virtual meter's SPI bus to its metering IC, which is emulated in another process
(tools/chip_emulator.py) so that the chip's registers cost the firmware no RAM, as on a
board. ``LinkSPI`` and ``LinkCS`` have the ``machine.SPI`` / ``machine.Pin`` interface the
drivers use; every transfer is a synchronous request on a socket. The meter time of each
transaction travels with its CS-low edge, so the emulated chip integrates energy over the
virtual clock (``--clock-rate``).

If the emulator is gone, the bus behaves like one whose chip has lost power: writes go
nowhere and every byte read is 0xFF (MISO pulled up). The driver sees a failed chip, the
meter reports it and keeps serving; nothing raises into the firmware.

RAM: one 3-byte and one 9-byte header buffer, allocated once.
"""

import json
import struct


class ChipLink:
    def __init__(self, fd, meter_ms):
        self.f = open(fd, "r+b")
        self.meter_ms = meter_ms
        self._low = bytearray(9)
        self._low[0] = ord("L")
        self._x = bytearray(3)
        self._x[0] = ord("X")
        self.dead = False
        line = b""
        while not line.endswith(b"\n"):
            c = self.f.read(1)
            if not c:
                raise OSError("the chip emulator did not start")
            line += c
        hello = json.loads(line)
        self.chip = hello["chip"]
        self.phases = hello["phases"]
        self.config = hello["config"]

    def _send(self, buf):
        if not self.dead:
            try:
                self.f.write(buf)
            except OSError:
                self.dead = True

    def cs_low(self):
        struct.pack_into(">q", self._low, 1, self.meter_ms())
        self._send(self._low)

    def cs_high(self):
        self._send(b"H")

    def transfer(self, wbuf, rbuf):
        n = len(wbuf)
        struct.pack_into(">H", self._x, 1, n)
        self._send(self._x)
        self._send(wbuf)
        got = 0
        mv = memoryview(rbuf)
        while got < n and not self.dead:
            try:
                k = self.f.readinto(mv[got:n])
            except OSError:
                k = 0
            if not k:
                self.dead = True
            else:
                got += k
        if self.dead:
            for i in range(n):
                rbuf[i] = 0xFF


class LinkCS:
    def __init__(self, link):
        self.link = link
        self._v = 1

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            if v:
                self.link.cs_high()
            else:
                self.link.cs_low()
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class LinkSPI:
    def __init__(self, link):
        self.link = link

    def init(self, *args, **kwargs):
        pass

    def write_readinto(self, wbuf, rbuf):
        self.link.transfer(wbuf, rbuf)

    def write(self, wbuf):
        self.link.transfer(wbuf, bytearray(len(wbuf)))

    def readinto(self, rbuf, write=0x00):
        self.link.transfer(bytes([write]) * len(rbuf), rbuf)

    def read(self, n, write=0x00):
        buf = bytearray(n)
        self.readinto(buf, write)
        return bytes(buf)
