"""The meter's history: when the load profile and the daily billing profile capture, what
the standard event log records, and the AMR profile status of each load-profile row.

Nothing here reads a clock: ``poll(utc)`` is called by the application's main loop with the
meter's UTC time (seconds since 2000), and events arrive through ``event(kind, ...)``.

Capture rule (load profile, daily billing; both "periodic on local clock boundaries"): a
profile with capture_period P > 0 captures at every instant whose *local* time is a
multiple of P (900 s: hh:00, :15, :30, :45; 86400 s: local midnight). The row is stamped
with that boundary, not with the moment the loop noticed it. A boundary is captured at most
once, and never one that is not later than the newest row (rows only get later). Hence:

* restart (power restored): if one or more boundaries passed while the meter was off, one
  row is captured at once for the most recent of them, with the power-down bit; the others
  have no row (the meter was off: it has no values for them);
* clock set forward across boundaries: the same, one row for the most recent passed
  boundary, with the clock-adjusted bit;
* clock set backwards: no row until the clock passes the newest row's time again (no
  boundary is captured twice); the next row carries the clock-adjusted bit;
* a fresh meter (empty profile) starts with the next boundary;
* daylight-saving changes: a boundary is a multiple of P in the local time in force at that
  instant, so no instant is captured twice and a daily profile gets no extra row: the
  repeated local hour (autumn) has one row per real interval, its rows told apart by the
  deviation and the DST bit; a skipped one (spring) has no row, as for a clock set.

AMR profile status (0.0.96.10.1.255, the second load-profile column), bits as commonly used
by DLMS companion specifications: 0x80 PDN power down during the interval, 0x20 CAD clock
adjusted, 0x08 DST in force, 0x04 DNV data not valid (metering chip fault during the
interval), 0x02 CIV clock invalid, 0x01 CRE critical error. Bits collected during an
interval are cleared when its row is captured.

Event codes (the event code object 0.0.96.11.0.255 holds the last one): 1 power down,
2 power up, 4 clock adjusted (old time), 5 clock adjusted (new time), 6 clock invalid,
16 measurement system error (metering chip fault); this meter's own (manufacturer range):
230 firmware started, 231 association authentication failure, 232 security key changed,
233 metering chip recovered, 234 crypto self-test failed.

RAM: a few ints per profile.
"""

PDN = 0x80
CAD = 0x20
DST = 0x08
DNV = 0x04
CIV = 0x02
CRE = 0x01

EV_POWER_DOWN = 1
EV_POWER_UP = 2
EV_CLOCK_OLD = 4
EV_CLOCK_NEW = 5
EV_CLOCK_INVALID = 6
EV_CHIP_FAULT = 16
EV_FIRMWARE_START = 230
EV_AUTH_FAILURE = 231
EV_KEY_CHANGE = 232
EV_CHIP_RECOVERED = 233
EV_SELF_TEST_FAILED = 234

# what the application's event kinds (strings) are in the log
EVENT_CODES = {
    "power-down": EV_POWER_DOWN,
    "power-up": EV_POWER_UP,
    "clock-invalid": EV_CLOCK_INVALID,
    "chip-fault": EV_CHIP_FAULT,
    "firmware-start": EV_FIRMWARE_START,
    "hls-failure": EV_AUTH_FAILURE,
    "auth-failure": EV_AUTH_FAILURE,
    "key-change": EV_KEY_CHANGE,
    "chip-recovered": EV_CHIP_RECOVERED,
    "crypto-self-test-failed": EV_SELF_TEST_FAILED,
}

_STATUS_INVALID = 0x01  # meter.clock
_STATUS_DOUBTFUL = 0x02


def boundary(utc, period, dev_min):
    """The latest local-time multiple of ``period`` at or before ``utc`` (as UTC).
    ``dev_min``: deviation in force (UTC - local, minutes)."""
    local = utc - dev_min * 60
    return utc - local % period


