"""AES key wrap and unwrap (RFC 3394; NIST SP 800-38F "KW"), for Security Setup
global_key_transfer (DLMS Green Book: new keys arrive wrapped under the master key, KEK).

Wrap of n 64-bit blocks P1..Pn (RFC 3394 clause 2.2.1, the index form):
    A = IV (A6A6A6A6A6A6A6A6), R[i] = P[i]
    for j = 0..5, for i = 1..n:
        B = AES(K, A || R[i]);  A = MSB64(B) xor t with t = n*j + i;  R[i] = LSB64(B)
    C = A || R[1] || ... || R[n]
Unwrap runs the same steps backwards with AES^-1 and accepts the result only if A comes back
as the IV (clause 2.2.3): that check is the integrity protection. A wrong KEK or any changed
bit gives a different A, and ``unwrap`` returns None.

The AES seam is the one of ``gcm.py``: ``aes_factory(key)`` returns an ECB object with
``encrypt(src, dst)`` / ``decrypt(src, dst)`` (default ``gcm.aes_ecb``: ``cryptolib`` on the
boards, pyca ``cryptography`` on CPython). A ``cryptolib`` object works in one direction only,
so wrap and unwrap each make their own.

RAM: a few small buffers per call (the result and one 16-byte block). Key transfer is rare,
so nothing is kept between calls; recovered key material in the work buffer is zeroed when
the integrity check fails. Keys never appear in exceptions.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms.gcm import aes_ecb

IV = b"\xa6\xa6\xa6\xa6\xa6\xa6\xa6\xa6"  # RFC 3394 clause 2.2.3.1, default initial value
_SEMI = const(8)  # a 64-bit "semiblock"
_ROUNDS = const(6)


def _xor_t(b, t):
    """b[0:8] ^= t as a 64-bit big-endian integer (t = n*j + i, small)."""
    i = 7
    while t and i >= 0:
        b[i] ^= t & 0xFF
        t >>= 8
        i -= 1


def wrap(kek, key, aes_factory=None):
    """Wrap key (16, 24 or 32 bytes: any multiple of 8, at least 16) under kek; returns
    len(key) + 8 bytes."""
    n = len(key) // _SEMI
    if n < 2 or len(key) % _SEMI:
        raise ValueError("key data length")
    aes = (aes_factory or aes_ecb)(kek)
    r = bytearray(_SEMI) + bytearray(key)  # r[0:8] is A, r[8i:8i+8] is R[i]
    r[0:_SEMI] = IV
    b = bytearray(16)
    for j in range(_ROUNDS):
        for i in range(1, n + 1):
            p = _SEMI * i
            b[0:8] = r[0:8]
            b[8:16] = r[p : p + 8]
            aes.encrypt(b, b)
            _xor_t(b, n * j + i)
            r[0:8] = b[0:8]
            r[p : p + 8] = b[8:16]
    _zero(b)
    return bytes(r)


def unwrap(kek, wrapped, aes_factory=None):
    """Unwrap under kek; returns the key bytes, or None if the integrity check fails (wrong
    KEK, changed data) or the length is not that of a wrapped key. Wire data: never raises
    for bad content."""
    n = len(wrapped) // _SEMI - 1
    if n < 2 or len(wrapped) % _SEMI:
        return None
    aes = (aes_factory or aes_ecb)(kek)
    r = bytearray(wrapped)
    b = bytearray(16)
    for j in range(_ROUNDS - 1, -1, -1):
        for i in range(n, 0, -1):
            p = _SEMI * i
            b[0:8] = r[0:8]
            _xor_t(b, n * j + i)
            b[8:16] = r[p : p + 8]
            aes.decrypt(b, b)
            r[0:8] = b[0:8]
            r[p : p + 8] = b[8:16]
    _zero(b)
    diff = 0
    for i in range(_SEMI):  # constant-time comparison of A with the IV
        diff |= r[i] ^ IV[i]
    if diff:
        _zero(r)
        return None
    key = bytes(r[_SEMI:])
    _zero(r)
    return key


def _zero(buf):
    for i in range(len(buf)):
        buf[i] = 0
