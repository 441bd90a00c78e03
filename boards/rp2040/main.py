"""Entry point of the meter on a Raspberry Pi Pico (RP2040): MicroPython runs /main.py at
every boot.

Boot: log the reset cause on the console, keep a contiguous block free while the firmware
loads (stock MicroPython loads the deployed .mpy files into the heap), build the board
(board.py's pin map and factories, composed by boards/common/mcu.py) and the meter
(firmware/app.py), then serve both serial ports forever. The watchdog is armed once the
meter is built and fed by the main loop: App.run calls ``keep_running()`` once per round
(every <= 20 ms plus the work of that round).

Ctrl-C on the console (a user, or mpremote connecting for a deploy) stops the meter
cleanly: everything is persisted, a timer keeps the watchdog fed, the REPL is free.
``machine.reset()`` (``mpremote reset``) restarts the meter. Any other error escaping the
main loop is printed and the board resets.

Deployed by ``make deploy BOARD=rp2040 PORT=...`` (tools/deploy.py) as source; everything it
imports is compiled .mpy (or frozen into a custom build: manifest.py).
"""

import mcu

_slab = [mcu.reserve_slab()]  # before the firmware is imported (it loads into the heap)

import board  # noqa: E402


def start():
    """Build the board and the meter (boards/common/mcu.py); returns (meter, board)."""
    return mcu.start(board, _slab.pop())


def run(meter, b):
    mcu.run(board, meter, b)


if __name__ == "__main__":
    run(*start())