class History:
    def __init__(self, clock, load=None, billing=None, events=None):
        self.clock = clock  # meter.clock.Clock
        self.load = load  # cosem.profile_generic.ProfileGeneric instances (or None)
        self.billing = billing
        self.events = events
        self.flags = 0  # AMR status bits of the interval in progress
        self.last_code = 0  # the event code object's value
        self._last = {}  # profile -> newest row time (or the baseline of an empty profile)
        self.missed = 0  # captures that did not reach flash
        self._pending = []  # events before start(): (code, utc)
        self._status_value = None  # the AMR status of the scheduled row being captured

    # ------------------------------------------------------------------ values
    def amr_status(self, utc=None):
        """The AMR profile status now: the bits collected, plus the clock's state."""
        clock = self.clock
        if utc is None:
            utc = clock.utc()[0]
        s = self.flags
        if clock.status & _STATUS_INVALID:
            s |= CIV
        if clock.dst_active(utc):
            s |= DST
        return s

    def clock_status(self):
        return self.clock.status & (_STATUS_INVALID | _STATUS_DOUBTFUL)

    # ------------------------------------------------------------------ start-up
    def start(self, utc, powered_down_at=None, clean=True):
        """After boot. ``powered_down_at``: UTC of the last moment the meter knew it was
        running (None on the first boot ever); ``clean``: the last stop was a shutdown.
        Events raised before (during start-up) are logged now, after power-up."""
        pending = self._pending
        self._pending = None
        if powered_down_at is not None:
            self.flags |= PDN
            if not clean:  # a clean stop logged its power-down itself
                self.log_event(EV_POWER_DOWN, powered_down_at)
            self.log_event(EV_POWER_UP, utc)
        self.log_event(EV_FIRMWARE_START, utc)
        for code, t in pending:
            self.log_event(code, t)
        if self.clock.status & _STATUS_INVALID:
            self.log_event(EV_CLOCK_INVALID, utc)
        for prof in (self.load, self.billing):
            if prof is not None:
                t = prof.last_time()
                if t is None:
                    p = prof.capture_period
                    t = self._boundary(utc, p) if p else utc
                self._last[id(prof)] = t

    def _dev(self, utc):
        return self.clock.offset(utc)[0]

    def _boundary(self, utc, period):
        """``boundary`` with the deviation in force at the boundary itself: after a
        daylight-saving change, the latest multiple in the new local time may lie before the
        change, where it was no boundary; the latest one is then before the change, in the
        local time of then (at most one change per day)."""
        d = self._dev(utc)
        b = boundary(utc, period, d)
        d0 = self._dev(b)
        if d0 == d:
            return b
        b = boundary(utc, period, d0)
        if self._dev(b) != d0:
            b -= period
        return b

    # ------------------------------------------------------------------ the schedule
    def poll(self, utc):
        """Capture whatever boundary is due (at most one row per profile per call)."""
        for prof in (self.load, self.billing):
            if prof is None or not prof.capture_period:
                continue
            b = self._boundary(utc, prof.capture_period)
            last = self._last.get(id(prof))
            if last is not None and b <= last:
                continue
            self._capture(prof, b)

    def _capture(self, prof, utc):
        self._last[id(prof)] = utc  # also on failure: a missed row is not retried forever
        if prof is self.load:
            self._status_value = self.amr_status(utc)
        if not prof.capture(utc, self.clock_status()):
            self.missed += 1
        if prof is self.load:
            self.flags = 0
            self._status_value = None

    def captured(self, prof, utc):
        """A row was captured by other means (method capture): the schedule goes on from
        the later of the two."""
        last = self._last.get(id(prof))
        if last is None or utc > last:
            self._last[id(prof)] = utc

    def reset(self, prof, utc):
        """Profile reset (method 1): start again with the next boundary."""
        p = prof.capture_period
        self._last[id(prof)] = self._boundary(utc, p) if p else utc

    def status_column(self):
        """Value of the AMR status column while a load-profile row is captured (a row
        captured by method 2: the status now)."""
        v = self._status_value
        return self.amr_status() if v is None else v

    # ------------------------------------------------------------------ events
    def log_event(self, code, utc=None):
        self.last_code = code
        if code == EV_CHIP_FAULT:
            self.flags |= DNV
        if utc is None:
            utc = self.clock.utc()[0]
        if self._pending is not None:
            if len(self._pending) < 8:
                self._pending.append((code, utc))
            return
        if self.events is None:
            return
        if not self.events.capture(utc, self.clock_status()):
            self.missed += 1

    def event(self, kind, detail=0):
        """An application event by name (see EVENT_CODES); unknown kinds are not logged."""
        code = EVENT_CODES.get(kind)
        if code is not None:
            self.log_event(code)

    def clock_set(self, old_utc, new_utc):
        """The time was set: events 4 and 5, the clock-adjusted bit, and the schedule goes
        on from the new time without doubling rows (see the module docstring)."""
        self.flags |= CAD
        self.log_event(EV_CLOCK_OLD, old_utc)
        self.log_event(EV_CLOCK_NEW, new_utc)
