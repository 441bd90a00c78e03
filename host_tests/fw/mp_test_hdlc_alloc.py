"""The HDLC per-frame path allocates nothing: proof by micropython.heap_lock() (MicroPython only).

Each test warms its path up once with the heap unlocked (first calls may intern names or size
dictionaries), then runs it again with the heap locked: any allocation raises MemoryError and
the test fails. The results are checked after unlocking. The first test shows that the lock
really is effective in this runtime.
"""

try:
    import micropython
except ImportError:  # CPython: pytest imports this file when it is named on the command line
    import pytest

    pytest.skip("MicroPython only: runs as mp:: items through host_tests/mptest.py",
                allow_module_level=True)

from dlms import fcs, hdlc, hdlc_tools

try:
    from dlms import fcs_viper
except ImportError:
    fcs_viper = None

C16 = b"\x21"
S2 = b"\x02\x23"
LLC_REQ = b"\xe6\xe6\x00"
AARQ_APDU = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")


def locked(fn):
    """Run fn() with the heap locked; return its (small int) result."""
    micropython.heap_lock()
    try:
        return fn()
    finally:
        micropython.heap_unlock()


def i_ctrl(ns, nr, pf=True):
    return (nr << 5) | (0x10 if pf else 0) | (ns << 1)


def rr_ctrl(nr):
    return (nr << 5) | 0x11


class Adapter:
    """Does what the port adapter does with one chunk of received bytes: feed it, answer
    each request with `reply_apdu`, copy every output frame into `out`. (A class, not a
    closure: calling a closure with more than 5 closed-over variables plus arguments
    allocates in MicroPython.)"""

    def __init__(self, link, reply_apdu, out):
        self.link = link
        self.reply_apdu = reply_apdu
        self.out = out
        self.requests = 0
        self.now = 0  # ms, passed to feed()

    def run(self, data, step):
        link = self.link
        out = self.out
        reply_apdu = self.reply_apdu
        pos = 0
        end = len(data)
        total = 0
        while pos < end:
            stop = end if step == 0 else pos + step
            if stop > end:
                stop = end
            pos += link.feed(data, pos, stop, self.now)
            n = link.request_len()
            if n:
                self.requests += 1
                rv = link.reply_view()
                for i in range(len(reply_apdu)):
                    rv[i] = reply_apdu[i]
                link.reply(len(reply_apdu))
            while link.output_len():
                m = link.output_len()
                ov = link.output_view
                for i in range(m):
                    out[total + i] = ov[i]
                total += m
                link.output_done()
        return total


def frames_in(buf, total):
    """Split the collected output into frames (after unlocking; allocates)."""
    res = []
    pos = 0
    while pos < total:
        flen = ((buf[pos + 1] & 7) << 8) | buf[pos + 2]
        res.append(bytes(buf[pos : pos + flen + 2]))
        pos += flen + 2
    return res


def test_heap_lock_is_effective():
    def alloc():
        try:
            bytearray(16)
        except MemoryError:
            return 1
        return 0

    assert locked(alloc) == 1
    assert len(bytearray(16)) == 16  # unlocked again


def test_fcs_does_not_allocate():
    data = bytearray(range(200))
    mv = memoryview(data)

    def run():
        v = fcs.fcs16(data, 0, 200) ^ fcs.fcs16(mv, 3, 150)
        if fcs_viper is not None:
            v ^= fcs_viper.fcs16(data, 0, 200) ^ fcs_viper.fcs16(mv, 3, 150)
        return v

    expect = fcs.fcs16(data, 0, 200) ^ fcs.fcs16(data, 3, 150)
    if fcs_viper is not None:
        expect = 0
    assert run() == expect
    assert locked(run) == expect


def test_request_reply_exchange_does_not_allocate():
    link = hdlc.Link()
    out = bytearray(4096)
    aare = bytes.fromhex("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F"
                         "0400001E1D04C80007")
    ad = Adapter(link, aare, out)
    snrm = hdlc_tools.frame(S2, C16, 0x93)
    frames = [hdlc_tools.frame(S2, C16, i_ctrl(k & 7, k & 7), LLC_REQ + AARQ_APDU)
              for k in range(12)]
    assert ad.run(snrm, 0) > 0 and link.connected
    assert ad.run(frames[0], 0) > 0  # warm-up, unlocked
    last = [0]

    def locked_part():
        for k in range(1, 12):
            last[0] = ad.run(frames[k], 0)
        return ad.requests

    assert locked(locked_part) == 12
    got = frames_in(out, last[0])  # the last exchange's answer
    assert len(got) == 1
    f = hdlc_tools.decode_frame(got[0])
    assert f[5] == i_ctrl(11 & 7, 12 & 7) and f[6] == b"\xe6\xe7\x00" + aare


