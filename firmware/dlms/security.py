"""DLMS security suite 0: protecting and unprotecting xDLMS APDUs with AES-GCM-128, and the
HLS-GMAC (authentication mechanism 5) challenge answers. Sans-IO: keys, system titles,
the meter's invocation counter and the client-counter guard are injected; nothing here
reads a clock or touches flash.

Standard: DLMS UA Green Book (IEC 62056-5-3), "Cryptographic protection of xDLMS APDUs"
(security header, ciphered APDU layouts) and "HLS authentication mechanism 5 (GMAC)";
xDLMS APDU tags from the Green Book ASN.1 (cross-checked with gurux-dlms' Command enum and
dlms-cosem). Worked examples: shared/vectors/dlms-vectors.md sections 1, 3.4, 3.13, 6.

What a protected APDU looks like
--------------------------------
Security header = SC (1 byte) || IC (4 bytes, big-endian invocation counter).

    SC bit 7: compression (refused here)      bit 5: encryption      bits 3..0: suite id
       bit 6: broadcast key (else unicast)    bit 4: authentication  (0 = suite 0)

Suite 0 (AES-GCM-128, gcm.py): IV = sender's system title (8) || IC (4); tag = the first 12
bytes of the GCM tag.
* SC 0x30, authenticated and encrypted: AAD = SC || AK; the APDU is encrypted; the body is
  ciphertext || tag (vector 1.1).
* SC 0x10, authenticated only: the APDU travels in clear and the tag is the GMAC of
  AAD = SC || AK || APDU (empty plaintext); the body is APDU || tag (the same AAD rule as
  HLS-GMAC, vectors 1.5/1.6; gurux-dlms builds it the same way).
* SC 0x20, encrypted only, has no tag: nothing authenticates it (nor its IC). It is refused
  (ERR_POLICY), as are SC 0x00, compression and suites other than 0.
AK is always the global authentication key, also with the dedicated or broadcast key.

Envelopes (A-XDR length = 1 byte below 0x80, else 81 xx / 82 xxxx):

    service-specific  tag || length || SC || IC || body
    general-glo (DB)  DB || len(ST) || ST || length || SC || IC || body     (len(ST) 0 or 8)
    general-ded (DC)  DC || len(ST) || ST || length || SC || IC || body

Service-specific tags: the plain tag + 8 (global key) or + 0x10 (dedicated key):
    GET   C0 -> glo C8 / ded D0      GET response    C4 -> CC / D4
    SET   C1 -> glo C9 / ded D1      SET response    C5 -> CD / D5
    ACTION C3 -> glo CB / ded D3     ACTION response C7 -> CF / D7
    (event-notification C2 -> CA / D2)
    InitiateRequest 01 -> glo-initiate-request 21; InitiateResponse 08 -> glo-initiate-
    response 28; ConfirmedServiceError 0E -> glo-confirmed-service-error 2E.
The plain APDU inside must be the one its envelope names (a C8 carries a C0): otherwise
ERR_MALFORMED. An empty system title in DB/DC means "the one agreed at association" (the
client's calling-AP-title); a non-empty one must equal it.

Keys and counters
-----------------
* ``Keys``: global unicast encryption key EK, authentication key AK, optional broadcast
  key BK; one ``Gcm`` per key, built once. The dedicated key (from the InitiateRequest) lives
  in the ``Context`` of its association.
* ``tx_counter.next() -> int``: the meter's own IC, 1..2**32-1, never repeated (reserved and
  persisted elsewhere). Every wrap, f(CtoS) and glo-initiate-response consumes one.
* ``rx_guard.check_and_update(key_id, ic) -> bool``: the client's IC must strictly increase
  per key (KEY_GLOBAL, KEY_BROADCAST), across associations (persisted elsewhere). It is asked
  only *after* the tag has been verified, so forged APDUs cannot move it. Dedicated-key
  counters are kept in the Context (the key dies with the association).

Call sequence for the association layer
---------------------------------------
AARQ (ciphered context 2.16.756.5.8.1.3, calling-AP-title = client system title):
    ctx = Context(keys, SERVER_TITLE, aarq.calling_ap_title, tx_counter, rx_guard,
                  require=policy_bits)          # or ctx.reset(title) to reuse one
    n = unwrap_initiate(ctx, aarq.user_info, 0, len(aarq.user_info), plain)   # 21 -> 01
    n < 0: AARE rejected with a plain ConfirmedServiceError (initiate, other);
    ir = acse.parse_initiate_request(plain, 0, n); ctx.set_dedicated_key(ir.dedicated_key)
    AARE user-information = wrap_initiate_response(ctx, resp, 0, m, ui)   # 08 -> 28, 0E -> 2E
    With HLS-GMAC the AARE is "pending" (diagnostic 14) and carries StoC (8..64 random bytes).
xDLMS request:
    n = unwrap(ctx, req, 0, req_len, plain)   # or out=None: decrypted in place, plaintext at
                                              # req[ctx.rx.start : ctx.rx.start + n]
    n >= 0: serve plain[0:n]; reply with wrap(ctx, ctx.rx, resp, 0, m, out) (same kind:
    glo -> glo, ded -> ded, DB -> DB, DC -> DC; SC = request SC without the broadcast bit).
    n == ERR_UNKNOWN_TAG: not ciphered; the association decides whether plain is allowed.
HLS pass 3 (ACTION 0.0.40.0.0.255 method 1, reply_to_HLS, usually ciphered: gurux sends CB,
dlms-cosem DB; a pending association accepts that and nothing else):
    r = hls_verify(ctx, stoc, fStoC, 0, 17, guard_ic=not ciphered)    # 0 = authenticated
    pass 4: k = hls_response(ctx, ctos, data, 0) -> f(CtoS) = 10 || IC || GMAC (17 bytes),
    returned as octet-string in the ACTION response, wrapped like the request.
    Why guard_ic: inside a ciphered pass 3 the f(StoC) IC is not above the envelope's IC
    (dlms-cosem uses the same IC for both, gurux IC-1), and the envelope IC has already been
    guarded; f(StoC) itself cannot be replayed because StoC is fresh per association.
RLRQ with glo-initiate-request (3.10): unwrap_initiate as for the AARQ; RLRE user-information
    = wrap_initiate_response (3.13).

Errors (negative return values) and the answer the association should give:
    ERR_MALFORMED     bad lengths, truncated, plain tag not matching its envelope
                      -> ExceptionResponse(service-not-allowed(1), deciphering-error(5)), or drop
    ERR_UNKNOWN_TAG   not a ciphered APDU this meter receives (handled as plain)
    ERR_AUTH          tag mismatch (wrong key, altered bytes)
                      -> ExceptionResponse(service-not-allowed(1), deciphering-error(5))
    ERR_REPLAY        IC not above the last one accepted for that key
                      -> ExceptionResponse(service-not-allowed(1), invocation-counter-error(6))
    ERR_POLICY        SC weaker than ``ctx.require``, encryption-only, compression, another
                      suite, a key this meter has not got (BK, dedicated), another system title
                      -> ExceptionResponse(service-not-allowed(1), deciphering-error(5))
    ERR_TOO_LONG      output buffer too small  -> (service-not-allowed, pdu-too-long(4))
    ERR_COUNTER       the meter's IC is exhausted (or the counter failed): stop ciphering.
Such exception-responses are sent unprotected: the request could not be trusted.

Exception-response to a protected request that *was* accepted: ExceptionResponse (D8) has no
service-specific ciphered form, so ``wrap`` with a glo/ded record copies it unprotected; with a
DB/DC record it is protected like any APDU (general ciphering carries every APDU).

RAM: a Keys holds AK and one Gcm per key (under 1 KB each, see gcm.py); a Context holds the
titles, a 12-byte IV, a 1-byte SC, two AAD lists, one Protection record and, with a dedicated
key, one more Gcm (built when the key arrives, i.e. once per association). Per APDU:
``unwrap`` in place of an SC 0x30 APDU and ``wrap`` of a whole plain buffer allocate nothing
(checked under heap_lock on the Unix port) except what an IC above 2**30 costs on a board;
``unwrap`` into a separate ``out``, SC 0x10 and ``wrap`` of a slice make memoryview slices.
The HLS helpers allocate their 12-byte tags (once per association).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms.gcm import Gcm

# Security control byte (Green Book, "security header")
SC_AUTH = const(0x10)
SC_ENC = const(0x20)
SC_AUTH_ENC = const(0x30)
SC_BROADCAST = const(0x40)
_SC_COMPRESSED = const(0x80)
_SC_SUITE = const(0x0F)
_SC_SECURITY = const(0x30)

# Protection kinds: how a request came, so that the reply goes the same way
GLO = const(1)  # service-specific, global key
DED = const(2)  # service-specific, dedicated key
GENERAL_GLO = const(3)  # general-glo-ciphering DB
GENERAL_DED = const(4)  # general-ded-ciphering DC

# Key ids given to rx_guard (and recorded in Protection.key)
KEY_GLOBAL = const(0)  # global unicast encryption key
KEY_BROADCAST = const(1)  # global broadcast encryption key
KEY_DEDICATED = const(2)  # dedicated key of this association (guarded in the Context)

# Results (negative: see the module docstring for the answers)
OK = const(0)
ERR_MALFORMED = const(-1)
ERR_UNKNOWN_TAG = const(-2)
ERR_AUTH = const(-3)
ERR_REPLAY = const(-4)
ERR_POLICY = const(-5)
ERR_TOO_LONG = const(-6)
ERR_COUNTER = const(-7)

# APDU tags (Green Book xDLMS ASN.1)
_INITIATE_REQUEST = const(0x01)
_INITIATE_RESPONSE = const(0x08)
_CONFIRMED_SERVICE_ERROR = const(0x0E)
_GLO_INITIATE_REQUEST = const(0x21)  # [33]
_GLO_INITIATE_RESPONSE = const(0x28)  # [40]
_GLO_CONFIRMED_SERVICE_ERROR = const(0x2E)  # [46]
_GET_REQUEST = const(0xC0)
_ACTION_RESPONSE = const(0xC7)
_GLO_OFFSET = const(0x08)  # C0..C7 -> C8..CF glo-get-request ... glo-action-response
_DED_OFFSET = const(0x10)  # C0..C7 -> D0..D7 ded-get-request ... ded-action-response
_GLO_GET_REQUEST = const(0xC8)
_GLO_SET_REQUEST = const(0xC9)
_GLO_ACTION_REQUEST = const(0xCB)
_DED_GET_REQUEST = const(0xD0)
_DED_SET_REQUEST = const(0xD1)
_DED_ACTION_REQUEST = const(0xD3)
_EXCEPTION_RESPONSE = const(0xD8)
GENERAL_GLO_CIPHERING = const(0xDB)  # [219]
GENERAL_DED_CIPHERING = const(0xDC)  # [220]

TITLE_LEN = const(8)
_TAG = const(12)  # gcm.TAG_LEN
_HEADER = const(5)  # SC + IC
HLS_LEN = const(17)  # f(challenge) = SC || IC || tag
OVERHEAD = const(30)  # most bytes wrap adds: DB 08 ST(8) 82 LLLL SC IC(4) + tag(12)
_MAX_CONTENT = const(0xFFFF)


class Keys:
    """The meter's suite-0 keys: EK (global unicast encryption), AK (authentication), BK
    (global broadcast encryption, optional). EK and BK are kept only inside their Gcm."""

    def __init__(self, ek, ak, bk=None, aes_factory=None):
        if len(ak) != 16:
            raise ValueError("key length")
        self.ak = bytes(ak)
        self.gcm = Gcm(ek, aes_factory)
        self.gcm_bk = Gcm(bk, aes_factory) if bk is not None else None
        self.aes_factory = aes_factory

    def __repr__(self):
        return "<Keys>"


class Protection:
    """How an APDU was protected: ``kind`` (GLO, DED, GENERAL_GLO, GENERAL_DED), ``sc`` (the
    security control byte), ``key`` (KEY_*), ``ic`` (its invocation counter) and, after an
    in-place unwrap, ``start`` (where the plaintext begins in the input buffer)."""

    def __init__(self, kind=GLO, sc=SC_AUTH_ENC, key=KEY_GLOBAL):
        self.kind = kind
        self.sc = sc
        self.key = key
        self.ic = 0
        self.start = 0


class Context:
    """The security state of one association: keys, both system titles, the meter's tx
    counter, the client-IC guard, the dedicated key, and ``require`` (SC bits every request
    must carry, from the security policy: 0, SC_AUTH or SC_AUTH_ENC). ``rx`` records the
    protection of the last request unwrapped."""

    def __init__(self, keys, server_title, client_title, tx_counter, rx_guard,
                 dedicated_key=None, require=0):
        if len(server_title) != TITLE_LEN:
            raise ValueError("title length")
        self.keys = keys
        self.server_title = bytes(server_title)
        self.tx_counter = tx_counter
        self.rx_guard = rx_guard
        self.require = require
        self.rx = Protection()
        self._iv = bytearray(12)
        self._sc = bytearray(1)
        self._aad = [self._sc, keys.ak]  # SC || AK
        self._aad_text = [self._sc, keys.ak, None]  # SC || AK || APDU (authentication only)
        self.reset(client_title, dedicated_key)

    def __repr__(self):
        return "<security.Context>"

    def reset(self, client_title, dedicated_key=None):
        """Start a new association on this context (client title None when unknown)."""
        if client_title is not None and len(client_title) != TITLE_LEN:
            raise ValueError("title length")
        self.client_title = None if client_title is None else bytes(client_title)
        self._ded = None
        self._ded_ic = -1
        if dedicated_key is not None and not self.set_dedicated_key(dedicated_key):
            raise ValueError("key length")

    def set_dedicated_key(self, key):
        """Use ``key`` (from the InitiateRequest; None: none) for ded-/DC APDUs. False (and no
        dedicated key) when it is not 16 bytes: the association refuses the InitiateRequest."""
        self._ded = None
        self._ded_ic = -1
        if key is None:
            return True
        if len(key) != 16:
            return False
        self._ded = Gcm(key, self.keys.aes_factory)
        return True


# -- helpers -------------------------------------------------------------------------------
def _put_ic(buf, p, ic):
    buf[p] = (ic >> 24) & 0xFF
    buf[p + 1] = (ic >> 16) & 0xFF
    buf[p + 2] = (ic >> 8) & 0xFF
    buf[p + 3] = ic & 0xFF


def _get_ic(buf, p):
    return (buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]


def _iv(ctx, title, tpos, ic):
    """ctx._iv = title[tpos:tpos+8] || IC."""
    iv = ctx._iv
    for i in range(TITLE_LEN):
        iv[i] = title[tpos + i]
    _put_ic(iv, TITLE_LEN, ic)
    return iv


def _next_ic(ctx):
    """The meter's next invocation counter, or ERR_COUNTER when it cannot give one."""
    ic = ctx.tx_counter.next()
    if ic is None or ic < 1 or ic > 0xFFFFFFFF:
        return ERR_COUNTER
    return ic


