"""IEC 62056-21 mode E opening (dlms.iec21) and the optical port adapter
(optical.OpticalPort). CPython and MicroPython.

The expected bytes are written from IEC 62056-21:2002 clause 6.3 (request, identification
with the enhanced identification "\\2" for mode E, acknowledgement/option select), not taken
from the module under test.
"""

from cosem.local_port_setup import LocalPortSettings
from dlms import hdlc_tools, iec21

ACK = b"\x06"
CRLF = b"\r\n"
SIGN_ON = b"/?!\r\n"
ACK_9600 = ACK + b"252" + CRLF  # protocol control 2 (HDLC), Z = 5 (9600), mode control 2


def mode(**kw):
    s = LocalPortSettings(**kw)
    m = iec21.ModeE(s, b"MMM", b"TEST-1")
    m.start(0)
    return m


def feed(m, data, now):
    """Feed everything (stops only at a line change); returns the bytes used."""
    return m.feed(data, 0, len(data), now)


def take(m):
    n = m.output_len()
    out = bytes(m.output_view[:n])
    m.output_done()
    return out


def line(m):
    return (m.baud, m.bits, m.parity, m.stop)


def signed_on(m, now=0, request=SIGN_ON):
    assert feed(m, request, now) == len(request)
    m.tick(now + 200)
    return take(m)


# ------------------------------------------------------------------ sign-on, identification

def test_initial_state_is_sign_on_at_300_7e1():
    m = mode()
    assert m.state == iec21.ST_IDLE
    assert line(m) == (300, 7, 0, 1)


def test_sign_on_without_address_gets_the_identification_after_the_reaction_time():
    m = mode()  # response_time 0: 20 ms
    assert feed(m, SIGN_ON, 1000) == 5
    assert m.output_len() == 0  # not before the minimum reaction time
    m.tick(1019)
    assert m.output_len() == 0
    m.tick(1020)
    # "/" XXX (third letter lower case: 20 ms) Z=5 (9600) "\2" (mode E: HDLC) ident CR LF
    assert take(m) == b"/MMm5\\2TEST-1\r\n"
    assert take(m) == b""
    assert m.state == iec21.ST_ACK_WAIT
    assert line(m) == (300, 7, 0, 1)  # the option select comes at 300 baud too


def test_identification_bytes_exactly():
    m = mode()
    ident = signed_on(m)
    assert ident == bytes([0x2F, 0x4D, 0x4D, 0x6D, 0x35, 0x5C, 0x32]) + b"TEST-1" + bytes(
        [0x0D, 0x0A])


def test_200_ms_reaction_time_sends_the_third_letter_in_upper_case():
    m = mode(response_time=1)
    feed(m, SIGN_ON, 0)
    m.tick(199)
    assert m.output_len() == 0
    m.tick(200)
    assert take(m) == b"/MMM5\\2TEST-1\r\n"


def test_proposed_baud_rate_character_follows_prop_baud():
    for prop, z in ((0, b"0"), (3, b"3"), (6, b"6")):
        m = mode(prop_baud=prop)
        assert signed_on(m) == b"/MMm" + z + b"\\2TEST-1\r\n"


def test_sign_on_with_the_device_address():
    m = mode(device_addr=b"12345678")
    assert signed_on(m, request=b"/?12345678!\r\n") == b"/MMm5\\2TEST-1\r\n"
    m = mode(device_addr=b"12345678")
    assert signed_on(m) == b"/MMm5\\2TEST-1\r\n"  # no address: every meter answers
    assert m.requests == 1


def test_wrong_device_address_is_ignored():
    m = mode(device_addr=b"12345678")
    for req in (b"/?12345679!\r\n", b"/?1234567!\r\n", b"/?123456789!\r\n",
                b"/?012345678!\r\n"):
        assert signed_on(m, request=req) == b"", req
        assert m.state == iec21.ST_IDLE
    assert m.ignored == 4 and m.requests == 0
    assert signed_on(m, request=b"/?12345678!\r\n") != b""  # and the right one still works


def test_meter_without_address_answers_any_address():
    m = mode(device_addr=b"")
    assert signed_on(m, request=b"/?ABC 12!\r\n") == b"/MMm5\\2TEST-1\r\n"


def test_parity_bit_on_an_8_bit_line_is_ignored():
    m = mode()
    even = bytes(c | 0x80 if bin(c).count("1") % 2 else c for c in SIGN_ON)  # 7E1 by hand
    assert signed_on(m, request=even) == b"/MMm5\\2TEST-1\r\n"


