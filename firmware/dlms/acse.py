"""Association control: AARQ / AARE / RLRQ / RLRE with the xDLMS InitiateRequest /
InitiateResponse / ConfirmedServiceError they carry, and the decision to accept or refuse
an association.

Standards: ISO/IEC 8650-1 (ACSE APDUs, BER-encoded) as profiled by the DLMS UA Green Book
(IEC 62056-5-3), "COSEM application layer": application-context-name and
mechanism-name object identifiers 2.16.756.5.8.1.x / 2.16.756.5.8.2.x, the ACSE
diagnostics, and the xDLMS InitiateRequest / InitiateResponse (A-XDR-encoded, carried as
an OCTET STRING in user-information [30]).

How an association is opened, for a reader following one AARQ:

1. ``parse_aarq`` turns the AARQ bytes into an ``Aarq`` (every length checked; malformed
   input raises ``DecodeError``: the caller may drop it or answer with
   ``encode_aare(w, CTX_LN, RESULT_REJECTED_PERMANENT, SOURCE_PROVIDER, 1)``).
2. The association layer finds the ``Policy`` of the client SAP, deciphers the user
   information if it is a glo-initiate-request (security layer), and parses the plain
   InitiateRequest with ``parse_initiate_request`` (None if missing/undecodable).
3. ``evaluate(aarq, policy, initiate)`` is a pure function -> ``Decision``.
4. ``respond(w, aarq, decision, policy, stoc)`` writes the AARE. With HLS the decision is
   "accepted, authentication pending" (diagnostic 14): the caller generates the StoC
   challenge and later checks the client's reply (pass 3) itself.

Decision rules (Green Book / virtual-meter contract; the order matters when several fail):

* ACSE part, first failure wins, all "result 1 rejected-permanent":
  protocol-version without version1 -> source acse-service-provider, no-common-acse-version
  (2); application-context-name other than the policy's -> acse-service-user (1)
  application-context-name-not-supported (2); ciphered context without an 8-octet
  calling-AP-title (the client system title) -> calling-AP-title-not-recognised (3);
  mechanism checks below.
* Mechanisms (the numbers are ISO/IEC 8650-1 / Green Book: 11 not-recognised, 12 required):
  - SAP without authentication (mechanism 0): no mechanism-name, or
    lowest-level-security (0) named, is accepted; any other mechanism named is refused
    with authentication-mechanism-name-not-recognised (11): the client asked for an
    authentication this SAP does not perform, and must not believe it got one.
  - LLS (1): no mechanism-name -> authentication-mechanism-name-required (12); another
    mechanism -> 11; calling-authentication-value absent or not equal to the secret
    (compared in constant time) -> authentication-failure (13).
  - HLS (2..7): as above for 12 / 11; a challenge CtoS outside 8..64 octets -> 13;
    otherwise result 0 with diagnostic authentication-required (14) and ``auth_pending``.
  A calling-AP-title in an unciphered context is ignored (dlms-cosem always sends one).
* xDLMS part (InitiateRequest), answered with a ConfirmedServiceError
  initiateError(1) / initiate(6) / code instead of an InitiateResponse:
  missing or undecodable -> other (0); proposed-dlms-version < 6 ->
  dlms-version-too-low (1); a dedicated key in an unciphered context -> other (0)
  (a key sent in clear is a client error); proposed & supported conformance empty ->
  incompatible-conformance (2); client max PDU below ``policy.min_pdu`` ->
  pdu-size-too-short (3). Max PDU 0 means "no limit" (taken as 65535).
  An xDLMS failure alone gives result 1, acse-service-user, no-reason-given (1).
* When the ACSE part refuses but the InitiateRequest is acceptable, the AARE still
  carries an InitiateResponse (Green Book example for diagnostic 2; Gurux CT for 13).
* Accepted: result 0, diagnostic 0, InitiateResponse(negotiated conformance,
  ``policy.max_pdu``, vaa-name 0x0007). The AARE carries responder-acse-requirements,
  mechanism-name and the StoC only when HLS is pending (LLS: the result alone).

Not decided here: response-allowed FALSE (unconfirmed association) is parsed and left to
the caller; the proposed quality-of-service is ignored (no QoS in the response).

RAM: a 16-byte module buffer for the plain user-information of ``respond``; an ``Aarq``
holds copies of the AP title and authentication value (at most a few dozen bytes) and a
memoryview of the user-information.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms import axdr, ber
from dlms.axdr import DecodeError

# Public constants are those other modules and callers use; the others are _private consts,
# kept here as the reference list of the standard's values: on MicroPython they are folded
# into the code and cost no RAM (a public name costs a global slot and its name string).

# APDU tags (ACSE: [APPLICATION n] constructed; xDLMS: A-XDR CHOICE index)
_AARQ = const(0x60)
_AARE = const(0x61)
_RLRQ = const(0x62)
_RLRE = const(0x63)
INITIATE_REQUEST = const(0x01)
_INITIATE_RESPONSE = const(0x08)
_CONFIRMED_SERVICE_ERROR = const(0x0E)
_GLO_INITIATE_REQUEST = const(0x21)
_GLO_INITIATE_RESPONSE = const(0x28)

# application-context-name 2.16.756.5.8.1.x (last arc)
CTX_LN = const(1)
CTX_SN = const(2)
CTX_LN_CIPHERED = const(3)
CTX_SN_CIPHERED = const(4)

# mechanism-name 2.16.756.5.8.2.x (last arc)
MECH_NONE = const(0)
MECH_LLS = const(1)
MECH_HLS = const(2)
MECH_HLS_MD5 = const(3)
MECH_HLS_SHA1 = const(4)
MECH_HLS_GMAC = const(5)
MECH_HLS_SHA256 = const(6)
MECH_HLS_ECDSA = const(7)

# AARE result and result-source-diagnostic
_RESULT_ACCEPTED = const(0)
RESULT_REJECTED_PERMANENT = const(1)
_RESULT_REJECTED_TRANSIENT = const(2)
SOURCE_USER = const(1)  # acse-service-user [1]
SOURCE_PROVIDER = const(2)  # acse-service-provider [2]
_DIAG_NULL = const(0)
DIAG_NO_REASON = const(1)
_DIAG_CONTEXT_NOT_SUPPORTED = const(2)  # user; for the provider: no-common-acse-version
DIAG_CALLING_AP_TITLE_NOT_RECOGNISED = const(3)
DIAG_MECHANISM_NOT_RECOGNISED = const(11)
DIAG_MECHANISM_REQUIRED = const(12)
DIAG_AUTHENTICATION_FAILURE = const(13)
_DIAG_AUTHENTICATION_REQUIRED = const(14)
_DIAG_NO_COMMON_ACSE_VERSION = const(2)  # acse-service-provider

# ConfirmedServiceError ::= CHOICE { initiateError [1] ServiceError, ... };
# ServiceError ::= CHOICE { ..., initiate [6] ENUMERATED {...}, ... }
_CSE_INITIATE_ERROR = const(1)
SERVICE_ERROR_INITIATE = const(6)
INITIATE_OTHER = const(0)
_INITIATE_DLMS_VERSION_TOO_LOW = const(1)
_INITIATE_INCOMPATIBLE_CONFORMANCE = const(2)
_INITIATE_PDU_SIZE_TOO_SHORT = const(3)
_INITIATE_REFUSED_BY_VDE_HANDLER = const(4)

# RLRQ / RLRE reasons
_RELEASE_NORMAL = const(0)
_RELEASE_URGENT = const(1)  # RLRQ; for RLRE 1 = not-finished
_RELEASE_USER_DEFINED = const(30)

_DLMS_VERSION = const(6)
_VAA_NAME_LN = const(0x0007)
_VAA_NAME_SN = const(0xFA00)

# Conformance block (Green Book, [APPLICATION 31] BIT STRING (SIZE(24)), LN referencing).
# Bit n of the standard is the mask 1 << (23 - n) over the 24-bit value.
CONF_GENERAL_PROTECTION = const(1 << 22)  # bit 1
_CONF_GENERAL_BLOCK_TRANSFER = const(1 << 21)  # bit 2
_CONF_READ = const(1 << 20)  # bit 3 (SN)
_CONF_WRITE = const(1 << 19)  # bit 4 (SN)
_CONF_UNCONFIRMED_WRITE = const(1 << 18)  # bit 5 (SN)
_CONF_DELTA_VALUE_ENCODING = const(1 << 17)  # bit 6
_CONF_ATTRIBUTE0_WITH_SET = const(1 << 15)  # bit 8
CONF_PRIORITY_MGMT = const(1 << 14)  # bit 9
_CONF_ATTRIBUTE0_WITH_GET = const(1 << 13)  # bit 10
CONF_BLOCK_TRANSFER_WITH_GET = const(1 << 12)  # bit 11 (or read)
CONF_BLOCK_TRANSFER_WITH_SET = const(1 << 11)  # bit 12 (or write)
CONF_BLOCK_TRANSFER_WITH_ACTION = const(1 << 10)  # bit 13
CONF_MULTIPLE_REFERENCES = const(1 << 9)  # bit 14
_CONF_INFORMATION_REPORT = const(1 << 8)  # bit 15 (SN)
_CONF_DATA_NOTIFICATION = const(1 << 7)  # bit 16
_CONF_ACCESS = const(1 << 6)  # bit 17
_CONF_PARAMETERIZED_ACCESS = const(1 << 5)  # bit 18 (SN)
CONF_GET = const(1 << 4)  # bit 19
CONF_SET = const(1 << 3)  # bit 20
CONF_SELECTIVE_ACCESS = const(1 << 2)  # bit 21
CONF_EVENT_NOTIFICATION = const(1 << 1)  # bit 22
CONF_ACTION = const(1 << 0)  # bit 23

# What the server offers unless the lead configures otherwise: match it to what xdlms
# implements (multiple-references = the with-list services).
DEFAULT_CONFORMANCE = const(
    CONF_GET
    | CONF_SET
    | CONF_ACTION
    | CONF_SELECTIVE_ACCESS
    | CONF_BLOCK_TRANSFER_WITH_GET
    | CONF_MULTIPLE_REFERENCES
)

_OID_DLMS = b"\x60\x85\x74\x05\x08"  # 2.16.756.5.8 (DLMS UA)
_OID_CONTEXT = const(1)  # .1.x application-context-name
_OID_MECHANISM = const(2)  # .2.x mechanism-name

_UI = bytearray(16)  # respond(): the plain InitiateResponse / ConfirmedServiceError


def _ciphered(ctx):
    return ctx == CTX_LN_CIPHERED or ctx == CTX_SN_CIPHERED


def _dlms_oid(buf, s, e, kind):
    """Last arc of 2.16.756.5.8.<kind>.x in buf[s:e], or -1 for any other OID."""
    if e - s != 7 or buf[s + 5] != kind or buf[s + 6] & 0x80:
        return -1
    for i in range(5):
        if buf[s + i] != _OID_DLMS[i]:
            return -1
    return buf[s + 6]


def _same(a, b):
    """Constant-time comparison of two secrets (the time does not tell where they differ)."""
    if len(a) != len(b):
        return False
    x = 0
    for i in range(len(a)):
        x |= a[i] ^ b[i]
    return x == 0


# -- AARQ -----------------------------------------------------------------------------------
class Aarq:
    """A parsed AARQ. Optional fields are None when absent."""

    def __init__(self):
        self.acse_version1 = True  # protocol-version [0] has version1 (default when absent)
        self.application_context = -1  # last arc of 2.16.756.5.8.1.x; -1 absent/other OID
        self.calling_ap_title = None  # bytes: the client system title in ciphered contexts
        self.calling_ae_qualifier = None  # bytes (the client certificate for HLS-ECDSA)
        self.calling_ap_invocation_id = None  # int
        self.calling_ae_invocation_id = None  # int
        self.sender_acse_requirements = 0  # 1 when the authentication unit is selected
        self.mechanism = None  # last arc of 2.16.756.5.8.2.x; -1 for another OID
        self.auth_value = None  # bytes: password (LLS) or challenge CtoS (HLS)
        self.user_info = None  # memoryview: xDLMS APDU (01 InitiateRequest, 21 glo-...)


def _octets(buf, cs, ce, tag):
    s, e = ber.read_inner(buf, cs, ce, tag)
    return bytes(buf[s:e])


def parse_aarq(buf, start, end):
    """AARQ in buf[start:end] (exactly one APDU) -> Aarq. DecodeError when malformed.

    Fields may come in any order; a repeated field is malformed; unknown context-specific
    fields (called-AP-title, implementation-information, ...) are skipped."""
    tag, p, e = ber.read_tlv(buf, start, end)
    if tag != _AARQ or e != end:
        raise DecodeError("not AARQ")
    a = Aarq()
    seen = 0
    while p < e:
        tag, cs, ce = ber.read_tlv(buf, p, e)
        p = ce
        if tag > 0xFF or tag & 0xC0 != 0x80:
            raise DecodeError("bad field")
        bit = 1 << (tag & 0x1F)
        if seen & bit:
            raise DecodeError("repeated")
        seen |= bit
        if tag == 0x80:  # protocol-version [0] IMPLICIT BIT STRING {version1 (0)}
            a.acse_version1 = ce - cs >= 2 and buf[cs + 1] & 0x80 != 0
        elif tag == 0xA1:  # application-context-name [1] { OBJECT IDENTIFIER }
            s, x = ber.read_inner(buf, cs, ce, 0x06)
            a.application_context = _dlms_oid(buf, s, x, _OID_CONTEXT)
        elif tag == 0xA6:  # calling-AP-title [6] { OCTET STRING } (AP-title form 2)
            a.calling_ap_title = _octets(buf, cs, ce, 0x04)
        elif tag == 0xA7:  # calling-AE-qualifier [7] { OCTET STRING }
            a.calling_ae_qualifier = _octets(buf, cs, ce, 0x04)
        elif tag == 0xA8:  # calling-AP-invocation-identifier [8] { INTEGER }
            s, x = ber.read_inner(buf, cs, ce, 0x02)
            a.calling_ap_invocation_id = ber.read_uint(buf, s, x)
        elif tag == 0xA9:  # calling-AE-invocation-identifier [9] { INTEGER }
            s, x = ber.read_inner(buf, cs, ce, 0x02)
            a.calling_ae_invocation_id = ber.read_uint(buf, s, x)
        elif tag == 0x8A:  # sender-acse-requirements [10] IMPLICIT BIT STRING {authentication (0)}
            if ce - cs < 1:
                raise DecodeError("bad bits")  # bad bit string
            a.sender_acse_requirements = 1 if ce - cs >= 2 and buf[cs + 1] & 0x80 else 0
        elif tag == 0x8B:  # mechanism-name [11] IMPLICIT OBJECT IDENTIFIER
            a.mechanism = _dlms_oid(buf, cs, ce, _OID_MECHANISM)
        elif tag == 0xAC:  # calling-authentication-value [12] { charstring [0] ... }
            t, s, x = ber.read_tlv(buf, cs, ce)
            if x != ce:
                raise DecodeError("bad auth")  # bad authentication value
            # only the GraphicString choice [0] is used by DLMS; others count as absent
            a.auth_value = bytes(buf[s:x]) if t == 0x80 else None
        elif tag == 0xBE:  # user-information [30] { OCTET STRING (xDLMS APDU) }
            s, x = ber.read_inner(buf, cs, ce, 0x04)
            a.user_info = memoryview(buf)[s:x]
        elif tag & 0x1F in (0, 1, 6, 7, 8, 9, 10, 11, 12, 30):
            raise DecodeError("bad form")  # e.g. 81 instead of A1
    return a


# -- xDLMS InitiateRequest / InitiateResponse / ConfirmedServiceError ------------------------
class InitiateRequest:
    """A parsed xDLMS InitiateRequest (A-XDR)."""

    def __init__(self):
        self.dedicated_key = None  # bytes or None
        self.response_allowed = True  # DEFAULT TRUE
        self.proposed_qos = None  # int8 or None
        self.dlms_version = 0
        self.conformance = 0  # 24-bit value, see CONF_*
        self.max_pdu = 0  # client-max-receive-pdu-size; 0 = no limit


def parse_initiate_request(buf, start, end):
    """InitiateRequest in buf[start:end] (exactly) -> InitiateRequest; DecodeError.

    01 | dedicated-key OPTIONAL (00 | 01 len key) | response-allowed DEFAULT TRUE (00 |
    01 bool) | proposed-quality-of-service OPTIONAL (00 | 01 int8) | dlms-version u8 |
    conformance 5F 1F 04 00 b1 b2 b3 | client-max-receive-pdu-size u16."""
    r = axdr.Reader(buf, start, end)
    r.expect(INITIATE_REQUEST)
    ir = InitiateRequest()
    if _flag(r):
        ir.dedicated_key = bytes(r.raw(r.length()))
    if _flag(r):
        ir.response_allowed = r.u8() != 0
    if _flag(r):
        q = r.u8()
        ir.proposed_qos = q - 256 if q > 127 else q
    ir.dlms_version = r.u8()
    ir.conformance = _conformance(r)
    ir.max_pdu = r.u16()
    if r.remaining():
        raise DecodeError("trailing")
    return ir


def _flag(r):
    """A-XDR OPTIONAL/DEFAULT usage flag: 00 absent, 01 present."""
    f = r.u8()
    if f > 1:
        raise DecodeError("bad flag")  # bad usage flag
    return f


def _conformance(r):
    if r.u8() != 0x5F or r.u8() != 0x1F or r.u8() != 4 or r.u8() > 7:
        raise DecodeError("bad conf")
    b = r.raw(3)
    return (b[0] << 16) | (b[1] << 8) | b[2]


def encode_initiate_response(w, conformance, max_pdu, qos=None, vaa_name=_VAA_NAME_LN):
    """08 | qos OPTIONAL | 06 | 5F 1F 04 00 conformance(3) | server max PDU u16 | vaa-name."""
    if not 0 <= conformance <= 0xFFFFFF:
        raise ValueError("bad conf")  # conformance is 24 bits
    w.u8(_INITIATE_RESPONSE)
    if qos is None:
        w.u8(0)
    else:
        w.u8(1)
        w.u8(qos & 0xFF)
    w.u8(_DLMS_VERSION)
    w.u8(0x5F)
    w.u8(0x1F)
    w.u8(4)
    w.u8(0)
    w.u8(conformance >> 16)
    w.u8((conformance >> 8) & 0xFF)
    w.u8(conformance & 0xFF)
    w.u16(max_pdu)
    w.u16(vaa_name)


def encode_confirmed_service_error(w, service, error_class, error_code):
    """0E | service (1 = initiateError) | ServiceError choice (6 = initiate) | code."""
    w.u8(_CONFIRMED_SERVICE_ERROR)
    w.u8(service)
    w.u8(error_class)
    w.u8(error_code)


# -- AARE -----------------------------------------------------------------------------------
def _oid(w, tag, kind, arc):
    """tag | 07 | 60 85 74 05 08 kind arc (no wrapping: mechanism-name is IMPLICIT)."""
    if not 0 <= arc <= 0x7F:
        raise ValueError("bad arc")
    w.u8(tag)
    w.u8(7)
    w.raw(_OID_DLMS)
    w.u8(kind)
    w.u8(arc)


def encode_aare(
    w,
    application_context,
    result,
    diag_source,
    diagnostic,
    responder_mechanism=None,
    responding_auth_value=None,
    user_info=None,
    responding_ap_title=None,
):
    """Write an AARE. ``user_info`` is the already encoded xDLMS APDU (InitiateResponse,
    ConfirmedServiceError or its ciphered form). With ``responder_mechanism`` the AARE
    carries responder-acse-requirements (authentication) and mechanism-name;
    ``responding_auth_value`` is the StoC challenge."""
    if diag_source != SOURCE_USER and diag_source != SOURCE_PROVIDER:
        raise ValueError("bad source")  # bad diagnostic source
    top = ber.start(w, _AARE)
    w.u8(0xA1)  # application-context-name [1]
    w.u8(9)
    _oid(w, 0x06, _OID_CONTEXT, application_context)
    w.u8(0xA2)  # result [2] { INTEGER }
    w.u8(3)
    ber.small_int(w, 0x02, result)
    w.u8(0xA3)  # result-source-diagnostic [3] { CHOICE [1] user / [2] provider { INTEGER } }
    w.u8(5)
    w.u8(0xA0 | diag_source)
    w.u8(3)
    ber.small_int(w, 0x02, diagnostic)
    if responding_ap_title is not None:  # responding-AP-title [4] { OCTET STRING }
        m = ber.start(w, 0xA4)
        ber.tlv(w, 0x04, responding_ap_title)
        ber.close(w, m)
    if responder_mechanism is not None:
        w.u8(0x88)  # responder-acse-requirements [8]: authentication
        w.u8(2)
        w.u8(7)
        w.u8(0x80)
        _oid(w, 0x89, _OID_MECHANISM, responder_mechanism)  # mechanism-name [9]
    if responding_auth_value is not None:  # responding-authentication-value [10]
        m = ber.start(w, 0xAA)
        ber.tlv(w, 0x80, responding_auth_value)
        ber.close(w, m)
    if user_info is not None:  # user-information [30] { OCTET STRING }
        m = ber.start(w, 0xBE)
        ber.tlv(w, 0x04, user_info)
        ber.close(w, m)
    ber.close(w, top)


# -- the decision ---------------------------------------------------------------------------
class Policy:
    """What one client SAP requires (built by the association layer from the contract)."""

    def __init__(
        self,
        mechanism,
        secret=None,
        app_context=CTX_LN,
        conformance=DEFAULT_CONFORMANCE,
        max_pdu=1024,
        min_pdu=64,
    ):
        if not MECH_NONE <= mechanism <= MECH_HLS_ECDSA:
            raise ValueError("mechanism")  # unknown mechanism
        if mechanism == MECH_LLS and not secret:
            raise ValueError("no secret")  # LLS needs a secret
        if not CTX_LN <= app_context <= CTX_SN_CIPHERED:
            raise ValueError("bad ctx")  # unknown application context
        if not 0 <= conformance <= 0xFFFFFF or not 0 < max_pdu <= 0xFFFF:
            raise ValueError("bad limits")  # bad conformance or PDU size
        self.mechanism = mechanism
        self.secret = secret  # LLS password (bytes); unused for HLS (keys live elsewhere)
        self.app_context = app_context
        self.conformance = conformance  # what the server supports
        self.max_pdu = max_pdu  # server-max-receive-pdu-size announced
        self.min_pdu = min_pdu  # smallest client max PDU accepted


class Decision:
    """The outcome of evaluate(); respond() turns it into an AARE."""

    def __init__(self):
        self.result = _RESULT_ACCEPTED
        self.diag_source = SOURCE_USER
        self.diagnostic = _DIAG_NULL
        self.error = None  # (error_class, error_code): ConfirmedServiceError in user-info
        self.conformance = 0  # negotiated: proposed & supported
        self.client_max_pdu = 0  # what the server may send (0 in the request -> 65535)
        self.auth_pending = False  # HLS: accepted once pass 3/4 succeed

    @property
    def accepted(self):
        """True when the association is established now (no HLS pass pending)."""
        return self.result == _RESULT_ACCEPTED and not self.auth_pending


def _acse(aarq, policy):
    """ACSE part of the decision -> (source, diagnostic, hls_pending); diagnostic 0 = ok."""
    if not aarq.acse_version1:
        return SOURCE_PROVIDER, _DIAG_NO_COMMON_ACSE_VERSION, False
    if aarq.application_context != policy.app_context:
        return SOURCE_USER, _DIAG_CONTEXT_NOT_SUPPORTED, False
    if _ciphered(policy.app_context):
        title = aarq.calling_ap_title
        if title is None or len(title) != 8:
            return SOURCE_USER, DIAG_CALLING_AP_TITLE_NOT_RECOGNISED, False
    m = aarq.mechanism
    if policy.mechanism == MECH_NONE:
        if m is not None and m != MECH_NONE:
            return SOURCE_USER, DIAG_MECHANISM_NOT_RECOGNISED, False
        return SOURCE_USER, _DIAG_NULL, False
    if m is None:
        return SOURCE_USER, DIAG_MECHANISM_REQUIRED, False
    if m != policy.mechanism:
        return SOURCE_USER, DIAG_MECHANISM_NOT_RECOGNISED, False
    v = aarq.auth_value
    if policy.mechanism == MECH_LLS:
        if v is None or not _same(v, policy.secret):
            return SOURCE_USER, DIAG_AUTHENTICATION_FAILURE, False
        return SOURCE_USER, _DIAG_NULL, False
    if v is None or not 8 <= len(v) <= 64:
        return SOURCE_USER, DIAG_AUTHENTICATION_FAILURE, False
    return SOURCE_USER, _DIAG_NULL, True


def evaluate(aarq, policy, initiate):
    """Decide on one AARQ (pure). ``initiate`` is the parsed InitiateRequest, or None when
    the user-information was missing or could not be deciphered/decoded."""
    d = Decision()
    code = -1
    if initiate is None:
        code = INITIATE_OTHER
    elif initiate.dlms_version < _DLMS_VERSION:
        code = _INITIATE_DLMS_VERSION_TOO_LOW
    else:
        d.conformance = initiate.conformance & policy.conformance
        d.client_max_pdu = initiate.max_pdu or 0xFFFF
        if initiate.dedicated_key is not None and not _ciphered(policy.app_context):
            code = INITIATE_OTHER
        elif d.conformance == 0:
            code = _INITIATE_INCOMPATIBLE_CONFORMANCE
        elif d.client_max_pdu < policy.min_pdu:
            code = _INITIATE_PDU_SIZE_TOO_SHORT
    if code >= 0:
        d.error = (SERVICE_ERROR_INITIATE, code)
    source, diag, pending = _acse(aarq, policy)
    if diag != _DIAG_NULL:
        d.result = RESULT_REJECTED_PERMANENT
        d.diag_source = source
        d.diagnostic = diag
    elif d.error is not None:
        d.result = RESULT_REJECTED_PERMANENT
        d.diagnostic = DIAG_NO_REASON
    elif pending:
        d.diagnostic = _DIAG_AUTHENTICATION_REQUIRED
        d.auth_pending = True
    return d


def encode_user_info(w, decision, policy):
    """The plain xDLMS answer for a decision: ConfirmedServiceError when ``error`` is set,
    else InitiateResponse. (In a ciphered context the caller ciphers these bytes.)"""
    if decision.error is not None:
        err = decision.error
        encode_confirmed_service_error(w, _CSE_INITIATE_ERROR, err[0], err[1])
    else:
        encode_initiate_response(w, decision.conformance, policy.max_pdu)


def respond(w, aarq, decision, policy, stoc=None, user_info=None, responding_ap_title=None):
    """Write the whole AARE for ``decision``. The application-context-name is the policy's
    (also when the client proposed another one: Green Book example, diagnostic 2).
    ``stoc``: the server challenge, required when ``decision.auth_pending``.
    ``user_info``: already encoded (e.g. ciphered) user-information; default: the plain
    encode_user_info(). ``aarq`` is not needed by the current rules; it is kept so that
    rules depending on the request can be added without changing callers."""
    if user_info is None:
        uw = axdr.Writer(_UI)
        encode_user_info(uw, decision, policy)
        user_info = memoryview(_UI)[: uw.pos]
    mechanism = None
    if decision.auth_pending:
        if stoc is None:
            raise ValueError("no StoC")  # HLS pending needs the StoC challenge
        mechanism = policy.mechanism
    else:
        stoc = None
    encode_aare(
        w,
        policy.app_context,
        decision.result,
        decision.diag_source,
        decision.diagnostic,
        mechanism,
        stoc,
        user_info,
        responding_ap_title,
    )


# -- RLRQ / RLRE ----------------------------------------------------------------------------
def parse_rlrq(buf, start, end):
    """RLRQ in buf[start:end] -> (reason or None, user_info memoryview or None).
    DecodeError when malformed."""
    tag, p, e = ber.read_tlv(buf, start, end)
    if tag != _RLRQ or e != end:
        raise DecodeError("not RLRQ")
    reason = None
    user_info = None
    seen = 0
    while p < e:
        tag, cs, ce = ber.read_tlv(buf, p, e)
        p = ce
        if tag > 0xFF or tag & 0xC0 != 0x80:
            raise DecodeError("bad field")
        bit = 1 << (tag & 0x1F)
        if seen & bit:
            raise DecodeError("repeated")
        seen |= bit
        if tag == 0x80:  # reason [0] IMPLICIT Release-request-reason (INTEGER)
            reason = ber.read_uint(buf, cs, ce)
        elif tag == 0xBE:  # user-information [30]
            s, x = ber.read_inner(buf, cs, ce, 0x04)
            user_info = memoryview(buf)[s:x]
        elif tag & 0x1F in (0, 30):
            raise DecodeError("bad form")  # field with the wrong form
    return reason, user_info


def encode_rlre(w, reason=None, user_info=None):
    """63 | len | [80 01 reason] | [BE len 04 len user-info]."""
    top = ber.start(w, _RLRE)
    if reason is not None:
        ber.small_int(w, 0x80, reason)
    if user_info is not None:
        m = ber.start(w, 0xBE)
        ber.tlv(w, 0x04, user_info)
        ber.close(w, m)
    ber.close(w, top)