def response_tag(tag):
    """The tag of the response to request ``tag`` (C0 -> C4, C8 -> CC, D3 -> D7, 01 -> 08,
    21 -> 28; DB and DC answer with themselves); -1 when the request has no response."""
    if _GET_REQUEST <= tag <= _DED_ACTION_REQUEST and (tag & 0x07) in (0, 1, 3):
        return tag + 4
    if tag == _INITIATE_REQUEST:
        return _INITIATE_RESPONSE
    if tag == _GLO_INITIATE_REQUEST:
        return _GLO_INITIATE_RESPONSE
    if tag == GENERAL_GLO_CIPHERING or tag == GENERAL_DED_CIPHERING:
        return tag
    return -1


# -- receiving -----------------------------------------------------------------------------
def unwrap(ctx, buf, start, end, out=None):
    """Unprotect the ciphered request APDU buf[start:end] (exactly one APDU).

    Returns the plain length n >= 0 with the plain APDU in out[0:n], or, when ``out`` is
    None, decrypted in place at buf[ctx.rx.start : ctx.rx.start + n] (buf must be writable);
    ``ctx.rx`` records the protection. Negative: an ERR_* code (ERR_UNKNOWN_TAG for anything
    that is not glo-/ded-GET/SET/ACTION-request, DB or DC)."""
    if end - start < 2 or start < 0 or end > len(buf):
        return ERR_MALFORMED
    tag = buf[start]
    p = start + 1
    title = ctx.client_title
    tpos = 0
    expect = -1  # first plain byte the envelope promises (-1: any, general ciphering)
    if tag == GENERAL_GLO_CIPHERING or tag == GENERAL_DED_CIPHERING:
        kind = GENERAL_GLO if tag == GENERAL_GLO_CIPHERING else GENERAL_DED
        tlen = buf[p]
        p += 1
        if tlen == TITLE_LEN:
            if end - p < TITLE_LEN:
                return ERR_MALFORMED
            if title is not None:
                d = 0
                for i in range(TITLE_LEN):
                    d |= buf[p + i] ^ title[i]
                if d:
                    return ERR_POLICY  # another sender than the associated client
            title = buf
            tpos = p
            p += TITLE_LEN
        elif tlen != 0:
            return ERR_MALFORMED
    elif tag == _GLO_GET_REQUEST or tag == _GLO_SET_REQUEST or tag == _GLO_ACTION_REQUEST:
        kind = GLO
        expect = tag - _GLO_OFFSET
    elif tag == _DED_GET_REQUEST or tag == _DED_SET_REQUEST or tag == _DED_ACTION_REQUEST:
        kind = DED
        expect = tag - _DED_OFFSET
    else:
        return ERR_UNKNOWN_TAG
    return _open(ctx, kind, expect, title, tpos, buf, p, end, out)


