"""Data (interface class 1, version 0; Blue Book 4.3.1).

A Data object holds one value of any type: attribute 2 ``value``. Here the value is either
a constant typed A-XDR value ``(tag, value)`` or a zero-argument callable returning one,
so the same class serves the logical device name, the serial number and values that a
meter computes.

Attributes: 1 logical_name octet-string, 2 value (CHOICE). No methods.
"""

from cosem.base import ANY, CosemObject
from dlms import axdr


class Data(CosemObject):
    CLASS_ID = 1
    VERSION = 0
    ATTRS = (("logical_name", axdr.OCTET_STRING), ("value", ANY))

    def __init__(self, ln, value):
        super().__init__(ln)
        self.value = value

    def get_attr(self, attr, w, ctx):
        if attr == 2:
            v = self.value
            w.data(v() if callable(v) else v)
            return 0
        return super().get_attr(attr, w, ctx)
