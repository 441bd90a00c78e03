"""Clock (interface class 8, version 0; Blue Book 4.5.1).

Attributes (A-XDR type; writable here?):
 1 logical_name                 octet-string                      no
 2 time                         octet-string (12, date-time)      yes: sets the meter clock
 3 time_zone                    long (UTC - local, minutes)       yes: -720..720
 4 status                       unsigned (clock_status bits)      no (the meter's own view)
 5 daylight_savings_begin       octet-string (12, wildcards)      yes
 6 daylight_savings_end         octet-string (12, wildcards)      yes
 7 daylight_savings_deviation   integer (minutes)                 yes: -120..120
 8 daylight_savings_enabled     boolean                           yes
 9 clock_base                   enum (0 not defined, 1 internal crystal, 2 mains 50 Hz,
                                3 mains 60 Hz, 4 GPS, 5 radio controlled)   no
Methods (parameter):
 1 adjust_to_quarter            integer(0): to the nearest quarter hour
 2 adjust_to_measuring_period   integer(0): to the nearest start of a measuring period
 3 adjust_to_minute             integer(0): to the nearest minute
 4 adjust_to_preset_time        integer(0): to the preset time, if now lies in its validity
                                interval (else other-reason); the preset is used once
 5 preset_adjusting_time        structure {preset_time, validity_interval_start,
                                validity_interval_end}, three date-times (octet-strings)
 6 shift_time                   long: seconds, -900..900

A written date-time must be fully specified (deviation may be 0x8000: the meter's local
time, see meter.clock.Clock.to_utc). "Nearest" rounds half up and works on local time, so a
measuring period of a day starts at local midnight.

Results: a value of the wrong A-XDR type (or a date-time that is not 12 octets) is
type-unmatched; a value of the right type that is not acceptable (an invalid date, a time zone
out of range) is other-reason. The methods accept integer (any value) or no parameter where
the Blue Book says integer(0).

The time and its settings live in ``meter.clock.Clock`` (the meter layer owns the RTC and
persists through its ``on_change`` hooks); this object only holds clock_base, the measuring
period and a preset time (volatile).
"""

from cosem.base import CosemObject, expect
from dlms import axdr
from dlms import xdlms


def _date_time(value):
    """The 12 octets of a date-time given as octet-string (or the date-time tag), else None."""
    if value is None or (value[0] != axdr.OCTET_STRING and value[0] != axdr.DATE_TIME):
        return None
    b = value[1]
    return b if len(b) == 12 else None


def _no_param(param):
    """integer(0) per the Blue Book; also accept an absent parameter."""
    return param is None or param[0] == axdr.INTEGER


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

    def __init__(self, ln, clock, clock_base=1, measuring_period_s=900):
        super().__init__(ln)
        self.clock = clock
        self.clock_base = clock_base
        self.measuring_period_s = measuring_period_s
        self.preset = None  # (preset, valid from, valid to), UTC seconds since 2000

    def get_attr(self, attr, w, ctx):
        c = self.clock
        if attr == 2:
            w.octet_string(c.date_time())
        elif attr == 3:
            w.long(c.deviation)
        elif attr == 4:
            w.unsigned(c.clock_status())
        elif attr == 5:
            w.octet_string(c.dst_begin)
        elif attr == 6:
            w.octet_string(c.dst_end)
        elif attr == 7:
            w.integer(c.dst_deviation)
        elif attr == 8:
            w.boolean(c.dst_enabled)
        elif attr == 9:
            w.enum(self.clock_base)
        else:
            return super().get_attr(attr, w, ctx)
        return 0

    def set_attr(self, attr, value, ctx):
        c = self.clock
        if attr == 2 or attr == 5 or attr == 6:
            b = _date_time(value)
            if b is None:
                return xdlms.DAR_TYPE_UNMATCHED
            try:
                if attr == 2:
                    secs, hundredths = c.to_utc(b)
                elif attr == 5:
                    c.set_dst(begin=b)
                    return 0
                else:
                    c.set_dst(end=b)
                    return 0
            except ValueError:
                return xdlms.DAR_OTHER_REASON
            c.set_utc(secs, hundredths)
            return 0
        if attr == 3 or attr == 7:
            v = expect(value, axdr.LONG if attr == 3 else axdr.INTEGER)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            try:
                if attr == 3:
                    c.set_deviation(v)
                else:
                    c.set_dst(deviation=v)
            except ValueError:
                return xdlms.DAR_OTHER_REASON
            return 0
        if attr == 8:
            v = expect(value, axdr.BOOLEAN)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            c.set_dst(enabled=v)
            return 0
        return super().set_attr(attr, value, ctx)

    def action(self, method, param, w, ctx):
        c = self.clock
        if 1 <= method <= 4:
            if not _no_param(param):
                return xdlms.DAR_TYPE_UNMATCHED
            if method == 4:
                return self._to_preset()
            step = 900 if method == 1 else self.measuring_period_s if method == 2 else 60
            if step <= 0:
                return xdlms.DAR_OTHER_REASON
            secs, _cs = c.utc()
            dev = c.offset(secs)[0] * 60
            local = secs - dev
            local = (local + step // 2) // step * step  # nearest, half up
            c.set_utc(local + dev, 0)
            return 0
        if method == 5:
            return self._preset(param)
        if method == 6:
            v = expect(param, axdr.LONG)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            if not -900 <= v <= 900:
                return xdlms.DAR_OTHER_REASON
            secs, cs = c.utc()
            if secs + v < 0:
                return xdlms.DAR_OTHER_REASON
            c.set_utc(secs + v, cs)
            return 0
        return super().action(method, param, w, ctx)

    def _preset(self, param):
        items = expect(param, axdr.STRUCTURE)
        if items is None or len(items) != 3:
            return xdlms.DAR_TYPE_UNMATCHED
        times = []
        for item in items:
            b = _date_time(item)
            if b is None:
                return xdlms.DAR_TYPE_UNMATCHED
            try:
                times.append(self.clock.to_utc(b)[0])
            except ValueError:
                return xdlms.DAR_OTHER_REASON
        if times[1] > times[2]:
            return xdlms.DAR_OTHER_REASON  # the validity interval ends before it starts
        self.preset = tuple(times)
        return 0

    def _to_preset(self):
        p = self.preset
        if p is None:
            return xdlms.DAR_OTHER_REASON  # nothing preset
        now = self.clock.utc()[0]
        if not p[1] <= now <= p[2]:
            return xdlms.DAR_OTHER_REASON  # outside the validity interval
        self.preset = None
        self.clock.set_utc(p[0], 0)
        return 0
