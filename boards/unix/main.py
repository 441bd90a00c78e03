"""Entry point of the virtual meter under the MicroPython Unix port.

Started by tools/virtual_meter.py (which prepares the pseudo-terminal, picks the TCP port and
hands over the file descriptors); not meant to be run by hand. Arguments:

    --tcp PORT|off  --serial-fd FD|off  --serial-name PATH  --slave-fd FD
    --state DIR  --ctl-fd FD  --pid PID  [--romfs ADDR:LEN]  [--trace-fd FD]  [--optical 1]

--romfs: the firmware as a ROMFS image in memory outside the GC heap (see tools/mp_host.py);
it is mounted at /rom and put first on sys.path before anything else is imported, so the
firmware's bytecode executes in place, as it does from a board's flash.

--trace-fd FD: every frame in both directions on both transports is written to FD as a line
``DIR TRANSPORT:CHANNEL HEX`` (see Tracer); the launcher's trace process (tools/trace.py
--live) annotates them on stderr. Without it nothing is traced and nothing is allocated.

--optical 1: the pty is the optical port (IEC 62056-21 mode E before HDLC); its line
settings are recorded and logged on stderr by pty_line.PtyLine.

On start it prints exactly one JSON line on stdout once both transports accept traffic.
A byte on the control fd (SIGTERM/SIGINT relayed by the launcher) is a clean shutdown:
persist, then exit 0. SIGKILL is a power cut.
"""

import binascii
import os
import sys


def parse(argv):
    opts = {"tcp": "off", "serial-fd": "off", "serial-name": "", "state": "run/state",
            "ctl-fd": "", "pid": "0", "slave-fd": "", "romfs": "", "clock-rate": "1",
            "start-ns": "", "chip": "atm90e32", "load": "", "seed": "1", "chip-fd": "",
            "rtc-battery": "1", "trace-fd": "", "optical": "0"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--") or i + 1 >= len(argv):
            raise SystemExit("bad argument: " + a)
        opts[a[2:]] = argv[i + 1]
        i += 2
    return opts


def makedirs(path):
    cur = ""
    for part in path.split("/"):
        cur = cur + part + "/" if cur or part else "/"
        if not part:
            continue
        try:
            os.mkdir(cur.rstrip("/"))
        except OSError:
            pass


def mount_romfs(spec):
    import uctypes
    import vfs

    addr, n = spec.split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(addr), int(n))), "/rom")
    sys.path.insert(0, "/rom")


class Board:

    def _chip_link(self, fd):
        """The metering IC emulated in another process (tools/chip_emulator.py)."""
        import time

        from chip_link import ChipLink, LinkCS, LinkSPI

        link = ChipLink(fd, self.meter_ms)
        self.meter_chip = link.chip
        self.chip_config = link.config
        self.spi = LinkSPI(link)
        self.cs = LinkCS(link)
        self.sleep_ms = time.sleep_ms

    def _metering_ic(self, chip, load, seed):
        """The simulated metering IC behind a fake SPI bus: the driver is the board's."""
        import time

        import load_spec
        from spi_sim import FakeCS, FakeSPI

        phases, hz = load_spec.parse(load or load_spec.DEFAULT, 3 if chip == "atm90e32" else 1)
        if chip == "atm90e32":
            from sim_atm90e32 import Atm90e32Sim

            self.chip_sim = Atm90e32Sim(phases, hz, now_ms=self.meter_ms, seed=seed)
            # the board's calibration constants, as a calibrated board would keep in flash
            self.chip_config = self.chip_sim.calibrated_config()
        elif chip == "ade7953":
            from sim_ade7953 import SimAde7953

            self.chip_sim = SimAde7953(self.meter_ms, load=phases[0], hz=hz, seed=seed)
            self.chip_config = None
        else:
            raise ValueError("unknown chip: " + chip)
        self.meter_chip = chip
        self.spi = FakeSPI(self.chip_sim)
        self.cs = FakeCS(self.spi)
        self.sleep_ms = time.sleep_ms

    def log_event(self, kind, client):
        """Security events, until the standard event log exists: on stderr."""
        sys.stderr.write("meter: event %s (client %d)\n" % (kind, client))

    def log_error(self, where, exc):
        """The virtual meter reports errors the loop survived on stderr."""
        sys.stderr.write("meter: error in %s port: " % where)
        sys.print_exception(exc, sys.stderr)

    def __init__(self, opts):
        import board as unix_board

        self.max_tcp = unix_board.MAX_TCP
        self.tcp_prealloc = TCP_PREALLOC
        self.rtc = unix_board.VirtualRTC(float(opts["clock-rate"]))
        self.meter_ms = self.rtc.meter_ms
        self.rtc_battery = opts["rtc-battery"] != "0"
        self.start_ns = int(opts["start-ns"]) if opts["start-ns"] else None
        if opts["chip-fd"]:
            self._chip_link(int(opts["chip-fd"]))
        else:
            self._metering_ic(opts["chip"], opts["load"], int(opts["seed"]))
        makedirs(opts["state"])
        self.flash = unix_board.mount_flash(opts["state"])
        self.store_root = "/flash"
        self.hdlc_streams = []
        if opts["serial-fd"] != "off":
            stream = unix_board.open_fd_stream(int(opts["serial-fd"]))
            if opts["optical"] == "1":  # the optical port: mode E on the pty (optical.py)
                from pty_line import PtyLine

                self.hdlc_streams.append((stream, "pty", PtyLine("pty")))
            else:
                self.hdlc_streams.append((stream, "pty"))
        self.tcp = None
        self.tcp_port = None
        if opts["tcp"] != "off":
            self.tcp_port = int(opts["tcp"])
            self.tcp = unix_board.tcp_listener(self.tcp_port)
        self.identity = {
            "name": b"MMM0000012345678",
            "serial": b"12345678",
            "firmware": None,
            "system_title": b"MMM\x00\x00\xbc\x61\x4e",  # 4D4D4D0000BC614E
        }
        self.urandom = os.urandom


