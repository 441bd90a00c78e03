"""Association LN (interface class 15, version 1; Blue Book 4.4.3).

Describes one application association: which objects the client may see (object_list,
with the access rights of every attribute and method), who the partners are, and the
negotiated context.

Attributes (version 1):
 1 logical_name               octet-string
 2 object_list                array of {class_id, version, logical_name, access_rights}
 3 associated_partners_id     structure {client_SAP integer, server_SAP long-unsigned}
 4 application_context_name   structure of 7 OID arcs (2.16.756.5.8.1.x)
 5 xDLMS_context_info         structure {conformance bit-string(24), max_receive_pdu_size,
                              max_send_pdu_size, dlms_version_number, quality_of_service,
                              cyphering_info}
 6 authentication_mechanism_name  structure of 7 OID arcs (2.16.756.5.8.2.x)
 7 secret                     octet-string (never readable)
 8 association_status         enum {0 non-associated, 1 association-pending, 2 associated}
 9 security_setup_reference   octet-string (logical name of the Security setup object)
Methods: 1 reply_to_HLS_authentication, 2 change_HLS_secret, 3 add_object, 4 remove_object.

Writes and methods (this meter):
* attribute 7 ``secret``: write-only. Writing it changes the LLS password (mechanism 1) of
  the client role this instance describes (0.0.40.0.2.255: the reader); the object table
  gives that right to the management client only. A role without LLS (public: none;
  management: HLS-GMAC, whose keys belong to Security setup) refuses with
  read-write-denied. The new secret is an octet-string of 1..32 octets (else
  other-reason); it takes effect at the next AARQ and is handed to the device's
  ``on_secret_change`` hooks f(role, secret) for persistence.
* 1 reply_to_HLS_authentication, 2 change_HLS_secret: HLS belongs to the security layer
  (security suite 0, not in this build); until then both answer object-unavailable, and the
  table grants nobody access to them.
* 3 add_object, 4 remove_object: the object table is static (built once in objects.py);
  both answer read-write-denied.

The object list is never built in RAM: ``get(2)`` returns a generator that encodes one
element per step straight from the object table, for the block-transfer pump.
0.0.40.0.0.255 is "the current association" (its values are those of the association
asking); 0.0.40.0.N.255 describes the association of one client role.
"""

from cosem.base import CosemObject, expect
from dlms import axdr
from dlms import xdlms

MECH_LLS = 1  # acse.MECH_LLS
SECRET_MAX = 32  # longest LLS secret accepted

STATUS_NON_ASSOCIATED = 0
STATUS_PENDING = 1
STATUS_ASSOCIATED = 2


def _oid_structure(w, kind, last):
    """2.16.756.5.8.<kind>.<last> as the Blue Book's 7-element structure."""
    w.structure(7)
    w.unsigned(2)
    w.unsigned(16)
    w.long_unsigned(756)
    w.unsigned(5)
    w.unsigned(8)
    w.unsigned(kind)
    w.unsigned(last)


def encode_object_list_element(w, obj, attr_modes, method_modes):
    """object_list_element ::= structure {class_id, version, logical_name, access_rights}."""
    w.structure(4)
    w.long_unsigned(obj.CLASS_ID)
    w.unsigned(obj.VERSION)
    w.octet_string(obj.ln)
    w.structure(2)
    n = len(obj.ATTRS)
    w.array(n)
    for i in range(n):
        w.structure(3)
        w.integer(i + 1)
        w.enum(attr_modes[i] if i < len(attr_modes) else 0)
        w.null()  # access_selectors: none advertised per attribute
    m = len(obj.METHODS)
    w.array(m)
    for i in range(m):
        w.structure(2)
        w.integer(i + 1)
        w.enum(method_modes[i] if i < len(method_modes) else 0)


class AssociationLN(CosemObject):
    CLASS_ID = 15
    VERSION = 1
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("object_list", axdr.ARRAY),
        ("associated_partners_id", axdr.STRUCTURE),
        ("application_context_name", axdr.STRUCTURE),
        ("xDLMS_context_info", axdr.STRUCTURE),
        ("authentication_mechanism_name", axdr.STRUCTURE),
        ("secret", axdr.OCTET_STRING),
        ("association_status", axdr.ENUM),
        ("security_setup_reference", axdr.OCTET_STRING),
    )
    METHODS = ("reply_to_HLS_authentication", "change_HLS_secret", "add_object", "remove_object")

    def __init__(self, ln, device, role=None):
        """role None: the current association; else the client SAP this instance describes."""
        super().__init__(ln)
        self.device = device
        self.role = role

    def _role(self, ctx):
        return ctx.client if self.role is None else self.role

    def _is_current(self, ctx):
        return self.role is None or self.role == ctx.client

    def get_attr(self, attr, w, ctx):
        role = self._role(ctx)
        policy = self.device.policies.get(role)
        if attr == 2:
            return self._object_list(w, role)
        if attr == 3:
            w.structure(2)
            w.integer(role)
            w.long_unsigned(self.device.server_sap)
        elif attr == 4:
            _oid_structure(w, 1, policy.app_context if policy else 1)
        elif attr == 5:
            cur = self._is_current(ctx)
            conf = ctx.conformance if cur else (policy.conformance if policy else 0)
            w.structure(6)
            w.bit_string(bytes([(conf >> 16) & 0xFF, (conf >> 8) & 0xFF, conf & 0xFF]), 24)
            w.long_unsigned(self.device.max_pdu)
            w.long_unsigned(ctx.client_max_pdu if cur else self.device.max_pdu)
            w.unsigned(6)
            w.integer(0)
            w.octet_string(b"")
        elif attr == 6:
            _oid_structure(w, 2, policy.mechanism if policy else 0)
        elif attr == 7:
            return xdlms.DAR_READ_WRITE_DENIED  # secrets are never disclosed
        elif attr == 8:
            w.enum(STATUS_ASSOCIATED if self._is_current(ctx) else STATUS_NON_ASSOCIATED)
        elif attr == 9:
            w.octet_string(self.device.security_setup_ln)
        else:
            return super().get_attr(attr, w, ctx)
        return 0

    def set_attr(self, attr, value, ctx):
        if attr == 7:
            role = self._role(ctx)
            policy = self.device.policies.get(role)
            if policy is None or policy.mechanism != MECH_LLS:
                return xdlms.DAR_READ_WRITE_DENIED  # no LLS secret to change for this role
            v = expect(value, axdr.OCTET_STRING)
            if v is None:
                return xdlms.DAR_TYPE_UNMATCHED
            if not 1 <= len(v) <= SECRET_MAX:
                return xdlms.DAR_OTHER_REASON
            policy.secret = bytes(v)
            for hook in self.device.on_secret_change:
                hook(role, policy.secret)
            return 0
        return super().set_attr(attr, value, ctx)

    def action(self, method, param, w, ctx):
        if method == 1 or method == 2:
            return xdlms.DAR_OBJECT_UNAVAILABLE  # HLS: the security layer's job (not yet)
        if method == 3 or method == 4:
            return xdlms.DAR_READ_WRITE_DENIED  # the object table is static
        return super().action(method, param, w, ctx)

    def _object_list(self, w, role):
        w.array(self.device.count(role))
        yield
        for obj, rights in self.device.visible(role):
            encode_object_list_element(w, obj, rights[0], rights[1])
            yield