def test_request_split_into_single_bytes():
    m = mode()
    for i, c in enumerate(SIGN_ON):
        assert m.feed(SIGN_ON, i, i + 1, 10 * i) == 1
    m.tick(100)
    assert take(m) == b"/MMm5\\2TEST-1\r\n"


def test_identification_text_is_limited_to_16_characters_with_the_escape():
    s = LocalPortSettings()
    m = iec21.ModeE(s, b"ABC", b"0123456789ABCDEFGH")
    m.start(0)
    out = signed_on(m)
    assert out == b"/ABc5\\20123456789ABCD\r\n"
    assert len(out[5:-2]) == 16


def test_bad_identity_is_refused_at_construction():
    s = LocalPortSettings()
    for maker, ident in ((b"MM", b""), (b"M1M", b""), (b"MMM", b"a/b"), (b"MMM", b"a!b"),
                         (b"MMM", b"\x01")):
        try:
            iec21.ModeE(s, maker, ident)
        except ValueError:
            continue
        raise AssertionError((maker, ident))


# ------------------------------------------------------------------ option select

def test_ack_switches_to_the_agreed_rate_8n1_and_hdlc():
    m = mode()
    signed_on(m)
    gen = m.line_gen
    data = ACK_9600 + b"\x7e\xa0"  # an HDLC frame may follow on the same write (pty)
    used = feed(m, data, 300)
    assert used == len(ACK_9600)  # stops at the line change: the rest is HDLC
    assert m.state == iec21.ST_HDLC
    assert line(m) == (9600, 8, None, 1)
    assert m.line_gen == gen + 1
    assert m.switches == 1
    assert feed(m, data[used:], 301) == 0  # HDLC bytes are not the opening's


def test_ack_with_a_lower_rate_is_accepted_a_higher_one_refused():
    m = mode()
    signed_on(m)
    feed(m, ACK + b"232" + CRLF, 300)
    assert m.state == iec21.ST_HDLC and m.baud == 2400
    m = mode()
    signed_on(m)
    feed(m, ACK + b"262" + CRLF, 300)  # 19200 > proposed 9600
    assert m.state == iec21.ST_IDLE and line(m) == (300, 7, 0, 1)
    assert m.rejected == 1


def test_ack_for_data_readout_or_programming_mode_is_not_taken():
    for opt in (b"050", b"051", b"150", b"252"[:2] + b"0", b"25X", b"2:2"):
        m = mode()
        signed_on(m)
        feed(m, ACK + opt + CRLF, 300)
        assert m.state == iec21.ST_IDLE, opt
        assert line(m) == (300, 7, 0, 1)


def test_ack_without_identification_is_ignored():
    m = mode()
    feed(m, ACK_9600, 0)
    assert m.state == iec21.ST_IDLE and m.baud == 300
    feed(m, SIGN_ON, 10)  # not yet answered (reaction time)
    feed(m, ACK_9600, 12)
    assert m.state != iec21.ST_HDLC


def test_option_select_must_come_in_time():
    m = mode()
    signed_on(m, 0)  # identification out at 200 ms: 15 characters at 300 baud = 500 ms
    m.tick(200 + 500 + iec21.ACK_WAIT_MS + 1)
    assert m.state == iec21.ST_IDLE and m.timeouts == 1
    feed(m, ACK_9600, 3000)
    assert m.state == iec21.ST_IDLE and m.baud == 300
    m = mode()
    signed_on(m, 0)
    feed(m, ACK_9600, 200 + 500 + iec21.ACK_WAIT_MS - 10)
    assert m.state == iec21.ST_HDLC


def test_partial_message_times_out_between_characters():
    m = mode()
    feed(m, b"/?12", 0)
    feed(m, b"34!\r\n", iec21.CHAR_TIMEOUT_MS + 1)
    m.tick(3000)
    assert take(m) == b""
    assert m.timeouts == 1
    feed(m, b"/?", 4000)
    feed(m, b"!\r\n", 4000 + iec21.CHAR_TIMEOUT_MS)  # just in time
    m.tick(4000 + iec21.CHAR_TIMEOUT_MS + 20)
    assert take(m) != b""


