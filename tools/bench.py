#!/usr/bin/env python3
"""Benchmarks of the virtual meter (`make bench`). Figures and ratios, never pass/fail.

1. Server CPU time per GET-Request-Normal round trip: a public association over TCP, then
   batches of GETs of the logical device name; the meter's CPU time comes from
   /proc/<pid>/schedstat (nanoseconds), so client time is not counted. Median over batches,
   and the ratio to the time the same request and response take on a 9600-baud line.
2. HDLC frames per second through the link layer alone (MicroPython, in-process): a GET
   I-frame fed into hdlc.Link, the request taken, a reply framed and pulled out.
3. Smallest --heap (binary search, in wK) at which a public session still works: AARQ,
   GET logical device name, GET clock, GET the whole object list, RLRQ.
4. Metering engine CPU time per Engine.poll() cycle (MicroPython, in-process, simulated chip
   behind the fake SPI bus): idle, instantaneous read, energy drain, persist.
5. Flash writes per simulated day of meter time (Engine.poll driven by a simulated clock),
   littlefs block programs/erases per write, and the flash life they imply.
6. Boards' memory budget (`--only boards`): the deployed firmware's .mpy size per board,
   the heap after boot and the heap a management session needs while it downloads the whole
   40-day load profile over HDLC, with the firmware .mpy in the heap (stock MicroPython) and
   executed in place (ROMFS/frozen build); the verdict per board (docs/boards.md). This
   section drives the session with the test client gurux-dlms (host_tests/clients.py).
7. Load profile download (`--only profile`): rows per second of the whole 40-day load
   profile (3,841 rows, tools/seed_history.py) read by a reader association at PDU 1024
   over TCP and over HDLC on the pty (the project's own client, tools/dlms_client.py), each
   next to what a 9600- and a 115200-baud serial line carries (bytes per row on the wire,
   HDLC framing at 128-byte frames included, 10 bits per byte); and the smallest --heap at
   which a 1-day and a 40-day download over HDLC succeed, next to the heap after boot.
   Needs pyserial (the pty), like the HDLC tests.

Uses only raw wrapper frames and the standard library: no client library needed.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable

AARQ_PUBLIC = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
# reader (client 32), LLS "12345678" (Green Book example); the last two bytes are the max PDU
AARQ_READER = bytes.fromhex("6036A1090607608574050801018A0207808B0760857405080201AC0A8008313233"
                            "3435363738BE10040E01000000065F1F0400007E1F04B0")


def with_max_pdu(aarq, pdu):
    return aarq[:-2] + struct.pack(">H", pdu)
RLRQ = bytes.fromhex("6203800100")


def get_request(class_id, obis, attr, invoke=0xC1):
    return bytes([0xC0, 0x01, invoke]) + struct.pack(">H", class_id) + bytes(obis) + bytes(
        [attr, 0x00])


GET_LDN = get_request(1, (0, 0, 42, 0, 0, 255), 2)
GET_CLOCK = get_request(8, (0, 0, 1, 0, 0, 255), 2)
GET_OBJECT_LIST = get_request(15, (0, 0, 40, 0, 0, 255), 2)


class Meter:
    def __init__(self, heap=None, tmp=None, extra=()):
        self.tmp = tmp or tempfile.mkdtemp(prefix="bench-")
        args = [PY, os.path.join(ROOT, "tools", "virtual_meter.py"), "--tcp", "0",
                "--serial-link", "off", "--state", os.path.join(self.tmp, "state")]
        if heap:
            args += ["--heap", heap]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise RuntimeError("meter did not start: " + self.proc.stderr.read()[-500:])
        self.ready = json.loads(line)
        self.pid = self.ready["pid"]

    def cpu_ns(self):
        with open("/proc/%d/schedstat" % self.pid) as f:
            return int(f.read().split()[0])

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


class Wrapper:
    """A DLMS wrapper (IEC 62056-47) client connection: APDU in, APDU out."""

    def __init__(self, port, client=16, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.client = client

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the meter")
            buf += chunk
        return buf

    def request(self, apdu):
        self.s.sendall(struct.pack(">HHHH", 1, self.client, 1, len(apdu)) + apdu)
        head = self._recv(8)
        return self._recv(struct.unpack(">H", head[6:8])[0])

    def get_all(self, apdu):
        """A GET, following GET-Response-With-Datablock with GET-Request-Next."""
        resp = self.request(apdu)
        data = b""
        while resp[1] == 0x02:
            last, block = resp[3], struct.unpack(">I", resp[4:8])[0]
            if resp[8] != 0:
                raise RuntimeError("block transfer failed: " + resp.hex())
            n, off = resp[9], 10
            if n == 0x81:
                n, off = resp[10], 11
            elif n == 0x82:
                n, off = struct.unpack(">H", resp[10:12])[0], 12
            data += resp[off:off + n]
            if last:
                return resp, data
            resp = self.request(bytes([0xC0, 0x02, resp[2]]) + struct.pack(">I", block))
        return resp, resp[4:]

    def close(self):
        self.s.close()


def get_with_list(refs, invoke=0xC1):
    body = b"".join(struct.pack(">H", c) + bytes(o) + bytes([a, 0]) for c, o, a in refs)
    return bytes([0xC0, 0x03, invoke, len(refs)]) + body


LIST_10 = get_with_list([(1, (0, 0, 42, 0, 0, 255), 2), (8, (0, 0, 1, 0, 0, 255), 2),
                         (1, (0, 0, 96, 1, 0, 255), 2), (1, (1, 0, 0, 2, 0, 255), 2),
                         (8, (0, 0, 1, 0, 0, 255), 3), (8, (0, 0, 1, 0, 0, 255), 4),
                         (17, (0, 0, 41, 0, 0, 255), 2), (15, (0, 0, 40, 0, 0, 255), 3),
                         (15, (0, 0, 40, 0, 0, 255), 8), (1, (0, 0, 42, 0, 0, 255), 1)])


def public_session(port):
    """True if a whole public session works."""
    c = Wrapper(port)
    try:
        aare = c.request(AARQ_PUBLIC)
        if aare[:1] != b"\x61" or bytes.fromhex("A203020100") not in aare:
            return False
        for apdu in (GET_LDN, GET_CLOCK):
            r = c.request(apdu)
            if r[:4] != bytes([0xC4, 0x01, 0xC1, 0x00]):
                return False
        resp, data = c.get_all(GET_OBJECT_LIST)
        if not data or data[0] != 0x01:
            return False
        return c.request(RLRQ)[:1] == b"\x63"
    finally:
        c.close()


def bench_get_cpu(batches=7, per_batch=300):
    m = Meter()
    try:
        c = Wrapper(m.ready["tcp"])
        c.request(AARQ_PUBLIC)
        for _ in range(50):
            c.request(GET_LDN)  # warm up
        per_req = []
        for _ in range(batches):
            t0 = m.cpu_ns()
            for _ in range(per_batch):
                c.request(GET_LDN)
            per_req.append((m.cpu_ns() - t0) / per_batch)
        c.request(RLRQ)
        c.close()
    finally:
        m.stop()
    med = statistics.median(per_req)
    resp_len = 8 + 4 + 2 + 16
    line_s = (8 + len(GET_LDN) + resp_len) * 10 / 9600  # 10 bits per byte at 9600 baud
    print("GET-Request-Normal (logical device name) over TCP:")
    print("  median server CPU per round trip: %.1f us (min %.1f, max %.1f, %d x %d requests)"
          % (med / 1000, min(per_req) / 1000, max(per_req) / 1000, batches, per_batch))
    print("  ratio to the 9600-baud line time of request + response (%.1f ms): %.4f"
          % (line_s * 1000, med / 1e9 / line_s))


def bench_list_and_blocks(batches=7, per_batch=200):
    m = Meter()
    try:
        c = Wrapper(m.ready["tcp"])
        c.request(AARQ_PUBLIC)
        r = c.request(LIST_10)
        assert r[:3] == bytes([0xC4, 0x03, 0xC1]) and r[3] == 10, r.hex()
        per = []
        for _ in range(batches):
            t0 = m.cpu_ns()
            for _ in range(per_batch):
                c.request(LIST_10)
            per.append((m.cpu_ns() - t0) / per_batch)
        c.request(RLRQ)
        c.close()
        print("GET-Request-With-List of 10 attributes over TCP:")
        print("  median server CPU per round trip: %.1f us (%.1f us per attribute)"
              % (statistics.median(per) / 1000, statistics.median(per) / 10000))
        print("Object list of the reader association (0.0.40.0.0.255 attr 2) in GET blocks:")
        for pdu in (128, 1024):
            c = Wrapper(m.ready["tcp"], client=32)
            aare = c.request(with_max_pdu(AARQ_READER, pdu))
            assert bytes.fromhex("A203020100") in aare, aare.hex()
            c.get_all(GET_OBJECT_LIST)  # warm up
            per_block = []
            for _ in range(batches):
                t0 = m.cpu_ns()
                blocks = 0
                resp = c.request(GET_OBJECT_LIST)
                size = 0
                while True:
                    blocks += 1
                    size += len(resp)
                    if resp[1] != 0x02 or resp[3]:
                        break
                    block = struct.unpack(">I", resp[4:8])[0]
                    resp = c.request(bytes([0xC0, 0x02, resp[2]]) + struct.pack(">I", block))
                per_block.append((m.cpu_ns() - t0) / blocks)
            c.request(RLRQ)
            c.close()
            print("  PDU %4d: %d blocks, %d bytes; median server CPU per block: %.1f us"
                  % (pdu, blocks, size, statistics.median(per_block) / 1000))
    finally:
        m.stop()


LINK_BENCH = r"""
import time
from dlms import hdlc, fcs
N = %d
link = hdlc.Link()
def frame(ctrl, info):
    body = bytearray([0xA0, 0, 0x02, 0x23, 0x21, ctrl])
    if info:
        body.extend(b"\0\0")
    body.extend(info)
    body.extend(b"\0\0")
    body[1] = len(body)
    if info:
        c = fcs.fcs16(body, 0, 6)
        body[6] = c & 0xFF
        body[7] = c >> 8
    c = fcs.fcs16(body, 0, len(body) - 2)
    body[-2] = c & 0xFF
    body[-1] = c >> 8
    return bytes(b"\x7e" + body + b"\x7e")
