"""Black-box fuzzing of the running virtual meter over the pty (HDLC) and TCP (wrapper):
mutations of real recorded sessions (host_tests/fuzz/sessions: gurux-dlms and dlms-cosem as
public, reader and management clients), with a seeded RNG.

Mutations (one to three per burst): bit flips (HDLC: the frame is then dropped for its FCS;
also with HCS/FCS recomputed, so that the corruption reaches the association), truncation,
length lies (HDLC format length, wrapper length), duplicated and reordered frames, random
bytes between frames, the whole session sent without waiting for answers, and abrupt
disconnects in the middle of a block transfer (TCP: the socket is closed; HDLC: the client
goes silent).

After every burst a fresh valid session must succeed (liveness): on the burst's transport
(HDLC: with the burst's client address, whose SNRM must reset the link it left behind), and
a public TCP read. At the end: the meter is still running, its stderr has no "fatal" line
and no "error in" line other than a peer that went away while the meter wrote to it, and
the heap after collection (the DLMS_HEAP_LOG_MS diagnostic of boards/unix/main.py) has not
grown by more than HEAP_GROWTH bytes since the first bursts.

DLMS_BLACKBOX_SEED (default 8) and DLMS_BLACKBOX_TIME (seconds, default 45) reproduce or
lengthen a run; a failure names the burst (seed, number, session, mutations).
"""

import os
import random
import re
import select
import socket
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fuzz"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))

import dlms_client as dc  # noqa: E402
from record_sessions import sessions  # noqa: E402
from running_meter import start_meter  # noqa: E402

SEED = int(os.environ.get("DLMS_BLACKBOX_SEED", "8"))
BUDGET_S = float(os.environ.get("DLMS_BLACKBOX_TIME", "45"))
HEAP_GROWTH = 4096  # one-time buffers (long SET reassembly 2 KB, longer with-lists) fit
LDN = dc.obis_bytes("0.0.42.0.0.255")
_HEAP = re.compile(r"meter: heap used=(\d+)")


def _fcs(b):
    from dlms.fcs import fcs16

    return fcs16(b, 0, len(b))


# ------------------------------------------------------------------------------ frames
def hdlc_parts(frame):
    """(header end incl. control, has info) of a raw HDLC frame with flags, or None."""
    f = frame
    if len(f) < 9 or f[0] != 0x7E:
        return None
    i = 3
    while i < len(f) and not f[i] & 1:
        i += 1
    i += 1
    while i < len(f) and not f[i] & 1:
        i += 1
    i += 1  # past the source address
    if i >= len(f) - 3:
        return None
    return i + 1, len(f) > i + 4


def refix(frame):
    """Recompute the HCS and FCS of a frame whose content was changed."""
    f = bytearray(frame)
    p = hdlc_parts(f)
    if p is None:
        return bytes(f)
    hend, info = p
    if info and hend + 2 <= len(f) - 3:
        h = _fcs(f[1:hend])
        f[hend] = h & 0xFF
        f[hend + 1] = h >> 8
    c = _fcs(f[1:-3])
    f[-3] = c & 0xFF
    f[-2] = c >> 8
    return bytes(f)


