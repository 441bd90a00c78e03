"""What the microcontroller boards (boards/esp32, boards/rp2040) share: the board object
that ``firmware/app.py`` composes, built from a board module's pin map and factories, plus
the few pieces of glue a real board needs and the Unix port does not.

* ``MonotonicMs``: the meter time in ms the metering engine schedules with. ``ticks_ms``
  wraps (2**30 ms, 12.4 days, on the boards); the engine subtracts plain integers, so the
  wrap is removed here (called at least once per main-loop round: never misses one).
* ``identity``: serial number, logical device name and system title from the chip's unique
  id (the same scheme as the virtual meter's: "MMM" + serial).
* ``McuBoard``: the attributes ``app.App`` reads (its module docstring lists them).
* ``reset_cause_name``, ``Heartbeat``, ``maintenance``: the console log of the reset cause,
  the status LED, and what a deliberate Ctrl-C on the console leaves running.

Imports ``machine`` only when a McuBoard is built: host_tests/test_boards.py runs all of
this on the Unix port with a fake ``machine``.
"""

import os
import sys
import time

_SLAB_MAX = 12288  # two HDLC ports (~3 KB each) and the ciphered-response buffer
_RESET_NAMES = ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET",
                "BROWNOUT_RESET")


class MonotonicMs:
    """ms since boot that never wraps (the boards' ``ticks_ms`` does, after 2**30 ms)."""

    def __init__(self):
        self._last = time.ticks_ms()
        self._ms = 0

    def __call__(self):
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._ms


def identity(uid, firmware):
    """Serial number (8 decimal digits) from the last four octets of the chip's unique id;
    logical device name "MMM" + 13 digits; system title "MMM" + the serial in 5 octets."""
    n = 0
    for b in uid[-4:]:
        n = (n << 8) | b
    serial = n % 100000000
    title = bytearray(b"MMM\0\0\0\0\0")
    v = serial
    for i in range(7, 2, -1):
        title[i] = v & 0xFF
        v >>= 8
    return {
        "name": ("MMM%013d" % serial).encode(),
        "serial": ("%08d" % serial).encode(),
        "firmware": firmware,
        "system_title": bytes(title),
    }


def hex_upper(b):
    """b"MMM..." -> "4D4D4D..." (bytes.hex() is not in every port's build)."""
    import binascii

    return binascii.hexlify(b).decode().upper()


def reset_cause_name(machine):
    """machine.reset_cause() as a name ("WDT_RESET", ...) and its number."""
    cause = machine.reset_cause()
    for name in _RESET_NAMES:
        if getattr(machine, name, None) == cause:
            return name, cause
    return "UNKNOWN", cause


def reserve_slab():
    """A contiguous block kept free while the firmware's .mpy files are loaded (they leave the
    heap checkered with small objects); App frees it right before it allocates the frame
    and APDU buffers. As boards/unix/main.py does."""
    import gc

    gc.collect()
    size = gc.mem_free() // 8
    return bytearray(size if size < _SLAB_MAX else _SLAB_MAX)


class McuBoard:
    """What firmware/app.py needs, from a board module (boards/<board>/board.py)."""

    max_tcp = 0  # serial ports only
    tcp = None
    tcp_prealloc = 0
    rtc_battery = False  # no battery-backed RTC: after a restart the clock is invalid until set

    def __init__(self, board, firmware, slab=None):
        import machine

        self.board = board
        self.slab = slab
        self.rtc = board.rtc()
        self.meter_ms = MonotonicMs()
        self.sleep_ms = time.sleep_ms
        self.urandom = os.urandom
        self.identity = identity(machine.unique_id(), firmware)
        self.store_root = board.filesystem()
        self.hdlc_info_cap = board.HDLC_INFO_CAP
        optical = board.optical_uart()
        # (stream, name, line): the optical port starts with the IEC 62056-21 mode E opening
        # and re-initialises its UART at each rate change (firmware/optical.py); RS-485 is
        # HDLC directly, through firmware/rs485.py's half-duplex driver-enable handling
        self.hdlc_streams = [(optical, "optical", optical), (board.rs485(), "rs485")]
        self.meter_chip = board.METER_CHIP
        self.chip_config = None  # the driver's defaults until the board is calibrated
        self.spi = board.meter_spi()
        self.cs = board.meter_cs()

    def log_event(self, kind, detail):
        print("meter: event", kind, detail)

    def log_error(self, where, exc):
        print("meter: error in", where, "port:")
        sys.print_exception(exc)


