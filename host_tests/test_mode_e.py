"""Black-box: the optical port's IEC 62056-21 mode E opening on the virtual meter's pty
(``--optical``), with a client written from IEC 62056-21:2002 clause 6.3 and raw HDLC
(the helpers of test_blackbox_link).

The exchange (bytes in ASCII unless hex)::

    client -> /?!CRLF                        (request, no device address)   "300 baud 7E1"
    meter  -> /XXXZ\\2<ident>CRLF             (identification, mode E: "\\2")
    client -> 06 '2' Z '2' CR LF             (option select: HDLC, rate Z, binary mode)
              both at rate Z, 8N1: SNRM/UA, AARQ/AARE, GET ..., DISC/UA
              the meter is back at 300 baud 7E1, waiting for a sign-on

A pty has no baud rate: the client sets its side's speed for form's sake; the meter logs
each change of its line settings on stderr ("meter: optical port pty: 9600 baud 8N1"), which
the test reads. The default meter (no --optical) is checked to still serve HDLC directly.
"""

import os
import re
import termios
import time

import pytest

import running_meter as vm
from test_blackbox_link import (AARQ_PUBLIC, CLIENT_PUBLIC, DISC, GET_LDN, SNRM, SRV_2, UA,
                                Hdlc, LLC_REQ, aare_result, hdlc_frame, i_ctrl)

ACK = b"\x06"
IDENT = re.compile(rb"^/([A-Z]{2}[A-Za-z])([0-9])\\2([ -~]{0,14})\r\n$")


@pytest.fixture(scope="module")
def optical_meter(tmp_path_factory):
    yield from vm._module_meter(tmp_path_factory, extra_args=("--optical",))


def set_speed(fd, speed):
    """The client's side of the line, for form's sake (a pty ignores it)."""
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def read_line(pty, timeout=3.0):
    """Bytes up to and including CR LF (IEC 62056-21 messages end so)."""
    deadline = time.monotonic() + timeout
    while b"\r\n" not in pty.buf:
        if not pty._fill(deadline - time.monotonic()) and time.monotonic() >= deadline:
            raise AssertionError("no CR LF within %.1f s; got %r" % (timeout, bytes(pty.buf)))
    i = pty.buf.index(b"\r\n") + 2
    line = bytes(pty.buf[:i])
    del pty.buf[:i]
    return line