def flip(rng, b, start=0):
    b = bytearray(b)
    if len(b) > start:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(start, len(b))
            b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def mutate(rng, chunks, transport):
    """One to three mutations of a session's client chunks -> (chunks, names, options)."""
    chunks = list(chunks)
    names = []
    opts = {"pipeline": False, "abort": None}
    for _ in range(rng.randint(1, 3)):
        if not chunks:
            break
        m = rng.choice(("flip", "flip_valid", "truncate", "length", "duplicate", "reorder",
                        "junk", "pipeline", "abort", "abort"))
        k = rng.randrange(len(chunks))
        c = chunks[k]
        if m == "flip":
            chunks[k] = flip(rng, c)
        elif m == "flip_valid":
            if transport == "hdlc":
                p = hdlc_parts(c)
                if p is None or not p[1]:
                    continue
                chunks[k] = refix(flip(rng, c[:-3], p[0] + 2) + c[-3:])
            else:
                chunks[k] = flip(rng, c, 8)  # the APDU (a wrapper has no checksum)
        elif m == "truncate":
            chunks[k] = c[:rng.randrange(len(c))]
        elif m == "length":
            b = bytearray(c)
            if transport == "hdlc" and len(b) > 3:
                n = ((b[1] & 7) << 8 | b[2]) + rng.choice((-5, -1, 1, 3, 200, 1500))
                n = max(0, min(0x7FF, n))
                b[1] = (b[1] & 0xF8) | (n >> 8)
                b[2] = n & 0xFF
                if rng.random() < 0.5:
                    b = bytearray(refix(b))
            elif len(b) >= 8:
                n = (b[6] << 8 | b[7]) + rng.choice((-3, -1, 1, 7, 1000, 60000))
                n = max(0, min(0xFFFF, n))
                b[6], b[7] = n >> 8, n & 0xFF
            chunks[k] = bytes(b)
        elif m == "duplicate":
            chunks.insert(k, c)
        elif m == "reorder":
            j = rng.randrange(len(chunks))
            chunks[k], chunks[j] = chunks[j], chunks[k]
        elif m == "junk":
            junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
            if transport == "hdlc" and rng.random() < 0.5:
                junk += b"\x7e"
            chunks.insert(k, junk)
        elif m == "pipeline":
            opts["pipeline"] = True
        elif m == "abort":
            # stop right before the client acknowledges the first block of a transfer
            for j, x in enumerate(chunks):
                if (b"\xc0\x02" in x[:16]) or (transport == "hdlc" and len(x) < 12
                                                and j > 2 and x[5:6] and x[5] & 0x0F == 1):
                    opts["abort"] = j
                    break
            else:
                opts["abort"] = rng.randrange(len(chunks))
        names.append(m)
    return chunks, names, opts


# ------------------------------------------------------------------------------ bursts
def _drain_fd(fd, quiet_s=0.015, max_s=0.25):
    t_end = time.monotonic() + max_s
    got = 0
    while time.monotonic() < t_end:
        r, _w, _x = select.select([fd], [], [], quiet_s)
        if not r:
            break
        try:
            b = os.read(fd, 4096) if isinstance(fd, int) else fd.recv(4096)
        except (BlockingIOError, ConnectionError, OSError):
            break
        if not b:
            break
        got += len(b)
    return got


