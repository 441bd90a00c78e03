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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer iterations")
    a = p.parse_args()
    bench_get_cpu(batches=3 if a.quick else 7, per_batch=100 if a.quick else 300)
    bench_list_and_blocks(batches=3 if a.quick else 7, per_batch=50 if a.quick else 200)
    bench_link(1000 if a.quick else 5000)
    bench_crypto(4000 if a.quick else 20000, 100 if a.quick else 300)
    bench_hls(5 if a.quick else 15)
    bench_heap()


if __name__ == "__main__":
    main()
