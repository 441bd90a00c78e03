"""Power cuts at every flash erase/program of every operation that persists something, on
the whole meter (``app.App`` on littlefs over the simulated flash of boards/unix/flash.py,
the metering IC simulated behind the board's SPI). MicroPython only: CPython has no
littlefs. Results and the figures: docs/robustness.md.

One campaign per kind of persisted state. The state before the operation is prepared once
on a fresh image and kept as a snapshot; then, for cut = 0, 1, 2, ...: the snapshot is
copied, the meter boots on it, the power fails at the cut-th flash operation of the
operation (that operation is torn, every later one fails: a dead board), the image is
mounted again and the meter boots again (the real start-up path), and the invariants are
checked -- until an operation runs to its end without reaching the cut: every flash
operation it does has then been cut once.

    kind        the operation                                  invariants after the restart
    energy      200 s of metering (energy persisted every      never below the last record
                60 s) with a client reading the energy         written, nor below any value a
                register every 7 s                             client saw; loss <= what 60 s +
                                                               5 s of the load counts
    tx-counter  60 ciphered APDUs' worth of the meter's own    the next counter > every one
                invocation counter (reservations of 8)          used before the cut
    rx-guard    12 client counters accepted                    each of them refused (replay)
    keys        a global key transfer (keys, policy, event)    all four keys old or all new
    keys-first  the first key transfer (defaults before)       defaults or the new keys
    lls-secret  two writes of the reader's LLS secret          the old, first or second one
    config      HDLC window and inactivity, time zone, optical  the settings after some prefix
                port mode, load-profile capture period         of the writes, at least those
                                                               that returned
    state       three alive records, then a clean shutdown     boot count and last-alive time
                                                               of a record (never garbage)
    profile     six load-profile captures (15-minute steps)    every row whole (CRC), times
                                                               increasing, the captured rows
                                                               there, at most the torn one more
    events      20 events across a segment change of the       the same for the event log
                event log (the oldest segment deleted)

Common to all: the image mounts, the meter boots, and it persists again afterwards.
"""

try:
    import vfs
except ImportError:  # CPython: pytest imports this file when it is named on the command line
    import pytest

    pytest.skip("MicroPython only: runs as mp:: items through host_tests/mptest.py",
                allow_module_level=True)

import binascii
import os

import flash
import app as app_mod
from cosem import objects
from cosem.base import obis
from dlms import axdr
from dlms import keywrap
from meter import clock as mclock
from meter import engine as mengine
from meter import secrets
from meter.profile_log import ProfileLog

TAG = binascii.hexlify(os.urandom(4)).decode()
IMG = "/tmp/dlms-mpy-powercut-all-%s.img" % TAG
SNAP = IMG + ".snap"
MNT = "/pca"
BLOCKS = 64
MAX_CUTS = 600
T0 = 820000000  # 2025-12-27, seconds since 2000: the meter's time at the first boot
POINTS = {}  # kind -> cut points tried (printed at the end of each campaign)


class RTC:
    """A board RTC driven by the test: meter time in ms from T0 (UTC)."""

    def __init__(self, ms=0):
        self.ms = ms

    def datetime(self, t=None):
        if t is not None:
            y, mo, d, _wd, hh, mi, ss, us = t
            self.ms = (mclock.to_seconds(y, mo, d, hh, mi, ss) - T0) * 1000 + us // 1000
            return None
        s = T0 + self.ms // 1000
        y, mo, d, hh, mi, ss, wd = mclock.from_seconds(s)
        return (y, mo, d, wd - 1, hh, mi, ss, (self.ms % 1000) * 1000)


