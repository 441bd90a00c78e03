#!/usr/bin/env python3
"""A virtual board for `make deploy`: the MicroPython Unix port's REPL on a serial device,
as a board's REPL is on its USB serial port, with a directory as its filesystem.

    .venv/bin/python tools/virtual_board.py --fs run/board-fs --link run/board.tty
    make deploy BOARD=unix PORT=run/board.tty                  # in another terminal
    .venv/bin/python tools/virtual_meter.py --firmware-dir run/board-fs   # "power on"

The REPL (``micropython -i``, the working directory = the filesystem) has its stdin and
stdout on the slave of one pseudo-terminal; a relay in this process copies bytes between
that pair's master and the master of a second pair, whose slave is the device mpremote
opens (a symlink to it at --link). This is what ``socat pty,raw,echo=0 pty,raw,echo=0``
would do; socat is not needed. Both slaves are raw: the REPL's output must reach mpremote
unchanged (a cooked tty would turn "\\r\\n" into "\\r\\r\\n" and mpremote would not see its
raw-REPL prompt).

The Unix port has the raw REPL mpremote drives but no soft reset: use ``mpremote connect
DEV resume ...`` (tools/deploy.py always does). The virtual board does not run the meter
itself; tools/virtual_meter.py --firmware-dir DIR starts the deployed files from DIR, like a
board starting /main.py after a reset.

Prints one JSON line when ready: {"event": "board", "device": ..., "link": ..., "fs": ...,
"pid": <the REPL process>}. SIGTERM/SIGINT stop it (and the REPL with it).
"""

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import threading
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def micropython_cmd():
    return os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")


class VirtualBoard:
    """start() -> device path; stop(). Usable from tests (host_tests/test_deploy.py)."""

    def __init__(self, fs, link=None, heap="2m"):
        self.fs = os.path.abspath(fs)
        self.link = link
        self.heap = heap
        self.proc = None
        self.device = None
        self._fds = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        os.makedirs(self.fs, exist_ok=True)
        m1, s1 = os.openpty()  # the REPL's console
        m2, s2 = os.openpty()  # the device mpremote opens
        for fd in (s1, s2, m1, m2):
            tty.setraw(fd)
        self.device = os.ttyname(s2)
        env = dict(os.environ)
        env["MICROPYPATH"] = ""  # only the working directory ('' on sys.path): the board's fs
        self.proc = subprocess.Popen([micropython_cmd(), "-X", "heapsize=" + self.heap, "-i"],
                                     stdin=s1, stdout=s1, stderr=s1, cwd=self.fs, env=env,
                                     start_new_session=True)
        os.close(s1)
        self._fds = [m1, m2, s2]  # s2 stays open: the device survives mpremote closing it
        if self.link:
            d = os.path.dirname(self.link)
            if d:
                os.makedirs(d, exist_ok=True)
            try:
                os.unlink(self.link)
            except FileNotFoundError:
                pass
            os.symlink(self.device, self.link)
        self._thread = threading.Thread(target=self._relay, args=(m1, m2), daemon=True)
        self._thread.start()
        return self.device

    def _relay(self, a, b):
        peer = {a: b, b: a}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([a, b], [], [], 0.2)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: nobody has the other side open right now
                    data = b""
                if not data:
                    continue
                view = memoryview(data)
                while view:
                    try:
                        view = view[os.write(peer[fd], view):]
                    except BlockingIOError:
                        select.select([], [peer[fd]], [], 0.2)
                    except OSError:
                        break

    def stop(self):
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._thread is not None:
            self._thread.join(2)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        if self.link:
            try:
                os.unlink(self.link)
            except OSError:
                pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fs", default="run/board-fs", help="the board's filesystem (a directory)")
    p.add_argument("--link", default="run/board.tty",
                   help="symlink to the serial device mpremote opens")
    a = p.parse_args(argv)
    board = VirtualBoard(a.fs, a.link)
    device = board.start()
    print(json.dumps({"event": "board", "device": device, "link": a.link,
                      "fs": board.fs, "pid": board.proc.pid}), flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.is_set() and board.proc.poll() is None:
        done.wait(0.5)
    board.stop()


if __name__ == "__main__":
    main()
