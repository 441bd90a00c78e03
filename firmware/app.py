"""Composition root: board -> meter -> COSEM objects -> associations -> ports.

Every board's main.py builds an ``App`` from its board object and runs it. Nothing below
this module knows which board it runs on.

The board object provides:
    rtc            machine.RTC-like object (datetime() in UTC)
    hdlc_streams   list of (stream, name) serving HDLC (UART, pty), or (stream, name, line)
                   for the optical port: IEC 62056-21 mode E first, line = the UART to
                   re-initialise at each rate change (optical.py)
    tcp            a listening socket or None
    store_root     directory of the persistent records (littlefs), or None
    identity       dict: name (16 octets), serial, firmware, system_title (8 octets)
    max_tcp        concurrent TCP associations
    urandom        callable(n) -> n random bytes (HLS challenges)
    log_error      optional callable(where, exception)
    slab           optional bytearray reserved before the code was loaded (freed by App)
    meter_chip     "atm90e32" or "ade7953" (or None: no metering IC)
    spi, cs        the metering IC's bus and chip select; sleep_ms(ms) for its delays
    chip_config    calibration constants for the driver (or None: its defaults)
    meter_ms       monotonic meter time in ms (virtual on the Unix port)
"""

import gc
import struct

import ports
from cosem import objects
from cosem.hdlc_setup import HdlcSettings
from cosem.security_setup import POLICY_ALL_AUTH_ENC
from dlms import gcm
from dlms import security
from meter import clock as meter_clock
from meter import engine
from meter import history as meter_history
from meter import secrets
from meter.store import Store

FIRMWARE_VERSION = b"dlms-mpy 0.1.0"
_STATE_VERSION = 3  # boots (u32), RTC state (two s64: meter ns, host ns; 0, 0 = none),
# alive (u32: UTC seconds since 2000 when last written), clean (u8: written at shutdown),
# clock status (u8: the invalid/doubtful bits)
_STATE_FMT = ">IqqIBB"
ALIVE_S = 300  # the state record is rewritten this often: a power cut's time is known
# to within ALIVE_S (the power-down event carries the last time written)
_CONFIG_VERSION = 1  # records "clock", "hdlc", "port", "lls<role>"
_MECH_LLS = 1

# Development defaults of the contract (design/virtual-meter.md): public, change them.
DEFAULT_EK = bytes(range(16))  # global unicast encryption key 000102...0F
DEFAULT_AK = bytes(range(0xD0, 0xE0))  # authentication key D0D1...DF
DEFAULT_KEK = bytes(range(16))  # master (key-encryption) key
_NO_KEY = bytes(16)  # broadcast key: none until one is transferred


class Security:
    """Suite-0 services of the meter, shared by every association: keys, the meter's
    invocation counter (by reservation), the client-counter guard, the server system title,
    the security policy of the management association, and the boot self-test."""

    def __init__(self, store, server_title, urandom, on_event=None):
        self.keystore = secrets.KeyStore(store, (DEFAULT_EK, DEFAULT_AK, _NO_KEY, DEFAULT_KEK))
        self.tx = secrets.TxCounter(store)
        self.guard = secrets.RxGuard(store)
        self.server_title = bytes(server_title)
        self.random = urandom
        self.store = store
        self.policy = POLICY_ALL_AUTH_ENC
        rec = store.load("secpol", 1) if store is not None else None
        if rec is not None and len(rec) == 1:
            self.policy = rec[0]
        self.setup = None  # the Security setup object (objects.build sets it)
        self.on_event = on_event
        self._keys = None
        self._gen = -1
        self._ek = self.keystore.get(secrets.KEY_EK)
        self._ek_changed = False  # a new unicast key waits for its first association
        self.epoch = 0  # bumped when that association starts: older ones are ended
        self.resp = None  # plain response of a ciphered request (shared: one at a time)
        # Known-answer test of AES-GCM/GMAC on this board's AES before any ciphered
        # association: if it fails, ciphered associations are refused and it is logged.
        self.ok = gcm.self_test()
        if not self.ok:
            self.event("crypto-self-test-failed", 0)

    def keys(self):
        ks = self.keystore
        if self._keys is None or ks.generation != self._gen:
            bk = ks.get(secrets.KEY_BK)
            self._keys = security.Keys(ks.get(secrets.KEY_EK), ks.get(secrets.KEY_AK),
                                       None if bk == _NO_KEY else bk)
            self._gen = ks.generation
        return self._keys

    def context(self, client_title):
        """The security context of a new association. The first one after a unicast key
        change restarts the client-counter sequence of that key, and ends every association
        still running on the old key (its counter state is gone)."""
        if self._ek_changed:
            self._ek_changed = False
            self.guard.reset(secrets.KEY_EK)
            self.epoch += 1
        ctx = security.Context(self.keys(), self.server_title, client_title, self.tx,
                               self.guard)
        ctx.epoch = self.epoch
        return ctx

    def required_sc(self):
        """SC bits every request must carry under the current security policy."""
        p = self.policy
        sc = 0
        if p & 0x04:
            sc |= security.SC_AUTH
        if p & 0x08:
            sc |= security.SC_AUTH_ENC
        return sc

    def changed(self, setup):
        """Security setup hook: persist the policy; a new unicast key restarts the client's
        counter sequence."""
        self.policy = setup.policy
        if self.store is not None:
            self.store.save("secpol", 1, bytes([self.policy]))
        ek = self.keystore.get(secrets.KEY_EK)
        if ek != self._ek:
            # Not reset here: the association that made the transfer goes on with the old key
            # and must keep its replay protection (its requests before the transfer must not
            # become replayable). The reset happens with the first new-key association.
            self._ek = ek
            self._ek_changed = True
            self.event("key-change", 0)

    def event(self, kind, client):
        if self.on_event is not None:
            self.on_event(kind, client)