class Board:
    """What app.App needs from a board: the RTC above, no streams, the flash at MNT, and the
    single-phase ADE7953 simulated behind a fake SPI bus (as boards/unix/main.py builds it)."""

    def __init__(self, rtc):
        import load_spec
        from sim_ade7953 import SimAde7953
        from spi_sim import FakeCS, FakeSPI

        self.rtc = rtc
        self.meter_ms = lambda: rtc.ms
        self.hdlc_streams = []
        self.tcp = None
        self.store_root = MNT
        self.identity = {"name": b"MMM0000012345678", "serial": b"12345678",
                         "firmware": b"dlms-mpy", "system_title": b"MMM\x00\x00\xbc\x61\x4e"}
        self.max_tcp = 0
        self.urandom = os.urandom
        phases, hz = load_spec.parse(load_spec.DEFAULT, 1)
        self.load = phases[0]
        self.chip_sim = SimAde7953(self.meter_ms, load=phases[0], hz=hz, seed=1)
        self.meter_chip = "ade7953"
        self.chip_config = None
        self.spi = FakeSPI(self.chip_sim)
        self.cs = FakeCS(self.spi)
        self.sleep_ms = lambda ms: None


class Ctx:
    client = 1  # the management client's rights


def _copy(src, dst):
    buf = bytearray(4096)
    with open(src, "rb") as f, open(dst, "wb") as g:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            g.write(memoryview(buf)[:n])


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _mount(path):
    dev = flash.FileFlash(path, block_count=BLOCKS)
    vfs.mount(vfs.VfsLfs2(dev), MNT)
    return dev


def _umount(dev):
    try:
        vfs.umount(MNT)
    except Exception:  # a dead board: whatever the unmount tries may fail
        pass
    dev.close()


def _obj(a, ln):
    b = obis(ln)
    for o, _rights in a.device.entries:
        if o.ln == b:
            return o
    raise KeyError(ln)


def campaign(kind, op, check, prepare=None):
    """Cut the power at every flash operation of op(a, rtc, rec, alive); check(a2, info,
    rec, raw) after each restart. prepare(a, rtc) -> info builds the state before (no cut).
    Returns the number of cut points tried."""
    try:
        vfs.umount(MNT)  # left mounted by a campaign that failed
    except OSError:
        pass
    _remove(IMG)
    dev = flash.FileFlash(IMG, block_count=BLOCKS)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), MNT)
    rtc = RTC()
    a = app_mod.App(Board(rtc))
    info = prepare(a, rtc) if prepare is not None else {}
    if info is None:
        info = {}
    info["ms"] = rtc.ms
    info["boots"] = a.boots
    a = None
    _umount(dev)
    _copy(IMG, SNAP)
    points = 0
    outcomes = {}
    for cut in range(MAX_CUTS):
        _copy(SNAP, IMG)
        dev = _mount(IMG)
        rtc = RTC(info["ms"])
        a = app_mod.App(Board(rtc))
        dev.cut_at = dev.ops + cut
        rec = {}

        def alive():
            return dev.ops <= dev.cut_at

        try:
            op(a, rtc, rec, alive)
        except (flash.PowerCut, OSError):
            pass
        happened = dev.ops > dev.cut_at
        a = None
        _umount(dev)
        # the restart: the same image, power back; it must mount and the meter must boot
        try:
            dev = _mount(IMG)
        except OSError as e:
            raise AssertionError("%s: cut %d: the image does not mount (%r)" % (kind, cut, e))
        raw = {}
        try:
            # the rings as the cut left them, before the boot writes anything
            raw["lp"] = _rows(ProfileLog(MNT, "lp", 22, objects.LOAD_PROFILE_ENTRIES))
            raw["ev"] = _rows(ProfileLog(MNT, "ev", 6, objects.EVENT_LOG_ENTRIES))
            a2 = app_mod.App(Board(RTC(rtc.ms)))
            o = check(a2, info, rec, raw)
            if happened and o is not None:
                outcomes[o] = outcomes.get(o, 0) + 1
            a2.persist()  # and it works on: a record can be written again
            a2.history.log_event(2)
        except AssertionError as e:
            raise AssertionError("%s: cut %d of %d: %s" % (kind, cut, dev.ops, e))
        finally:
            a2 = None
            _umount(dev)
        if not happened:
            break  # the operation ran to its end before the cut: every point was tried
        points += 1
    else:
        raise AssertionError("%s: more than %d flash operations" % (kind, MAX_CUTS))
    _remove(IMG)
    _remove(SNAP)
    assert points >= 1, kind
    POINTS[kind] = points
    print("power-cut points tried:", kind, points, sorted(outcomes.items()))
    return points


