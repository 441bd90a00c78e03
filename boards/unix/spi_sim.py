"""A fake SPI bus and chip-select pin for the virtual meter: the board side of the
register-level metering-IC simulations (sim_atm90e32.py, sim_ade7953.py).

The fake objects have the ``machine.SPI`` / ``machine.Pin`` interface the drivers use
(``write``, ``read``, ``readinto``, ``write_readinto``; ``value()``), so the driver code is
exactly the board code. The bus is full duplex and byte-wise: while CS is low, every byte
the driver clocks out goes to ``chip.exchange(index, byte_in)`` which returns the byte the
chip drives on MISO at that position (real chips answer within the transaction: the address
arrives first, then the data comes back). When CS rises, ``chip.end(count)`` ends the
transaction (a chip commits a write, or rejects a frame of the wrong length).

With CS high (or no chip, ``chip=None``), MISO floats high: every byte reads 0xFF.
``faults``: ``flip_miso`` (probability, with the chip's seeded random) lets a test or the
virtual meter corrupt answers on the wire.
"""


class FakeCS:
    """machine.Pin-like chip select, active low."""

    def __init__(self, bus):
        self.bus = bus
        self._v = 1

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            if v == 0:
                self.bus._begin()
            else:
                self.bus._end()
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class FakeSPI:
    """machine.SPI-like master talking to one simulated chip."""

    def __init__(self, chip=None):
        self.chip = chip
        self._selected = False
        self._index = 0
        self.transactions = 0

    def init(self, *args, **kwargs):
        pass

    def deinit(self):
        pass

    def _begin(self):
        self._selected = True
        self._index = 0
        if self.chip is not None:
            self.chip.begin()

    def _end(self):
        self._selected = False
        self.transactions += 1
        if self.chip is not None:
            self.chip.end(self._index)

    def _xfer(self, b):
        if not self._selected or self.chip is None or not self.chip.present:
            self._index += 1
            return 0xFF
        out = self.chip.exchange(self._index, b)
        self._index += 1
        return out & 0xFF

    def write_readinto(self, wbuf, rbuf):
        for i in range(len(wbuf)):
            rbuf[i] = self._xfer(wbuf[i])

    def write(self, wbuf):
        for i in range(len(wbuf)):
            self._xfer(wbuf[i])

    def readinto(self, rbuf, write=0x00):
        for i in range(len(rbuf)):
            rbuf[i] = self._xfer(write)

    def read(self, n, write=0x00):
        buf = bytearray(n)
        self.readinto(buf, write)
        return bytes(buf)
