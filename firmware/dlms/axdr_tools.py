"""COSEM date-time helpers (Blue Book 4.1.6.1) for tools, tests and application code that
needs them: build the 12 octets of a date-time from its fields, split them again, compute
the day of the week.

The server's A-XDR codec (``axdr``) does not need these: a date-time travels as an
octet-string(12) or date-time [25] whose octets the clock object produces itself. They live
apart so that a board does not hold their code in RAM unless it imports them.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms.axdr import DecodeError

# -- COSEM date-time (Blue Book 4.1.6.1) -------------------------------------------------
# year(2) month day day-of-week hour minute second hundredths deviation(2, signed minutes,
# local time = UTC - deviation... see the Blue Book) status. 0xFF / 0xFFFF / 0x8000 mean
# "not specified"; month 0xFD/0xFE = DST end/begin, day 0xFD/0xFE = 2nd-last/last day.

DEVIATION_UNSPECIFIED = const(0x8000)
_DOW = b"\x00\x03\x02\x05\x00\x03\x05\x01\x04\x06\x02\x04"


def day_of_week(year, month, day):
    """1 = Monday .. 7 = Sunday (proleptic Gregorian calendar)."""
    y = year - 1 if month < 3 else year
    w = (y + y // 4 - y // 100 + y // 400 + _DOW[month - 1] + day) % 7  # 0 = Sunday
    return 7 if w == 0 else w


def _field(v, lo, hi, extra):
    if not (lo <= v <= hi or v in extra):
        raise ValueError("date-time field out of range")


def date_time_bytes(
    year,
    month,
    day,
    hour,
    minute,
    second,
    hundredths=0,
    deviation=DEVIATION_UNSPECIFIED,
    status=0,
    weekday=None,
):
    """The 12 octets of a COSEM date-time. ``weekday=None`` computes it (1=Monday..
    7=Sunday) when year, month and day are all specified, else 0xFF. Deviation is in
    minutes, -720..720, or 0x8000 (not specified). Out-of-range fields: ValueError."""
    _field(year, 0, 0xFFFF, ())
    _field(month, 1, 12, (0xFD, 0xFE, 0xFF))
    _field(day, 1, 31, (0xFD, 0xFE, 0xFF))
    _field(hour, 0, 23, (0xFF,))
    _field(minute, 0, 59, (0xFF,))
    _field(second, 0, 59, (0xFF,))
    _field(hundredths, 0, 99, (0xFF,))
    _field(status, 0, 0xFF, ())
    if deviation == DEVIATION_UNSPECIFIED or deviation == -0x8000:
        dev = 0x8000
    else:
        _field(deviation, -720, 720, ())
        dev = deviation & 0xFFFF
    if weekday is None:
        if year != 0xFFFF and 1 <= month <= 12 and 1 <= day <= 31:
            weekday = day_of_week(year, month, day)
        else:
            weekday = 0xFF
    _field(weekday, 1, 7, (0xFF,))
    b = bytearray(12)
    b[0] = year >> 8
    b[1] = year & 0xFF
    b[2] = month
    b[3] = day
    b[4] = weekday
    b[5] = hour
    b[6] = minute
    b[7] = second
    b[8] = hundredths
    b[9] = dev >> 8
    b[10] = dev & 0xFF
    b[11] = status
    return bytes(b)


def parse_date_time(b12):
    """-> (year, month, day, weekday, hour, minute, second, hundredths, deviation, status).
    Not-specified values are kept (0xFFFF, 0xFF, deviation 0x8000); a specified deviation
    comes back signed. DecodeError unless exactly 12 octets."""
    if len(b12) != 12:
        raise DecodeError("date-time is 12 octets")
    dev = (b12[9] << 8) | b12[10]
    if dev != 0x8000 and dev & 0x8000:
        dev -= 0x10000
    return (
        (b12[0] << 8) | b12[1],
        b12[2],
        b12[3],
        b12[4],
        b12[5],
        b12[6],
        b12[7],
        b12[8],
        dev,
        b12[11],
    )