def make_ic(board):
    """The metering-IC driver the board names, on the board's SPI bus (or None)."""
    name = getattr(board, "meter_chip", None)
    if name == "atm90e32":
        from drivers.atm90e32 import Atm90e32

        return Atm90e32(board.spi, board.cs, board.sleep_ms, board.chip_config), 3
    if name == "ade7953":
        from drivers.ade7953 import Ade7953

        return Ade7953(board.spi, board.cs, board.sleep_ms, board.chip_config), 1
    return None, 0


class Metering:
    """What the COSEM registers read: value sources over the engine (None = unavailable,
    which the register answers with temporary-failure)."""

    def __init__(self, engine, now_ms):
        self.engine = engine
        self.phases = engine.phases
        self.now_ms = now_ms

    def energy(self, quantity, phase):
        e = self.engine
        return lambda: e.energy_wh(quantity, phase, self.now_ms())

    def instant(self, name, phase):
        e = self.engine

        def read():
            inst = e.instant()
            return None if inst is None else getattr(inst, name)[phase]

        return read

    def power(self, importing):
        """Active power import (+) or export (-), total, as two non-negative registers."""
        e = self.engine

        def read():
            inst = e.instant()
            if inst is None:
                return None
            p = inst.active[0]
            return (p if p > 0 else 0) if importing else (-p if p < 0 else 0)

        return read

    def frequency(self):
        e = self.engine

        def read():
            inst = e.instant()
            return None if inst is None else inst.frequency

        return read