def test_new_request_restarts_at_any_point():
    m = mode()
    feed(m, b"/?12/?!\r\n", 0)
    m.tick(20)
    assert take(m) == b"/MMm5\\2TEST-1\r\n"
    feed(m, SIGN_ON, 100)  # waiting for the ACK: a new sign-on answers again
    m.tick(120)
    assert take(m) == b"/MMm5\\2TEST-1\r\n"
    feed(m, SIGN_ON, 200)
    feed(m, SIGN_ON, 210)  # during the reaction time: the last one counts
    m.tick(229)
    assert m.output_len() == 0
    m.tick(230)
    assert take(m) != b""


def test_ticks_wrap_around():
    m = mode()
    t = (1 << 30) - 5
    feed(m, SIGN_ON, t)
    m.tick((t + 25) & 0x3FFFFFFF)
    assert take(m) == b"/MMm5\\2TEST-1\r\n"


# ------------------------------------------------------------------ garbage

def _prng(seed):
    x = seed
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        yield x >> 8


def test_garbage_never_raises_and_a_sign_on_still_works():
    m = mode(device_addr=b"42")
    rnd = _prng(7)
    alphabet = b"/?!\r\n\x06252\x7e\x00\xff 42AZaz"
    now = 0
    for _ in range(300):
        n = next(rnd) % 40
        chunk = bytes(alphabet[next(rnd) % len(alphabet)] if next(rnd) % 3 else next(rnd) & 0xFF
                      for _ in range(n))
        now += next(rnd) % 50
        pos = 0
        while pos < len(chunk):
            k = m.feed(chunk, pos, len(chunk), now)
            if k == 0:  # HDLC (a random ACK got through): the session ends, sign-on again
                assert m.state == iec21.ST_HDLC
                m.start(now)
                continue
            pos += k
        m.tick(now)
        m.output_done()
        assert m.output_len() <= 23
    m.start(now)
    now += 5000
    assert signed_on(m, now, b"/?42!\r\n") == b"/MMm5\\2TEST-1\r\n"


def test_overlong_address_is_dropped():
    m = mode(device_addr=b"")
    req = b"/?" + b"1" * 33 + b"!\r\n"
    assert signed_on(m, request=req) == b""
    assert signed_on(m, request=b"/?" + b"1" * 32 + b"!\r\n") != b""


# ------------------------------------------------------------------ HDLC session watch

class FakeLink:
    def __init__(self):
        self.connected = False
        self.connection_id = 0
        self.frames_rx_ok = 0
        self.inactivity_timeout_ms = 120000

    def frame(self):
        self.frames_rx_ok += 1

    def connect(self):
        self.frame()
        self.connected = True
        self.connection_id += 1

    def disconnect(self, frame=True):
        if frame:
            self.frame()
        self.connected = False
        self.connection_id += 1


def in_hdlc(**kw):
    m = mode(**kw)
    signed_on(m)
    feed(m, ACK_9600, 300)
    assert m.state == iec21.ST_HDLC
    return m


def test_disc_ends_the_session_and_returns_to_sign_on():
    m = in_hdlc()
    link = FakeLink()
    assert not m.watch(link, 300)  # baseline
    link.connect()  # SNRM -> UA
    assert not m.watch(link, 400)
    for t in range(500, 5000, 500):
        link.frame()  # I-frames
        assert not m.watch(link, t)
    link.disconnect()  # DISC -> UA
    assert m.watch(link, 5100)
    assert m.state == iec21.ST_IDLE and line(m) == (300, 7, 0, 1)
    assert m.returns == 1
    assert signed_on(m, 6000) == b"/MMm5\\2TEST-1\r\n"  # a new sign-on works


def test_inactivity_timeout_returns_to_sign_on():
    m = in_hdlc()
    link = FakeLink()
    link.inactivity_timeout_ms = 1000
    m.watch(link, 300)
    assert not m.watch(link, 1300)  # no SNRM yet
    assert m.watch(link, 1301)  # no frame for the inactivity time-out: back
    assert m.state == iec21.ST_IDLE
    # connected, then the link's own inactivity time-out disconnects it
    m = in_hdlc()  # the option select came at 300 ms
    m.watch(link, 300)
    link.connect()
    assert not m.watch(link, 400)
    assert not m.watch(link, 5000)  # connected: the link's own timer decides
    link.disconnect(frame=False)
    assert m.watch(link, 5001)


