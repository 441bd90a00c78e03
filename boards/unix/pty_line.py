"""The optical port's UART on the virtual meter (``--optical``): what ``machine.UART``'s
``init()``/``flush()`` would do on a board, for a pseudo-terminal, which has neither a baud
rate nor a bit format. Imported only with ``--optical`` (no heap otherwise)."""

import sys


class PtyLine:
    """The optical port's UART settings on a pseudo-terminal. A pty has no baud rate and no
    bit format, so ``init()`` (the ``machine.UART.init`` signature the optical port adapter
    calls) only records them and logs each change on stderr; ``flush()`` has nothing to wait
    for (a pty write is complete when it returns). ``history`` keeps the settings applied."""

    def __init__(self, name="pty", log=None):
        self.name = name
        self.log = log  # callable(str) or None (stderr)
        self.baudrate = None
        self.bits = 8
        self.parity = None
        self.stop = 1
        self.history = []

    def init(self, baudrate=9600, bits=8, parity=None, stop=1):
        self.baudrate = baudrate
        self.bits = bits
        self.parity = parity
        self.stop = stop
        fmt = "%d%s%d" % (bits, "N" if parity is None else ("E" if parity == 0 else "O"), stop)
        self.history.append((baudrate, fmt))
        if len(self.history) > 16:
            self.history.pop(0)
        msg = "meter: optical port %s: %d baud %s\n" % (self.name, baudrate, fmt)
        if self.log is not None:
            self.log(msg)
        else:
            sys.stderr.write(msg)

    def flush(self):
        pass