def unwrap_initiate(ctx, buf, start, end, out=None):
    """Unprotect a glo-initiate-request (21) from AARQ/RLRQ user-information: like unwrap,
    the plain InitiateRequest (01 ...) in out[0:n] (or in place). Global unicast key only."""
    if end - start < 2 or start < 0 or end > len(buf):
        return ERR_MALFORMED
    if buf[start] != _GLO_INITIATE_REQUEST:
        return ERR_UNKNOWN_TAG
    return _open(ctx, GLO, _INITIATE_REQUEST, ctx.client_title, 0, buf, start + 1, end, out)


def _open(ctx, kind, expect, title, tpos, buf, p, end, out):
    """Length || SC || IC || body at buf[p:end] -> plain length or ERR_*."""
    # A-XDR length, which must cover exactly the rest of the APDU
    if p >= end:
        return ERR_MALFORMED
    n = buf[p]
    p += 1
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 2 or end - p < k:
            return ERR_MALFORMED
        n = buf[p]
        if k == 2:
            n = (n << 8) | buf[p + 1]
        p += k
    if end - p != n or n < _HEADER + _TAG:
        return ERR_MALFORMED
    sc = buf[p]
    sec = sc & _SC_SECURITY
    if sc & (_SC_SUITE | _SC_COMPRESSED) or (sec != SC_AUTH and sec != SC_AUTH_ENC):
        return ERR_POLICY  # another suite, compression, no or encryption-only protection
    if sec & ctx.require != ctx.require:
        return ERR_POLICY  # weaker than the security policy asks
    if title is None:
        return ERR_POLICY  # no client system title: no IV
    if kind == DED or kind == GENERAL_DED:
        if sc & SC_BROADCAST or ctx._ded is None:
            return ERR_POLICY
        gcm = ctx._ded
        key = KEY_DEDICATED
    elif sc & SC_BROADCAST:
        gcm = ctx.keys.gcm_bk
        key = KEY_BROADCAST
        if gcm is None or expect == _INITIATE_REQUEST:
            return ERR_POLICY
    else:
        gcm = ctx.keys.gcm
        key = KEY_GLOBAL
    ic = _get_ic(buf, p + 1)
    body = p + _HEADER
    n = end - body - _TAG  # plain length
    if out is not None and len(out) < n:
        return ERR_TOO_LONG
    iv = _iv(ctx, title, tpos, ic)
    ctx._sc[0] = sc
    if sec == SC_AUTH_ENC:
        if out is None:
            r = gcm.decrypt_in_place(iv, ctx._aad, buf, body, end)
        else:
            r = gcm.decrypt(iv, ctx._aad, memoryview(buf)[body:end], out)
    else:  # authentication only: the APDU in clear, then GMAC(SC || AK || APDU)
        aad = ctx._aad_text
        aad[2] = memoryview(buf)[body : body + n]
        r = gcm.decrypt_in_place(iv, aad, buf, body + n, end)  # empty "ciphertext"
        aad[2] = None
        if r == 0:
            r = n
            if out is not None:
                out[0:n] = memoryview(buf)[body : body + n]
    if r < 0:
        return ERR_AUTH
    # authenticated: now (and only now) the IC may move the guard
    if key == KEY_DEDICATED:
        if ic <= ctx._ded_ic:
            return ERR_REPLAY
        ctx._ded_ic = ic
    elif not ctx.rx_guard.check_and_update(key, ic):
        return ERR_REPLAY
    if n == 0:
        return ERR_MALFORMED  # empty
    first = buf[body] if out is None else out[0]
    if expect >= 0 and first != expect:
        return ERR_MALFORMED  # not the APDU its envelope names
    rx = ctx.rx
    rx.kind = kind
    rx.sc = sc
    rx.key = key
    rx.ic = ic
    rx.start = body if out is None else 0
    return n