def test_frames_keep_a_disconnected_session_alive_and_zero_means_never():
    m = in_hdlc()
    link = FakeLink()
    link.inactivity_timeout_ms = 1000
    m.watch(link, 300)
    for t in range(1200, 5000, 900):
        link.frame()  # e.g. DISC in NDM answered DM, or UI frames
        assert not m.watch(link, t)
    link.inactivity_timeout_ms = 0
    assert not m.watch(link, 100000)
    assert m.state == iec21.ST_HDLC


def test_direct_hdlc_frame_during_sign_on():
    m = mode()
    link = FakeLink()
    m.direct(50)
    assert m.state == iec21.ST_HDLC and line(m) == (300, 7, 0, 1)  # no line change
    assert m.direct_frames == 1
    link.connect()
    m.watch(link, 50)
    link.disconnect()
    assert m.watch(link, 60)
    assert m.state == iec21.ST_IDLE


def test_port_configured_for_direct_hdlc():
    s = LocalPortSettings(default_mode=1)
    m = iec21.ModeE(s, b"MMM", b"X")
    m.hdlc_speed = 6
    m.start(0)
    assert m.state == iec21.ST_HDLC and line(m) == (19200, 8, None, 1)
    assert feed(m, SIGN_ON, 10) == 0
    link = FakeLink()
    m.watch(link, 10)
    link.connect()
    m.watch(link, 20)
    link.disconnect()
    m.watch(link, 30)
    assert m.state == iec21.ST_HDLC and m.baud == 19200  # stays in HDLC
    s.default_mode = 0  # written by a client: the next session starts with the sign-on
    link.connect()
    m.watch(link, 40)
    link.disconnect()
    assert m.watch(link, 50)
    assert m.state == iec21.ST_IDLE and line(m) == (300, 7, 0, 1)


def test_settings_written_apply_to_the_next_sign_on():
    s = LocalPortSettings()
    m = iec21.ModeE(s, b"MMM", b"X")
    m.start(0)
    s.prop_baud = 6
    s.device_addr = b"7"
    s.response_time = 1
    assert signed_on(m, 0, b"/?7!\r\n") == b"/MMM6\\2X\r\n"
    s.default_baud = 5
    feed(m, ACK + b"262" + CRLF, 300)
    assert m.baud == 19200
    link = FakeLink()
    m.watch(link, 300)
    link.connect()
    m.watch(link, 310)
    link.disconnect()
    m.watch(link, 320)
    assert line(m) == (9600, 7, 0, 1)  # sign-on at the default_baud now written


# ------------------------------------------------------------------ the optical port adapter

class Log:
    def __init__(self):
        self.events = []


class FakeStream:
    """The UART's data side: what the meter writes."""

    def __init__(self, log):
        self.log = log

    def write(self, b):
        self.log.events.append(("tx", bytes(b)))
        return len(b)


class FakeLine:
    """The UART's control side: flush() and init() in the order called."""

    def __init__(self, log):
        self.log = log

    def flush(self):
        self.log.events.append(("flush",))

    def init(self, baudrate, bits, parity, stop):
        self.log.events.append(("init", baudrate, bits, parity, stop))


class FakeServer:
    trace = None

    def __init__(self):
        from cosem import objects
        from meter.clock import Clock

        class RTC:
            def datetime(self):
                return (2024, 1, 15, 0, 12, 30, 45, 0)

        self.device = objects.build(Clock(RTC()), {"name": b"MMM0000012345678",
                                                   "serial": b"12345678",
                                                   "firmware": b"fw 1"})
        self.now = 0

    def ticks_ms(self):
        return self.now


SRV = hdlc_tools.encode_address(hdlc_tools.server_address(1, 17, 2), 2)
CLI = b"\x21"
AARQ_PUBLIC = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
GET_LDN = bytes([0xC0, 0x01, 0xC1, 0, 1, 0, 0, 42, 0, 0, 255, 2, 0])


def optical(local=None):
    import optical as optical_mod

    log = Log()
    server = FakeServer()
    local = local or LocalPortSettings(device_addr=b"12345678")
    port = optical_mod.OpticalPort(server, FakeStream(log), "opt", {"lower": 17}, FakeLine(log),
                                   local, b"MMM", b"fw 1")
    return port, log, server


def run(port, data, now):
    mv = memoryview(bytearray(data))
    port.feed(mv, len(data), now)


def frames(log, since=0):
    out = []
    for ev in log.events[since:]:
        if ev[0] == "tx" and ev[1][:1] == b"\x7e":
            out.append(hdlc_tools.decode_frame(ev[1]))
    return out


