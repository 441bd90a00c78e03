#!/usr/bin/env python3
"""Soak and load test of the virtual meter (``make soak``; docs/robustness.md).

    .venv/bin/python tools/soak.py [--sessions N] [--seed S] [--heap 110wK]
        [--concurrent C] [--concurrent-time S] [--json FILE] [--keep-going]

Starts a fresh virtual meter (tools/virtual_meter.py, default heap 110wK) and runs:

1. **Soak**: N sessions one after another, chosen by a seeded RNG: client (public 16, no
   authentication; reader 32, LLS; management 1, HLS-GMAC with every APDU authenticated
   and encrypted), transport (HDLC on the pty, TCP wrapper), and what the session does:
   read a few attributes, the object list in blocks (the client proposes a 256-octet max
   PDU, so long values come in several blocks), the load profile with entry access in
   blocks, a with-list of the registers -- or abort in the middle of a block transfer (TCP:
   the socket is closed; HDLC: DISC, or nothing at all and the next session of that client
   starts with SNRM). Every completed session must succeed: failures are counted (must be 0).
   Every 100 sessions the meter's heap is sampled after a collection, with no session
   running (see "Heap" below): it must stay flat within 1 KB.
2. **Concurrency** (``--concurrent C``): C TCP clients at once for ``--concurrent-time``
   seconds, each running sessions in a loop (associate, read, release, close). The meter
   serves at most ``MAX_TCP`` associations at once (boards/unix/board.py) and fewer when its
   heap has no room for another connection's buffers: a client beyond that is accepted and
   closed at once (ports.Server._accept), and retries. Reported: sessions per client,
   refusals, failures; every client must complete sessions (none starved) and no session
   that got a connection may fail. Before that, the capacity is probed: C connections
   opened and associated together, each then served a GET while all are held open.

Heap: the meter is started with ``DLMS_HEAP_LOG_MS`` set, a hidden diagnostic of
boards/unix/main.py that writes ``meter: heap used=U free=F`` on its stderr every that many
ms, right after ``gc.collect()``. A sample is the second such line after the soak paused
(no session running, the last one closed).

The clients are the project's own (tools/dlms_client.py over firmware/dlms): no test-only
library is imported. Exit status 0 when every check passed.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import dlms_client as dc  # noqa: E402
from dlms import axdr  # noqa: E402  (firmware/, put on the path by dlms_client)

PUBLIC, READER, MANAGEMENT = 16, 32, 1
LLS_PASSWORD = b"12345678"
EK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))
TITLE = bytes.fromhex("534F414B00000001")  # "SOAK" 00000001
HEAP_LOG_MS = 100
HEAP_FLAT_BYTES = 1024

LDN = dc.obis_bytes("0.0.42.0.0.255")
CLOCK = dc.obis_bytes("0.0.1.0.0.255")
ALN = dc.obis_bytes("0.0.40.0.0.255")
LP = dc.obis_bytes("1.0.99.1.0.255")
IC_OBJ = dc.obis_bytes("0.0.43.1.0.255")
REGISTERS = [(3, dc.obis_bytes(x), 2) for x in ("1.0.1.8.0.255", "1.0.2.8.0.255",
                                                 "1.0.32.7.0.255", "1.0.14.7.0.255")]

_HEAP = re.compile(r"meter: heap used=(\d+) free=(\d+)")


class Abort(Exception):
    """Raised from the block-transfer progress callback to leave mid-transfer."""


class Meter:
    """A virtual meter process with its heap diagnostic on."""

    def __init__(self, workdir, heap, extra=()):
        self.dir = workdir
        self.stderr_path = os.path.join(workdir, "meter-stderr.log")
        env = dict(os.environ)
        env["DLMS_HEAP_LOG_MS"] = str(HEAP_LOG_MS)
        argv = [sys.executable, os.path.join(ROOT, "tools", "virtual_meter.py"), "--tcp", "0",
                "--serial-link", os.path.join(workdir, "meter.tty"), "--state",
                os.path.join(workdir, "state"), "--heap", heap] + list(extra)
        self.err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.err, env=env)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the meter did not start:\n" + self.stderr()[-3000:])
        self.ready = json.loads(line)
        self.tcp = self.ready["tcp"]
        self.serial = self.ready["serial"]
        self.pid = self.ready["pid"]

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def heap_lines(self):
        return [(int(u), int(f)) for u, f in _HEAP.findall(self.stderr())]

    def heap_sample(self, timeout=10.0):
        """Heap used after a collection, idle: the second heap line from now."""
        n0 = len(self.heap_lines())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.heap_lines()
            if len(lines) >= n0 + 2:
                return lines[-1]
            time.sleep(HEAP_LOG_MS / 1000.0 / 2)
        raise RuntimeError("no heap line from the meter within %g s" % timeout)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.err.close()
        return self.proc.returncode


def make_client(meter, role, transport, ic, max_pdu=256):
    if transport == "tcp":
        t = dc.TcpTransport("127.0.0.1", meter.tcp, role, timeout=5.0)
    else:
        t = dc.HdlcTransport(meter.serial, role, timeout=5.0)
    if role == MANAGEMENT:
        c = dc.Client(t, dc.MECH_HLS_GMAC, ek=EK, ak=AK, system_title=TITLE,
                      invocation_counter=ic, max_pdu=max_pdu)
    elif role == READER:
        c = dc.Client(t, dc.MECH_LLS, password=LLS_PASSWORD, max_pdu=max_pdu)
    else:
        c = dc.Client(t, max_pdu=max_pdu)
    return t, c


OPS = ("basic", "object_list", "profile", "registers", "abort")


class Soak:
    def __init__(self, meter, seed):
        self.meter = meter
        self.rng = random.Random(seed)
        self.ic = 1  # the management client's next invocation counter
        self.hdlc_owner = None  # client SAP left connected on the HDLC link (silent abort)
        self.failures = []
        self.counts = {}

    def pick(self):
        rng = self.rng
        role = rng.choice((PUBLIC, PUBLIC, READER, READER, MANAGEMENT))
        transport = rng.choice(("tcp", "hdlc"))
        if transport == "hdlc" and self.hdlc_owner is not None:
            role = self.hdlc_owner  # one client at a time on the link: it starts again
        op = rng.choice(OPS)
        if role == PUBLIC and op in ("profile", "registers"):
            op = "basic"  # the public client sees neither
        return role, transport, op

    def one(self, i):
        role, transport, op = self.pick()
        key = "%s/%s/%s" % ({16: "public", 32: "reader", 1: "mgmt"}[role], transport, op)
        self.counts[key] = self.counts.get(key, 0) + 1
        t, c = make_client(self.meter, role, transport, self.ic)
        silent = False
        try:
            t.open()
            if transport == "hdlc":
                self.hdlc_owner = None
            c.associate()
            if op == "basic":
                c.get(1, LDN, 2)
                c.get(8, CLOCK, 2)
            elif op == "object_list":
                v = c.get(15, ALN, 2)
                assert v[0] == axdr.ARRAY and len(v[1]) > 5, v
            elif op == "profile":
                par = (axdr.STRUCTURE, [(axdr.DOUBLE_LONG_UNSIGNED, 1),
                                        (axdr.DOUBLE_LONG_UNSIGNED, 0),
                                        (axdr.LONG_UNSIGNED, 1), (axdr.LONG_UNSIGNED, 0)])
                c.get(7, LP, 2, 2, par)
            elif op == "registers":
                for r in c.get_list(REGISTERS):
                    if isinstance(r, Exception):
                        raise r
            else:  # abort in the middle of a block transfer

                def progress(blocks, data, last):
                    if blocks == 1 and not last:
                        raise Abort()

                try:
                    c.get(15, ALN, 2, progress=progress)
                    raise AssertionError("the object list came in one block")
                except Abort:
                    pass
                if transport == "tcp":
                    t.close()  # no RLRQ, the socket just goes
                elif self.rng.random() < 0.5:
                    t.connected = False  # no DISC either: the link stays connected
                    silent = True
                    self.hdlc_owner = role
                    t.close()
                else:
                    t.close()  # DISC in the middle of the transfer
                return
            c.release()
        except Exception as e:  # noqa: BLE001 -- every kind of failure is counted
            self.failures.append({"session": i, "what": key, "error": "%s: %s"
                                  % (type(e).__name__, e)})
        finally:
            if c.ctx is not None:
                self.ic = max(self.ic, c.next_ic)
            if not silent:
                t.close()

    def run(self, n, heap_every=100, progress=True):
        heap = [(0,) + self.meter.heap_sample()]
        t0 = time.monotonic()
        for i in range(1, n + 1):
            self.one(i)
            if not self.meter.alive():
                self.failures.append({"session": i, "what": "meter", "error": "the meter died"})
                break
            if i % heap_every == 0 or i == n:
                if self.hdlc_owner is not None:  # close the link so that nothing is held
                    t, c = make_client(self.meter, self.hdlc_owner, "hdlc", self.ic)
                    t.open()
                    t.close()
                    self.hdlc_owner = None
                used, free = self.meter.heap_sample()
                heap.append((i, used, free))
                if progress:
                    print("soak: %6d sessions  %5.1f/s  failures %d  heap used %d free %d"
                          % (i, i / (time.monotonic() - t0), len(self.failures), used, free),
                          flush=True)
        return heap, time.monotonic() - t0


# ------------------------------------------------------------------------------ concurrency
def _tcp_session(meter, role, stats, lock):
    """One short session; 'ok', 'refused' (closed at connect, before the AARE) or raises."""
    t, c = make_client(meter, role, "tcp", 0, max_pdu=1024)
    try:
        t.open()
        try:
            c.associate()
        except dc.NoAnswer:
            return "refused"
        c.get(1, LDN, 2)
        c.get(8, CLOCK, 2)
        c.release()
        return "ok"
    finally:
        t.close()


def concurrency(meter, clients, seconds, seed):
    """C clients looping sessions for `seconds`; per-client results."""
    lock = threading.Lock()
    stats = [{"ok": 0, "refused": 0, "failed": 0, "errors": []} for _ in range(clients)]
    stop = time.monotonic() + seconds

    def worker(k):
        rng = random.Random(seed * 1000 + k)
        role = PUBLIC if k % 2 == 0 else READER
        while time.monotonic() < stop:
            try:
                r = _tcp_session(meter, role, stats, lock)
            except Exception as e:  # noqa: BLE001
                r = "failed"
                stats[k]["errors"].append("%s: %s" % (type(e).__name__, e))
            stats[k][r] += 1
            if r == "refused":
                time.sleep(0.02 + 0.05 * rng.random())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return stats


def capacity(meter, clients):
    """Open `clients` TCP associations at once and hold them; how many were accepted, and
    does every accepted one still get its answers while all are open?"""
    held = []
    refused = 0
    for k in range(clients):
        t, c = make_client(meter, PUBLIC if k % 2 == 0 else READER, "tcp", 0, max_pdu=1024)
        t.open()
        try:
            c.associate()
            held.append((t, c))
        except dc.NoAnswer:
            refused += 1
            t.close()
    served = 0
    for t, c in held:
        c.get(1, LDN, 2)
        served += 1
    for t, c in held:
        c.release()
        t.close()
    return {"opened": clients, "associated": len(held), "refused": refused,
            "served_while_all_open": served}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--heap", default="110wK")
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--concurrent-time", type=float, default=30.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    a = ap.parse_args(argv)
    work = a.dir or tempfile.mkdtemp(prefix="dlms-soak-")
    os.makedirs(work, exist_ok=True)
    meter = Meter(work, a.heap)
    print("soak: meter ready: %s (heap %s), work dir %s" % (meter.ready, a.heap, work),
          flush=True)
    report = {"sessions": a.sessions, "seed": a.seed, "heap_option": a.heap,
              "ready": meter.ready}
    ok = True
    try:
        s = Soak(meter, a.seed)
        heap, secs = s.run(a.sessions)
        # the first sample after 100 sessions is the baseline: buffers allocated on first
        # use (one per kind of request) are in it
        base = heap[1][1] if len(heap) > 1 else heap[0][1]
        later = [u for (_i, u, _f) in heap[1:]]
        spread = (max(later) - min(later)) if later else 0
        report.update({"failures": s.failures, "heap": heap, "seconds": round(secs, 1),
                       "sessions_per_s": round(a.sessions / secs, 1), "mix": s.counts,
                       "heap_baseline": base, "heap_spread_after_100": spread})
        print("soak: %d sessions in %.0f s, %d failure(s); heap used after collection: "
              "%d at start, %d after 100, spread %d bytes over the %d later samples"
              % (a.sessions, secs, len(s.failures), heap[0][1], base, spread, len(later)))
        for f in s.failures[:20]:
            print("  failure:", f)
        if s.failures or spread > HEAP_FLAT_BYTES:
            ok = False
        if a.concurrent:
            cap = capacity(meter, a.concurrent)
            print("concurrency: %d connections opened at once: %d associated, %d refused at "
                  "connect, %d served while all were open" % (
                      cap["opened"], cap["associated"], cap["refused"],
                      cap["served_while_all_open"]))
            st = concurrency(meter, a.concurrent, a.concurrent_time, a.seed)
            sessions = [x["ok"] for x in st]
            refused = sum(x["refused"] for x in st)
            failed = sum(x["failed"] for x in st)
            starved = [k for k, x in enumerate(st) if x["ok"] == 0]
            print("concurrency: %d clients for %.0f s: %d sessions (per client min %d, max %d)"
                  ", %d refused at connect (retried), %d failed, %d starved"
                  % (a.concurrent, a.concurrent_time, sum(sessions), min(sessions),
                     max(sessions), refused, failed, len(starved)))
            for x in st:
                for e in x["errors"][:3]:
                    print("  failure:", e)
            report["capacity"] = cap
            report["concurrency"] = {"clients": a.concurrent, "seconds": a.concurrent_time,
                                     "per_client": [{"ok": x["ok"], "refused": x["refused"],
                                                     "failed": x["failed"]} for x in st],
                                     "starved": starved, "failed": failed, "refused": refused}
            if failed or starved or cap["served_while_all_open"] != cap["associated"]:
                ok = False
        if not meter.alive():
            ok = False
        err = meter.stderr()
        bad = [line for line in err.splitlines()
               if ("fatal" in line or "error in" in line)]
        report["stderr_errors"] = bad[:50]
        if bad:
            print("meter stderr: %d error line(s), e.g. %s" % (len(bad), bad[:5]))
    finally:
        rc = meter.stop()
        report["exit"] = rc
        if rc != 0:
            ok = False
            print("the meter exited with %r" % rc)
    report["ok"] = ok
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
