"""SAP assignment (interface class 17, version 0; Blue Book 4.4.5).

Lists the logical devices of the physical device and their SAPs (the server addresses a
client uses). This meter has one logical device, the management logical device, SAP 1.

Attributes: 1 logical_name, 2 SAP_assignment_list array of structure
{SAP long-unsigned, logical_device_name octet-string}.
Methods: 1 connect_logical_device (structure {SAP long-unsigned, logical_device_name
octet-string}): refused with read-write-denied, the meter has one logical device and its
SAP is fixed; the object table grants nobody access to it.
"""

from cosem.base import CosemObject
from dlms import axdr
from dlms import xdlms


class SapAssignment(CosemObject):
    CLASS_ID = 17
    VERSION = 0
    ATTRS = (("logical_name", axdr.OCTET_STRING), ("SAP_assignment_list", axdr.ARRAY))
    METHODS = ("connect_logical_device",)

    def __init__(self, ln, device):
        super().__init__(ln)
        self.device = device

    def get_attr(self, attr, w, ctx):
        if attr == 2:
            w.array(1)
            w.structure(2)
            w.long_unsigned(self.device.server_sap)
            w.octet_string(self.device.name)
            return 0
        return super().get_attr(attr, w, ctx)

    def action(self, method, param, w, ctx):
        if method == 1:
            return xdlms.DAR_READ_WRITE_DENIED  # one logical device, SAP fixed
        return super().action(method, param, w, ctx)