class App:
    def __init__(self, board):
        self.board = board
        self.store = Store(board.store_root) if board.store_root else None
        self.boots = 0
        self._restore()
        self.clock = meter_clock.Clock(board.rtc)
        self.hdlc_settings = HdlcSettings(info_cap=getattr(board, "hdlc_info_cap", 128))
        self.port_settings = objects.default_port_settings(board.identity)
        self._load("clock", self.clock.load_config)
        self._check_clock()
        self.persist()
        self.history = meter_history.History(self.clock)
        self._load("hdlc", self.hdlc_settings.unpack)
        self._load("port", self.port_settings.unpack)
        self.hdlc_ports = []  # HdlcSetup applies written settings to these
        self.security = Security(self.store, board.identity["system_title"], board.urandom,
                                 self.event)
        self.engine = None
        metering = None
        ic, phases = make_ic(board)
        if ic is not None:
            self.engine = engine.Engine(ic, phases, self.store, self.event)
            self.engine.start(board.meter_ms())
            metering = Metering(self.engine, board.meter_ms)
        self.device = objects.build(self.clock, board.identity,
                                    hdlc_settings=self.hdlc_settings,
                                    port_settings=self.port_settings,
                                    hdlc_targets=self.hdlc_ports,
                                    security=self.security, metering=metering,
                                    history=self.history, logs=self._profile_logs())
        self.device.on_event.append(self.event)
        self.security.setup.on_change.append(self.security.changed)
        self._start_history()
        self._release_slab()
        # one plain-response buffer for every ciphered association (requests are served one
        # at a time), allocated while the heap is still contiguous
        self.security.resp = bytearray(self.device.max_pdu + 64)  # as large as a reply view
        for role, policy in self.device.policies.items():
            if policy.mechanism == _MECH_LLS:
                self._load("lls%d" % role, lambda rec, p=policy: _set_secret(p, rec))
        self.clock.on_change.append(self._clock_changed)
        self.hdlc_settings.on_change.append(lambda s: self._save("hdlc", s.pack()))
        self.port_settings.on_change.append(lambda s: self._save("port", s.pack()))
        self.device.on_secret_change.append(lambda role, sec: self._save("lls%d" % role, sec))
        self.server = ports.Server(self.device, max_tcp=board.max_tcp,
                                   on_error=getattr(board, "log_error", None))
        for entry in board.hdlc_streams:
            stream, name = entry[0], entry[1]
            if len(entry) > 2:  # the optical port: IEC 62056-21 mode E first
                from optical import OpticalPort

                ident = board.identity
                port = self.server.add_port(OpticalPort(
                    self.server, stream, name, self.hdlc_settings.link_args(), entry[2],
                    self.port_settings, ident["name"][:3], ident.get("firmware") or b"",
                    self.hdlc_settings))
            else:
                port = self.server.add_hdlc(stream, name, **self.hdlc_settings.link_args())
            port.settings = self.hdlc_settings
            self.hdlc_settings.apply(port)
            self.hdlc_ports.append(port)
        if board.tcp is not None:
            self.server.add_tcp_listener(board.tcp)
            self.server.preallocate_tcp(getattr(board, "tcp_prealloc", 2))

    def _restore(self):
        """Boot count, RTC and what the last run left: when it was last known alive and
        whether it stopped cleanly (for the power-down event and the clock's validity)."""
        self.alive_at = None  # UTC when the last run last wrote its state (None: first boot)
        self.clean = True
        self.clock_status = 0
        self._alive_written = 0
        if self.store is None:
            return
        rec = self.store.load("meter", _STATE_VERSION)
        rtc = self.board.rtc
        if rec is not None:
            (self.boots, meter_ns, host_ns, alive, clean,
             self.clock_status) = struct.unpack(_STATE_FMT, rec)
            self.alive_at = alive
            self.clean = bool(clean)
            if host_ns and hasattr(rtc, "restore") and getattr(self.board, "rtc_battery", True):
                rtc.restore(meter_ns, host_ns)
        elif getattr(self.board, "start_ns", None) is not None and hasattr(rtc, "set_ns"):
            rtc.set_ns(self.board.start_ns)  # a fresh meter starts at the configured time
        self.boots += 1

    def _profile_logs(self):
        """The rings in flash behind the three profiles (none without a filesystem)."""
        if self.store is None:
            return {}
        from meter.profile_log import ProfileLog

        root = self.board.store_root
        logs = {}
        for key, name, row, entries in (
                ("load", "lp", 22, objects.LOAD_PROFILE_ENTRIES),
                ("billing", "bill", 21, objects.BILLING_ENTRIES),
                ("events", "ev", 6, objects.EVENT_LOG_ENTRIES)):
            logs[key] = ProfileLog(root, name, row, entries)
        gc.collect()  # recovery listed the directory: its garbage grows with the history
        return logs

    def _start_history(self):
        h = self.history
        load, billing, events = self.device.profiles
        h.load, h.billing, h.events = load, billing, events
        for prof in (load, billing):
            if prof.log is not None:
                self._load("pg-" + prof.log.name, lambda rec, p=prof: _set_period(p, rec))
                prof.on_period_change.append(lambda p: self._save(
                    "pg-" + p.log.name, struct.pack(">I", p.capture_period)))
        for prof in (load, billing, events):
            prof.now = lambda: (self.clock.utc()[0], h.clock_status())
            prof.on_capture.append(lambda p, utc: h.captured(p, utc))
            prof.on_reset.append(lambda p: h.reset(p, self.clock.utc()[0]))
        h.start(self.clock.utc()[0], self.alive_at, self.clean)
        self._last_utc = -1

    def event(self, kind, detail=0):
        """Every event of the meter: the board's log (stderr on Unix), the event log."""
        on_event = getattr(self.board, "log_event", None)
        if on_event is not None:
            on_event(kind, detail)
        h = getattr(self, "history", None)
        if h is not None:
            h.event(kind, detail)

    def _check_clock(self):
        """A board without a battery-backed RTC (or one whose RTC lost its time: it reads
        earlier than the meter was last known alive) resumes from the persisted time and
        marks the clock invalid until a client sets it."""
        clock = self.clock
        clock.status |= self.clock_status & (meter_clock.STATUS_INVALID |
                                             meter_clock.STATUS_DOUBTFUL)
        if self.alive_at is None:
            return
        now = clock.utc()[0]
        if not getattr(self.board, "rtc_battery", True) or now < self.alive_at:
            y, mo, d, hh, mi, ss, wd = meter_clock.from_seconds(self.alive_at)
            self.board.rtc.datetime((y, mo, d, wd - 1, hh, mi, ss, 0))
            clock.status |= meter_clock.STATUS_INVALID

    def _release_slab(self):
        """The board reserved a contiguous slab before the code was loaded; free it now, so
        that the frame and APDU buffers allocated next find contiguous room."""
        if getattr(self.board, "slab", None) is not None:
            self.board.slab = None
            gc.collect()

    def _load(self, kind, restore):
        """Restore one configuration record; a missing or unusable one keeps the defaults."""
        if self.store is None:
            return
        rec = self.store.load(kind, _CONFIG_VERSION)
        if rec is not None:
            try:
                restore(rec)
            except ValueError:
                pass

    def _save(self, kind, payload):
        if self.store is not None:
            self.store.save(kind, _CONFIG_VERSION, payload)

    def _clock_changed(self, clock, old_utc):
        """meter.clock hook: configuration -> its record; time set -> the RTC offset now
        (the event log will record old_utc -> new time here)."""
        if old_utc is None:
            self._save("clock", clock.config())
        else:
            self.persist()
            self.history.clock_set(old_utc, clock.utc()[0])

    def persist(self, clean=False):
        """Write everything the meter keeps across a restart (clean shutdown, intervals)."""
        if self.store is None:
            return
        rtc = self.board.rtc
        meter_ns, host_ns = rtc.state() if hasattr(rtc, "state") else (0, 0)
        utc = self.clock.utc()[0]
        self._alive_written = utc
        status = self.clock.status & (meter_clock.STATUS_INVALID | meter_clock.STATUS_DOUBTFUL)
        self.store.save("meter", _STATE_VERSION, struct.pack(
            _STATE_FMT, self.boots, meter_ns, host_ns, utc, 1 if clean else 0, status))

    def shutdown(self):
        """Clean shutdown: take what the metering IC has counted, persist everything. Each
        step runs even if an earlier one failed (a full heap must not cost the energy)."""
        gc.collect()  # a session may have left the heap full: make room for the writes
        eng = self.engine
        if eng is not None and not self._guard("shutdown", eng.shutdown, self.board.meter_ms()):
            gc.collect()  # the energy first: once more, with what the failure freed
            self._guard("shutdown", eng.persist, self.board.meter_ms())
        self._guard("shutdown", self.history.log_event, meter_history.EV_POWER_DOWN)
        self._guard("shutdown", self.persist, True)

    def _guard(self, where, fn, *args):
        """fn(*args); an exception is reported to the board and survived. True if it ran."""
        try:
            fn(*args)
            return True
        except Exception as e:  # MemoryError near the heap limit, a flash error
            on_error = getattr(self.board, "log_error", None)
            if on_error is not None:
                on_error(where, e)
            return False

    def tick(self):
        """Once per main-loop round: metering, captures, the alive record."""
        if self.engine is not None:
            self.engine.poll(self.board.meter_ms())
        utc = self.clock.utc()[0]
        if utc != self._last_utc:
            self._last_utc = utc
            self.history.poll(utc)
            if self.store is not None and (utc - self._alive_written >= ALIVE_S
                                           or utc < self._alive_written):
                self.persist()

    def run(self, stop_requested=None):
        """Serve until stop_requested() is true (or a watch callback returns False); the
        metering engine and the history are polled between rounds (they do only what is
        due). An error in a round (MemoryError on a full heap, a flash error) is reported
        and the next round goes on: the meter never stops for it."""
        server = self.server
        while server.run_once(20):
            self._guard("meter", self.tick)
            if stop_requested is not None and stop_requested():
                break
        self.shutdown()


def _set_period(prof, rec):
    if len(rec) != 4:
        raise ValueError("capture period record")
    v = struct.unpack(">I", rec)[0]
    if v and (v > 86400 or 86400 % v):
        raise ValueError("capture period")
    prof.capture_period = v


def _set_secret(policy, rec):
    if not 1 <= len(rec) <= 32:
        raise ValueError("LLS secret record")
    policy.secret = bytes(rec)