snrm = frame(0x93, b"")
link.feed(snrm, 0, len(snrm), 0)
while link.output_len():
    link.output_done()
apdu = bytes.fromhex("E6E600C001C100010000" + "2A0000FF0200")
frames = []
for i in range(8):
    frames.append(frame(i << 5 | 0x10 | i << 1, apdu))  # N(R) = N(S) = i, P set
resp = bytes.fromhex("C401C100091000112233445566778899AABBCCDDEEFF")
t0 = time.ticks_us()
for i in range(N):
    f = frames[i %% 8]
    link.feed(f, 0, len(f), 0)
    n = link.request_len()
    if not n:
        raise SystemExit("link did not deliver the request at frame %%d" %% i)
    out = link.reply_view()
    out[:len(resp)] = resp
    link.reply(len(resp))
    while link.output_len():
        link.output_done()
dt = time.ticks_diff(time.ticks_us(), t0)
print(N, dt)
"""


def bench_link(n=5000):
    env = dict(os.environ)
    env["MICROPYPATH"] = os.path.join(ROOT, "firmware")
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    out = subprocess.run([mp, "-c", LINK_BENCH % n], env=env, capture_output=True, text=True,
                         timeout=300)
    if out.returncode != 0:
        print("HDLC link bench failed:", out.stdout[-300:], out.stderr[-500:])
        return
    frames, us = [int(x) for x in out.stdout.split()]
    fps = 2 * frames / (us / 1e6)  # one request frame in, one response frame out
    print("HDLC link layer (MicroPython Unix port, in-process):")
    print("  %d request/response frame pairs in %.1f ms: %.0f frames/s" % (frames, us / 1000,
                                                                         fps))
    # a 9600-baud line carries about 960 bytes/s: frames of ~30 bytes -> ~32 frames/s
    print("  ratio to the frame rate of a 9600-baud line (30-byte frames, 32/s): %.0f"
          % (fps / 32))


CRYPTO_BENCH = r"""
import time
from dlms import ghash, ghash_viper, gcm
h = bytes(range(16))
blocks = bytearray(16 * 64)
res = []
for cls in (ghash_viper.Ghash, ghash.Ghash):
    g = cls(h)
    n = 0
    t0 = time.ticks_us()
    while n < %d:
        g.update(blocks)
        n += 64
    res.append(time.ticks_diff(time.ticks_us(), t0) / n)
