# Frozen-module manifest for a custom Raspberry Pi Pico firmware with the meter built in:
# the firmware's bytecode then executes from flash and the heap holds only run-time objects
# (see docs/boards.md for the heap figures of both ways). Paths are relative to this file.
#
#   cd micropython/ports/rp2
#   make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/dlms-mpy/boards/rp2040/manifest.py
#
# main.py is not frozen: MicroPython runs /main.py from the filesystem at boot, so copy it
# there once (`python tools/deploy.py --board rp2040 --port PORT --main-only`).

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules

# the firmware: its top-level modules (app, ports, ...) and packages (dlms, cosem, ...)
import os

for name in sorted(os.listdir("../../firmware")):
    if name.endswith(".py"):
        module(name, base_path="../../firmware")
    elif os.path.isfile(os.path.join("../../firmware", name, "__init__.py")):
        package(name, base_path="../../firmware")

# the board: shared microcontroller glue and this board's pin map
module("mcu.py", base_path="../common")
module("board.py")
