"""Regression tests of the fuzzing campaign (issue 8; docs/robustness.md, host_tests/fuzz),
under CPython and the MicroPython Unix port:

* every crash the campaign found, as the input that triggered it, through the harness that
  found it (host_tests/fuzz/targets.py: the firmware's own decoders, documented outcomes
  only) -- one test per crash, named after what was wrong;
* the committed, minimised corpus of every target replayed through the same harness. The
  fuzzer ran under CPython; these inputs, which reach every branch it found, must also pass
  on the runtime that ships (MicroPython differs in integers, struct, exceptions, stack).
"""

import binascii
import os
import sys

try:
    _HERE = os.path.dirname(os.path.abspath(__file__))
    _FUZZ = os.path.join(os.path.dirname(_HERE), "fuzz")
except AttributeError:  # MicroPython: no os.path; mptest runs from the repository root
    _FUZZ = "host_tests/fuzz"
if _FUZZ not in sys.path:
    sys.path.append(_FUZZ)

import targets  # noqa: E402
from dlms import gcm  # noqa: E402
from dlms import security  # noqa: E402

CORPUS = _FUZZ + "/corpus"


def run_one(target, data):
    """targets.run_one, leaving the firmware modules as it found them: the harness swaps in
    a once-per-process boot self-test and a faster GCM for speed, and the other tests of this
    process (test_gcm, test_security) must see the real ones."""
    saved = (gcm.self_test, security.Gcm)
    try:
        targets.run_one(target, data)
    finally:
        gcm.self_test, security.Gcm = saved


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


# (target, input as hex, what it found); the fix is in the commit that added the entry
CRASHES = [
    # a UI frame whose information field is the LLC alone: hdlc.Link delivered an empty
    # request (request_len() == 0) that no adapter answers, and feed() then took nothing:
    # the meter's read loop spun forever (an I-frame with the LLC alone did the same)
    ("iec21",
     "C70A2A0006031D03E6E6002E0034031D03E6E67405080103A68A0A300408475258042321F1A9247E"
     "00E6E67EA00802232193BD647E00002EE2720100000000000019280039031D03E6E6E600600A5DA1"
     "096085740508A60A0408475258042321F1A9247E0000A00A7E0802232193BD647E00002EE2720100"
     "000000000019",
     "LLC-only UI frame holds the HDLC link (hang)"),
]


def test_crash_inputs_pass():
    for target, data, what in CRASHES:
        try:
            run_one(target, h(data))
        except Exception as e:
            raise AssertionError("%s: %s still fails: %r" % (target, what, e))


def _replay(name):
    d = CORPUS + "/" + name
    names = sorted(os.listdir(d))
    assert names, "empty corpus " + d
    for f in names:
        with open(d + "/" + f, "rb") as fh:
            data = fh.read()
        try:
            run_one(name, data)
        except Exception as e:
            raise AssertionError("%s corpus input %s fails: %r" % (name, f, e))


def test_corpus_hdlc():
    _replay("hdlc")


def test_corpus_wrapper():
    _replay("wrapper")


def test_corpus_axdr():
    _replay("axdr")


def test_corpus_acse():
    _replay("acse")


def test_corpus_xdlms():
    _replay("xdlms")


def test_corpus_security():
    _replay("security")


def test_corpus_assoc_public():
    _replay("assoc_public")


def test_corpus_assoc_reader():
    _replay("assoc_reader")


def test_corpus_assoc_mgmt():
    _replay("assoc_mgmt")


def test_corpus_profile():
    _replay("profile")


def test_corpus_stack_hdlc():
    _replay("stack_hdlc")


def test_corpus_iec21():
    _replay("iec21")


class _Server:
    """What ports.HdlcPort needs of the server: the logical device, the clock, no trace."""

    trace = None

    def __init__(self):
        self.device = targets.device(0)
        self.now = 1000

    def ticks_ms(self):
        return self.now


class _Sink:
    """The UART: takes every byte."""

    def __init__(self):
        self.n = 0

    def write(self, mv):
        self.n += len(mv)
        return len(mv)


class _Line:
    def __init__(self):
        self.inits = 0

    def flush(self):
        pass

    def init(self, **kw):
        self.inits += 1


def _watch(link, what):
    """Make the link's feed() fail after more than 1,000 calls in a row that take nothing:
    the port feeding it would otherwise loop forever."""
    feed = link.feed
    stuck = [0]

    def watched(mv, start, end, now):
        used = feed(mv, start, end, now)
        stuck[0] = 0 if used else stuck[0] + 1
        if stuck[0] > 1000:
            raise AssertionError("%s: the link takes no more bytes, the port would loop "
                                 "forever" % what)
        return used

    link.feed = watched


def _optical_replay(data):
    """One iec21 input through the real optical.OpticalPort (over ports.HdlcPort and the
    meter's association). A link that stops taking bytes would make the port loop forever:
    the link's feed() is watched and more than 1,000 calls in a row without progress fail."""
    import optical

    if len(data) < 2:
        return 0
    server = _Server()
    args, hdlc_settings = targets.hdlc_link_args(data[1] & 15)
    port = optical.OpticalPort(server, _Sink(), "optical", args, _Line(),
                               targets.iec21_settings(data[0], data[1]), b"MMM",
                               b"dlms-mpy 0.1.0", hdlc_settings)
    _watch(port.link, "iec21 input")
    for flags, payload in targets.records(data[2:]):
        server.now += targets.iec21_step(flags)
        payload = targets._hdlc_payload(flags, payload)
        port.feed(memoryview(payload), len(payload), server.now)
        port.tick(server.now)
    return port.stream.n


def test_iec21_corpus_through_the_real_optical_port():
    """The iec21 harness re-creates optical.OpticalPort's wiring around the link (it needs no
    server); its corpus and crash inputs also go through the real adapter with the real
    association, so that a change of the adapter which the harness does not follow still
    meets every input: no exception, no endless loop."""
    saved = (gcm.self_test, security.Gcm)
    inputs = [h(d) for t, d, _w in CRASHES if t == "iec21"]
    d = CORPUS + "/iec21"
    for f in sorted(os.listdir(d)):
        with open(d + "/" + f, "rb") as fh:
            inputs.append(fh.read())
    written = 0
    try:
        for data in inputs:
            written += _optical_replay(data)
    finally:
        gcm.self_test, security.Gcm = saved
    assert written > 1000, written  # the port answered (identifications, UA, responses)


def test_stack_hdlc_corpus_through_the_real_hdlc_port():
    """The same for the stack_hdlc harness, which re-creates ports.HdlcPort's wiring: its
    corpus through the real HdlcPort (settings applied as app.App does), the link watched."""
    import ports

    saved = (gcm.self_test, security.Gcm)
    d = CORPUS + "/stack_hdlc"
    written = 0
    try:
        for f in sorted(os.listdir(d)):
            with open(d + "/" + f, "rb") as fh:
                data = fh.read()
            if not data:
                continue
            server = _Server()
            args, settings = targets.hdlc_link_args(data[0])
            port = ports.HdlcPort(server, _Sink(), "hdlc", args)
            port.settings = settings
            settings.apply(port.link)
            _watch(port.link, f)
            for flags, payload in targets.records(data[1:]):
                server.now += targets.hdlc_step(flags)
                payload = targets._hdlc_payload(flags, payload)
                port.feed(memoryview(payload), len(payload), server.now)
                port.tick(server.now)
            written += port.stream.n
    finally:
        gcm.self_test, security.Gcm = saved
    assert written > 1000, written
