"""tools/meter_cli.py, the meter reading CLI, run as a subprocess against a virtual meter and
checked against gurux-dlms (an independent client) and the seeded history.

The module's meter starts on a state seeded by ``tools/seed_history.py --shape household``
(3 days of 15-minute load-profile rows ending 2026-03-01 00:00 UTC, power varying over the
day) at that time, with virtual time 1000x (energy moves, rows keep being captured). Every
CLI run goes through the project's own client code (tools/dlms_client.py); gurux only
checks. Transports: TCP wrapper and HDLC on the meter's pty.
"""

import ast
import datetime
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

import clients as cl
import running_meter as vm

ROOT = vm.ROOT
CLI = os.path.join(ROOT, "tools", "meter_cli.py")
SEED = os.path.join(ROOT, "tools", "seed_history.py")
UTC = datetime.timezone.utc
END = datetime.datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 3
WATTS = 1000
LOAD = "1.0.99.1.0.255"
EVENTS = "0.0.99.98.0.255"
ENERGY = "1.0.1.8.0.255"
CLOCK = "0.0.1.0.0.255"
RATE = 1000

# exit codes documented by meter_cli.py --help (tools/dlms_client.py)
EXIT_NO_ANSWER, EXIT_REFUSED, EXIT_DENIED, EXIT_UNDEFINED = 3, 4, 5, 6

LOAD_HEADER = ["0.0.1.0.0.255:2", "0.0.96.10.1.255:2", "1.0.1.8.0.255:2 [Wh]",
               "1.0.2.8.0.255:2 [Wh]", "1.0.3.8.0.255:2 [varh]", "1.0.4.8.0.255:2 [varh]"]


def household():
    """seed_history's HOUSEHOLD table (percent of --watts per UTC hour), read from the tool."""
    with open(SEED) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HOUSEHOLD":
            return ast.literal_eval(node.value)
    raise AssertionError("HOUSEHOLD not found in seed_history.py")


