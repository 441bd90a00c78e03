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

import gc
import sys

import machine

import mcu

_slab = mcu.reserve_slab()  # before the firmware is imported

import app as app_mod  # noqa: E402
import board  # noqa: E402


def start():
    """Log the reset cause; build the board and the meter. Returns (meter, board object)."""
    global _slab
    cause, code = mcu.reset_cause_name(machine)
    print("%s on %s: reset cause %s (%d)" % (
        app_mod.FIRMWARE_VERSION.decode(), board.NAME, cause, code))
    b = mcu.McuBoard(board, app_mod.FIRMWARE_VERSION, _slab)
    _slab = None  # App frees the slab before it allocates the I/O buffers
    meter = app_mod.App(b)
    hs = meter.hdlc_settings
    mcu.set_baud(b.hdlc_streams[1][0].uart, hs.comm_speed)  # RS-485: the HDLC setup's rate
    gc.collect()
    ident = b.identity
    print("meter: serial %s, system title %s; HDLC server 1/%d on the optical port (mode E) "
          "and RS-485 (%d baud)" % (ident["serial"].decode(), mcu.hex_upper(
              ident["system_title"]), hs.device_address, mcu.BAUD_RATES[hs.comm_speed]))
    print("meter: heap used %d, free %d" % (gc.mem_alloc(), gc.mem_free()))
    return meter, b


def run(meter, b):
    wdt = machine.WDT(timeout=board.WDT_MS)
    beat = mcu.Heartbeat(board.status_led())

    def keep_running():
        """Once per main-loop round (App.run's stop_requested hook): False = go on."""
        wdt.feed()
        beat.beat()
        return False

    try:
        meter.run(keep_running)
    except KeyboardInterrupt:
        meter.shutdown()
        mcu.maintenance(wdt, board.maintenance_timer())
        print("meter: stopped by Ctrl-C and persisted; the watchdog is fed by a timer; "
              "machine.reset() restarts the meter")
    except Exception as e:  # not survivable by the loop itself: log, persist, restart
        print("meter: fatal:")
        sys.print_exception(e)
        try:
            meter.shutdown()
        finally:
            machine.reset()


if __name__ == "__main__":
    run(*start())
