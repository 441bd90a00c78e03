#!/usr/bin/env python3
"""The metering IC of the virtual meter, emulated outside the meter's MicroPython heap.

A real board's metering chip is hardware: its registers do not cost the firmware any RAM.
So the register-level simulation (boards/unix/sim_atm90e32.py, sim_ade7953.py, which run
under CPython too) runs in this separate process, and the meter's SPI bus
(boards/unix/chip_link.py) is a socket to it. Started by tools/virtual_meter.py:

    chip_emulator.py FD CHIP LOAD SEED

Protocol on the socket FD, one request at a time, each answered before the next:
    b"L" + meter time (8 bytes, ms, big-endian)   CS low: a transaction begins
    b"X" + n (2 bytes) + n bytes                   full-duplex transfer -> n bytes back
    b"H"                                           CS high: the transaction ends
At start it writes one line of JSON: {"chip": ..., "phases": n, "config": {...}} -- the
calibration constants of the simulated board (what a calibrated board keeps in flash).
When the meter goes away (SIGTERM, SIGKILL: a power cut) the socket closes and the chip
is gone with it, exactly as on a board.
"""

import json
import os
import signal
import socket
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "boards", "unix"))

import load_spec  # noqa: E402
from spi_sim import FakeCS, FakeSPI  # noqa: E402


class Clock:
    def __init__(self):
        self.t = 0

    def now_ms(self):
        return self.t

    def sleep_ms(self, ms):
        self.t += ms


def make_chip(chip, load, seed, clock):
    phases, hz = load_spec.parse(load or load_spec.DEFAULT, 3 if chip == "atm90e32" else 1)
    if chip == "atm90e32":
        from sim_atm90e32 import Atm90e32Sim

        sim = Atm90e32Sim(phases, hz, now_ms=clock.now_ms, seed=seed)
        return sim, 3, sim.calibrated_config()
    from sim_ade7953 import SimAde7953

    return SimAde7953(clock.now_ms, load=phases[0], hz=hz, seed=seed), 1, None


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def serve(sock, chip, load, seed):
    clock = Clock()
    sim, phases, config = make_chip(chip, load, seed, clock)
    spi = FakeSPI(sim)
    cs = FakeCS(spi)
    hello = {"chip": chip, "phases": phases, "config": config}
    sock.sendall(json.dumps(hello).encode() + b"\n")
    powered = False
    while True:
        op = recv_exact(sock, 1)
        if op == b"L":
            t = struct.unpack(">q", recv_exact(sock, 8))[0]
            if not powered:
                # the chip powers up with the meter: its time starts at the meter's time of
                # the first transaction, not at virtual time 0 (a chip that counts from
                # power-on would otherwise hold decades of energy)
                powered = True
                clock.t = t
                sim, phases, config = make_chip(chip, load, seed, clock)
                spi = FakeSPI(sim)
                cs = FakeCS(spi)
            if t > clock.t:
                clock.t = t  # virtual time only moves forward
            cs.value(0)
        elif op == b"H":
            cs.value(1)
        elif op == b"X":
            n = struct.unpack(">H", recv_exact(sock, 2))[0]
            w = recv_exact(sock, n)
            r = bytearray(n)
            spi.write_readinto(w, r)
            sock.sendall(bytes(r))
        else:
            raise ValueError("bad request")


def main():
    fd, chip, load, seed = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    # Ctrl-C in a terminal signals the whole process group: the chip stays powered while
    # the meter shuts down (it drains the chip's energy); it ends when the meter's end of
    # the socket closes, or with its parent (PR_SET_PDEATHSIG)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    try:
        serve(sock, chip, load if load != "-" else "", seed)
    except (EOFError, ConnectionError, BrokenPipeError):
        pass  # the meter is gone: so is its chip
    sys.exit(0)


if __name__ == "__main__":
    main()
