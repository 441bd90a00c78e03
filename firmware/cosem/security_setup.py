"""Security setup (interface class 64, version 1; Blue Book 4.4.7): the security policy,
suite and system titles of an association, and the methods that change them.

Attributes (version 1):
 1 logical_name
 2 security_policy       enum, bit-mapped: 0x04 authenticated request, 0x08 encrypted
                         request, 0x10 digitally signed request, 0x20 authenticated response,
                         0x40 encrypted response, 0x80 digitally signed response
 3 security_suite        enum: 0 = AES-GCM-128 (suite 0), the only one this meter has
 4 client_system_title   octet-string: the title of the client last authenticated
 5 server_system_title   octet-string: this meter's title (8 octets)
 6 certificates          array: empty (suite 0 has no certificates)
Methods:
 1 security_activate     (enum policy): the policy can only be strengthened, never relaxed
 2 key_transfer          (array of {key_id enum, key_wrapped octet-string}): global key
                         transfer; each key wrapped with AES key wrap (RFC 3394) under the
                         master key (KEK). key_id 0 unicast encryption key, 1 broadcast key,
                         2 authentication key, 3 master key. All keys of one call are
                         checked first and stored together, so a bad entry changes nothing.
 3 key_agreement, 4 generate_key_pair, 5 generate_certificate_request,
 6 import_certificate, 7 export_certificate, 8 remove_certificate: suites 1 and 2 only,
                         refused (no access is granted to them).

New keys take effect for the next association: the current one keeps the keys it was
established with, so the client can still read the reply to the key transfer itself.
Keys are never readable by any client and never appear in a log or a repr.
"""

from cosem.base import CosemObject, expect
from dlms import axdr
from dlms import keywrap
from dlms import xdlms

POLICY_AUTH_REQUEST = 0x04
POLICY_ENC_REQUEST = 0x08
POLICY_SIGNED_REQUEST = 0x10
POLICY_AUTH_RESPONSE = 0x20
POLICY_ENC_RESPONSE = 0x40
POLICY_SIGNED_RESPONSE = 0x80
POLICY_ALL_AUTH_ENC = 0x6C  # authenticated and encrypted requests and responses

# key_id of key_transfer -> meter.secrets key id (EK 0, AK 1, BK 2, KEK 3)
_KEY_IDS = (0, 2, 1, 3)


class SecuritySetup(CosemObject):
    CLASS_ID = 64
    VERSION = 1
    ATTRS = (
        ("logical_name", axdr.OCTET_STRING),
        ("security_policy", axdr.ENUM),
        ("security_suite", axdr.ENUM),
        ("client_system_title", axdr.OCTET_STRING),
        ("server_system_title", axdr.OCTET_STRING),
        ("certificates", axdr.ARRAY),
    )
    METHODS = (
        "security_activate",
        "key_transfer",
        "key_agreement",
        "generate_key_pair",
        "generate_certificate_request",
        "import_certificate",
        "export_certificate",
        "remove_certificate",
    )

    def __init__(self, ln, keystore, server_title, policy=POLICY_ALL_AUTH_ENC):
        super().__init__(ln)
        self.keystore = keystore  # meter.secrets.KeyStore
        self.server_title = bytes(server_title)
        self.policy = policy
        self.client_title = b""
        self.on_change = []  # callables(self): persist the policy, log a key change event

    def get_attr(self, attr, w, ctx):
        if attr == 2:
            w.enum(self.policy)
        elif attr == 3:
            w.enum(0)
        elif attr == 4:
            w.octet_string(self.client_title)
        elif attr == 5:
            w.octet_string(self.server_title)
        elif attr == 6:
            w.array(0)
        else:
            return super().get_attr(attr, w, ctx)
        return 0

    def action(self, method, param, w, ctx):
        if method == 1:
            new = expect(param, axdr.ENUM)
            if new is None:
                return xdlms.DAR_TYPE_UNMATCHED
            if new & (POLICY_SIGNED_REQUEST | POLICY_SIGNED_RESPONSE) or new & 0x03:
                return xdlms.DAR_OTHER_REASON  # signatures need suites 1/2
            if new & self.policy != self.policy:
                return xdlms.DAR_OTHER_REASON  # a policy is never relaxed
            self.policy = new
            self._changed()
            return 0
        if method == 2:
            return self._key_transfer(param)
        return xdlms.DAR_OBJECT_UNAVAILABLE

    def _key_transfer(self, param):
        items = expect(param, axdr.ARRAY)
        if items is None or not 1 <= len(items) <= 4:
            return xdlms.DAR_TYPE_UNMATCHED
        kek = self.keystore.get(3)
        updates = []
        for item in items:
            fields = expect(item, axdr.STRUCTURE)
            if fields is None or len(fields) != 2:
                return xdlms.DAR_TYPE_UNMATCHED
            key_id = expect(fields[0], axdr.ENUM)
            wrapped = expect(fields[1], axdr.OCTET_STRING)
            if key_id is None or wrapped is None or not 0 <= key_id <= 3:
                return xdlms.DAR_TYPE_UNMATCHED
            key = keywrap.unwrap(kek, bytes(wrapped))
            if key is None or len(key) != 16:
                return xdlms.DAR_OTHER_REASON  # integrity check failed: nothing changes
            updates.append((_KEY_IDS[key_id], key))
        self.keystore.set_keys(updates)
        self._changed()
        return 0

    def _changed(self):
        for f in self.on_change:
            f(self)
