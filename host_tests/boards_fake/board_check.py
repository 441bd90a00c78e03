"""Import a microcontroller board (boards/esp32 or boards/rp2040) on the Unix port with the
fake ``machine`` (fake_machine.py), build its peripherals through board.py's factories, then
boot its main.py: the meter composed by main.start() on the fakes (the ATM90E32AS simulated
behind the SPI bus, littlefs on a file image at /data), served by main.run() until the fake
watchdog has been fed ``ROUNDS`` times, when it raises KeyboardInterrupt (a Ctrl-C on the
console). HDLC frames are put into the UARTs beforehand; everything observed is printed as
JSON lines for host_tests/test_boards.py.

    micropython board_check.py IMAGE_PATH
    (MICROPYPATH: host_tests/boards_fake, boards/<board>, boards/common, firmware, boards/unix)
"""

import json
import sys

import fake_machine as machine

sys.modules["machine"] = machine

ROUNDS = 60


def describe(kw):
    out = {}
    for k, v in kw.items():
        out[k] = v.id if isinstance(v, machine.Pin) else v
    return out


def emit(kind, value):
    print(json.dumps({"kind": kind, "value": value}))


def factories(board):
    consts = {}
    for k in dir(board):
        v = getattr(board, k)
        if k.isupper() and isinstance(v, (int, str)):
            consts[k] = v
    emit("consts", consts)
    made = {
        "optical_uart": board.optical_uart(),
        "rs485": board.rs485(),
        "meter_spi": board.meter_spi(),
        "meter_cs": board.meter_cs(),
        "status_led": board.status_led(),
        "rtc": board.rtc(),
        "maintenance_timer": board.maintenance_timer(),
    }
    emit("log", [(c, i, describe(kw)) for c, i, kw in machine.log])
    rs = made["rs485"]
    emit("rs485", {"uart": rs.uart.id, "uart_kw": describe(rs.uart.kw), "de": rs.de.id,
                   "de_value": rs.de.value()})
    emit("cs", {"id": made["meter_cs"].id, "value": made["meter_cs"].value()})
    del machine.log[:]


def boot(image):
    import time

    import board
    import flash
    import load_spec
    from dlms import hdlc_tools as ht
    from sim_atm90e32 import Atm90e32Sim
    from spi_sim import FakeSPI

    flash.mount(image, board.STORE_ROOT)
    t0 = time.ticks_ms()
    phases, hz = load_spec.parse(load_spec.DEFAULT, 3)
    sim = Atm90e32Sim(phases, hz, now_ms=lambda: time.ticks_diff(time.ticks_ms(), t0))
    machine.chip_bus = FakeSPI(sim)
    machine.cs_pin = board.METER_CS

    import main

    meter, b = main.start()
    streams = dict((e[1], e[0]) for e in b.hdlc_streams)
    srv = ht.encode_address(ht.server_address(1, 17, 2), 2)
    cli = b"\x21"  # client 16, public
    aarq = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
    get_ldn = bytes.fromhex("C001C100010000" + "2A0000FF0200")
    get_energy = bytes.fromhex("C001C200030100" + "010800FF0200")  # reader only: refused
    llc = b"\xe6\xe6\x00"
    opt = streams["optical"]
    opt.rx.extend(ht.frame(srv, cli, 0x93))  # SNRM
    opt.rx.extend(ht.frame(srv, cli, 0x10, llc + aarq))  # I, N(S)=0 N(R)=0, P
    opt.rx.extend(ht.frame(srv, cli, 0x32, llc + get_ldn))  # I, N(S)=1 N(R)=1, P
    opt.rx.extend(ht.frame(srv, cli, 0x54, llc + get_energy))  # I, N(S)=2 N(R)=2, P
    rs = streams["rs485"]
    rs.uart.rx.extend(ht.frame(srv, cli, 0x93))

    feed = machine.WDT.feed

    def limited(self):
        feed(self)
        if self.feeds >= ROUNDS:
            raise KeyboardInterrupt

    machine.WDT.feed = limited
    main.run(meter, b)
    timers = [{"id": t.id, "period": t.kw["period"], "mode": t.kw["mode"],
               "callback": t.kw["callback"] is not None}
              for t in machine.timers if t.kw is not None]
    machine.WDT.feed = feed
    wdt = {"timeouts": [w.timeout for w in machine.wdts],
           "feeds": [w.feeds for w in machine.wdts]}
    for t in machine.timers:
        if t.kw is not None:
            t.kw["callback"](t)  # the maintenance timer fires once: it feeds the watchdog
    wdt["feeds_after_timer"] = [w.feeds for w in machine.wdts]
    emit("identity", {k: (v.hex() if k == "system_title" else v.decode())
                      for k, v in b.identity.items()})
    emit("wdt", wdt)
    os_ = __import__("os")
    store = []
    for sub in sorted(os_.listdir(board.STORE_ROOT)):
        try:
            store += [sub + "/" + n for n in sorted(os_.listdir(board.STORE_ROOT + "/" + sub))]
        except OSError:  # a file (profile segments live in directories too)
            store.append(sub)
    emit("store", store)
    emit("chip", {"frames": sim.frames, "meter_chip": b.meter_chip})
    for name, s in (("optical", opt), ("rs485", rs.uart)):
        frames = []
        buf = bytes(s.tx)
        i = 0
        while i < len(buf):
            n = ((buf[i + 1] & 0x07) << 8) | buf[i + 2]
            f = ht.decode_frame(buf[i:i + n + 2])
            frames.append(None if f is None else [f[5], f[6].hex()])
            i += n + 2
        emit("tx_" + name, frames)
    emit("de_history", rs.de.history)
    emit("optical_line", opt.inits)
    emit("rs485_line", rs.uart.inits)
    emit("timers", timers)


if len(sys.argv) > 2 and sys.argv[2] == "factories":
    import board

    factories(board)
else:
    boot(sys.argv[1])