def _rows(log):
    """(first shown, next, [rows]) of a ring; AssertionError on a row that is not whole."""
    rows = []
    for n in range(log.start(), log.next):
        r = log.read(n)
        assert r is not None, "row %d of %s is not whole (CRC or length)" % (n, log.name)
        rows.append(bytes(r))
    out = (log.start(), log.next, rows)
    log.close()
    return out


# ------------------------------------------------------------------------------ energy
def _power_uw(phase):
    """Active power of the simulated load (a load_spec.Phase) in micro-W."""
    return int(abs(phase.active_w()) * 1000000)


def test_energy():
    def op(a, rtc, rec, alive):
        e = a.engine
        for i in range(200):
            rtc.ms += 1000
            a.tick()
            if not alive():
                return
            if i % 7 == 3:  # a client reads +A (the register's value source)
                v = e.energy_wh(0, 0, rtc.ms)
                if not alive():
                    return
                rec["seen"] = max(rec.get("seen", 0), v)
            rec["saved"] = [row[:] for row in e.saved]
            rec["totals"] = [row[:] for row in e.totals]
            rec["ms"] = rtc.ms

    def check(a2, info, rec, raw):
        e = a2.engine
        loaded = e.saved
        for q in range(len(loaded)):
            for p in range(len(loaded[q])):
                before = rec.get("saved", loaded)[q][p]
                assert loaded[q][p] >= before, "energy went down: %d < %d (q%d p%d)" % (
                    loaded[q][p], before, q, p)
        assert loaded[0][0] // 1000000 >= rec.get("seen", 0), (
            "a value a client saw went backwards: %d < %d Wh" % (loaded[0][0] // 1000000,
                                                                 rec.get("seen", 0)))
        if "totals" in rec:
            lost = rec["totals"][0][0] - loaded[0][0]
            bound = _power_uw(BOARD_LOAD) * (mengine.PERSIST_MS + mengine.ENERGY_MS) // (
                3600 * 1000)
            assert lost <= bound * 105 // 100, "lost %d uWh > bound %d uWh" % (lost, bound)
            secs = lost * 3600 // max(1, _power_uw(BOARD_LOAD))  # of the load's energy
            return "nothing lost" if lost <= 0 else "lost < %d s of load" % (secs // 10 * 10
                                                                             + 10)

    global BOARD_LOAD
    BOARD_LOAD = Board(RTC()).load
    campaign("energy", op, check)


BOARD_LOAD = None


