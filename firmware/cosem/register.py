"""Register (interface class 3, version 0; Blue Book 4.3.2) and Extended register
(interface class 4, version 0; Blue Book 4.3.3).

A Register is a value with a scaler and a unit: the reading is value * 10**scaler unit.

Register attributes:
 1 logical_name   octet-string
 2 value          CHOICE: here the number type chosen at construction (``tag``, e.g.
                  double-long-unsigned for energy, long-unsigned for voltage)
 3 scaler_unit    structure {scaler integer, unit enum} (Blue Book unit table: Wh 30, W 27,
                  V 35, A 33, Hz 44, varh 32, 255 unitless)
Method: 1 reset (integer 0): the value becomes the instance's default.

Extended register adds:
 4 status         CHOICE (here a typed value given at construction, default unsigned 0)
 5 capture_time   octet-string (12, date-time) of the last capture
and its reset also resets the status and sets capture_time to now.

Where the value comes from:
* a zero-argument callable ``source`` (the metering engine): GET calls it. ``None`` from the
  source means "not available yet" (temporary-failure); an exception from it means the
  measuring hardware failed (hardware-fault); either way the meter answers and goes on. Such
  a value is never written (read-write-denied). ``reset`` calls the ``reset`` callable given
  at construction; without one the instance has no reset (object-unavailable: the method
  exists in the class but not in this instance; the object table should grant no access
  to it anyway).
* a stored number (a setting, a maximum-demand value the engine updates with
  ``capture()``): GET returns it, SET with the same type stores it, reset restores
  ``default``.

RAM: one instance per object, a few references.
"""

from cosem.base import ANY, CosemObject, expect
from dlms import axdr
from dlms import xdlms

# capture_time before the first capture: every field "not specified"
_NO_TIME = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"


def _number(tag, v):
    """The value as the A-XDR number type ``tag`` accepts it (a float is rounded for an
    integer type; range is checked by the writer)."""
    if tag == axdr.FLOAT32 or tag == axdr.FLOAT64:
        return float(v)
    if isinstance(v, float):
        return int(round(v))
    return v


class Register(CosemObject):
    CLASS_ID = 3
    VERSION = 0
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("value", ANY),
        ("scaler_unit", axdr.STRUCTURE),
    )
    METHODS = ("reset",)

    def __init__(self, ln, value, scaler=0, unit=255, tag=axdr.DOUBLE_LONG_UNSIGNED,
                 reset=None, default=0):
        super().__init__(ln)
        if not -128 <= scaler <= 127 or not 0 <= unit <= 255:
            raise ValueError("scaler_unit")
        self.value = value  # a callable source, or the stored number
        self.scaler = scaler
        self.unit = unit
        self.tag = tag
        self.reset_source = reset
        self.default = default

    def read(self):
        """(Data-Access-Result, number): the current value, or why there is none."""
        v = self.value
        if callable(v):
            try:
                v = v()
            except Exception:  # the source failed: answer, do not crash the meter
                return xdlms.DAR_HARDWARE_FAULT, None
            if v is None:
                return xdlms.DAR_TEMPORARY_FAILURE, None
        return 0, v

    def get_attr(self, attr, w, ctx):
        if attr == 2:
            dar, v = self.read()
            if dar:
                return dar
            try:
                v = _number(self.tag, v)
                w.data((self.tag, v))
            except (TypeError, ValueError):  # the source gave a value the type cannot hold
                return xdlms.DAR_HARDWARE_FAULT
            return 0
        if attr == 3:
            w.structure(2)
            w.integer(self.scaler)
            w.enum(self.unit)
            return 0
        return super().get_attr(attr, w, ctx)

    def set_attr(self, attr, value, ctx):
        if attr == 2:
            if callable(self.value):
                return xdlms.DAR_READ_WRITE_DENIED  # a measured value is not settable
            v = expect(value, self.tag)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            self.value = v
            return 0
        return super().set_attr(attr, value, ctx)

    def action(self, method, param, w, ctx):
        if method == 1:
            if param is not None and param[0] != axdr.INTEGER:
                return xdlms.DAR_TYPE_UNMATCHED
            return self.reset()
        return super().action(method, param, w, ctx)

    def reset(self):
        """Blue Book reset: the value becomes the default. Returns an Action-Result."""
        if callable(self.value):
            if self.reset_source is None:
                return xdlms.DAR_OBJECT_UNAVAILABLE
            self.reset_source()
        else:
            self.value = self.default
        return 0


class ExtendedRegister(Register):
    CLASS_ID = 4
    VERSION = 0
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("value", ANY),
        ("scaler_unit", axdr.STRUCTURE),
        ("status", ANY),
        ("capture_time", axdr.OCTET_STRING),
    )
    METHODS = ("reset",)

    def __init__(self, ln, value, clock, scaler=0, unit=255, tag=axdr.DOUBLE_LONG_UNSIGNED,
                 reset=None, default=0, status=(axdr.UNSIGNED, 0)):
        """clock: meter.clock.Clock (encodes capture_time, dates a reset)."""
        super().__init__(ln, value, scaler, unit, tag, reset, default)
        self.clock = clock
        self.status = status  # typed value, or a callable returning one
        self.default_status = status
        self.capture_utc = None  # seconds since 2000, None = never captured

    def capture(self, value=None, status=None, utc=None):
        """The engine records a value (stored registers), its status and when (default now)."""
        if value is not None:
            self.value = value
        if status is not None:
            self.status = status
        self.capture_utc = self.clock.utc()[0] if utc is None else utc

    def get_attr(self, attr, w, ctx):
        if attr == 4:
            s = self.status
            try:
                s = s() if callable(s) else s
            except Exception:
                return xdlms.DAR_HARDWARE_FAULT
            if s is None:
                return xdlms.DAR_TEMPORARY_FAILURE
            w.data(s)
            return 0
        if attr == 5:
            t = self.capture_utc
            w.octet_string(_NO_TIME if t is None else self.clock.encode(t))
            return 0
        return super().get_attr(attr, w, ctx)

    def reset(self):
        res = super().reset()
        if res == 0:
            if not callable(self.status):
                self.status = self.default_status
            self.capture_utc = self.clock.utc()[0]
        return res
