"""Hardware in the loop: the black-box and interop suites against a meter on a serial port.

    make hil PORT=/dev/ttyUSB0 [BAUD=9600] [HIL_ARGS="--hil-set-clock ..."]
    .venv/bin/pytest host_tests/test_blackbox_link.py --hil-port /dev/ttyUSB0

With ``--hil-port`` (or $DLMS_HIL_PORT) the ``vmeter`` fixture of host_tests/running_meter.py
does not start a virtual meter: it yields a ``HilMeter`` whose ``serial`` is that port, so
the *same* test code talks HDLC (through pyserial, at ``--hil-baud``) to a real board. The
meter's addresses, the reader's password and the management keys come from options, the
defaults being the development defaults of a fresh meter (design/virtual-meter.md):

    --hil-server L/P          HDLC server address, upper (logical) / lower (physical): 1/17
    --hil-password TEXT       LLS password of the reader (client 32): 12345678
    --hil-system-title HEX    the meter's system title (the board prints it at boot)
    --hil-ek HEX, --hil-ak HEX, --hil-kek HEX   management keys (suite 0)
    --hil-set-clock           first set the meter's clock to the host's (UTC) through the
                              management client: the tests compare the two, and a board
                              without a battery-backed RTC starts with an invalid clock

Skipped in HIL mode, with the reason: everything that needs the TCP wrapper (the meter on a
serial port has none: ``HilMeter.tcp`` skips the test that asks for it), that stops,
restarts or power-cuts the meter, or starts virtual meters of its own (they do not use the
module's ``vmeter``), and offline tests (no meter at all).

host_tests/test_hil_mode.py proves the mode in ``make test``: a few HIL-mode tests run
against a virtual meter's pseudo-terminal given as the port.
"""

import os

import pytest

PORT = None
BAUD = 9600
SERVER_LOGICAL = 1
SERVER_PHYSICAL = 17
PASSWORD = b"12345678"
SET_CLOCK = False
SKIP_TCP = "HIL: the meter on a serial port has no TCP wrapper (IEC 62056-47)"
SKIP_RESTART = ("HIL: a meter on a serial port cannot be stopped, restarted or power-cut by "
                "the test")
SKIP_OTHER = ("HIL: runs only the tests of the module-wide meter (vmeter); this one is "
              "offline or starts virtual meters of its own")

_OPTIONS = (
    # (option, environment variable, help)
    ("--hil-port", "DLMS_HIL_PORT", "run the black-box tests against the meter on this "
                                    "serial port (hardware in the loop) instead of a "
                                    "virtual meter"),
    ("--hil-baud", "DLMS_HIL_BAUD", "baud rate of the HIL serial port (default 9600)"),
    ("--hil-server", "DLMS_HIL_SERVER", "HDLC server address upper/lower (default 1/17)"),
    ("--hil-password", "DLMS_HIL_PASSWORD", "LLS password of client 32 (default 12345678)"),
    ("--hil-system-title", "DLMS_HIL_SYSTEM_TITLE", "the meter's system title, hex"),
    ("--hil-ek", "DLMS_HIL_EK", "global unicast encryption key, hex"),
    ("--hil-ak", "DLMS_HIL_AK", "authentication key, hex"),
    ("--hil-kek", "DLMS_HIL_KEK", "master key (key-encryption key), hex"),
)


def add_options(parser):
    group = parser.getgroup("hil", "hardware in the loop (host_tests/hil.py)")
    for opt, env, text in _OPTIONS:
        group.addoption(opt, default=None, help="%s [$%s]" % (text, env))
    group.addoption("--hil-set-clock", action="store_true", default=False,
                    help="set the meter's clock to the host's before the tests [$DLMS_HIL_SET_"
                         "CLOCK=1]")


def _value(config, opt, env):
    v = config.getoption(opt)
    return v if v is not None else os.environ.get(env) or None