@pytest.fixture(scope="module")
def meter(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    state = str(base / "state")
    p = subprocess.run([vm.PYTHON, SEED, "--state", state, "--days", str(DAYS), "--end",
                        END.strftime("%Y-%m-%dT%H:%M:%S"), "--shape", "household"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    m = vm.start_meter(base, state=state,
                       extra_args=["--start-time", END.strftime("%Y-%m-%dT%H:%M:%S"),
                                   "--clock-rate", str(RATE)])
    try:
        yield m
    finally:
        if m.alive():
            m.stop()
        else:
            m.returncode = m.proc.returncode
        assert m.returncode == 0, "meter ended with %r:\n%s" % (m.returncode,
                                                               m.stderr()[-3000:])


def where(m, transport="tcp"):
    if transport == "tcp":
        return ["--tcp", "127.0.0.1:%d" % m.tcp]
    return ["--serial", m.serial]


def cli(args, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([vm.PYTHON, CLI] + [str(a) for a in args], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    p.seconds = time.monotonic() - t0
    return p


def ok(p):
    assert p.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout,
                                                                   p.stderr)
    return p.stdout


def gurux_reader(m):
    return cl.GuruxClient("tcp", m.tcp, cl.READER, password=cl.LLS_PASSWORD)


def gurux_energy(m):
    with gurux_reader(m) as g:
        reg = g.make_object(ENERGY, 3)
        g.read_object(reg, 3)
        g.read_object(reg, 2)
        return reg.value, int(reg.unit)


def gurux_clock(m):
    with gurux_reader(m) as g:
        clk = g.make_object(CLOCK, 8)
        g.read_object(clk, 2)
        return clk.time.value.astimezone(UTC)


def parse_iso(text):
    return datetime.datetime.fromisoformat(text)


# ------------------------------------------------------------------------------ reads
@pytest.mark.parametrize("transport", ["tcp", "hdlc"])
def test_read_energy_prints_value_and_unit_as_gurux_reads_it(meter, transport):
    before, unit = gurux_energy(meter)
    assert unit == 30  # Wh
    out = ok(cli(where(meter, transport) + ["--client", "reader", "read", ENERGY]))
    after, _ = gurux_energy(meter)
    m = re.fullmatch(r"1\.0\.1\.8\.0\.255  (\d+) Wh\n", out)
    assert m, out
    value = int(m.group(1))
    # virtual time runs 1000x: the register moves between reads, never backwards
    assert 0 < before <= value <= after, (before, value, after)


@pytest.mark.parametrize("transport", ["tcp", "hdlc"])
def test_read_scaled_register_and_scaler_unit(meter, transport):
    out = ok(cli(where(meter, transport) + ["read", "1.0.32.7.0.255"]))
    m = re.fullmatch(r"1\.0\.32\.7\.0\.255  (\d+\.\d\d) V\n", out)  # scaler -2: 0.01 V
    assert m and 200 < float(m.group(1)) < 260, out
    out = ok(cli(where(meter, transport) + ["read", "1.0.32.7.0.255", "3"]))
    assert out == "1.0.32.7.0.255:3  scaler -2, unit V (35)\n", out
    with gurux_reader(meter) as g:
        reg = g.make_object("1.0.32.7.0.255", 3)
        g.read_object(reg, 3)
    assert (reg.scaler, int(reg.unit)) == (0.01, 35)
    # power factor: unitless (255), scaler -3
    out = ok(cli(where(meter, transport) + ["read", "1.0.13.7.0.255"]))
    assert re.fullmatch(r"1\.0\.13\.7\.0\.255  -?\d\.\d{3}\n", out), out
    # a Data object with an octet-string: the logical device name as text
    out = ok(cli(where(meter, transport) + ["--client", "public", "read", "0.0.42.0.0.255"]))
    assert out == "0.0.42.0.0.255  MMM0000012345678\n", out


def parse_objects(out):
    """{obis: (class, version, attribute modes, methods)} from the objects table."""
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["OBIS", "class"], out
    rows = {}
    for line in lines[1:]:
        m = re.match(r"(\S+)\s+(\d+) [A-Za-z -]*?\s+(\d+)  ((?:\d+:\S+ ?)+)\s+(.+)$", line)
        assert m, line
        attrs = dict(a.split(":") for a in m.group(4).split())
        rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), attrs, m.group(5).strip())
    return rows


@pytest.mark.parametrize("client", ["public", "reader", "management"])
def test_objects_lists_what_gurux_lists(meter, client):
    out = ok(cli(where(meter) + ["--client", client, "objects"]))
    rows = parse_objects(out)
    sap = {"public": cl.PUBLIC, "reader": cl.READER, "management": cl.MANAGEMENT}[client]
    kw = {"password": cl.LLS_PASSWORD} if client == "reader" else {}
    if client == "management":
        with cl.GuruxClient("tcp", meter.tcp, cl.PUBLIC) as g:
            kw["invocation_counter"] = g.read("0.0.43.1.0.255", 1, 2) + 1
    with cl.GuruxClient("tcp", meter.tcp, sap, **kw) as g:
        want = {ln: (cid, ver) for cid, ver, ln in g.object_list()}
    assert {ln: r[:2] for ln, r in rows.items()} == want
    if client != "management":
        cl.check_object_list([(r[0], r[1], ln) for ln, r in rows.items()], sap)
    if client == "public":
        assert set(rows) <= cl.PUBLIC_ALLOWED
    else:
        # the contract's metering objects, with their classes
        for ln, cid in (("1.0.1.8.0.255", 3), ("1.0.32.7.0.255", 3), ("1.0.14.7.0.255", 3),
                        (LOAD, 7), ("1.0.98.1.0.255", 7), (EVENTS, 7), (CLOCK, 8),
                        ("0.0.43.1.0.255", 1), ("0.0.22.0.0.255", 23)):
            assert rows[ln][0] == cid, (ln, rows.get(ln))
    if client == "management":
        assert rows["0.0.43.0.0.255"][0] == 64
        cls, _v, attrs, methods = rows[CLOCK]
        assert attrs["2"] == "rw" and attrs["4"] == "r" and methods == "1 2 3 4 5 6"
    else:
        assert "0.0.43.0.0.255" not in rows
        assert rows[CLOCK][2]["2"] == "r" and rows[CLOCK][3] == "-"


def test_clock_matches_gurux(meter):
    before = gurux_clock(meter).replace(microsecond=0)
    out = ok(cli(where(meter) + ["clock"]))
    after = gurux_clock(meter)
    m = re.fullmatch(r"0\.0\.1\.0\.0\.255  (\S+)  clock status: ok\n", out)
    assert m, out
    t = parse_iso(m.group(1))
    assert t.utcoffset() == datetime.timedelta(0)  # the meter's time zone: UTC
    assert before <= t <= after, (before, t, after)


def test_set_clock_as_management_then_gurux_reads_it(meter):
    target = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    t0 = time.monotonic()
    # the same instant given in UTC+2: the CLI sends local fields with deviation -120
    p = cli(where(meter) + ["set-clock", "2026-06-01T14:00:00+02:00"])
    out = ok(p)
    m = re.fullmatch(r"0\.0\.1\.0\.0\.255  (\S+)  clock status: ok  \(was (\S+)\)\n", out)
    assert m, out
    got = gurux_clock(meter)
    elapsed = time.monotonic() - t0
    late = target + datetime.timedelta(seconds=(elapsed + 1) * RATE)  # virtual time runs on
    assert target <= parse_iso(m.group(1)) <= got <= late, (out, got)
    assert parse_iso(m.group(2)) < target
    # 'now' is the default: the host's time (the invocation counter is read again first)
    t0 = time.monotonic()
    host = datetime.datetime.now(UTC)
    ok(cli(where(meter, "hdlc") + ["--client", "management", "set-clock"]))
    got = gurux_clock(meter)
    elapsed = time.monotonic() - t0
    assert host - datetime.timedelta(seconds=1) <= got <= host + datetime.timedelta(
        seconds=(elapsed + 1) * RATE), (host, got)


# ------------------------------------------------------------------------------ profile
def read_csv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def gurux_rows(m, t0, t1):
    with gurux_reader(m) as g:
        o = g.make_object(LOAD, 7)
        g.read_object(o, 3)
        reply = g.read_data_block(g.c.readRowsByRange(o, t0, t1))
        g.c.updateValue(o, 2, reply.value)
        return [[r[0].value.astimezone(UTC)] + [int(x) for x in r[1:]] for r in o.buffer]


def test_profile_csv_and_png_match_gurux_and_the_seeded_curve(meter, tmp_path):
    t0 = datetime.datetime(2026, 2, 28, tzinfo=UTC)
    t1 = datetime.datetime(2026, 2, 28, 23, 45, tzinfo=UTC)
    csv_path, png_path = tmp_path / "lp.csv", tmp_path / "lp.png"
    p = cli(where(meter) + ["--max-pdu", "256", "profile", LOAD, "--from", "2026-02-28T00:00",
                            "--to", "2026-02-28T23:45", "--csv", csv_path, "--png", png_path,
                            "--progress"])
    out = ok(p)
    assert "96 rows" in out and str(csv_path) in out and str(png_path) in out, out
    # block transfer with a progress bar on stderr: blocks and bytes, up to 100 %
    blocks = [int(b) for b in re.findall(r"block (\d+)", p.stderr)]
    assert max(blocks) > 5 and blocks == sorted(blocks), p.stderr
    assert "100%" in p.stderr and "bytes" in p.stderr, p.stderr
    header, rows = read_csv(csv_path)
    assert header == LOAD_HEADER
    assert len(rows) == 96
    want = gurux_rows(meter, t0, t1)
    got = [[parse_iso(r[0])] + [int(x) for x in r[1:]] for r in rows]
    assert got == want
    times = [r[0] for r in got]
    assert times[0] == t0 and times[-1] == t1
    assert all(b - a == datetime.timedelta(minutes=15) for a, b in zip(times, times[1:]))
    # the seeded household curve: +A grows by the hour's power, within the Wh rounding
    shape = household()
    powers = []
    for a, b in zip(got, got[1:]):
        p_w = (b[2] - a[2]) * 4
        expect = WATTS * shape[a[0].hour] // 100
        assert abs(p_w - expect) <= 4, (a[0], p_w, expect)
        powers.append(p_w)
    assert len(set(powers)) > 5 and max(powers) > 3 * min(powers)  # non-constant load
    # the PNG: a real image of a useful size
    w, h = png_size(png_path)
    assert (w, h) == (1100, 480), (w, h)
    assert os.path.getsize(png_path) > 20000
    # ... whose curve is drawn: the line colour appears on many different rows of pixels
    from PIL import Image

    img = Image.open(png_path).convert("RGB")
    line = (0x1F, 0x77, 0xB4)  # matplotlib's first colour (C0): +A
    ys = {y for y in range(h) for x in range(0, w, 2) if img.getpixel((x, y)) == line}
    assert len(ys) > 50, len(ys)


def test_profile_over_hdlc_with_small_pdu_equals_tcp(meter, tmp_path):
    rng = ["--from", "2026-02-27T06:00", "--to", "2026-02-27T18:00"]
    a, b = tmp_path / "tcp.csv", tmp_path / "hdlc.csv"
    ok(cli(where(meter) + ["profile", LOAD] + rng + ["--csv", a]))
    p = cli(where(meter, "hdlc") + ["--max-pdu", "128", "profile", LOAD] + rng
            + ["--csv", b, "--progress"])
    ok(p)
    assert a.read_text() == b.read_text()
    assert len(a.read_text().splitlines()) == 1 + 49
    assert max(int(x) for x in re.findall(r"block (\d+)", p.stderr)) > 10, p.stderr


# ------------------------------------------------------------------------------ events
def test_events_with_names_match_gurux(meter):
    p = cli(where(meter) + ["--client", "reader", "--password", "wrong", "clock"])
    assert p.returncode == EXIT_REFUSED
    out = ok(cli(where(meter) + ["events"]))
    lines = out.splitlines()
    events = []
    for line in lines:
        m = re.fullmatch(r"(\S+)\s+(\d+)  (.+)", line)
        assert m, line
        events.append((parse_iso(m.group(1)), int(m.group(2)), m.group(3)))
    names = {code: name for _t, code, name in events}
    assert names[230] == "firmware started"
    assert names[231] == "association authentication failure"
    with gurux_reader(meter) as g:
        o = g.make_object(EVENTS, 7)
        g.read_object(o, 3)
        g.read_object(o, 2)
        want = [(r[0].value.astimezone(UTC), int(r[1])) for r in o.buffer]
    assert [(t, c) for t, c, _n in events] == want[:len(events)]


# ------------------------------------------------------------------------------ errors
def test_wrong_password_names_authentication_failure(meter):
    p = cli(where(meter) + ["--client", "reader", "--password", "87654321", "read", ENERGY])
    assert p.returncode == EXIT_REFUSED, p.stderr
    assert p.stdout == ""
    assert "association refused" in p.stderr and "authentication failure" in p.stderr, p.stderr
    assert "(13)" in p.stderr


def test_wrong_management_key_is_refused(meter):
    p = cli(where(meter) + ["--client", "management", "--ak", "00" * 16, "clock"])
    assert p.returncode == EXIT_REFUSED, p.stderr
    assert "association refused" in p.stderr and "--ak" in p.stderr, p.stderr


def test_nothing_listening_is_no_answer():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = cli(["--tcp", "127.0.0.1:%d" % port, "read", ENERGY])
    assert p.returncode == EXIT_NO_ANSWER, p.stderr
    assert "no answer" in p.stderr and "nothing is listening" in p.stderr, p.stderr


def test_silent_peer_times_out_as_no_answer():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held = []

    def accept():
        try:
            held.append(srv.accept()[0])  # accept, read nothing, answer nothing
        except OSError:
            pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        p = cli(["--tcp", "127.0.0.1:%d" % srv.getsockname()[1], "--timeout", "1", "read",
                 ENERGY])
    finally:
        srv.close()
        for c in held:
            c.close()
    assert p.returncode == EXIT_NO_ANSWER, p.stderr
    assert "no answer from the meter" in p.stderr and "AARE" in p.stderr, p.stderr
    assert p.seconds < 10


def test_no_serial_device_is_no_answer(tmp_path):
    p = cli(["--serial", tmp_path / "nothing.tty", "read", ENERGY])
    assert p.returncode == EXIT_NO_ANSWER, p.stderr
    assert "cannot open the serial port" in p.stderr


def test_management_only_things_as_reader(meter):
    # the Security setup is not in the reader's object list: undefined to it
    p = cli(where(meter) + ["--client", "reader", "read", "0.0.43.0.0.255"])
    assert p.returncode == EXIT_UNDEFINED, p.stderr
    assert "object-undefined" in p.stderr and "--client management" in p.stderr, p.stderr
    out = ok(cli(where(meter) + ["--client", "management", "read", "0.0.43.0.0.255"]))
    assert out.startswith("0.0.43.0.0.255  "), out
    # setting the clock is for management: the reader is denied
    p = cli(where(meter) + ["--client", "reader", "set-clock", "2026-03-02T00:00:00"])
    assert p.returncode == EXIT_DENIED, p.stderr
    assert "access denied" in p.stderr and "read-write-denied" in p.stderr, p.stderr
    # a write-only attribute (the optical port's password) as reader
    p = cli(where(meter) + ["read", "0.0.20.0.0.255", "7"])
    assert p.returncode == EXIT_DENIED, p.stderr
    assert "read-write-denied" in p.stderr
    # an object nobody has
    p = cli(where(meter) + ["read", "1.0.99.99.0.255", "--class", "3"])
    assert p.returncode == EXIT_UNDEFINED, p.stderr


def test_help_documents_the_exit_codes():
    out = ok(cli(["--help"]))
    for code, words in ((3, "no answer"), (4, "association refused"), (5, "access denied"),
                        (6, "object undefined")):
        assert re.search(r"^\s+%d\s+%s" % (code, words), out, re.M), out
    for cmd in ("objects", "read", "clock", "set-clock", "profile", "events"):
        assert cmd in out


def test_readme_command_lines_run(meter, tmp_path):
    """The README's command lines, verbatim but for the port and the output paths."""
    import shlex

    with open(os.path.join(ROOT, "README.md")) as f:
        lines = [ln.strip() for ln in f
                 if ln.startswith("    .venv/bin/python tools/meter_cli.py")]
    assert len(lines) == 2, lines
    outs = []
    for line in lines:
        assert "--tcp 127.0.0.1:4059" in line
        line = line.replace("127.0.0.1:4059", "127.0.0.1:%d" % meter.tcp)
        line = line.replace("lp.csv", str(tmp_path / "lp.csv")).replace(
            "lp.png", str(tmp_path / "lp.png"))
        argv = shlex.split(line)
        assert argv[:2] == [".venv/bin/python", "tools/meter_cli.py"]
        outs.append(ok(cli(argv[2:])))
    assert re.fullmatch(r"1\.0\.1\.8\.0\.255  \d+ Wh\n", outs[0]), outs[0]
    _header, rows = read_csv(tmp_path / "lp.csv")
    assert len(rows) >= 96
    assert png_size(tmp_path / "lp.png") == (1100, 480)


# ------------------------------------------------------------------------------ the client
def test_client_code_segments_a_long_request_over_hdlc(meter):
    """A GET-with-list longer than the meter's 128-byte HDLC information field goes out in
    segments (each acknowledged by RR) and gets the same values as single GETs."""
    import dlms_client as dc

    lns = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255",
           "1.0.21.8.0.255", "1.0.41.8.0.255", "1.0.61.8.0.255", "1.0.32.7.0.255",
           "1.0.52.7.0.255", "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.51.7.0.255",
           "1.0.71.7.0.255", "1.0.1.7.0.255", "1.0.2.7.0.255", "1.0.14.7.0.255"]  # 16
    items = [(3, dc.obis_bytes(ln), 3) for ln in lns]
    frames = []
    t = dc.HdlcTransport(meter.serial, 32, trace=frames.append)
    t.open()
    try:
        c = dc.Client(t, dc.MECH_LLS, password=b"12345678")
        c.associate()
        assert len(dc.encode_get_list(items)) + 3 > t.max_send == 128
        values = c.get_list(items)
        singles = [c.get(*it) for it in items]
        c.release()
    finally:
        t.close()
    assert values == singles
    assert all(v[0] == 2 for v in values)  # scaler_unit structures
    assert any(f.startswith("<< hdlc") and f[9] == "1" for f in frames)  # an RR came back


def test_client_aarq_parses_with_the_meters_own_decoder():
    import dlms_client as dc
    from dlms import acse

    ir = dc.encode_initiate_request(dc.PROPOSED_CONFORMANCE, 512)
    a = acse.parse_aarq(*(lambda b: (b, 0, len(b)))(dc.encode_aarq(1, 1, b"12345678", None, ir)))
    assert (a.application_context, a.mechanism, a.auth_value) == (1, 1, b"12345678")
    i = acse.parse_initiate_request(a.user_info, 0, len(a.user_info))
    assert (i.dlms_version, i.conformance, i.max_pdu) == (6, dc.PROPOSED_CONFORMANCE, 512)
    title = bytes.fromhex("434C490000000001")
    a = acse.parse_aarq(*(lambda b: (b, 0, len(b)))(
        dc.encode_aarq(3, 5, b"C" * 16, title, b"\x21\x00")))
    assert (a.application_context, a.mechanism, a.calling_ap_title) == (3, 5, title)
    assert a.sender_acse_requirements == 1 and a.auth_value == b"C" * 16