def test_optical_port_mode_e_session_byte_exchange():
    port, log, server = optical()
    assert log.events == [("flush",), ("init", 300, 7, 0, 1)]  # sign-on line at start
    run(port, b"/?12345678!\r\n", 0)
    port.tick(10)
    assert ("tx", b"/MMm5\\2fw 1\r\n") not in log.events  # 20 ms reaction time
    port.tick(20)
    assert log.events[-1] == ("tx", b"/MMm5\\2fw 1\r\n")
    n = len(log.events)
    snrm = hdlc_tools.frame(SRV, CLI, 0x93)
    run(port, ACK_9600 + snrm, 300)  # the ACK and the SNRM in one read (a pty allows it)
    assert log.events[n] == ("flush",)
    assert log.events[n + 1] == ("init", 9600, 8, None, 1)
    ua = frames(log, n)
    assert len(ua) == 1 and ua[0][5] == 0x73  # UA
    i_aarq = hdlc_tools.frame(SRV, CLI, 0x10, b"\xe6\xe6\x00" + AARQ_PUBLIC)
    run(port, i_aarq, 400)
    aare = frames(log, n)[-1]
    assert aare[6][3] == 0x61  # AARE after the LLC
    i_get = hdlc_tools.frame(SRV, CLI, 0x32, b"\xe6\xe6\x00" + GET_LDN)
    run(port, i_get, 500)
    rsp = frames(log, n)[-1][6]
    assert rsp[3:7] == bytes([0xC4, 0x01, 0xC1, 0x00])
    assert rsp[7:] == b"\x09\x10MMM0000012345678"
    m = len(log.events)
    run(port, hdlc_tools.frame(SRV, CLI, 0x53), 600)  # DISC
    # the UA goes out at 9600, then the UART drains and returns to 300 7E1
    assert log.events[m][0] == "tx" and hdlc_tools.decode_frame(log.events[m][1])[5] == 0x73
    assert log.events[m + 1:] == [("flush",), ("init", 300, 7, 0, 1)]
    assert port.mode.state == iec21.ST_IDLE
    run(port, SIGN_ON, 700)  # a new sign-on works
    port.tick(720)
    assert log.events[-1] == ("tx", b"/MMm5\\2fw 1\r\n")


def test_optical_port_inactivity_returns_to_sign_on():
    port, log, server = optical()
    port.link.inactivity_timeout_ms = 2000
    run(port, SIGN_ON, 0)
    port.tick(20)
    run(port, ACK_9600, 100)
    assert port.mode.baud == 9600
    port.tick(2000)
    assert port.mode.baud == 9600
    port.tick(2101)
    assert port.mode.state == iec21.ST_IDLE
    assert log.events[-2:] == [("flush",), ("init", 300, 7, 0, 1)]


def test_optical_port_serves_hdlc_sent_directly():
    port, log, server = optical()
    run(port, hdlc_tools.frame(SRV, CLI, 0x93), 0)  # SNRM without the opening
    ua = frames(log)
    assert len(ua) == 1 and ua[0][5] == 0x73
    assert port.mode.state == iec21.ST_HDLC and port.mode.baud == 300
    run(port, hdlc_tools.frame(SRV, CLI, 0x53), 100)
    assert port.mode.state == iec21.ST_IDLE
    assert log.events[-1][0] == "tx"  # no line change: it never changed
    run(port, SIGN_ON, 200)
    port.tick(220)
    assert log.events[-1] == ("tx", b"/MMm5\\2fw 1\r\n")


def test_optical_port_garbage_never_raises():
    port, log, server = optical()
    rnd = _prng(3)
    alphabet = b"/?!\r\n\x06252\x7e\xa0\x07\x03\x21\x93\x53 12345678"
    now = 0
    for _ in range(300):
        n = next(rnd) % 48
        chunk = bytes(alphabet[next(rnd) % len(alphabet)] if next(rnd) % 4 else next(rnd) & 0xFF
                      for _ in range(n))
        now += next(rnd) % 400
        run(port, chunk, now)
        port.tick(now)
    port.link.reset()
    port.tick(now + 200000)  # any session ends by inactivity
    port.tick(now + 400000)
    assert port.mode.state == iec21.ST_IDLE
    now += 500000
    run(port, SIGN_ON, now)
    port.tick(now + 20)
    assert log.events[-1] == ("tx", b"/MMm5\\2fw 1\r\n")