# -- sending -------------------------------------------------------------------------------
def wrap(ctx, prot, plain, start, end, out, pos=0):
    """Protect the plain response plain[start:end] as ``prot`` (normally ``ctx.rx``) says:
    GLO -> glo-xxx-response, DED -> ded-xxx-response, GENERAL_GLO -> DB, GENERAL_DED -> DC,
    SC = prot.sc without broadcast bit (responses use the unicast or dedicated key), with the
    meter's next IC and its system title. Writes out[pos:pos+n]; returns n or ERR_*.
    ``plain`` and ``out`` must not overlap. A plain APDU with no service-specific ciphered
    form (ExceptionResponse D8) under GLO/DED is copied unprotected."""
    n = end - start
    if n < 1:
        return ERR_MALFORMED
    kind = prot.kind
    tag = plain[start]
    if kind == GLO or kind == DED:
        if _GET_REQUEST <= tag <= _ACTION_RESPONSE and tag != 0xC6:
            wtag = tag + (_GLO_OFFSET if kind == GLO else _DED_OFFSET)
        else:
            if pos + n > len(out):
                return ERR_TOO_LONG
            out[pos : pos + n] = memoryview(plain)[start:end]
            return n
    elif kind == GENERAL_GLO:
        wtag = GENERAL_GLO_CIPHERING
    elif kind == GENERAL_DED:
        wtag = GENERAL_DED_CIPHERING
    else:
        return ERR_POLICY
    if kind == DED or kind == GENERAL_DED:
        gcm = ctx._ded
        if gcm is None:
            return ERR_POLICY
    else:
        gcm = ctx.keys.gcm
    general = kind == GENERAL_GLO or kind == GENERAL_DED
    return _seal(ctx, wtag, general, gcm, prot.sc, plain, start, end, out, pos)