class Tracer:
    """The ports' trace hook (``ports.Server.trace``), installed only with --trace-fd: one
    line per event on a pipe, ``rx hdlc:pty HEX`` (bytes received), ``tx tcp:3 HEX`` (a frame
    sent), ``open tcp:3`` / ``close tcp:3`` (TCP connection 3, numbered in order of
    acceptance). It allocates (hex strings): tracing is a debugging aid, not the hot path.
    If the pipe breaks, tracing stops and the meter goes on."""

    def __init__(self, fd):
        self.f = open(fd, "wb")
        self.ids = {}
        self.next = 1

    def __call__(self, ev, transport, conn, mv, n):
        f = self.f
        if f is None:
            return
        try:
            if transport == "hdlc":
                ch = conn.name
            else:
                k = id(conn)
                if ev == "open" or k not in self.ids:
                    self.ids[k] = self.next
                    self.next += 1
                ch = str(self.ids[k])
                if ev == "close":
                    del self.ids[k]
            f.write(("%s %s:%s" % (ev, transport, ch)).encode())
            if mv is not None:
                f.write(b" ")
                # in small pieces: a 1 KB frame would need a 2 KB hole in the heap
                for i in range(0, n, 32):
                    f.write(binascii.hexlify(mv[i : min(n, i + 32)]))
            f.write(b"\n")
        except MemoryError:  # the line ends unreadable; the decoder reports it
            f.write(b" ?\n")
        except OSError:
            self.f = None


def json_str(s):
    if s is None:
        return "null"
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_SLAB = 24576  # an HDLC port (~3 KB of buffers) and TCP_PREALLOC connections (~3 KB each)
TCP_PREALLOC = 4  # TCP clients always served (more if memory allows)


def reserve_slab():
    """Keep one contiguous block free for the I/O buffers: loading the code leaves the heap
    checkered with small objects, and a 1 KB frame buffer would not find a hole. App
    frees the slab just before it allocates those buffers (see app.App)."""
    import gc

    gc.collect()
    size = gc.mem_free() // 8
    return bytearray(size if size < _SLAB else _SLAB)


def heap_log(stop):
    """The main loop's stop check. With the environment variable DLMS_HEAP_LOG_MS=N (a
    hidden diagnostic for soak tests: tools/soak.py, docs/robustness.md) it also writes
    ``meter: heap used=U free=F`` on stderr every N ms, measured right after gc.collect():
    the heap that stays allocated. Without it nothing is collected or printed."""
    ms = int(os.getenv("DLMS_HEAP_LOG_MS") or 0)
    if ms <= 0:
        return lambda: stop[0]
    import gc
    import time

    last = [time.ticks_ms()]

    def check():
        now = time.ticks_ms()
        if time.ticks_diff(now, last[0]) >= ms:
            last[0] = now
            gc.collect()
            sys.stderr.write("meter: heap used=%d free=%d\n" % (gc.mem_alloc(), gc.mem_free()))
        return stop[0]

    return check


def main():
    opts = parse(sys.argv[1:])
    slab = reserve_slab()
    if opts["romfs"]:
        mount_romfs(opts["romfs"])
    board = Board(opts)
    board.slab = slab
    del slab
    import app as app_mod

    board.identity["firmware"] = app_mod.FIRMWARE_VERSION
    meter = app_mod.App(board)
    stop = [False]
    if opts["ctl-fd"]:
        ctl = open(int(opts["ctl-fd"]), "rb")

        def on_ctl():
            ctl.read(1)
            stop[0] = True
            return False

        meter.server.watch(ctl, on_ctl)
    if opts["trace-fd"]:
        meter.server.trace = Tracer(int(opts["trace-fd"]))
    serial = opts["serial-name"] if opts["serial-fd"] != "off" else None
    import gc

    gc.collect()
    used = gc.mem_alloc()
    line = ('{"event": "ready", "tcp": %s, "serial": %s, "pid": %s, "state": %s, '
            '"heap_used": %d, "heap_free": %d}') % (
        "null" if board.tcp_port is None else str(board.tcp_port),
        json_str(serial), opts["pid"], json_str(opts["state"]), used, gc.mem_free())
    print(line)
    try:
        meter.run(heap_log(stop))
    except KeyboardInterrupt:
        meter.shutdown()
    sys.exit(0)


try:
    main()
except Exception as e:  # stdout is for the ready line only: errors go to stderr
    sys.stderr.write("meter: fatal: ")
    sys.print_exception(e, sys.stderr)
    sys.exit(1)