def burst_tcp(m, chunks, opts):
    s = socket.create_connection(("127.0.0.1", m.tcp), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    try:
        for j, c in enumerate(chunks):
            if opts["abort"] is not None and j >= opts["abort"]:
                break  # the socket just closes, in the middle of the transfer
            try:
                s.sendall(c)
            except (BlockingIOError, ConnectionError, OSError):
                break
            if not opts["pipeline"]:
                _drain_fd(s)
        if opts["pipeline"]:
            _drain_fd(s, max_s=0.5)
    finally:
        s.close()


class Pty:
    def __init__(self, path):
        import serial

        self.ser = serial.Serial(path, baudrate=9600, timeout=0)
        self.ser.reset_input_buffer()

    def send(self, b):
        self.ser.write(b)
        self.ser.flush()

    def drain(self, quiet_s=0.015, max_s=0.25):
        return _drain_fd(self.ser.fileno(), quiet_s, max_s)

    def close(self):
        self.ser.close()


def burst_hdlc(m, chunks, opts):
    p = Pty(m.serial)
    try:
        for j, c in enumerate(chunks):
            if opts["abort"] is not None and j >= opts["abort"]:
                break  # silent: no DISC, the link stays with this client
            p.send(c)
            if not opts["pipeline"]:
                p.drain()
        # until the line is quiet: a pipelined session may still be answered (the liveness
        # client that follows must not read those frames as its own)
        p.drain(quiet_s=0.1, max_s=3.0)
    finally:
        p.close()


def _client_sap(chunks, transport):
    """The client SAP of a recorded session (from its first frame)."""
    c = chunks[0]
    if transport == "tcp":
        return (c[2] << 8) | c[3]
    i = 3
    while not c[i] & 1:
        i += 1
    return c[i + 1] >> 1


def live(m, transport, sap):
    """A fresh valid session must succeed (the burst's transport; HDLC with the burst's
    client address, or after a DISC from it when that client needs HLS)."""
    if transport == "hdlc":
        if sap not in (16, 32):
            from dlms import hdlc_tools

            p = Pty(m.serial)
            srv = hdlc_tools.encode_address(hdlc_tools.server_address(1, 17, 2), 2)
            p.send(hdlc_tools.frame(srv, hdlc_tools.encode_address(sap, 1), 0x53))  # DISC
            p.drain()
            p.close()
            sap = 16
        t = dc.HdlcTransport(m.serial, sap, timeout=3.0)
    else:
        t = dc.TcpTransport("127.0.0.1", m.tcp, 16, timeout=3.0)
        sap = 16
    c = dc.Client(t, dc.MECH_LLS if sap == 32 else dc.MECH_NONE,
                  password=b"12345678" if sap == 32 else None)
    t.open()
    try:
        c.associate()
        v = c.get(1, LDN, 2)
        c.release()
    finally:
        t.close()
    assert v == (9, b"MMM0000012345678"), v


@pytest.fixture(scope="module")
def fuzz_meter(tmp_path_factory):
    old = os.environ.get("DLMS_HEAP_LOG_MS")
    os.environ["DLMS_HEAP_LOG_MS"] = "500"
    try:
        m = start_meter(tmp_path_factory.mktemp("bbfuzz"))
    finally:
        if old is None:
            del os.environ["DLMS_HEAP_LOG_MS"]
        else:
            os.environ["DLMS_HEAP_LOG_MS"] = old
    yield m
    if m.alive():
        m.stop(check=False)


# EPIPE, ECONNRESET, ETIMEDOUT (MicroPython prints "OSError: 32"): a client that went away
# while the meter wrote its answer; the connection is closed, the meter goes on
_PEER_GONE = re.compile(r"OSError: (\[Errno )?(32|104|110)\b|EPIPE|ECONNRESET|ETIMEDOUT")


def _bad_stderr_lines(text):
    """'fatal' lines, and 'error in' lines whose exception is not a peer that went away."""
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        if "fatal" in line:
            bad.append(line)
        elif "error in" in line:
            block = "\n".join(lines[i:i + 8])
            if not _PEER_GONE.search(block):
                bad.append(block)
    return bad


def test_mutated_sessions_never_take_the_meter_down(fuzz_meter):
    m = fuzz_meter
    recorded = sessions()
    names = sorted(recorded)
    rng = random.Random(SEED)
    t_end = time.monotonic() + BUDGET_S
    n = 0
    heap0 = None
    tried = {}
    while time.monotonic() < t_end:
        n += 1
        name = rng.choice(names)
        _lib, _role, transport, tx, _rx = recorded[name]
        chunks = tx
        if len(chunks) > 30:
            chunks = chunks[:rng.randint(8, len(chunks))]
        chunks, muts, opts = mutate(rng, chunks, transport)
        what = "seed %d burst %d: %s %s" % (SEED, n, name, "+".join(muts))
        for x in muts:
            tried[x] = tried.get(x, 0) + 1
        try:
            if transport == "tcp":
                burst_tcp(m, chunks, opts)
            else:
                burst_hdlc(m, chunks, opts)
        except OSError as e:
            pytest.fail("%s: the transport failed: %r\n%s" % (what, e, m.stderr()[-2000:]))
        assert m.alive(), "%s: the meter died:\n%s" % (what, m.stderr()[-3000:])
        try:
            live(m, transport, _client_sap(tx, transport))
            if transport == "hdlc":
                live(m, "tcp", 16)
        except Exception as e:  # noqa: BLE001
            pytest.fail("%s: no fresh session afterwards: %r\nmeter stderr:\n%s"
                        % (what, e, m.stderr()[-3000:]))
        if n == 10:
            heaps = _HEAP.findall(m.stderr())
            heap0 = int(heaps[-1]) if heaps else None
    time.sleep(1.2)  # two more heap lines after the last burst
    err = m.stderr()
    heaps = [int(x) for x in _HEAP.findall(err)]
    print("black-box fuzz: %d bursts (%s), heap used after collection %s .. %s"
          % (n, ", ".join("%s %d" % kv for kv in sorted(tried.items())),
             heaps[:1], heaps[-1:]))
    assert n >= 20, "only %d bursts in %.0f s" % (n, BUDGET_S)
    bad = _bad_stderr_lines(err)
    assert not bad, "unexpected errors on the meter's stderr:\n%s" % "\n".join(bad[:10])
    if heap0 is not None and heaps:
        assert heaps[-1] - heap0 <= HEAP_GROWTH, (
            "heap grew from %d to %d after burst 10: %r" % (heap0, heaps[-1], heaps))
    assert m.alive()
