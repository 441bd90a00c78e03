#!/usr/bin/env python3
"""Record real client sessions with the virtual meter: what gurux-dlms and dlms-cosem send
(and what the meter answers), over TCP and HDLC, as the public, reader and management
clients. The transcripts seed the fuzz corpus (``seeds.py``) and the black-box fuzzer
(``host_tests/test_blackbox_fuzz.py``).

    .venv/bin/python host_tests/fuzz/record_sessions.py [OUT_DIR]

OUT_DIR (default host_tests/fuzz/sessions) receives one ``<lib>-<role>-<transport>.txt``
per session: one line per chunk of bytes as it crossed the transport, ``> hex`` from the
client, ``< hex`` from the meter. The meter is a fresh one with two days of load profile
(tools/seed_history.py), so profile reads go through block transfer.
"""

import datetime
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)

import clients as cl  # noqa: E402
from running_meter import PYTHON, ROOT, start_meter  # noqa: E402

END = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
LP = "1.0.99.1.0.255"
BILLING = "1.0.98.1.0.255"
EVENTS = "0.0.99.98.0.255"


def _chunks(io):
    """Interleave nothing: the tx and rx logs are kept apart (order within each)."""
    return io.tx_log, io.rx_log


def _gurux_ops(g, role):
    g.read("0.0.42.0.0.255", 1, 2)
    g.read("0.0.1.0.0.255", 8, 2)
    g.object_list()
    if role == cl.PUBLIC:
        g.read("0.0.43.1.0.255", 1, 2)
        return
    g.read("1.0.1.8.0.255", 3, 3)
    g.read("1.0.1.8.0.255", 3, 2)
    g.read("1.0.32.7.0.255", 3, 2)
    lp = g.make_object(LP, 7)
    g.read_object(lp, 3)
    g.read_object(lp, 7)
    t0 = END - datetime.timedelta(hours=6)
    t1 = END - datetime.timedelta(hours=1)
    reply = g.read_data_block(g.c.readRowsByRange(lp, t0, t1))
    g.c.updateValue(lp, 2, reply.value)
    g.read_data_block(g.c.readRowsByEntry(lp, 2, 5))
    g.read_data_block(g.c.readRowsByEntry(lp, 1, 3, lp.captureObjects[:2]))
    bill = g.make_object(BILLING, 7)
    g.read_object(bill, 3)
    g.read_object(bill, 2)
    ev = g.make_object(EVENTS, 7)
    g.read_object(ev, 3)
    g.read_object(ev, 2)
    g.read("0.0.22.0.0.255", 23, 5)
    if role == cl.MANAGEMENT:
        from gurux_dlms import GXDateTime

        clk = g.make_object("0.0.1.0.0.255", 8)
        clk.time = GXDateTime(END + datetime.timedelta(minutes=3))
        g.write_object(clk, 2)
        lp.capturePeriod = 900
        g.write_object(lp, 4)
        g.read("0.0.43.0.0.255", 64, 2)


def _cosem_ops(d, role):
    from dlms_cosem import cosem, enumerations
    from dlms_cosem.cosem.selective_access import CaptureObject, RangeDescriptor

    d.get("0.0.42.0.0.255", 1, 2)
    d.get("0.0.1.0.0.255", 8, 2)
    d.object_list_raw()
    if role == cl.PUBLIC:
        d.get("0.0.43.1.0.255", 1, 2)
        return
    d.get("1.0.1.8.0.255", 3, 3)
    d.get("1.0.1.8.0.255", 3, 2)
    d.get(LP, 7, 3)
    clock = cosem.CosemAttribute(enumerations.CosemInterface.CLOCK,
                                 cosem.Obis(0, 0, 1, 0, 0, 255), 2)
    rd = RangeDescriptor(CaptureObject(clock, 0), datetime.datetime(2026, 2, 28, 20, 0),
                         datetime.datetime(2026, 2, 28, 23, 0))
    d.client.get(d.attribute(LP, 7, 2), access_descriptor=rd)
    d.get(BILLING, 7, 2)
    d.get(EVENTS, 7, 2)
    if role == cl.MANAGEMENT:
        d.set("0.0.1.0.0.255", 8, 2, bytes.fromhex("090C07EA03010700010000800000"))
        d.get("0.0.43.0.0.255", 64, 3)


def record(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="dlms-record-")
    state = os.path.join(tmp, "state")
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "seed_history.py"), "--state", state,
                    "--days", "2", "--end", END.isoformat()], check=True)
    m = start_meter(tmp, state=state, extra_args=["--start-time", END.isoformat()])
    ic = {"gurux": 1, "cosem": 1}
    try:
        for lib in ("gurux", "cosem"):
            for role in (cl.PUBLIC, cl.READER, cl.MANAGEMENT):
                for transport in ("tcp", "hdlc"):
                    target = m.tcp if transport == "tcp" else m.serial
                    kw = {}
                    if role == cl.READER:
                        kw["password"] = cl.LLS_PASSWORD
                    if role == cl.MANAGEMENT:
                        # both libraries' titles share the one client counter sequence
                        kw["invocation_counter"] = max(ic.values())
                    if lib == "gurux":
                        c = cl.GuruxClient(transport, target, role, **kw)
                        with c:
                            _gurux_ops(c, role)
                        io = c.io
                    else:
                        c = cl.CosemClient(transport, target, role, **kw)
                        with c:
                            _cosem_ops(c, role)
                        io = c.io
                    if role == cl.MANAGEMENT:
                        ic[lib] = c.next_ic + 10
                    name = "%s-%s-%s.txt" % (lib, {16: "public", 32: "reader", 1: "mgmt"}[role],
                                             transport)
                    tx, rx = _chunks(io)
                    with open(os.path.join(out_dir, name), "w") as f:
                        f.write("# %s, client %d over %s: > client to meter, < meter to "
                                "client (chunks in order per direction)\n"
                                % (lib, role, transport))
                        for b in tx:
                            f.write("> %s\n" % bytes(b).hex())
                        for b in rx:
                            f.write("< %s\n" % bytes(b).hex())
                    print("recorded", name, len(tx), "chunks sent")
    finally:
        m.stop()


def load(path):
    """A transcript -> (client chunks, meter chunks)."""
    tx, rx = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("> "):
                tx.append(bytes.fromhex(line[2:].strip()))
            elif line.startswith("< "):
                rx.append(bytes.fromhex(line[2:].strip()))
    return tx, rx


def sessions(directory=os.path.join(HERE, "sessions")):
    """{name: (lib, role, transport, tx chunks, rx chunks)} of the recorded transcripts."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".txt"):
            continue
        lib, role, transport = name[:-4].split("-")
        tx, rx = load(os.path.join(directory, name))
        out[name[:-4]] = (lib, role, transport, tx, rx)
    return out


if __name__ == "__main__":
    record(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "sessions"))