def configure(config):
    """Read the options; point the shared client constants at the meter under test."""
    global PORT, BAUD, SERVER_LOGICAL, SERVER_PHYSICAL, PASSWORD, SET_CLOCK
    v = {opt: _value(config, opt, env) for opt, env, _ in _OPTIONS}
    PORT = v["--hil-port"]
    if v["--hil-baud"]:
        BAUD = int(v["--hil-baud"])
    if v["--hil-server"]:
        upper, _, lower = v["--hil-server"].partition("/")
        SERVER_LOGICAL, SERVER_PHYSICAL = int(upper), int(lower or 17)
    if v["--hil-password"]:
        PASSWORD = v["--hil-password"].encode()
    SET_CLOCK = config.getoption("--hil-set-clock") or os.environ.get(
        "DLMS_HIL_SET_CLOCK") == "1"
    import clients

    clients.SERIAL_BAUD = BAUD
    clients.SERVER_LOGICAL = SERVER_LOGICAL
    clients.SERVER_PHYSICAL = SERVER_PHYSICAL
    clients.LLS_PASSWORD = PASSWORD
    for opt, name in (("--hil-system-title", "SERVER_TITLE"), ("--hil-ek", "MGMT_EK"),
                      ("--hil-ak", "MGMT_AK"), ("--hil-kek", "MGMT_KEK")):
        if v[opt]:
            setattr(clients, name, bytes.fromhex(v[opt]))


def enabled():
    return PORT is not None


def server_address(nbytes, upper=None, lower=None):
    """The meter's HDLC server address in the 1-, 2- or 4-byte form (IEC 62056-46 6.4.2.2:
    7 bits per byte, the last byte's LSB set)."""
    upper = SERVER_LOGICAL if upper is None else upper
    lower = SERVER_PHYSICAL if lower is None else lower
    if nbytes == 1:
        parts = [upper]
    elif nbytes == 2:
        parts = [upper, lower]
    else:
        parts = [upper >> 7, upper & 0x7F, lower >> 7, lower & 0x7F]
    out = bytearray(p << 1 for p in parts)
    out[-1] |= 1
    return bytes(out)


def open_serial(path):
    """pyserial at the HIL baud rate, 8N1, raw; non-blocking file descriptor."""
    import serial

    s = serial.Serial(path, baudrate=BAUD, bytesize=8, parity="N", stopbits=1, timeout=0)
    os.set_blocking(s.fileno(), False)
    return s


class HilMeter:
    """What the ``vmeter`` fixture yields in HIL mode: the port, no TCP, no process."""

    def __init__(self, port):
        self.serial = port
        self.link = port
        self.state = None
        self.ready = {"event": "hil", "serial": port, "tcp": None}
        self.returncode = 0
        self.proc = None

    @property
    def tcp(self):
        pytest.skip(SKIP_TCP)

    def alive(self):
        return True

    def stop(self, *args, **kwargs):
        pytest.skip(SKIP_RESTART)

    kill = stop

    def stderr(self):
        return ""


def set_clock(port):
    """The meter's clock := the host's UTC, through the management client (HLS-GMAC) over
    HDLC, with the invocation counter the public client reads first."""
    import datetime

    from gurux_dlms import GXDateTime

    import clients as cl

    with cl.GuruxClient("hdlc", port, cl.PUBLIC) as g:
        ic = g.read("0.0.43.1.0.255", 1, 2)
    with cl.GuruxClient("hdlc", port, cl.MANAGEMENT, invocation_counter=ic + 1) as g:
        clk = g.make_object("0.0.1.0.0.255", 8)
        clk.time = GXDateTime(datetime.datetime.now(datetime.timezone.utc))
        g.write_object(clk, 2)


def meter():
    """The HilMeter for the session (the clock set once, if asked)."""
    global SET_CLOCK
    if SET_CLOCK:
        SET_CLOCK = False
        set_clock(PORT)
    return HilMeter(PORT)


def skip_reason(item):
    """Why an item does not run in HIL mode (None: it runs)."""
    names = getattr(item, "fixturenames", ())
    if "vmeter" not in names:
        return SKIP_OTHER
    if "fresh_meter" in names:
        return SKIP_RESTART
    return None
