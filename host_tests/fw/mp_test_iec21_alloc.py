"""The IEC 62056-21 mode E opening allocates nothing: proof by micropython.heap_lock()
(MicroPython only). Sign-on, identification, option select, the session watch and the
return to the sign-on, byte by byte and in chunks, run with the heap locked after one
warm-up round."""

try:
    import micropython
except ImportError:  # CPython: pytest imports this file when it is named on the command line
    import pytest

    pytest.skip("MicroPython only: runs as mp:: items through host_tests/mptest.py",
                allow_module_level=True)

from cosem.local_port_setup import LocalPortSettings
from dlms import iec21

SIGN_ON = b"/?12345678!\r\n"
ACK_9600 = b"\x06252\r\n"
GARBAGE = b"\x00\xff/?!/x\x06\r\n/?9!\r\n~\x7e\xa0/?123456789012345678901234567890123!\r\n"


class Link:
    """The link attributes ModeE.watch() reads."""

    def __init__(self):
        self.connected = False
        self.connection_id = 0
        self.frames_rx_ok = 0
        self.inactivity_timeout_ms = 1000


class Session:
    """One complete opening and session; a class (not a closure: see mp_test_hdlc_alloc)."""

    def __init__(self, m, link):
        self.m = m
        self.link = link
        self.now = 0
        self.ident = 0
        self.inputs = (GARBAGE, SIGN_ON)

    def run(self, step):
        m = self.m
        link = self.link
        now = self.now
        for data in self.inputs:
            pos = 0
            end = len(data)
            while pos < end:
                stop = end if step == 0 else pos + step
                if stop > end:
                    stop = end
                pos += m.feed(data, pos, stop, now)
                now += 1
        now += 300
        m.tick(now)
        self.ident = m.output_len()
        m.output_done()
        m.feed(ACK_9600, 0, len(ACK_9600), now)
        m.watch(link, now)
        link.frames_rx_ok += 1  # SNRM
        link.connected = True
        link.connection_id += 1
        m.watch(link, now + 10)
        link.frames_rx_ok += 1  # DISC
        link.connected = False
        link.connection_id += 1
        back = m.watch(link, now + 20)
        m.feed(ACK_9600, 0, len(ACK_9600), now + 30)  # ignored: no identification
        m.feed(SIGN_ON, 0, len(SIGN_ON), now + 40)
        m.tick(now + 100)
        m.output_done()
        m.feed(ACK_9600, 0, len(ACK_9600), now + 200)
        m.watch(link, now + 200)
        back2 = m.watch(link, now + 1300)  # inactivity while not connected
        self.now = now + 2000
        return (1 if back else 0) + (2 if back2 else 0)


def locked(fn, arg):
    micropython.heap_lock()
    try:
        return fn(arg)
    finally:
        micropython.heap_unlock()


def test_heap_lock_is_effective():
    def alloc(_):
        try:
            bytearray(16)
        except MemoryError:
            return 1
        return 0

    assert locked(alloc, 0) == 1


def test_opening_and_session_watch_do_not_allocate():
    m = iec21.ModeE(LocalPortSettings(device_addr=b"12345678"), b"MMM", b"dlms-mpy 0.1.0")
    m.start(0)
    s = Session(m, Link())
    assert s.run(0) == 3  # warm-up, unlocked
    for step in (0, 1, 3):
        assert locked(s.run, step) == 3
        assert s.ident == 23
    assert m.switches == 8 and m.returns == 8 and m.state == iec21.ST_IDLE
