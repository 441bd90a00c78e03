"""meter.clock calendar arithmetic and COSEM date-time encoding. CPython and MicroPython."""

from meter import clock


def test_epoch_and_known_dates():
    assert clock.to_seconds(2000, 1, 1, 0, 0, 0) == 0
    assert clock.days_from_civil(2000, 3, 1) == 60  # 2000 is a leap year
    assert clock.days_from_civil(2024, 1, 15) == 8780
    assert clock.days_from_civil(1970, 1, 1) == -10957
    assert clock.from_seconds(0) == (2000, 1, 1, 0, 0, 0, 6)  # a Saturday


def test_round_trip_over_centuries_and_leap_days():
    for y, m, d in ((1999, 12, 31), (2000, 2, 29), (2100, 2, 28), (2100, 3, 1), (2038, 1, 19),
                    (2400, 2, 29), (2024, 12, 31)):
        days = clock.days_from_civil(y, m, d)
        assert clock.civil_from_days(days) == (y, m, d)
    prev = None
    for days in range(-800, 40000, 13):
        ymd = clock.civil_from_days(days)
        assert clock.days_from_civil(*ymd) == days
        if prev is not None:
            assert ymd > prev
        prev = ymd


def test_weekday():
    # 2024-01-15 is a Monday, 2021-01-24 a Sunday (dlms-vectors 4.7: day-of-week FF there)
    assert clock.from_seconds(clock.to_seconds(2024, 1, 15, 12, 0, 0))[6] == 1
    assert clock.from_seconds(clock.to_seconds(2021, 1, 24, 14, 48, 57))[6] == 7


class RTC:
    def datetime(self):
        return (2021, 1, 24, 6, 13, 48, 57, 800000)


def test_date_time_with_deviation():
    c = clock.Clock(RTC(), deviation_min=-60)  # CET: local = UTC + 1 h
    b = c.date_time()
    # the date-time of dlms-vectors 4.7 (2021-01-24 14:48:57.80, deviation -60), with the
    # day of week filled in (7, Sunday) instead of "not specified"
    assert bytes(b) == bytes([0x07, 0xE5, 1, 24, 7, 14, 48, 57, 80, 0xFF, 0xC4, 0])