def wait_stderr(meter, text, start=0, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        err = meter.stderr()
        if text in err[start:]:
            return err.index(text, start) + len(text)
        time.sleep(0.02)
    raise AssertionError("%r not on the meter's stderr:\n%s" % (text, meter.stderr()[-2000:]))


def sign_on(h, request=b"/?!\r\n"):
    """Request -> identification; returns (identification, seconds until it came)."""
    set_speed(h.pty.fd, termios.B300)
    h.pty.drain()
    t0 = time.monotonic()
    h.pty.write(request)
    ident = read_line(h.pty)
    return ident, time.monotonic() - t0


def option_select(h, z=b"5"):
    h.pty.write(ACK + b"2" + z + b"2\r\n")  # HDLC protocol procedure, rate Z, binary mode
    set_speed(h.pty.fd, {b"5": termios.B9600, b"4": termios.B4800}[z])


def test_mode_e_opening_then_hdlc_then_disc_and_a_new_sign_on(optical_meter):
    m = optical_meter
    mark = wait_stderr(m, "meter: optical port pty: 300 baud 7E1")  # the start state
    h = Hdlc(m.serial, client=CLIENT_PUBLIC, server=SRV_2)
    try:
        ident, dt = sign_on(h)
        g = IDENT.match(ident)
        assert g, "identification %r" % ident
        maker, z, text = g.groups()
        assert maker == b"MMm"  # FLAG id of the logical device name; lower case: 20 ms
        assert z == b"5"  # proposed 9600 baud (Local port setup prop_baud)
        assert text.startswith(b"dlms-mpy")
        assert dt >= 0.015, "answered %.3f s after the request: below the reaction time" % dt
        option_select(h, z)
        mark = wait_stderr(m, "meter: optical port pty: 9600 baud 8N1", mark)
        # HDLC at the agreed rate
        f = h.snrm()
        assert f.ctrl == UA
        result, _src, diag, _ui = aare_result(h.request(AARQ_PUBLIC))
        assert (result, diag) == (0, 0)
        rsp = h.request(GET_LDN)
        assert rsp[:4] == bytes([0xC4, 0x01, 0xC1, 0x00])
        assert rsp[4:] == b"\x09\x10MMM0000012345678"
        f = h.disc()
        assert f.ctrl == UA
        set_speed(h.pty.fd, termios.B300)
        mark = wait_stderr(m, "meter: optical port pty: 300 baud 7E1", mark)
        # a new sign-on works, with the device address this time (the serial number)
        ident2, _ = sign_on(h, b"/?12345678!\r\n")
        assert ident2 == ident
        option_select(h, b"4")  # a lower rate than proposed is accepted
        wait_stderr(m, "meter: optical port pty: 4800 baud 8N1", mark)
        assert h.snrm().ctrl == UA
        assert h.disc().ctrl == UA
    finally:
        h.pty.close()


def test_wrong_device_address_and_hdlc_before_the_ack_are_ignored(optical_meter):
    h = Hdlc(optical_meter.serial)
    try:
        set_speed(h.pty.fd, termios.B300)
        h.pty.write(b"/?87654321!\r\n")  # another meter's address
        h.pty.expect_silence(0.5)
        ident, _ = sign_on(h)
        assert IDENT.match(ident)
        h.pty.write(ACK + b"050\r\n")  # data readout (mode C): not provided, ignored
        h.pty.expect_silence(0.5)
        ident, _ = sign_on(h)  # still at the sign-on
        assert IDENT.match(ident)
        h.pty.write(ACK + b"262\r\n")  # 19200 > proposed 9600: refused
        h.pty.expect_silence(0.5)
        assert IDENT.match(sign_on(h)[0])
    finally:
        h.pty.close()


def test_garbage_on_the_optical_port_then_sign_on(optical_meter):
    h = Hdlc(optical_meter.serial)
    try:
        h.pty.write(bytes(range(256)) + b"/?/?!!\r\r\n" + os.urandom(300).replace(b"\x7e", b""))
        time.sleep(0.2)
        h.pty.drain()
        ident, _ = sign_on(h)
        assert IDENT.match(ident)
        option_select(h)
        assert h.snrm().ctrl == UA
        assert h.disc().ctrl == UA
        assert optical_meter.alive()
    finally:
        h.pty.close()


def test_hdlc_without_the_opening_is_served_too(optical_meter):
    """A client that sends HDLC straight away (no sign-on) on the optical port: served at
    the current line settings until DISC, then the sign-on works again."""
    h = Hdlc(optical_meter.serial)
    try:
        assert h.snrm().ctrl == UA
        h.send(i_ctrl(0, 0), LLC_REQ + AARQ_PUBLIC)
        assert h.recv().is_i
        assert h.disc().ctrl == UA
        assert IDENT.match(sign_on(h)[0])
    finally:
        h.pty.close()


def test_default_meter_is_direct_hdlc(tmp_path):
    m = vm.start_meter(tmp_path, tcp="off")
    try:
        h = Hdlc(m.serial)
        try:
            h.pty.write(b"/?!\r\n")
            h.pty.expect_silence(0.5)  # no mode E on the default port
            assert h.snrm().ctrl == UA
            result, _src, diag, _ui = aare_result(h.request(AARQ_PUBLIC))
            assert (result, diag) == (0, 0)
            assert h.disc().ctrl == UA
            h.pty.write(hdlc_frame(SRV_2, CLIENT_PUBLIC, SNRM))
            assert h.pty.recv_frame().ctrl == UA
            h.pty.write(hdlc_frame(SRV_2, CLIENT_PUBLIC, DISC))
            assert h.pty.recv_frame().ctrl == UA
        finally:
            h.pty.close()
        assert "optical port" not in m.stderr()
    finally:
        m.stop()
