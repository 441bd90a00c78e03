"""Start and stop the virtual meter (tools/virtual_meter.py) from host tests.

The contract is design/virtual-meter.md: the launcher prints exactly one JSON line on
stdout when both transports accept traffic, the ``pid`` in it answers SIGTERM with a clean
shutdown (exit 0), SIGKILL is a power cut.

    m = start_meter(tmp_path)            # TCP on a free port, HDLC on a fresh pty link
    ... m.tcp, m.serial, m.link, m.pid, m.state, m.proc, m.ready ...
    m.stop()                             # SIGTERM, wait, assert exit status 0

pytest fixtures (module scope: one meter process per test module) are at the bottom.
(Named running_meter, not meter: ``firmware/meter`` is the firmware's metering package.)
"""

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAUNCHER = os.path.join(ROOT, "tools", "virtual_meter.py")
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
PYTHON = VENV_PY if os.path.exists(VENV_PY) else sys.executable

READY_TIMEOUT = 30.0


class MeterStartError(AssertionError):
    pass


class Meter:
    """A running virtual meter started by start_meter()."""

    def __init__(self, proc, ready, link, state_dir, stderr_path, ready_delay):
        self.proc = proc
        self.ready = ready
        self.tcp = ready.get("tcp")
        self.serial = ready.get("serial")
        self.pid = ready.get("pid")
        self.state = ready.get("state")
        self.link = link
        self.state_dir = state_dir
        self.stderr_path = stderr_path
        self.ready_delay = ready_delay  # seconds from spawn to the ready line
        self.returncode = None
        self.extra_stdout = b""

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def _drain_stdout(self):
        try:
            rest = self.proc.stdout.read() or b""
        except (OSError, ValueError):
            rest = b""
        self.extra_stdout += rest
        try:
            self.proc.stdout.close()
        except OSError:
            pass

    def stop(self, timeout=10.0, check=True):
        """SIGTERM to the ready line's pid, wait; with check, assert exit status 0."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._drain_stdout()
                raise AssertionError(
                    "meter did not exit within %.0f s of SIGTERM; stderr:\n%s"
                    % (timeout, self.stderr()[-3000:]))
        self.returncode = self.proc.returncode
        self._drain_stdout()
        if check:
            assert self.returncode == 0, "meter exited with %r after SIGTERM; stderr:\n%s" % (
                self.returncode, self.stderr()[-3000:])
        return self.returncode

    def kill(self):
        """SIGKILL: a power cut."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            if self.pid != self.proc.pid:
                self.proc.kill()
            self.proc.wait(10)
        self.returncode = self.proc.returncode
        self._drain_stdout()
        return self.returncode


def start_meter(tmp_path, heap=None, extra_args=(), tcp="0", serial_link=None, state=None,
                timeout=READY_TIMEOUT, check_ready=True):
    """Start tools/virtual_meter.py and wait for its ready line.

    tmp_path: a directory for this meter (state dir, pty link, stderr log).
    serial_link: path of the pty symlink (default tmp_path/meter.tty; "off" disables).
    Returns a Meter; raises MeterStartError (with the meter's stderr) if no ready line comes.
    """
    tmp_path = str(tmp_path)
    os.makedirs(tmp_path, exist_ok=True)
    if serial_link is None:
        serial_link = os.path.join(tmp_path, "meter.tty")
    if state is None:
        state = os.path.join(tmp_path, "state")
    argv = [PYTHON, LAUNCHER, "--tcp", str(tcp), "--serial-link", serial_link,
            "--state", state]
    if heap:
        argv += ["--heap", heap]
    argv += list(extra_args)
    stderr_path = os.path.join(tmp_path, "meter-stderr-%d.log" % int(time.time() * 1000))
    errf = open(stderr_path, "wb")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errf)
    finally:
        errf.close()
    line = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = t0 + timeout
    fd = proc.stdout.fileno()
    try:
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not sel.select(min(left, 0.5)):
                if proc.poll() is not None:
                    break
                continue
            b = os.read(fd, 1)  # byte by byte: nothing after the line is consumed here
            if not b:
                break
            line += b
    finally:
        sel.close()

    def fail(why):
        try:
            proc.wait(2)  # a start-up crash: let it finish printing
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        try:
            rest = proc.stdout.read() or b""
        except (OSError, ValueError):
            rest = b""
        with open(stderr_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        out = (line + rest).decode("utf-8", "replace")
        raise MeterStartError("%s\ncommand: %s\nexit status: %r\nstdout:\n%s\nstderr:\n%s" % (
            why, " ".join(argv), proc.returncode, out[-4000:], err[-4000:]))

    if not line.endswith(b"\n"):
        fail("no ready line within %.0f s" % timeout)
    try:
        ready = json.loads(line.decode())
    except ValueError:
        fail("the first stdout line is not JSON")
    if check_ready and (not isinstance(ready, dict) or ready.get("event") != "ready"):
        fail("the first stdout line is not a ready event")
    if not isinstance(ready.get("pid"), int):
        fail("ready line without an integer pid")
    link = None if serial_link == "off" else serial_link
    m = Meter(proc, ready, link, state, stderr_path, time.monotonic() - t0)
    m.argv = argv
    m.ready_line = line
    return m


# ------------------------------------------------------------------------------ fixtures
def _module_meter(tmp_path_factory, heap=None, extra_args=()):
    m = start_meter(tmp_path_factory.mktemp("meter"), heap=heap, extra_args=extra_args)
    try:
        yield m
    finally:
        if m.alive():
            m.stop()
        else:
            m.returncode = m.proc.returncode
        # a meter that died during the module is a failure of the module's last test
        # at the latest: report it with its stderr
        assert m.returncode == 0, "meter ended with %r:\n%s" % (m.returncode, m.stderr()[-3000:])


@pytest.fixture(scope="module")
def vmeter(tmp_path_factory):
    """One virtual meter (TCP + pty) shared by the tests of a module; in HIL mode
    (``--hil-port``, host_tests/hil.py) the meter on that serial port instead."""
    import hil

    if hil.enabled():
        yield hil.meter()
        return
    yield from _module_meter(tmp_path_factory)


@pytest.fixture
def fresh_meter(tmp_path):
    """A virtual meter of its own for one test."""
    m = start_meter(tmp_path)
    try:
        yield m
    finally:
        if m.alive():
            m.stop(check=False)
