"""`make hil` proven without hardware: the HIL mode of the black-box suite (host_tests/hil.py)
runs a few of the same tests the virtual meter passes -- raw HDLC, gurux-dlms and
dlms-cosem over HDLC -- in a pytest subprocess whose ``--hil-port`` is a virtual meter's
pseudo-terminal, exactly as it would be /dev/ttyUSB0 with a board behind it. TCP tests are
skipped with the reason; the rest pass.

Then the meter is provisioned like a deployed one (the management client writes another
reader password and HDLC device address), and the same tests pass only when the options
say so: addresses and keys really come from the options.
"""

import os
import re
import subprocess

import pytest

import clients as cl
import hil
import running_meter as vm
from conftest import ROOT

SELECTION = [
    "host_tests/test_blackbox_link.py::test_crc_helper_matches_published_vectors",  # offline
    "host_tests/test_blackbox_link.py::test_bare_snrm_gets_ua_with_default_parameters",
    "host_tests/test_blackbox_link.py::test_snrm_address_forms",
    "host_tests/test_blackbox_link.py::test_accepted_aare",
    "host_tests/test_blackbox_link.py::test_get_block_transfer_raw",
    "host_tests/test_interop_gurux.py::test_session",
    "host_tests/test_interop_dlms_cosem.py::test_session",
]
# test_snrm_address_forms x3, test_accepted_aare x2 (HDLC), block transfer (HDLC), the two
# libraries' sessions as client 16 and 32 over HDLC
PASSED = 3 + 2 + 1 + 2 + 2 + 1
# the offline vector test; accepted_aare x2, block transfer, the libraries' sessions x4 (TCP)
SKIPPED = 1 + 2 + 1 + 4


def run_hil(port, *options, tests=SELECTION):
    cmd = [vm.PYTHON, "-m", "pytest", "-q", "-rs", "--hil-port", port]
    cmd += list(options) + list(tests)
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", out)}
    return p.returncode, counts, out


@pytest.fixture(scope="module")
def board_like(tmp_path_factory):
    """A virtual meter standing in for a board: its pty is the "serial port" (TCP stays
    on only so that the test itself can provision it)."""
    m = vm.start_meter(tmp_path_factory.mktemp("hil"))
    try:
        yield m
    finally:
        m.stop()


def test_hil_mode_runs_the_same_tests_on_a_serial_port(board_like):
    rc, counts, out = run_hil(board_like.link, "--hil-baud", "9600")
    assert rc == 0, out[-4000:]
    assert counts.get("passed") == PASSED and counts.get("skipped") == SKIPPED, out[-4000:]
    assert out.count(hil.SKIP_TCP) >= 1 and hil.SKIP_OTHER in out, out[-4000:]


def test_addresses_and_password_come_from_the_options(board_like):
    m = board_like
    with cl.GuruxClient("tcp", m.tcp, cl.PUBLIC) as g:
        ic = g.read("0.0.43.1.0.255", 1, 2)
    with cl.GuruxClient("tcp", m.tcp, cl.MANAGEMENT, invocation_counter=ic + 1) as g:
        from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSHdlcSetup

        reader = GXDLMSAssociationLogicalName("0.0.40.0.2.255")
        reader.secret = b"hil-pw-7"
        g.write_object(reader, 7)
        setup = GXDLMSHdlcSetup("0.0.22.0.0.255")
        g.read_object(setup, 9)
        setup.deviceAddress = 18
        g.write_object(setup, 9)
    tests = ["host_tests/test_blackbox_link.py::test_snrm_address_forms",
             "host_tests/test_blackbox_link.py::test_accepted_aare",
             "host_tests/test_interop_gurux.py::test_session"]
    rc, counts, out = run_hil(m.link, "--hil-server", "1/18", "--hil-password", "hil-pw-7",
                              tests=tests)
    assert rc == 0 and counts.get("passed") == 3 + 2 + 2, out[-4000:]
    # the right address, the default password: the public client gets in, the reader not
    rc, counts, out = run_hil(m.link, "--hil-server", "1/18", tests=tests[1:2])
    assert (counts.get("passed"), counts.get("failed")) == (1, 1), out[-4000:]
    assert "test_accepted_aare[hdlc-reader-lls]" in out, out[-4000:]
    # the default address 1/17: only the 1-byte form (logical device only) still reaches it
    rc, counts, out = run_hil(m.link, tests=tests[:1])
    assert (counts.get("passed"), counts.get("failed")) == (1, 2), out[-4000:]