c = gcm.Gcm(bytes(16))
iv = bytes(12)
aad = bytes(17)
pt = bytearray(1024)
out = bytearray(1024 + 16)
k = 0
t0 = time.ticks_us()
while k < %d:
    c.encrypt(iv, aad, pt, out)
    k += 1
res.append(time.ticks_diff(time.ticks_us(), t0) / k)
print(gcm.GHASH_IMPL, res[0], res[1], res[2])
"""


def bench_crypto(blocks=20000, apdus=300):
    import timeit

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    env = dict(os.environ)
    env["MICROPYPATH"] = os.path.join(ROOT, "firmware")
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    out = subprocess.run([mp, "-c", CRYPTO_BENCH % (blocks, apdus)], env=env,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        print("crypto bench failed:", out.stderr[-400:])
        return
    impl, viper_us, pure_us, gcm_us = out.stdout.split()
    viper_us, pure_us, gcm_us = float(viper_us), float(pure_us), float(gcm_us)
    a = AESGCM(bytes(16))
    n = 2000
    ref_us = timeit.timeit(lambda: a.encrypt(bytes(12), bytes(1024), bytes(17)), number=n)
    ref_us = ref_us / n * 1e6
    print("Security suite 0 (MicroPython Unix port; GHASH used by gcm: %s):" % impl)
    print("  GHASH per 16-byte block: viper %.2f us, pure Python %.2f us (viper %.0fx faster)"
          % (viper_us, pure_us, pure_us / viper_us))
    print("  AES-GCM encrypt of a 1 KB APDU: %.1f us (%.1f MB/s); CPython cryptography "
          "AESGCM %.1f us; ratio %.0f" % (gcm_us, 1024 / gcm_us, ref_us, gcm_us / ref_us))


def _hls_client_session(port, ic):
    """One management association with our own codecs as the client (CPython): AARQ with a
    glo-initiate-request, HLS pass 3 as glo-action-request, pass 4 checked. Returns the
    client's next invocation counter."""
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    from dlms import gcm as g
    from dlms import security as sec

    ek = bytes(range(16))
    ak = bytes(range(0xD0, 0xE0))
    st = bytes.fromhex("4752580000000009")
    ctos = b"benchCtoS0123456"
    cipher = g.Gcm(ek)

    def glo(tag, plain, ic):
        out = bytearray(len(plain) + 12)
        n = cipher.encrypt(st + struct.pack(">I", ic), b"\x30" + ak, plain, out)
        body = b"\x30" + struct.pack(">I", ic) + bytes(out[:n])
        return bytes([tag, len(body)]) + body

    init = bytes.fromhex("01000000065F1F0400001E1D0400")  # no dedicated key, PDU 1024
    ui = glo(0x21, init, ic)
    aarq_body = (bytes.fromhex("A109060760857405080103") + bytes([0xA6, 10, 0x04, 8]) + st
                 + bytes.fromhex("8A0207808B0760857405080205") + bytes([0xAC, 2 + len(ctos), 0x80,
                                                                           len(ctos)]) + ctos
                 + bytes([0xBE, len(ui) + 2, 0x04, len(ui)]) + ui)
    c = Wrapper(port, client=1)
    aare = c.request(bytes([0x60, len(aarq_body)]) + aarq_body)
    i = aare.find(b"\xaa")
    stoc = bytes(aare[i + 4:i + 4 + aare[i + 3]])
    keys = sec.Keys(ek, ak)
    f = b"\x10" + struct.pack(">I", ic + 1) + bytes(sec.gmac_tag(keys, st, ic + 1, stoc))
    action = bytes.fromhex("C301C1000F0000280000FF0101") + bytes([0x09, len(f)]) + f
    resp = c.request(glo(0xCB, action, ic + 2))
    c.close()
    if resp[0] != 0xCF:
        raise RuntimeError("HLS refused: " + resp.hex())
    return ic + 3


def bench_hls(n=15):
    m = Meter()
    try:
        ic = 1
        ic = _hls_client_session(m.ready["tcp"], ic)  # warm up
        per = []
        for _ in range(n):
            t0 = m.cpu_ns()
            ic = _hls_client_session(m.ready["tcp"], ic)
            per.append(m.cpu_ns() - t0)
    finally:
        m.stop()
    print("HLS-GMAC association (AARQ with glo-initiate, pass 3/4, ciphered) over TCP:")
    print("  median server CPU per handshake: %.2f ms" % (statistics.median(per) / 1e6))


def heap_works(k, extra=()):
    try:
        m = Meter(heap="%dwK" % k, extra=extra)
    except Exception:
        return False
    try:
        return public_session(m.ready["tcp"]) and public_session(m.ready["tcp"])
    except Exception:
        return False
    finally:
        m.stop()


def smallest_heap(extra=(), lo=8, hi=160):
    if not heap_works(hi, extra):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if heap_works(mid, extra):
            hi = mid
        else:
            lo = mid
    return hi


def bench_heap():
    print("Smallest --heap for two public sessions over TCP (AARQ, GETs, object list, RLRQ),")
    print("binary search in wK (1 wK = 1 KB on a 32-bit board):")
    for label, extra in (("firmware in place (ROMFS/frozen build)", ()),
                         ("firmware .mpy in the heap (stock build)", ("--mpy-in-heap",))):
        k = smallest_heap(extra)
        if k is None:
            print("  %-42s fails even at 160wK" % label)
        else:
            print("  %-42s %3dwK; ratio to the default 110wK: %.2f" % (label, k, k / 110))