class Heartbeat:
    """The status LED: toggles every ``period_ms`` while the main loop runs."""

    def __init__(self, led, period_ms=500):
        self.led = led
        self.period_ms = period_ms
        self._t = time.ticks_ms()
        self._on = 0

    def beat(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._t) >= self.period_ms:
            self._t = now
            self._on ^= 1
            self.led.value(self._on)


def maintenance(wdt, timer, period_ms=1000):
    """After a deliberate Ctrl-C on the console (a user, or mpremote before a deploy) the
    meter has stopped and persisted; keep the watchdog (which cannot be stopped) fed from
    a timer so the REPL stays usable. ``machine.reset()`` (``mpremote reset``) restarts the
    meter. A soft reset (Ctrl-D) runs main.py again."""
    timer.init(period=period_ms, mode=timer.PERIODIC, callback=lambda _t: wdt.feed())
    return timer


BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)  # comm_speed


def set_baud(uart, comm_speed):
    """Put a direct-HDLC port (RS-485) on the rate of the HDLC setup object (attribute 2,
    comm_speed, an enum into BAUD_RATES, written by the management client): at boot, so a
    new rate applies from the next start. The optical port sets its own rates (mode E)."""
    uart.init(baudrate=BAUD_RATES[comm_speed])


# ------------------------------------------------------------------ boot (the boards' main.py)
def start(board, slab):
    """Log the reset cause; build the board and the meter from the board module (its pin
    map and factories). ``slab``: reserved before the firmware was imported. Returns
    (meter, board object)."""
    import gc

    import machine

    import app as app_mod

    cause, code = reset_cause_name(machine)
    print("%s on %s: reset cause %s (%d)" % (
        app_mod.FIRMWARE_VERSION.decode(), board.NAME, cause, code))
    b = McuBoard(board, app_mod.FIRMWARE_VERSION, slab)
    del slab  # App frees the slab before it allocates the I/O buffers
    meter = app_mod.App(b)
    hs = meter.hdlc_settings
    set_baud(b.hdlc_streams[1][0].uart, hs.comm_speed)  # RS-485: the HDLC setup's rate
    gc.collect()
    ident = b.identity
    print("meter: serial %s, system title %s; HDLC server 1/%d on the optical port (mode E) "
          "and RS-485 (%d baud)" % (ident["serial"].decode(), hex_upper(
              ident["system_title"]), hs.device_address, BAUD_RATES[hs.comm_speed]))
    print("meter: heap used %d, free %d" % (gc.mem_alloc(), gc.mem_free()))
    return meter, b


def run(board, meter, b):
    """Serve forever: the watchdog fed every round; Ctrl-C persists the meter and leaves a
    timer feeding the watchdog; any other error is printed, the meter persisted, the board
    reset."""
    import sys

    import machine

    wdt = machine.WDT(timeout=board.WDT_MS)
    beat = Heartbeat(board.status_led())

    def keep_running():
        """Once per main-loop round (App.run's stop_requested hook): False = go on."""
        wdt.feed()
        beat.beat()
        return False

    try:
        meter.run(keep_running)
    except KeyboardInterrupt:
        meter.shutdown()
        maintenance(wdt, board.maintenance_timer())
        print("meter: stopped by Ctrl-C and persisted; the watchdog is fed by a timer; "
              "machine.reset() restarts the meter")
    except Exception as e:  # not survivable by the loop itself: log, persist, restart
        print("meter: fatal:")
        sys.print_exception(e)
        try:
            meter.shutdown()
        finally:
            machine.reset()
