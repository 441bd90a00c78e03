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

RAM: one 12-byte buffer for the last encoded date-time.
"""

STATUS_INVALID = 0x01
STATUS_DOUBTFUL = 0x02
STATUS_DST = 0x80


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


class Clock:
    def __init__(self, rtc, deviation_min=0):
        self.rtc = rtc
        self.deviation = deviation_min  # Blue Book time_zone attribute: UTC - local, minutes
        self.status = 0
        self.buf = bytearray(12)

    def utc(self):
        """(seconds since 2000, hundredths) in UTC from the RTC."""
        y, mo, d, _wd, hh, mi, ss, sub = self.rtc.datetime()
        # subseconds: microseconds (ESP32 convention; rp2 reports 0)
        return to_seconds(y, mo, d, hh, mi, ss), (sub // 10000) % 100

    def date_time(self):
        """The current local time as a 12-byte COSEM date-time (the same buffer each call)."""
        secs, hundredths = self.utc()
        return self.encode(secs, hundredths)

    def encode(self, utc_secs, hundredths=0):
        local = utc_secs - self.deviation * 60
        y, mo, d, hh, mi, ss, wd = from_seconds(local)
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
        dev = self.deviation & 0xFFFF
        b[9] = dev >> 8
        b[10] = dev & 0xFF
        b[11] = self.status
        return b