# ------------------------------------------------------------------ metering engine
# Shared by the two metering sections: the board side of the virtual meter (boards/unix:
# simulated chip, fake SPI bus, littlefs on a file) around firmware/meter/engine.py.
ENGINE_COMMON = r"""
import json
import time
import vfs
import flash
import load_spec
from drivers.ade7953 import Ade7953
from drivers.atm90e32 import Atm90e32
from meter import engine as eng
from meter.store import Store
from sim_ade7953 import SimAde7953
from sim_atm90e32 import Atm90e32Sim, VirtualClock
from spi_sim import FakeCS, FakeSPI

LOAD = "230V,10A,pf0.95,50Hz"


class TimedChip:
    # the simulated chip behind the fake bus, with the time spent inside it counted
    def __init__(self, sim):
        self.sim = sim
        self.us = 0
        self.present = True

    def begin(self):
        t = time.ticks_us()
        self.sim.begin()
        self.us += time.ticks_diff(time.ticks_us(), t)

    def exchange(self, i, b):
        t = time.ticks_us()
        r = self.sim.exchange(i, b)
        self.us += time.ticks_diff(time.ticks_us(), t)
        return r

    def end(self, n):
        t = time.ticks_us()
        self.sim.end(n)
        self.us += time.ticks_diff(time.ticks_us(), t)


class CountingFlash(flash.FileFlash):
    # FileFlash (erases, programs) that also counts the bytes programmed
    def __init__(self, path):
        super().__init__(path)
        self.prog_bytes = 0

    def writeblocks(self, n, buf, off=None):
        self.prog_bytes += len(buf)
        super().writeblocks(n, buf, off)


def mount(path, where, progsize=32):
    dev = CountingFlash(path)
    vfs.VfsLfs2.mkfs(dev, progsize=progsize)
    vfs.mount(vfs.VfsLfs2(dev, progsize=progsize), where)
    return dev, Store(where)


def build(chip, clock, store, timed=False):
    phases, hz = load_spec.parse(LOAD, 3 if chip == "atm90e32" else 1)
    if chip == "atm90e32":
        sim = Atm90e32Sim(phases, hz, now_ms=clock.now_ms, seed=1)
        cfg, n, cls = sim.calibrated_config(), 3, Atm90e32
    else:
        sim = SimAde7953(clock.now_ms, load=phases[0], hz=hz, seed=1)
        cfg, n, cls = None, 1, Ade7953
    tc = TimedChip(sim) if timed else sim
    spi = FakeSPI(tc)
    e = eng.Engine(cls(spi, FakeCS(spi), clock.sleep_ms, cfg), n, store)
    e.start(clock.now_ms())
    return e, tc


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
"""

ENGINE_CPU_BENCH = ENGINE_COMMON + r"""
N = @N@
FAR = 1 << 40


def cycle(e, tc, clock, kind):
    # one poll with exactly `kind` due: the other jobs are scheduled far away
    clock.advance(1000)
    now = clock.now_ms()
    if kind == "persist":
        e._drain(now)  # (untimed) the totals moved since the last record
    e._t_instant = now if kind == "instant" else now + FAR
    e._t_energy = now if kind == "energy" else now + FAR
    e._t_persist = now - eng.PERSIST_MS if kind == "persist" else now
    p0 = e.persists
    c0 = tc.us
    t0 = time.ticks_us()
    e.poll(now)
    dt = time.ticks_diff(time.ticks_us(), t0)
    if kind == "persist" and e.persists != p0 + 1:
        raise SystemExit("a persist cycle wrote nothing")
    return dt, tc.us - c0


dev, store = mount("@DIR@/cpu.img", "/flash")
for chip in ("atm90e32", "ade7953"):
    clock = VirtualClock(1000)
    e, tc = build(chip, clock, store, timed=True)
    out = {"chip": chip, "ms": [eng.INSTANT_MS, eng.ENERGY_MS, eng.PERSIST_MS]}
    # idle: too short for one tick of ticks_us: batches of 1000 polls
    now = clock.now_ms()
    e._t_instant = e._t_energy = now + FAR
    e._t_persist = now
    per = []
    for b in range(7):
        t0 = time.ticks_us()
        for i in range(1000):
            e.poll(now + i)
        per.append(time.ticks_diff(time.ticks_us(), t0) / 1000)
    out["idle"] = [median(per), 0.0]
    for kind in ("instant", "energy", "persist"):
        tot, sim = [], []
        for i in range(N):
            a, c = cycle(e, tc, clock, kind)
            tot.append(a)
            sim.append(c)
        out[kind] = [median(tot), median(sim)]
    print(json.dumps(out))
"""


