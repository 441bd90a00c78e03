"""RS-485 half duplex (rs485.HalfDuplex): DE around every frame, echo dropping. CPython and
MicroPython, with a fake Pin and UART that record what happens in order."""

from dlms import hdlc_tools

SRV = hdlc_tools.encode_address(hdlc_tools.server_address(1, 17, 2), 2)
CLI = b"\x21"


class Log:
    def __init__(self):
        self.events = []


class FakePin:
    def __init__(self, log):
        self.log = log
        self.v = None

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.log.events.append(("de", v))


class FakeUart:
    """Records writes and flushes; optionally echoes what it transmits into its receive
    buffer (a transceiver whose receiver stays on), possibly corrupted."""

    def __init__(self, log, echo=False, max_write=None, corrupt_at=None):
        self.log = log
        self.echo = echo
        self.max_write = max_write
        self.corrupt_at = corrupt_at
        self.rx = bytearray()
        self.pending = bytearray()  # written, not yet "on the wire"

    def write(self, b):
        assert self.log.de, "write with DE low"
        b = bytes(b)
        if self.max_write:
            b = b[:self.max_write]
        self.log.events.append(("write", b))
        self.pending += b
        return len(b)

    def flush(self):
        self.log.events.append(("flush",))
        if self.echo:
            e = bytearray(self.pending)
            if self.corrupt_at is not None and self.corrupt_at < len(e):
                e[self.corrupt_at] ^= 0xFF
            self.rx += e
        self.pending = bytearray()

    def any(self):
        return len(self.rx)

    def readinto(self, buf, n=None):
        if n is None:
            n = len(buf)
        n = min(n, len(self.rx), len(buf))
        for i in range(n):
            buf[i] = self.rx[i]
        self.rx = self.rx[n:]
        return n


class DeLog(Log):
    @property
    def de(self):
        for ev in reversed(self.events):
            if ev[0] == "de":
                return ev[1]
        return 0


def rs485(echo=False, **kw):
    import rs485 as rs485_mod

    log = DeLog()
    uart = FakeUart(log, echo=echo, **kw)
    pin = FakePin(log)
    t = [0]

    def ticks():
        return t[0]

    def sleep(ms):
        t[0] += ms

    hd = rs485_mod.HalfDuplex(uart, pin, echo=echo, ticks_ms=ticks, sleep_ms=sleep)
    return hd, log, uart


def test_rs485_de_high_before_the_first_byte_low_only_after_flush():
    hd, log, uart = rs485()
    frame = hdlc_tools.frame(SRV, CLI, 0x73)
    log.events = []
    assert hd.write(memoryview(frame)) == len(frame)
    assert log.events == [("de", 1), ("write", frame), ("flush",), ("de", 0)]
    assert hd.poll_obj is uart


def test_rs485_partial_writes_stay_inside_one_de_window():
    hd, log, uart = rs485(max_write=4)
    frame = bytes(range(10))
    log.events = []
    hd.write(frame)
    assert log.events[0] == ("de", 1) and log.events[-2:] == [("flush",), ("de", 0)]
    assert b"".join(ev[1] for ev in log.events if ev[0] == "write") == frame
    assert [ev[0] for ev in log.events].count("de") == 2


def test_rs485_without_echo_reads_nothing_back():
    hd, log, uart = rs485()
    uart.rx += b"\x7e\xa0"  # a client's bytes waiting: not touched by write()
    hd.write(b"abc")
    buf = bytearray(8)
    assert hd.readinto(buf) == 2 and bytes(buf[:2]) == b"\x7e\xa0"


def test_rs485_echo_of_its_own_frame_is_dropped():
    hd, log, uart = rs485(echo=True)
    frame = bytes(range(100))  # longer than the scratch buffer
    hd.write(frame)
    assert hd.echo_dropped == 100 and hd.echo_errors == 0
    assert log.events[-1] == ("de", 0) or ("de", 0) in log.events
    de_low = log.events.index(("de", 0), 1)
    assert log.events[de_low - 1] == ("flush",)
    uart.rx += b"\x7e\x01"  # then the client's answer
    buf = bytearray(8)
    assert hd.readinto(buf) == 2 and bytes(buf[:2]) == b"\x7e\x01"


def test_rs485_corrupted_echo_is_counted_and_dropped():
    hd, log, uart = rs485(echo=True, corrupt_at=5)
    hd.write(bytes(20))
    assert hd.echo_errors == 1 and hd.echo_dropped == 20
    assert uart.any() == 0


def test_rs485_missing_echo_gives_up_after_the_wait():
    hd, log, uart = rs485(echo=True)
    uart.echo = False  # configured for echo, but the transceiver does not echo
    hd.write(b"abc")
    assert hd.echo_dropped == 0