def wrap_initiate_response(ctx, plain, start, end, out, pos=0, sc=-1):
    """Protect the plain InitiateResponse (08 -> glo-initiate-response 28) or
    ConfirmedServiceError (0E -> glo-confirmed-service-error 2E) for the AARE or RLRE
    user-information, with the global key, SC ``sc`` (default: that of the last request
    unwrapped), the meter's next IC. Returns n or ERR_*."""
    if end - start < 1:
        return ERR_MALFORMED
    tag = plain[start]
    if tag == _INITIATE_RESPONSE:
        wtag = _GLO_INITIATE_RESPONSE
    elif tag == _CONFIRMED_SERVICE_ERROR:
        wtag = _GLO_CONFIRMED_SERVICE_ERROR
    else:
        return ERR_MALFORMED
    if sc < 0:
        sc = ctx.rx.sc
    return _seal(ctx, wtag, False, ctx.keys.gcm, sc, plain, start, end, out, pos)


def _seal(ctx, wtag, general, gcm, sc, plain, start, end, out, pos):
    """Write wtag [|| 08 || server title] || length || SC || IC || body at out[pos:]."""
    sec = sc & _SC_SECURITY
    if sec != SC_AUTH and sec != SC_AUTH_ENC:
        return ERR_POLICY
    sc = sec  # suite 0, unicast key, no compression
    n = end - start
    content = _HEADER + n + _TAG
    if content > _MAX_CONTENT:
        return ERR_TOO_LONG
    lsize = 1 if content < 0x80 else (2 if content < 0x100 else 3)
    total = 1 + lsize + content + (1 + TITLE_LEN if general else 0)
    if pos + total > len(out):
        return ERR_TOO_LONG
    ic = _next_ic(ctx)
    if ic < 0:
        return ic
    q = pos
    out[q] = wtag
    q += 1
    if general:
        out[q] = TITLE_LEN
        out[q + 1 : q + 1 + TITLE_LEN] = ctx.server_title
        q += 1 + TITLE_LEN
    if lsize == 1:
        out[q] = content
    elif lsize == 2:
        out[q] = 0x81
        out[q + 1] = content
    else:
        out[q] = 0x82
        out[q + 1] = content >> 8
        out[q + 2] = content & 0xFF
    q += lsize
    out[q] = sc
    _put_ic(out, q + 1, ic)
    body = q + _HEADER
    if start == 0 and end == len(plain):
        out[body : body + n] = plain
    else:
        out[body : body + n] = memoryview(plain)[start:end]
    iv = _iv(ctx, ctx.server_title, 0, ic)
    ctx._sc[0] = sc
    if sec == SC_AUTH_ENC:
        gcm.encrypt_in_place(iv, ctx._aad, out, body, body + n)
    else:
        aad = ctx._aad_text
        aad[2] = memoryview(out)[body : body + n]
        gcm.encrypt_in_place(iv, aad, out, body + n, body + n)  # tag only
        aad[2] = None
    return total