def _micropython(code, timeout=300):
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([os.path.join(ROOT, "firmware"),
                                          os.path.join(ROOT, "boards", "unix")])
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    return subprocess.Popen([mp, "-X", "heapsize=8m", "-c", code], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# boards are roughly 150x (ESP32) to 250x (RP2040) slower than this host: a reported
# ratio (design/platform.md), not a measurement
BOARD_SLOWDOWN = (("ESP32", 150), ("RP2040", 250))
LOOP_POLLS_PER_S = 50  # the main loop polls the engine after each server round (<= 20 ms)


def bench_engine_cpu(n=300):
    import shutil

    tmp = tempfile.mkdtemp(prefix="bench-engine-")
    try:
        p = _micropython(ENGINE_CPU_BENCH.replace("@N@", str(n)).replace("@DIR@", tmp))
        out, err = p.communicate(timeout=300)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if p.returncode != 0:
        print("metering engine CPU bench failed:", err[-600:])
        return
    res = [json.loads(line) for line in out.split("\n") if line.startswith("{")]
    print("Metering engine CPU time per Engine.poll() cycle (MicroPython Unix port, in-process;")
    print("the board's drivers on the fake SPI bus of the simulated chip; median of %d cycles"
          % n)
    print("of each kind, forced alone by setting the engine's schedule; in the meter a drain")
    print("falls due on the same poll as a read, and a persist with both):")
    print("  %-36s %-25s %-25s" % ("us per cycle", "ATM90E32 (3 phases)", "ADE7953 (1 phase)"))
    print("  %-36s %7s %8s %8s %7s %8s %8s" % ("", "total", "chip sim", "firmw.",
                                              "total", "chip sim", "firmw."))
    ms = res[0]["ms"]
    rows = (("idle", "idle (nothing due)"),
            ("instant", "instantaneous read (every %g s)" % (ms[0] / 1000)),
            ("energy", "energy drain (every %g s)" % (ms[1] / 1000)),
            ("persist", "persist, littlefs write (every %g s)" % (ms[2] / 1000)))
    for key, label in rows:
        cells = []
        for r in res:
            tot, sim = r[key]
            cells += [tot, sim, tot - sim]
        print("  %-36s %7.1f %8.1f %8.1f %7.1f %8.1f %8.1f" % ((label,) + tuple(cells)))
    for r in res:
        fw = {k: r[k][0] - r[k][1] for k in ("idle", "instant", "energy", "persist")}
        per_s = (LOOP_POLLS_PER_S * fw["idle"] + fw["instant"] * 1000 / ms[0]
                 + fw["energy"] * 1000 / ms[1] + fw["persist"] * 1000 / ms[2])
        boards = ", ".join("%s ~%.0f%%" % (b, per_s * k / 1e4) for b, k in BOARD_SLOWDOWN)
        print("  %s, per second of meter time (%d idle polls and the schedule above):"
              % (r["chip"], LOOP_POLLS_PER_S))
        print("    firmware %.0f us = %.2f%% of this host's CPU; at the reported board ratios: %s"
              % (per_s, per_s / 1e4, boards))
    print("  'firmw.' = total - chip sim: engine, driver and the fake bus's Python glue")
    print("  (a board's machine.SPI is C; its wire time at <= 1 MHz, 30-60 us per register,")
    print("  is not counted);")
    print("  persist includes littlefs and the block device, Python on a file here (C on a board)")


FLASH_DAY_BENCH = ENGINE_COMMON + r"""
CHIP = "@CHIP@"
HOURS = @HOURS@
STEP = @STEP@
READ_EVERY = @READ@
REGS = [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (0, 2), (0, 3)]

dev, store = mount("@DIR@/day-" + CHIP + ".img", "/flash")
clock = VirtualClock(1000)
e, _ = build(CHIP, clock, store)
regs = [r for r in REGS if r[1] <= e.phases]
w0, e0, p0, b0 = store.writes, dev.erases, dev.programs, dev.prog_bytes
reveal = 0
t0 = clock.now_ms()
end = t0 + int(HOURS * 3600000)
k = 0
next_read = t0 + READ_EVERY
while clock.now_ms() < end:
    clock.advance(STEP)
    now = clock.now_ms()
    e.poll(now)
    if now >= next_read:  # a head-end reads every energy register
        k += 1
        # at no fixed phase of the persist schedule: 0..59 s late
        next_read = t0 + (k + 1) * READ_EVERY + (k * 7919) % 60000
        n0 = store.writes
        for q, p in regs:
            e.energy_wh(q, p, now)
        reveal += store.writes - n0
out = {"chip": CHIP, "hours": HOURS, "writes": store.writes - w0, "reveal": reveal,
       "erases": dev.erases - e0, "programs": dev.programs - p0,
       "bytes": dev.prog_bytes - b0, "record": 13 + 8 * 4 * (e.phases + 1),
       "wh": e.totals[0][0] // 1000000, "persist_ms": eng.PERSIST_MS,
       "reveal_gap_ms": eng.REVEAL_GAP_MS}
# the same record on littlefs mounted with progsize=256 (as rp2 boards mount it): 200 writes
dev2, store2 = mount("@DIR@/p256-" + CHIP + ".img", "/flash256", progsize=256)
clock2 = VirtualClock(1000)
e2, _ = build(CHIP, clock2, store2)
w, er = store2.writes, dev2.erases
while store2.writes - w < 200:
    clock2.advance(eng.PERSIST_MS)
    e2.poll(clock2.now_ms())
out["p256_erases_per_write"] = (dev2.erases - er) / (store2.writes - w)
print(json.dumps(out))
"""

ERASE_CYCLES = 100000
FLASH_BLOCK = 4096
# (label, filesystem bytes, littlefs progsize of the board's mount)
FLASH_SIZES = (("ESP32, 4 MB partition, progsize 32", 4 * 1024 * 1024, 32),
               ("Pico (RP2040), 1.4 MiB fs, progsize 256", 352 * FLASH_BLOCK, 256))


def bench_flash_day(hours=24.0, step_s=20, read_every_s=900):
    import shutil

    tmp = tempfile.mkdtemp(prefix="bench-flash-")
    res = []
    try:
        for chip in ("atm90e32", "ade7953"):
            code = (FLASH_DAY_BENCH.replace("@CHIP@", chip).replace("@HOURS@", repr(hours))
                    .replace("@STEP@", str(step_s * 1000))
                    .replace("@READ@", str(read_every_s * 1000)).replace("@DIR@", tmp))
            p = _micropython(code)
            out, err = p.communicate(timeout=600)
            if p.returncode != 0:
                print("flash writes bench failed:", err[-600:])
                return
            res.append(json.loads(out.strip().split("\n")[-1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    scale = 24.0 / hours
    print("Flash writes per simulated day (Engine.poll every %d s of meter time, no sleeping;"
          % step_s)
    print("230 V 10 A pf 0.95 per phase; a head-end reads every energy register every %d min;"
          % (read_every_s // 60))
    print("littlefs as the virtual meter mounts it: 4 KB blocks, prog size 32 B, 128 B cache)%s:"
          % ("" if scale == 1 else "; %.0f h simulated, scaled x%.0f" % (hours, scale)))
    per_write = {}
    for r in res:
        w = r["writes"]
        per_write[r["chip"]] = r["erases"] / w
        print("  %-8s record %3d B: %5.0f writes/day (%.0f on schedule, %.0f before a reveal);"
              % (r["chip"], r["record"], w * scale, (w - r["reveal"]) * scale,
                 r["reveal"] * scale))
        print("           per write %.2f erases, %.1f programs, %.0f B programmed; "
              "%.0f erases/day (%.0f kWh counted)"
              % (r["erases"] / w, r["programs"] / w, r["bytes"] / w, r["erases"] * scale,
                 r["wh"] * scale / 1000))
        print("           with progsize=256 (rp2's mount): %.2f erases per write"
              % r["p256_erases_per_write"])
    sched = 86400000 // res[0]["persist_ms"]
    worst = sched + 86400000 // res[0]["reveal_gap_ms"]
    print("  no client: %d writes/day (one per PERSIST_MS); a client reading energy nonstop: at"
          % sched)
    print("  most %d/day (one more per REVEAL_GAP_MS)" % worst)
    print("Flash life (assumptions: %d erase cycles per 4 KB block; littlefs spreads erases over"
          % ERASE_CYCLES)
    print("every block not holding static files (dynamic wear levelling; MicroPython relocates")
    print("metadata pairs every 100 erases, block_cycles); only the energy record is written;")
    print("erases per write as measured above for the board's progsize):")
    for label, size, prog in FLASH_SIZES:
        blocks = size // FLASH_BLOCK
        cells = []
        for r in res:
            epw = per_write[r["chip"]] if prog == 32 else r["p256_erases_per_write"]
            per_day = r["writes"] * scale * epw
            cells.append("%s %s y (nonstop reads %s y)"
                         % (r["chip"], _years(blocks * ERASE_CYCLES / per_day),
                            _years(blocks * ERASE_CYCLES / (worst * epw))))
        print("  %-40s %s" % (label + " (%d blocks):" % blocks, "; ".join(cells)))


def _years(days):
    y = days / 365.0
    return "%.0f" % y if y >= 10 else "%.1f" % y


# ------------------------------------------------------------------ boards: memory budget
# Free GC heap after boot of stock MicroPython (design/platform.md; the PSRAM figure is what
# the SPIRAM firmware reports for a 4 MB PSRAM, not measured here).
BOARD_FREE_KB = (("ESP32 without PSRAM", 110), ("ESP32 with 4 MB PSRAM", 4000),
                 ("Raspberry Pi Pico (RP2040)", 192))
HEADROOM = 1.25  # stock firmware "suffices" when the free heap is >= 1.25 x what is needed
LP_DAYS = 40
LP_END = "2026-03-01T00:00:00"
LP_ROWS = LP_DAYS * 96 + 1  # the seeded rows + the one the meter captures at start


def _deployed_sizes():
    """{board: (module count, .mpy bytes, main.py bytes)} as tools/deploy.py builds them."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import deploy

    out = {}
    for board in ("esp32", "rp2040"):
        files = deploy.build(board)
        mpy = [f for p, f in files.items() if p.endswith(".mpy")]
        out[board] = (len(mpy), sum(os.path.getsize(f) for f in mpy),
                      os.path.getsize(files["main.py"]))
    return out


def _lp_session(seed, heap, extra, tmp):
    """Start a meter on a copy of the seeded state (HDLC only: a board has no TCP) and run
    a management session (HLS-GMAC, ciphered) that reads the object list and the whole load
    profile. Returns (ready line, rows read) or (ready line or None, None) if it failed."""
    import shutil

    sys.path.insert(0, os.path.join(ROOT, "host_tests"))
    import clients as cl
    import running_meter as rm

    run = tempfile.mkdtemp(prefix="lp-", dir=tmp)
    state = os.path.join(run, "state")
    shutil.copytree(seed, state)
    try:
        m = rm.start_meter(run, heap="%dwK" % heap, tcp="off", state=state,
                           extra_args=["--start-time", LP_END] + list(extra))
    except rm.MeterStartError:
        return None, None
    rows = None
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # gurux prints on stdout
            with cl.GuruxClient("hdlc", m.serial, cl.MANAGEMENT, invocation_counter=1,
                                timeout=20) as g:
                g.object_list()
                lp = g.make_object("1.0.99.1.0.255", 7)
                g.read_object(lp, 3)
                g.read_object(lp, 2)
                rows = len(lp.buffer)
    except Exception:
        rows = None
    finally:
        m.stop(check=False)
        shutil.rmtree(run, ignore_errors=True)
    if not m.alive() and m.returncode not in (0, None):
        rows = None  # died (MemoryError at shutdown counts too)
    return m.ready, rows


def _smallest_lp_heap(seed, extra, tmp, lo=40, hi=320):
    """Binary search (wK) for the smallest heap at which the session reads every row."""
    ready, rows = _lp_session(seed, hi, extra, tmp)
    if rows != LP_ROWS:
        return None, ready
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if _lp_session(seed, mid, extra, tmp)[1] == LP_ROWS:
            hi = mid
        else:
            lo = mid
    return hi, ready


QSTR_POOL = r"""
import gc
import micropython
micropython.qstr_info()
import app, optical, rs485, board, chip_link, flash, load_spec
from drivers import atm90e32
from meter import profile_log
gc.collect()
micropython.qstr_info()
"""


def _qstr_pool_bytes():
    """RAM of the qstrs the firmware's .mpy files intern when imported (the meter's modules,
    as the virtual meter imports them): what a frozen build keeps in flash instead."""
    import re

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import virtual_meter

    env = dict(os.environ)
    env["MICROPYPATH"] = virtual_meter.build_mpy()
    mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    out = subprocess.run([mp, "-c", QSTR_POOL], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    total = [int(x) for x in re.findall(r"n_total_bytes=(\d+)", out)]
    n = [int(x) for x in re.findall(r"n_qstr=(\d+)", out)]
    if len(total) != 2:
        return None, None
    return total[1] - total[0], n[1] - n[0]


def bench_boards():
    import shutil

    sizes = _deployed_sizes()
    print("Boards: memory budget (docs/boards.md)")
    print("  deployed firmware (tools/deploy.py; viper modules for the board's CPU, the rest")
    print("  plain bytecode; main.py as source):")
    for board, (n, total, main_py) in sizes.items():
        print("    %-7s %2d .mpy files, %6d bytes (+ main.py %d bytes)" % (board, n, total,
                                                                          main_py))
    tmp = tempfile.mkdtemp(prefix="bench-boards-")
    try:
        seed = os.path.join(tmp, "seed")
        p = subprocess.run([PY, os.path.join(ROOT, "tools", "seed_history.py"), "--state", seed,
                            "--days", str(LP_DAYS), "--end", LP_END], capture_output=True,
                           text=True, timeout=900)
        if p.returncode != 0:
            print("  seed_history failed:", p.stderr[-500:])
            return
        need = {}
        for key, label, extra in (("frozen", "firmware in place (ROMFS image)", ()),
                                  ("stock", "firmware .mpy in the heap (stock build)",
                                   ("--mpy-in-heap",))):
            k, ready = _smallest_lp_heap(seed, extra, tmp)
            need[key] = k
            boot = ready["heap_used"] / 2048.0 if ready else float("nan")
            print("  %s:" % label)
            print("    heap after boot: %.0f KB on a 32-bit board (%d bytes on this 64-bit "
                  "host / 2)" % (boot, ready["heap_used"] if ready else 0))
            if k is None:
                print("    the 40-day session fails even at 320wK")
            else:
                print("    smallest --heap for a management session downloading the %d-row"
                      % LP_ROWS)
                print("    load profile over HDLC: %dwK (high-water mark incl. fragmentation,"
                      " +-2wK)" % k)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    qbytes, nq = _qstr_pool_bytes()
    need["romfs"] = need["frozen"]
    if qbytes is not None and need["frozen"] is not None:
        # a frozen build keeps the qstrs in flash too; converted like every other figure
        # (64-bit bytes / 2), which undercounts the saving (the strings are as long on a
        # 32-bit board): a conservative estimate
        need["frozen"] = need["romfs"] - int(qbytes / 2048.0)
        print("  the same firmware frozen into a custom build keeps its qstr pool in flash as")
        print("  well: %d names, %d bytes on this host (~%d KB on a board) interned in RAM by"
              % (nq, qbytes, qbytes // 2048))
        print("  ROMFS/.mpy loading; frozen-build estimate = %dwK - %dwK = %dwK"
              % (need["romfs"], qbytes // 2048, need["frozen"]))
    print("  per board (suffices = free heap >= %.2f x the smallest working heap):" % HEADROOM)
    for label, free in BOARD_FREE_KB:
        cells = []
        for key, name in (("stock", "stock .mpy"), ("romfs", "ROMFS"),
                          ("frozen", "frozen (est.)")):
            k = need[key]
            if k is None:
                cells.append("%s: fails" % name)
                continue
            ratio = free / float(k)
            verdict = ("suffices" if ratio >= HEADROOM else
                       "fits, headroom < 25 %" if ratio >= 1 else "does not fit")
            cells.append("%s: %s (%.0f %% headroom)" % (name, verdict, (ratio - 1) * 100))
        print("    %-28s %5d KB free: %s" % (label, free, "; ".join(cells)))


# ------------------------------------------------------------------ load profile download
PROFILE_LN = (1, 0, 99, 1, 0, 255)
PROFILE_END = "2026-03-01T00:00:00"
PROFILE_PDU = 1024
PROFILE_HEAP_WINDOW = (90, 140)  # wK, searched in steps of 2 as host_tests/test_profile_heap
BAUDS = (9600, 115200)


def _profile_seed(days, tmp):
    """A state dir seeded with `days` days ending at PROFILE_END (written in /dev/shm when
    there is one: seed_history flushes every block, 10-25 s for 40 days on a disk)."""
    import shutil

    dst = os.path.join(tmp, "seed%d" % days)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = os.path.join(tempfile.mkdtemp(prefix="bench-seed-", dir=shm), "s") if shm else dst
    try:
        p = subprocess.run([PY, os.path.join(ROOT, "tools", "seed_history.py"), "--state", work,
                            "--days", str(days), "--end", PROFILE_END], capture_output=True,
                           text=True, timeout=900)
        if p.returncode != 0:
            raise RuntimeError("seed_history failed: " + p.stderr[-400:])
        if work != dst:
            shutil.copytree(work, dst)
    finally:
        if work != dst:
            shutil.rmtree(os.path.dirname(work), ignore_errors=True)
    return dst


class _CountingLine:
    """A pyserial port that counts the bytes it reads and writes (dlms_client's HDLC
    transport keeps it as ``ser``)."""

    def __init__(self, ser):
        self.ser = ser
        self.rx = 0
        self.tx = 0

    @property
    def in_waiting(self):
        return self.ser.in_waiting

    def read(self, n=1):
        b = self.ser.read(n)
        self.rx += len(b)
        return b

    def write(self, b):
        self.tx += len(b)
        return self.ser.write(b)

    def __getattr__(self, name):
        return getattr(self.ser, name)


def _profile_meter(seed, tmp, heap=None):
    """A meter (TCP + pty, the defaults) on a fresh copy of `seed`, started at the seed's end.
    Returns the running_meter.Meter, or None if it did not start."""
    import shutil

    sys.path.insert(0, os.path.join(ROOT, "host_tests"))
    import running_meter as rm

    run = tempfile.mkdtemp(prefix="pm-", dir=tmp)
    state = os.path.join(run, "state")
    shutil.copytree(seed, state)
    try:
        return rm.start_meter(run, heap=None if heap is None else "%dwK" % heap, state=state,
                              extra_args=["--start-time", PROFILE_END])
    except rm.MeterStartError:
        return None


def _profile_download(meter, transport, pdu=PROFILE_PDU):
    """One reader association reading the whole load profile. Returns (rows, seconds of the
    GET alone, bytes received, bytes sent during it; the byte counts are HDLC only)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import dlms_client as dc

    if transport == "tcp":
        t = dc.TcpTransport("127.0.0.1", meter.tcp, 32, timeout=10)
    else:
        t = dc.HdlcTransport(meter.serial, 32, timeout=10)
    c = dc.Client(t, dc.MECH_LLS, password=b"12345678", max_pdu=pdu)
    t.open()
    try:
        c.associate()
        line = None
        if transport == "hdlc":
            line = t.ser = _CountingLine(t.ser)
        t0 = time.perf_counter()
        raw = c.get_raw(7, PROFILE_LN, 2)
        dt = time.perf_counter() - t0
        rx, tx = (line.rx, line.tx) if line else (0, 0)
        c.release()
    finally:
        t.close()
    # array header: 01, then the A-XDR length of the row count
    if raw[0] != 0x01:
        raise RuntimeError("the buffer is not an array: " + raw[:8].hex())
    n = raw[1]
    if n & 0x80:
        n = int.from_bytes(raw[2:2 + (n & 0x7F)], "big")
    return n, dt, rx, tx


def _profile_heap_works(seed, days, k, tmp):
    """(ok, ready line or None): a 1-or-40-day HDLC download at k wK, the meter alive after
    and stopping cleanly (the criterion of host_tests/test_profile_heap.py)."""
    m = _profile_meter(seed, tmp, heap=k)
    if m is None:
        return False, None
    ok = False
    try:
        ok = _profile_download(m, "hdlc")[0] == days * 96 + 1 and m.alive()
    except Exception:
        ok = False
    finally:
        rc = m.stop(check=False)
    return ok and rc == 0, m.ready


def _profile_smallest_heap(seed, days, tmp):
    """Binary search in steps of 2wK: (smallest heap, its ready line) or (None, None)."""
    lo, hi = PROFILE_HEAP_WINDOW
    ok, ready = _profile_heap_works(seed, days, hi, tmp)
    if not ok:
        return None, None
    if _profile_heap_works(seed, days, lo, tmp)[0]:
        return lo, None  # works at the bottom of the window: "<= lo"
    while hi - lo > 2:
        mid = (lo + hi) // 2
        mid -= mid % 2
        ok, r = _profile_heap_works(seed, days, mid, tmp)
        if ok:
            hi, ready = mid, r
        else:
            lo = mid
    return hi, ready


def bench_profile(runs=3):
    import shutil

    tmp = tempfile.mkdtemp(prefix="bench-profile-")
    try:
        seeds = {d: _profile_seed(d, tmp) for d in (1, 40)}
        m = _profile_meter(seeds[40], tmp)
        if m is None:
            print("Load profile download: the meter did not start")
            return
        res = {}
        try:
            for transport in ("tcp", "hdlc"):
                res[transport] = [_profile_download(m, transport) for _ in range(runs)]
        finally:
            m.stop(check=False)
        rows = res["hdlc"][0][0]
        _n, _dt, rx, tx = res["hdlc"][0]
        per_row = (rx + tx) / float(rows)
        print("Load profile download, the whole 40-day profile (%d rows) at PDU %d, reader"
              % (rows, PROFILE_PDU))
        print("(LLS), tools/dlms_client.py; GET and GET-Next blocks only, median of %d:" % runs)
        print("  on the wire over HDLC (128-byte frames): %d bytes from the meter + %d to it ="
              % (rx, tx))
        print("  %.1f bytes per row; a serial line (10 bits per byte) carries %s" % (
            per_row, ", ".join("%.1f rows/s at %d baud" % (b / 10.0 / per_row, b)
                               for b in BAUDS)))
        for transport, label in (("tcp", "TCP (wrapper)"), ("hdlc", "HDLC on the pty")):
            rates = sorted(r[0] / r[1] for r in res[transport])
            rate = rates[len(rates) // 2]
            cells = ", ".join("%.1f x the %d-baud line" % (rate / (b / 10.0 / per_row), b)
                              for b in BAUDS)
            print("  %-16s %6.0f rows/s (%.2f s) = %s" % (label, rate, rows / rate, cells))
        print("  (the meter's rate over what the line carries: above 1 the line, not the meter,")
        print("  limits a download; a board's CPU is 150-250x slower than this host)")
        print("Smallest --heap for a load-profile download over HDLC (reader, PDU 1024; binary")
        print("search in %d..%dwK, steps of 2; the meter alive after and stopping cleanly):"
              % PROFILE_HEAP_WINDOW)
        for days in (1, 40):
            k, ready = _profile_smallest_heap(seeds[days], days, tmp)
            if k is None:
                print("  %2d day(s), %4d rows: fails even at %dwK" % (
                    days, days * 96 + 1, PROFILE_HEAP_WINDOW[1]))
                continue
            used = ready["heap_used"] if ready else None
            boot = ("heap after boot %d bytes = %.1fwK" % (used, used / 2048.0)
                    if used else "heap after boot not measured")
            print("  %2d day(s), %4d rows: %s%dwK; %s, so %.1fwK left for the session"
                  % (days, days * 96 + 1, "<= " if ready is None else "", k, boot,
                     k - used / 2048.0 if used else float("nan")))
        print("  (1wK = 2048 bytes on this 64-bit host, ~1 KB on a 32-bit board; near the limit")
        print("  start-up succeeds or not depending on heap fragmentation, not monotonically)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer iterations")
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)  # one section, by name
    a = p.parse_args()
    q = a.quick
    sections = (
        ("get", lambda: bench_get_cpu(batches=3 if q else 7, per_batch=100 if q else 300)),
        ("list", lambda: bench_list_and_blocks(batches=3 if q else 7,
                                               per_batch=50 if q else 200)),
        ("link", lambda: bench_link(1000 if q else 5000)),
        ("crypto", lambda: bench_crypto(4000 if q else 20000, 100 if q else 300)),
        ("hls", lambda: bench_hls(5 if q else 15)),
        ("heap", bench_heap),
        ("engine", lambda: bench_engine_cpu(100 if q else 300)),
        ("flash", lambda: bench_flash_day(hours=6.0 if q else 24.0)),
        ("boards", bench_boards),
        ("profile", lambda: bench_profile(1 if q else 3)),
    )
    if a.only is not None and a.only not in dict(sections):
        p.error("--only: one of " + ", ".join(name for name, _ in sections))
    for name, run in sections:
        if a.only is None or a.only == name:
            run()


if __name__ == "__main__":
    main()