def test_byte_at_a_time_and_snrm_disc_do_not_allocate():
    link = hdlc.Link()
    out = bytearray(4096)
    ad = Adapter(link, b"\xc4\x01\xc1\x00\x06\x00\x00\x13\x91", out)
    snrm = hdlc_tools.frame(S2, C16, 0x93, hdlc_tools.snrm_info(64, 64, 1, 1, size=2))
    disc = hdlc_tools.frame(S2, C16, 0x53)
    get = bytes.fromhex("C001C1000100002B0100FF0200")
    req = hdlc_tools.frame(S2, C16, i_ctrl(0, 0), LLC_REQ + get)
    for step in (0, 1):  # warm-up
        ad.run(snrm, step)
        ad.run(req, step)
        ad.run(disc, step)
    results = bytearray(3)

    def locked_part():
        results[0] = ad.run(snrm, 1)  # SNRM with parameters -> UA
        results[1] = ad.run(req, 1)
        results[2] = ad.run(disc, 1)
        return ad.requests

    assert locked(locked_part) == 3
    assert results[0] == 33 and results[2] == 10  # UA with 1-byte info lengths; UA
    assert not link.connected


def test_segmented_reply_rr_and_window_do_not_allocate():
    link = hdlc.Link(window_tx=3)
    out = bytearray(8192)
    reply = bytes(range(256)) * 3
    ad = Adapter(link, reply, out)
    snrm = hdlc_tools.frame(S2, C16, 0x93, hdlc_tools.snrm_info(max_info_rx=64, window_rx=3))
    # 771 bytes of LSDU in 64-byte segments: 13 frames, bursts of 3 -> RR N(R) 3, 6, 1, 4
    script = [hdlc_tools.frame(S2, C16, i_ctrl(0, 0), LLC_REQ + b"\x01")]
    for nr in (3, 6, 1, 4):
        script.append(hdlc_tools.frame(S2, C16, rr_ctrl(nr)))
    ad.run(snrm, 0)
    for f in script:  # warm-up
        ad.run(f, 0)
    script2 = [hdlc_tools.frame(S2, C16, i_ctrl(1, 5), LLC_REQ + b"\x01")]
    for nr in (0, 3, 6, 1):
        script2.append(hdlc_tools.frame(S2, C16, rr_ctrl(nr)))
    sizes = [0] * 5

    def locked_part():
        for k in range(5):
            sizes[k] = ad.run(script2[k], 0)
        return ad.requests

    assert locked(locked_part) == 2
    # bursts of 3 frames of 64 + 12 bytes, then the 13th frame with the last 3 bytes
    assert sizes == [228, 228, 228, 228, 15]
    last = hdlc_tools.decode_frame(bytes(out[:15]))
    assert last[5] == i_ctrl(1, 2) and last[6] == reply[-3:] and not last[0]


def test_reassembly_garbage_and_timeouts_do_not_allocate():
    link = hdlc.Link()
    out = bytearray(4096)
    ad = Adapter(link, b"\xc5\x01\xc1\x00", out)
    lsdu = LLC_REQ + bytes(200)
    parts = [
        hdlc_tools.frame(S2, C16, i_ctrl(0, 0), lsdu[:100], True),
        hdlc_tools.frame(S2, C16, i_ctrl(1, 0), lsdu[100:], False),
        hdlc_tools.frame(S2, C16, i_ctrl(2, 1), lsdu[:100], True),
        hdlc_tools.frame(S2, C16, i_ctrl(3, 1), lsdu[100:], False),
    ]
    garbage = b"\x7e\xa3\xff\x01\x7e\xa0\x0a\x02\x23\x21\x93\x00\x7e\x7e\x55" + parts[2][:20]
    ad.run(hdlc_tools.frame(S2, C16, 0x93), 0)
    ad.run(parts[0], 0)
    ad.run(parts[1], 0)
    ad.run(garbage, 0)  # warm-up of the resync path
    link.tick(10000)

    def locked_part():
        ad.now = 20000
        ad.run(garbage, 0)  # ends with a partial frame
        link.feed(parts[2], 0, 10, 21000)  # the partial frame is discarded first
        link.tick(21100)  # inter-octet timeout discards this partial frame too
        ad.now = 22000
        ad.run(parts[2], 0)
        ad.run(garbage, 1)
        link.tick(30000)
        ad.now = 31000
        ad.run(parts[3], 0)
        return ad.requests

    assert locked(locked_part) == 2
    assert link.inter_octet_timeouts >= 4 and link.frames_dropped > 4 and link.connected
