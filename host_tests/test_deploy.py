"""`make deploy` end to end against a virtual board: the MicroPython Unix port's REPL on a
pseudo-terminal (tools/virtual_board.py, the relay standing in for socat), driven by
mpremote through tools/deploy.py exactly as a board on /dev/ttyACM0 would be, with a
scratch directory as the board's filesystem. Then the deployed files -- not the
repository's -- start (tools/virtual_meter.py --firmware-dir) and serve DLMS sessions over
HDLC and TCP.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

import clients as cl
import running_meter as vm
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import deploy  # noqa: E402
from virtual_board import VirtualBoard  # noqa: E402

HEAP = "192wK"
DEPLOY = [vm.PYTHON, os.path.join(ROOT, "tools", "deploy.py"), "--board", "unix"]


def run_deploy(port, *extra):
    p = subprocess.run(DEPLOY + ["--port", port] + list(extra), cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, "deploy failed:\n%s\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    m = re.search(r"^deploy unix -> .*: (\d+) file\(s\) to copy, (\d+) unchanged, (\d+) stale",
                  p.stdout, re.M)
    assert m, "no summary line:\n" + p.stdout
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), p.stdout


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A virtual board after a first deploy: (fs dir, board, first deploy's counts)."""
    base = tmp_path_factory.mktemp("board")
    fs = str(base / "fs")
    board = VirtualBoard(fs, str(base / "board.tty"))
    board.start()
    try:
        first = run_deploy(board.link)
        yield fs, board, first
    finally:
        board.stop()


def test_first_deploy_copies_everything_through_the_repl(deployed):
    fs, board, (copied, unchanged, stale, out) = deployed
    local = deploy.build("unix")
    assert (copied, unchanged, stale) == (len(local), 0, 0), out
    # on the board's filesystem: the compiled modules and main.py as source, byte for byte
    for path, src in local.items():
        on_board = os.path.join(fs, path)
        assert os.path.isfile(on_board), path
        assert sha(on_board) == sha(src), path
    assert os.path.isfile(os.path.join(fs, "main.py"))
    assert os.path.isfile(os.path.join(fs, "dlms", "hdlc.mpy"))
    assert not os.path.exists(os.path.join(fs, "app.py"))
    # mpremote drove the REPL: it reports every copy on a line of its own
    assert sum(1 for line in out.splitlines() if line.startswith("cp ")) == len(local), out
    assert "mpremote connect %s resume" % board.link in out


def test_second_deploy_copies_nothing(deployed):
    _fs, board, _first = deployed
    copied, unchanged, stale, out = run_deploy(board.link)
    assert (copied, stale) == (0, 0), out
    assert unchanged == len(deploy.build("unix"))


def test_only_what_changed_is_copied_and_stale_files_go(deployed):
    fs, board, _first = deployed
    with open(os.path.join(fs, "dlms", "hdlc.mpy"), "r+b") as f:
        f.seek(20)
        f.write(b"\0\0\0\0")  # same size, different content: the hash tells
    with open(os.path.join(fs, "dlms", "retired.mpy"), "wb") as f:
        f.write(b"M\x06")  # a module no longer in the firmware
    with open(os.path.join(fs, "board.py"), "w") as f:
        f.write("raise ImportError\n")  # would shadow board.mpy
    os.makedirs(os.path.join(fs, "data"), exist_ok=True)
    with open(os.path.join(fs, "data", "meter"), "wb") as f:
        f.write(b"records")  # the meter's data: never touched
    with open(os.path.join(fs, "boot.py"), "w") as f:
        f.write("# the user's\n")
    copied, unchanged, stale, out = run_deploy(board.link)
    assert (copied, stale) == (1, 2), out
    assert "copy    dlms/hdlc.mpy" in out
    assert "remove  board.py" in out and "remove  dlms/retired.mpy" in out
    assert sha(os.path.join(fs, "dlms", "hdlc.mpy")) == sha(
        deploy.build("unix")["dlms/hdlc.mpy"])
    assert not os.path.exists(os.path.join(fs, "board.py"))
    assert not os.path.exists(os.path.join(fs, "dlms", "retired.mpy"))
    with open(os.path.join(fs, "data", "meter"), "rb") as f:
        assert f.read() == b"records"
    assert os.path.exists(os.path.join(fs, "boot.py"))


def test_deployed_files_start_and_serve_dlms(deployed, tmp_path):
    fs, board, _first = deployed
    board.stop()  # "power off"; the filesystem stays
    run = tmp_path / "fs"
    shutil.copytree(fs, run)
    shutil.rmtree(run / "data", ignore_errors=True)
    # stock firmware: the .mpy files load into the heap; 192wK models a Pico (docs/boards.md)
    m = vm.start_meter(tmp_path, heap=HEAP, extra_args=["--firmware-dir", str(run)])
    try:
        assert m.ready["heap_used"] > 0
        with cl.GuruxClient("hdlc", m.serial, cl.PUBLIC) as g:
            assert bytes(g.read("0.0.42.0.0.255", 1, 2)) == b"MMM0000012345678"
            assert bytes(g.read("1.0.0.2.0.255", 1, 2)).startswith(b"dlms-mpy")
        with cl.GuruxClient("tcp", m.tcp, cl.READER, cl.LLS_PASSWORD) as g:
            assert g.read("1.0.1.8.0.255", 3, 2) is not None
    finally:
        m.stop()
    # the deployed files are what ran: without one of them the meter cannot start
    os.unlink(str(run / "cosem" / "objects.mpy"))
    with pytest.raises(vm.MeterStartError) as ei:
        vm.start_meter(tmp_path / "again", heap=HEAP, extra_args=["--firmware-dir", str(run)])
    assert "objects" in str(ei.value), str(ei.value)[-2000:]