# ------------------------------------------------------------------------------ counters
def test_tx_counter():
    def op(a, rtc, rec, alive):
        ctr = a.security.tx
        ctr.reserve = 8  # test only: more reservations per run (the same code path)
        for _ in range(60):
            v = ctr.next()
            if not alive():
                return
            rec["used"] = v

    def check(a2, info, rec, raw):
        nxt = a2.security.tx.next()
        used = rec.get("used", 0)
        assert nxt > used, "counter %d reused (used %d before the cut)" % (nxt, used)
        return "next - last used <= %d" % ((nxt - used + 7) // 8 * 8)

    campaign("tx-counter", op, check)


def test_rx_guard():
    def op(a, rtc, rec, alive):
        g = a.security.guard
        for k in range(1, 13):
            ok = g.check_and_update(0, 3 * k)
            if not alive():
                return
            assert ok
            rec["accepted"] = 3 * k

    def check(a2, info, rec, raw):
        if "accepted" in rec:
            for ic in range(1, rec["accepted"] + 1):
                assert not a2.security.guard.check(secrets.KEY_EK, ic), (
                    "client counter %d accepted again after the restart" % ic)
        last = a2.security.guard.last_accepted()
        return "as accepted" if last == rec.get("accepted", 0) else "one more stored"

    campaign("rx-guard", op, check)


# ------------------------------------------------------------------------------ keys
KEK = bytes(range(16))
K1 = [bytes([0x11] * 16), bytes([0x12] * 16), bytes([0x13] * 16)]
K2 = [bytes([0x21] * 16), bytes([0x22] * 16), bytes([0x23] * 16)]


def _transfer(a, keys):
    """Security setup method 2 (global_key_transfer) with EK, AK (ids 0, 2 in the Blue
    Book's enum: 0 global unicast, 1 broadcast, 2 authentication) wrapped under the KEK."""
    ss = _obj(a, "0.0.43.0.0.255")
    items = [(axdr.STRUCTURE, [(axdr.ENUM, kid), (axdr.OCTET_STRING, keywrap.wrap(KEK, k))])
             for kid, k in ((0, keys[0]), (1, keys[1]), (2, keys[2]))]
    w = axdr.Writer(bytearray(64))
    return ss.action(2, (axdr.ARRAY, items), w, Ctx())


def _key_sets(a):
    ks = a.security.keystore
    return [ks.get(secrets.KEY_EK), ks.get(secrets.KEY_BK), ks.get(secrets.KEY_AK),
            ks.get(secrets.KEY_KEK)]


def _keys_test(kind, first):
    def prepare(a, rtc):
        info = {"old": _key_sets(a)}
        if not first:
            assert _transfer(a, K1) == 0
            info["old"] = _key_sets(a)
        return info

    def op(a, rtc, rec, alive):
        r = _transfer(a, K2)
        if alive():
            assert r == 0
            rec["done"] = True

    def check(a2, info, rec, raw):
        got = _key_sets(a2)
        new = [K2[0], K2[1], K2[2], KEK]
        assert got in (info["old"], new), "keys are a mixture or garbage: %r" % (
            [binascii.hexlify(k) for k in got],)
        if rec.get("done"):
            assert got == new, "a completed key transfer was lost"
        return "new" if got == new else "old"

    campaign(kind, op, check, prepare)


def test_keys():
    _keys_test("keys", False)


def test_keys_first():
    _keys_test("keys-first", True)


# ------------------------------------------------------------------------------ settings
def test_lls_secret():
    secrets_seq = [b"12345678", b"new-pw-1", b"second-password!"]

    def op(a, rtc, rec, alive):
        aln = _obj(a, "0.0.40.0.2.255")
        for i, s in enumerate(secrets_seq[1:]):
            r = aln.set(7, (axdr.OCTET_STRING, s), Ctx())
            if not alive():
                return
            assert r == 0
            rec["done"] = i + 1

    def check(a2, info, rec, raw):
        got = a2.device.policies[32].secret
        assert got in secrets_seq, "LLS secret garbage: %r" % (got,)
        assert secrets_seq.index(got) >= rec.get("done", 0), "a completed write was lost"
        return "write %d" % secrets_seq.index(got)

    campaign("lls-secret", op, check)


def _config_state(a):
    lp = a.device.profiles[0]
    return (a.hdlc_settings.window_tx, a.hdlc_settings.inactivity_s, a.clock.deviation,
            a.port_settings.default_mode, lp.capture_period)


def test_config():
    writes = [("0.0.22.0.0.255", 3, (axdr.UNSIGNED, 4)),
              ("0.0.22.0.0.255", 8, (axdr.LONG_UNSIGNED, 60)),
              ("0.0.1.0.0.255", 3, (axdr.LONG, -60)),
              ("0.0.20.0.0.255", 2, (axdr.ENUM, 1)),
              ("1.0.99.1.0.255", 4, (axdr.DOUBLE_LONG_UNSIGNED, 1800))]

    def prepare(a, rtc):
        states = [_config_state(a)]
        for ln, attr, v in writes:  # what each prefix of the writes gives (RAM only)
            s = list(states[-1])
            s[{("0.0.22.0.0.255", 3): 0, ("0.0.22.0.0.255", 8): 1, ("0.0.1.0.0.255", 3): 2,
               ("0.0.20.0.0.255", 2): 3, ("1.0.99.1.0.255", 4): 4}[(ln, attr)]] = v[1]
            states.append(tuple(s))
        assert states[0] != states[1] and len(set(states)) == len(states), states
        return {"states": states}

    def op(a, rtc, rec, alive):
        for i, (ln, attr, v) in enumerate(writes):
            r = _obj(a, ln).set(attr, v, Ctx())
            if not alive():
                return
            assert r == 0, (ln, attr, r)
            rec["done"] = i + 1

    def check(a2, info, rec, raw):
        got = _config_state(a2)
        states = info["states"]
        assert got in states, "configuration %r is none of %r" % (got, states)
        assert states.index(got) >= rec.get("done", 0), "a completed write was lost"
        return "prefix %d" % states.index(got)

    campaign("config", op, check, prepare)


# ------------------------------------------------------------------------------ state
def test_state():
    def prepare(a, rtc):
        return {"alive0": a._alive_written}

    def op(a, rtc, rec, alive):
        rec["alive"] = [a._alive_written]
        for _ in range(3):
            rtc.ms += app_mod.ALIVE_S * 1000
            a.tick()
            if not alive():
                return
            rec["alive"].append(a._alive_written)
        rec["shutdown"] = True
        a.shutdown()
        if alive():
            rec["clean"] = True

    def check(a2, info, rec, raw):
        assert a2.boots == info["boots"] + 2, "boot count %d, expected %d: the state record " \
            "was lost" % (a2.boots, info["boots"] + 2)
        written = rec.get("alive", [])
        assert a2.alive_at in written, "last-alive %r is none of %r" % (a2.alive_at, written)
        if written:
            assert a2.alive_at >= written[-1], "a completed state record was lost"
        if rec.get("clean"):
            assert a2.clean, "the clean shutdown was not recorded"
        if a2.clean:
            assert rec.get("shutdown"), "clean without a shutdown"
        return "clean" if a2.clean else "record %d" % written.index(a2.alive_at)

    campaign("state", op, check, prepare)


# ------------------------------------------------------------------------------ rings
def _ring_check(raw, rec, key, step):
    _first, nxt, rows = raw[key]
    t = [int.from_bytes(r[0:4], "big") for r in rows]
    for i in range(1, len(t)):
        assert t[i] > t[i - 1] or step == 0, "row times not increasing: %r" % (t,)
    done = rec.get(key, nxt)
    assert done <= nxt <= done + 1, "%s: %d rows, %d were captured before the cut" % (
        key, nxt, done)
    return "torn row present" if nxt == done + 1 else "rows as captured"


def test_profile():
    def op(a, rtc, rec, alive):
        log = a.device.profiles[0].log
        rec["lp"] = log.next
        for _ in range(6):
            rtc.ms += 900 * 1000
            a.tick()
            if not alive():
                return
            rec["lp"] = log.next

    def check(a2, info, rec, raw):
        return _ring_check(raw, rec, "lp", 1)

    campaign("profile", op, check)


def test_events():
    def prepare(a, rtc):
        ev = a.device.profiles[2]
        log = ev.log
        # fill the event log up to a few rows before its next segment change with trim
        k = log.seg_rows
        target = log.entries + 2 * k - 3
        t = T0
        while log.next < target:
            t += 1
            ev.capture(t, 0)
        rtc.ms = (t - T0 + 1) * 1000
        return {}

    def op(a, rtc, rec, alive):
        log = a.device.profiles[2].log
        rec["ev"] = log.next
        for i in range(20):
            rtc.ms += 1000
            a.history.log_event(230)
            if not alive():
                return
            rec["ev"] = log.next

    def check(a2, info, rec, raw):
        return _ring_check(raw, rec, "ev", 0)

    campaign("events", op, check, prepare)
