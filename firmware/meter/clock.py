"""Time keeping for the meter on top of the board's real-time clock.

The board gives an RTC with the ``machine.RTC`` interface: ``datetime()`` returns
(year, month, day, weekday, hours, minutes, seconds, subseconds) in UTC. This module turns it
into what COSEM needs (Blue Book, Clock interface class, and the date-time format of
"Common data types"):

    year(2) month day day-of-week hour minute second hundredths deviation(2) status

* deviation: minutes of UTC minus local time, signed (central European winter time is -60);
  0x8000 = not specified;
* status (clock_status bits): 0x01 invalid value, 0x02 doubtful value, 0x04 different clock
  base, 0x08 invalid clock status, 0x80 daylight saving active.

Seconds are counted from the meter's own epoch, 2000-01-01 00:00 UTC, by exact calendar
arithmetic (``days_from_civil``): the board's ``time`` epoch (2000 on ESP32, 1970 on rp2 and
Unix) and ``time.mktime``'s idea of the local time zone (libc's on the Unix port) never
enter. Seconds since 2000 stay below 2**30 (a small int on the boards) until 2034.

Daylight saving (Blue Book, Clock attributes 5..8): when enabled, local time runs
``dst_deviation`` minutes ahead between the begin and end instants of the current year. Begin
and end are date-time patterns with wildcards: year 0xFFFF (every year), day 0xFE / 0xFD
(last / second-last day of the month), day-of-week 1..7. With a day of week, the transition
is on that weekday: the last one on or before the given day when the day is 0xFE / 0xFD,
else the first one on or after it (``3 0xFE 7`` = last Sunday of March, ``3 25 7`` = the
Sunday of March 25..31). Begin is a local normal time, end a local daylight-saving time.
While daylight saving is active, encoded date-times carry ``time_zone - dst_deviation`` as
deviation and status bit 0x80.

Setting the time (``set_utc``) writes the board RTC through ``machine.RTC.datetime(t)``
with t = (year, month, day, weekday 0=Monday..6, hours, minutes, seconds, microseconds).
Every change (time or configuration) calls the ``on_change`` hooks: the application uses
them to persist (``config()`` / ``load_config()``) and to log the time change.

RAM: one 12-byte buffer for the last encoded date-time, two 12-byte DST patterns.
"""

import struct

STATUS_INVALID = 0x01
STATUS_DOUBTFUL = 0x02
STATUS_DST = 0x80

DEVIATION_UNSPECIFIED = 0x8000  # in a date-time: "local time of the meter"
DEVIATION_MAX_MIN = 720  # |time zone| and |date-time deviation| limit (Blue Book)
DST_DEVIATION_MAX_MIN = 120  # daylight_savings_deviation: -120..120 minutes
YEAR_MIN = 2000  # dates the meter accepts for its own time (seconds since 2000 >= 0)
YEAR_MAX = 2099

# DST rule "last Sunday of March 02:00 / last Sunday of October 03:00" as COSEM wildcards:
# year 0xFFFF, day 0xFE = last day of month, day-of-week 7 = Sunday, deviation and status
# not specified. Begin is in local normal time, end in local daylight-saving time.
DST_BEGIN_EU = bytes([0xFF, 0xFF, 3, 0xFE, 7, 2, 0, 0, 0, 0x80, 0x00, 0xFF])
DST_END_EU = bytes([0xFF, 0xFF, 10, 0xFE, 7, 3, 0, 0, 0, 0x80, 0x00, 0xFF])

_CONFIG_FMT = ">h12s12sbB"  # deviation, DST begin, DST end, DST deviation, DST enabled


