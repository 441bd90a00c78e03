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
