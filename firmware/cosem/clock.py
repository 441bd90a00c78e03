"""Clock (interface class 8, version 0; Blue Book 4.5.1).

Attributes: 1 logical_name, 2 time (octet-string date-time), 3 time_zone (long: deviation of
local normal time from UTC in minutes, UTC - local), 4 status (unsigned, clock_status bits),
5 daylight_savings_begin, 6 daylight_savings_end (octet-string date-time with wildcards),
7 daylight_savings_deviation (integer, minutes), 8 daylight_savings_enabled (boolean),
9 clock_base (enum: 0 not defined, 1 internal crystal, 2 mains 50 Hz, 3 mains 60 Hz,
4 GPS, 5 radio controlled).
Methods: 1 adjust_to_quarter, 2 adjust_to_measuring_period, 3 adjust_to_minute,
4 adjust_to_preset_time, 5 preset_adjusting_time, 6 shift_time.

The time itself comes from ``meter.clock.Clock`` (the meter layer owns the RTC).
"""

from cosem.base import CosemObject
from dlms import axdr

# DST rule "last Sunday of March / October, 02:00 / 03:00" as COSEM wildcards:
# year 0xFFFF, day 0xFE = last day of month, day-of-week 7 = Sunday.
_DST_BEGIN = bytes([0xFF, 0xFF, 3, 0xFE, 7, 2, 0, 0, 0, 0x80, 0x00, 0xFF])
_DST_END = bytes([0xFF, 0xFF, 10, 0xFE, 7, 3, 0, 0, 0, 0x80, 0x00, 0xFF])


class Clock(CosemObject):
    CLASS_ID = 8
    VERSION = 0
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("time", axdr.OCTET_STRING),
        ("time_zone", axdr.LONG),
        ("status", axdr.UNSIGNED),
        ("daylight_savings_begin", axdr.OCTET_STRING),
        ("daylight_savings_end", axdr.OCTET_STRING),
        ("daylight_savings_deviation", axdr.INTEGER),
        ("daylight_savings_enabled", axdr.BOOLEAN),
        ("clock_base", axdr.ENUM),
    )
    METHODS = (
        "adjust_to_quarter",
        "adjust_to_measuring_period",
        "adjust_to_minute",
        "adjust_to_preset_time",
        "preset_adjusting_time",
        "shift_time",
    )

    def __init__(self, ln, clock, clock_base=1):
        super().__init__(ln)
        self.clock = clock
        self.dst_deviation = 60
        self.dst_enabled = False
        self.clock_base = clock_base

    def get_attr(self, attr, w, ctx):
        c = self.clock
        if attr == 2:
            w.octet_string(c.date_time())
        elif attr == 3:
            w.long(c.deviation)
        elif attr == 4:
            w.unsigned(c.status)
        elif attr == 5:
            w.octet_string(_DST_BEGIN)
        elif attr == 6:
            w.octet_string(_DST_END)
        elif attr == 7:
            w.integer(self.dst_deviation)
        elif attr == 8:
            w.boolean(self.dst_enabled)
        elif attr == 9:
            w.enum(self.clock_base)
        else:
            return super().get_attr(attr, w, ctx)
        return 0