# -- HLS-GMAC (authentication mechanism 5) -------------------------------------------------
def gmac_tag(keys, title, ic, challenge):
    """The 12-byte tag of f(challenge): GMAC under EK, IV = title || IC,
    AAD = 0x10 || AK || challenge (Green Book Table 43; vectors 1.5, 1.6)."""
    iv = bytearray(12)
    iv[0:TITLE_LEN] = title
    _put_ic(iv, TITLE_LEN, ic)
    return keys.gcm.gmac(iv, (b"\x10", keys.ak, challenge))


def hls_response(ctx, ctos, out, pos=0):
    """Pass 4: write f(CtoS) = 10 || IC || GMAC (17 bytes) with the meter's title and next IC
    at out[pos:]; returns HLS_LEN or ERR_*. Sent as the octet-string return value of
    reply_to_HLS."""
    if pos + HLS_LEN > len(out):
        return ERR_TOO_LONG
    ic = _next_ic(ctx)
    if ic < 0:
        return ic
    out[pos] = SC_AUTH
    _put_ic(out, pos + 1, ic)
    out[pos + _HEADER : pos + HLS_LEN] = gmac_tag(ctx.keys, ctx.server_title, ic, ctos)
    return HLS_LEN


def hls_verify(ctx, stoc, buf, start, end, guard_ic=True):
    """Pass 3: check the client's f(StoC) = 10 || IC || GMAC in buf[start:end] against the
    StoC the meter sent and the client's system title. OK (0) or ERR_*; with ``guard_ic`` the
    IC also goes through rx_guard (see the module docstring for when not to)."""
    if end - start != HLS_LEN:
        return ERR_MALFORMED
    if ctx.client_title is None:
        return ERR_POLICY
    if buf[start] != SC_AUTH:
        return ERR_AUTH
    ic = _get_ic(buf, start + 1)
    tag = gmac_tag(ctx.keys, ctx.client_title, ic, stoc)
    d = 0
    for i in range(_TAG):
        d |= tag[i] ^ buf[start + _HEADER + i]
    if d:
        return ERR_AUTH
    if guard_ic and not ctx.rx_guard.check_and_update(KEY_GLOBAL, ic):
        return ERR_REPLAY
    return OK