def days_from_civil(y, m, d):
    """Days from 2000-01-01 to y-m-d (proleptic Gregorian)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425  # 730425 = days from 0000-03-01 to 2000-01-01


def civil_from_days(z):
    """Inverse of days_from_civil -> (year, month, day)."""
    z += 730425
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def to_seconds(y, mo, d, hh, mi, ss):
    """Calendar UTC -> seconds since 2000-01-01 00:00 UTC."""
    return days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss


def from_seconds(secs):
    """Seconds since 2000 -> (year, month, day, hour, minute, second, weekday 1=Mon..7=Sun)."""
    days = secs // 86400
    rem = secs - days * 86400
    y, mo, d = civil_from_days(days)
    wd = (days + 5) % 7 + 1  # 2000-01-01 was a Saturday (6)
    return y, mo, d, rem // 3600, (rem // 60) % 60, rem % 60, wd


def days_in_month(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def check_pattern(b):
    """ValueError unless b is a 12-octet date-time, wildcards allowed (DST begin/end)."""
    if len(b) != 12:
        raise ValueError("date-time is 12 octets")
    mo, d, wd, hh, mi, ss, cs = b[2], b[3], b[4], b[5], b[6], b[7], b[8]
    if not (1 <= mo <= 12 or mo in (0xFD, 0xFE, 0xFF)):
        raise ValueError("month")
    if not (1 <= d <= 31 or d in (0xFD, 0xFE, 0xFF)):
        raise ValueError("day")
    if not (1 <= wd <= 7 or wd == 0xFF):
        raise ValueError("day of week")
    if hh > 23 and hh != 0xFF or mi > 59 and mi != 0xFF or ss > 59 and ss != 0xFF:
        raise ValueError("time of day")
    if cs > 99 and cs != 0xFF:
        raise ValueError("hundredths")
    dev = (b[9] << 8) | b[10]
    if dev != DEVIATION_UNSPECIFIED:
        if dev & 0x8000:
            dev -= 0x10000
        if not -DEVIATION_MAX_MIN <= dev <= DEVIATION_MAX_MIN:
            raise ValueError("deviation")


def transition(pattern, year):
    """The wall-clock instant (seconds since 2000, local) a DST pattern names in ``year``,
    or None when the pattern does not name a month (see the module docstring)."""
    mo = pattern[2]
    if not 1 <= mo <= 12:
        return None
    n = days_in_month(year, mo)
    d = pattern[3]
    back = d == 0xFE or d == 0xFD
    if d == 0xFE:
        d = n
    elif d == 0xFD:
        d = n - 1
    elif d == 0xFF:
        d = 1
    elif d > n:
        d = n
    days = days_from_civil(year, mo, d)
    dow = pattern[4]
    if 1 <= dow <= 7:
        wd = (days + 5) % 7 + 1
        if back:
            days -= (wd - dow) % 7
        else:
            days += (dow - wd) % 7
            if days > days_from_civil(year, mo, n):
                days -= 7
    hh, mi, ss = pattern[5], pattern[6], pattern[7]
    return (days * 86400 + (0 if hh == 0xFF else hh) * 3600 + (0 if mi == 0xFF else mi) * 60
            + (0 if ss == 0xFF else ss))


class Clock:
    def __init__(self, rtc, deviation_min=0):
        self.rtc = rtc
        self.deviation = deviation_min  # Blue Book time_zone attribute: UTC - local, minutes
        self.status = 0
        self.buf = bytearray(12)
        self.dst_begin = DST_BEGIN_EU
        self.dst_end = DST_END_EU
        self.dst_deviation = 60  # minutes local time advances while DST is active
        self.dst_enabled = False
        self.on_change = []  # hooks f(clock, old_utc): old_utc None = configuration change

    def utc(self):
        """(seconds since 2000, hundredths) in UTC from the RTC."""
        y, mo, d, _wd, hh, mi, ss, sub = self.rtc.datetime()
        # subseconds: microseconds (ESP32 convention; rp2 reports 0)
        return to_seconds(y, mo, d, hh, mi, ss), (sub // 10000) % 100

    # ------------------------------------------------------------------ reading
    def dst_active(self, utc_secs):
        """Is daylight saving time in force at this UTC instant?"""
        if not self.dst_enabled:
            return False
        dev = self.deviation * 60
        year = from_seconds(utc_secs - dev)[0]
        b = transition(self.dst_begin, year)
        e = transition(self.dst_end, year)
        if b is None or e is None:
            return False
        b += dev  # begin: local normal time -> UTC
        e += dev - self.dst_deviation * 60  # end: local DST time -> UTC
        if b <= e:
            return b <= utc_secs < e
        return utc_secs >= b or utc_secs < e  # southern hemisphere: DST spans New Year

    def clock_status(self, utc_secs=None):
        """The clock_status byte (Clock attribute 4) now or at utc_secs."""
        if utc_secs is None:
            utc_secs = self.utc()[0]
        return self.status | (STATUS_DST if self.dst_active(utc_secs) else 0)

    def offset(self, utc_secs):
        """(deviation of the date-time at utc_secs in minutes, status byte)."""
        if self.dst_active(utc_secs):
            return self.deviation - self.dst_deviation, self.status | STATUS_DST
        return self.deviation, self.status

    def date_time(self):
        """The current local time as a 12-byte COSEM date-time (the same buffer each call)."""
        secs, hundredths = self.utc()
        return self.encode(secs, hundredths)

    def encode(self, utc_secs, hundredths=0):
        dev, status = self.offset(utc_secs)
        y, mo, d, hh, mi, ss, wd = from_seconds(utc_secs - dev * 60)
        b = self.buf
        b[0] = y >> 8
        b[1] = y & 0xFF
        b[2] = mo
        b[3] = d
        b[4] = wd  # 1 = Monday .. 7 = Sunday
        b[5] = hh
        b[6] = mi
        b[7] = ss
        b[8] = hundredths
        dev &= 0xFFFF
        b[9] = dev >> 8
        b[10] = dev & 0xFF
        b[11] = status
        return b

    def to_utc(self, b):
        """A fully specified 12-octet date-time -> (UTC seconds since 2000, hundredths).

        Deviation 0x8000 (not specified) means the meter's local time: time_zone, plus the
        DST deviation when that local time falls in daylight saving. Day of week and status
        are not trusted (only checked for range); hundredths 0xFF counts as 0.
        ValueError for anything else that is not a valid instant.
        """
        if len(b) != 12:
            raise ValueError("date-time is 12 octets")
        y = (b[0] << 8) | b[1]
        mo, d, wd, hh, mi, ss, cs = b[2], b[3], b[4], b[5], b[6], b[7], b[8]
        if not YEAR_MIN <= y <= YEAR_MAX or not 1 <= mo <= 12:
            raise ValueError("year or month")
        if not 1 <= d <= days_in_month(y, mo) or not (1 <= wd <= 7 or wd == 0xFF):
            raise ValueError("day")
        if hh > 23 or mi > 59 or ss > 59 or (cs > 99 and cs != 0xFF):
            raise ValueError("time of day")
        local = to_seconds(y, mo, d, hh, mi, ss)
        dev = (b[9] << 8) | b[10]
        if dev == DEVIATION_UNSPECIFIED:
            utc = local + self.deviation * 60
            if self.dst_enabled and self.dst_active(utc - self.dst_deviation * 60):
                utc -= self.dst_deviation * 60
        else:
            if dev & 0x8000:
                dev -= 0x10000
            if not -DEVIATION_MAX_MIN <= dev <= DEVIATION_MAX_MIN:
                raise ValueError("deviation")
            utc = local + dev * 60
        if utc < 0:
            raise ValueError("before 2000")
        return utc, (0 if cs == 0xFF else cs)

    # ------------------------------------------------------------------ writing
    def set_utc(self, secs, hundredths=0):
        """Set the RTC to UTC ``secs`` (since 2000) and ``hundredths``; the time is then valid."""
        if secs < 0 or not 0 <= hundredths <= 99:
            raise ValueError("time")
        old = self.utc()[0]
        y, mo, d, hh, mi, ss, wd = from_seconds(secs)
        self.rtc.datetime((y, mo, d, wd - 1, hh, mi, ss, hundredths * 10000))
        self.status &= ~(STATUS_INVALID | STATUS_DOUBTFUL)
        self._changed(old)

    def set_deviation(self, minutes):
        """time_zone: UTC - local normal time, -720..720 minutes."""
        if not -DEVIATION_MAX_MIN <= minutes <= DEVIATION_MAX_MIN:
            raise ValueError("time zone")
        self.deviation = minutes
        self._changed(None)

    def set_dst(self, begin=None, end=None, deviation=None, enabled=None):
        """Change any of the daylight-saving settings (ValueError: nothing changes)."""
        if begin is not None:
            check_pattern(begin)
        if end is not None:
            check_pattern(end)
        if deviation is not None and not -DST_DEVIATION_MAX_MIN <= deviation <= (
                DST_DEVIATION_MAX_MIN):
            raise ValueError("DST deviation")
        if begin is not None:
            self.dst_begin = bytes(begin)
        if end is not None:
            self.dst_end = bytes(end)
        if deviation is not None:
            self.dst_deviation = deviation
        if enabled is not None:
            self.dst_enabled = bool(enabled)
        self._changed(None)

    def _changed(self, old_utc):
        for hook in self.on_change:
            hook(self, old_utc)

    # ------------------------------------------------------------------ persistence
    def config(self):
        """Time zone and DST settings as bytes, for the store (``load_config`` reverses)."""
        return struct.pack(_CONFIG_FMT, self.deviation, self.dst_begin, self.dst_end,
                           self.dst_deviation, 1 if self.dst_enabled else 0)

    def load_config(self, rec):
        """Restore ``config()`` bytes (no hooks called); ValueError if they do not fit."""
        if len(rec) != struct.calcsize(_CONFIG_FMT):
            raise ValueError("clock config")
        dev, begin, end, dst_dev, enabled = struct.unpack(_CONFIG_FMT, rec)
        if not -DEVIATION_MAX_MIN <= dev <= DEVIATION_MAX_MIN:
            raise ValueError("time zone")
        if not -DST_DEVIATION_MAX_MIN <= dst_dev <= DST_DEVIATION_MAX_MIN:
            raise ValueError("DST deviation")
        check_pattern(begin)
        check_pattern(end)
        self.deviation = dev
        self.dst_begin = bytes(begin)
        self.dst_end = bytes(end)
        self.dst_deviation = dst_dev
        self.dst_enabled = bool(enabled)
