"""GHASH, the authentication half of AES-GCM (NIST SP 800-38D clause 6.4), in plain Python.

GHASH_H(X1 .. Xm) = Y_m where Y_0 = 0 and Y_i = (Y_{i-1} xor X_i) * H in GF(2^128). H is the
hash subkey E_K(0^128), X_i are 16-byte blocks. ``gcm.py`` feeds it the AAD (zero-padded to a
block), the ciphertext (zero-padded) and the length block; the result, XORed with E_K(J0),
is the tag.

The field, the way SP 800-38D writes it: a block is a polynomial of degree < 128 over GF(2),
bit 0 (the most significant bit of byte 0) is the coefficient of x^0, bit 127 (the least
significant bit of byte 15) that of x^127, reduced modulo P = x^128 + x^7 + x^2 + x + 1. Read
a block as one big-endian integer V; then
  * multiplying by x is ``V >> 1``, and the bit that falls out (x^127 * x = x^128) comes back
    as x^7 + x^2 + x + 1, i.e. XOR with R = 0xE1 << 120;
  * multiplying by x^4 is ``V >> 4``, and the nibble r that falls out comes back as
    LAST4[r] << 112 (the table below, 16-bit values).

Shoup's 4-bit table method: split X into 32 nibbles. Nibble m (m = 0 .. 31, from the first
byte's high nibble on) holds the coefficients of x^(4m) .. x^(4m+3), so
X * H = sum_m p(n_m) * H * x^(4m), with p(n) the degree-3 polynomial of nibble value n
(its most significant bit is the x^0 coefficient). Per key, T[n] = p(n) * H for the 16
nibble values (T[8] = H, T[4] = H*x, T[2] = H*x^2, T[1] = H*x^3, the rest by XOR). Then Horner
from the last nibble: Z = 0; for m = 31 .. 0: Z = Z * x^4 xor T[n_m]. 32 steps of one shift,
two table look-ups and three XORs per block, instead of 128 bit-steps.

This module is the reference and the fallback: readable, exact on every port, fast on
CPython (Python big ints). Under MicroPython the big-int arithmetic allocates on every
step, so ``gcm.py`` uses ``ghash_viper.py`` (same class, same tests, 32-bit words, no
allocation) whenever it imports.

RAM per key: the table (16 entries x 16 bytes of field elements; here Python ints, so about
twice that with object headers), the 16-byte state and a 16-byte pending block.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


BLOCK = const(16)  # bytes in a GHASH block (and an AES block)
_R_TOP16 = const(0xE100)  # x^128 = x^7 + x^2 + x + 1 as the top 16 bits of a block


def _make_last4():
    """LAST4[r]: what the nibble r shifted out by ``V >> 4`` contributes, as the top 16 bits.

    Bit b of r (value 2**b) is the coefficient of x^(127-b). Times x^4 it is
    x^(131-b) = x^(3-b) * x^128 = x^(3-b) * (1 + x + x^2 + x^7), which is 0xE100 (the
    coefficients of x^0, x^1, x^2, x^7 as the top 16 bits) moved right by 3-b places."""
    table = []
    for r in range(16):
        v = 0
        for b in range(4):
            if r & (1 << b):
                v ^= _R_TOP16 >> (3 - b)
        table.append(v)
    return tuple(table)


LAST4 = _make_last4()  # 16 small ints, shared by both implementations


def _check_range(buf, start, end):
    """Both implementations read buf[start:end]; the viper one cannot check for itself."""
    if start < 0 or end < start or end > len(buf):
        raise ValueError("ghash range")


class Ghash:
    """Streaming GHASH under one hash subkey H (16 bytes).

    ``update`` takes any amount of data; a partial block waits in a 16-byte buffer until more
    data comes or ``pad`` completes it with zeros (SP 800-38D pads the AAD and the ciphertext
    separately, so ``gcm.py`` calls ``pad`` after each). ``digest_into`` writes Y (16 bytes)
    without changing it. Subclasses replace the four methods marked "core" to change the
    arithmetic; the buffering here stays the same.
    """

    def __init__(self, h):
        if len(h) != BLOCK:
            raise ValueError("ghash key length")
        self._pend = bytearray(BLOCK)  # a partial block waiting for more data
        self._npend = 0
        self._setup(h)
        self.reset()

    # -- the contract -------------------------------------------------------------------------

    def reset(self):
        """Start a new hash (Y = 0) under the same H."""
        self._npend = 0
        self._clear()

    def update(self, buf, start=0, end=None):
        """Absorb buf[start:end] (bytes, bytearray or memoryview); no copy of whole blocks."""
        if end is None:
            end = len(buf)
        _check_range(buf, start, end)
        pend = self._pend
        n = self._npend
        if n:
            while n < BLOCK and start < end:
                pend[n] = buf[start]
                n += 1
                start += 1
            if n < BLOCK:
                self._npend = n
                return
            self._blocks(pend, 0, BLOCK)
            n = 0
        full = start + ((end - start) & ~(BLOCK - 1))
        if full > start:
            self._blocks(buf, start, full)
        while full < end:
            pend[n] = buf[full]
            n += 1
            full += 1
        self._npend = n

    def pad(self):
        """Complete a pending partial block with zero bytes and absorb it."""
        n = self._npend
        if n:
            pend = self._pend
            while n < BLOCK:
                pend[n] = 0
                n += 1
            self._blocks(pend, 0, BLOCK)
            self._npend = 0

    def digest_into(self, out):
        """Write Y (16 bytes) into out[0:16]. Call ``pad`` first if the data was not whole
        blocks (GCM always ends with the length block, so it never needs to)."""
        if len(out) < BLOCK:
            raise ValueError("ghash output")
        self._state_into(out)

    # -- core: Python ints --------------------------------------------------------------------

    def _setup(self, h):
        """Build T[n] = p(n) * H for the 16 nibble values."""
        t = [0] * 16
        v = int.from_bytes(h, "big")
        i = 8
        while i:  # T[8] = H, T[4] = H*x, T[2] = H*x^2, T[1] = H*x^3
            t[i] = v
            v = (v >> 1) ^ (_R_TOP16 << 112) if v & 1 else v >> 1
            i >>= 1
        for i in (3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15):
            hi = 8 if i & 8 else (4 if i & 4 else 2)  # i = hi + (i - hi), both already built
            t[i] = t[hi] ^ t[i - hi]
        self._t = t

    def _clear(self):
        self._y = 0

    def _blocks(self, buf, start, end):
        """Absorb the whole blocks buf[start:end]."""
        t = self._t
        last4 = LAST4
        y = self._y
        while start < end:
            x = y ^ int.from_bytes(buf[start : start + BLOCK], "big")
            z = 0
            for _ in range(32):  # nibble 31 (the integer's lowest) first: Horner
                z = (z >> 4) ^ (last4[z & 0xF] << 112) ^ t[x & 0xF]
                x >>= 4
            y = z
            start += BLOCK
        self._y = y

    def _state_into(self, out):
        y = self._y
        i = BLOCK - 1
        while i >= 0:
            out[i] = y & 0xFF
            y >>= 8
            i -= 1


def xor_into(buf, pos, ks, n):
    """buf[pos:pos+n] ^= ks[0:n] (the CTR step of GCM). Pure twin of ``ghash_viper``'s."""
    i = 0
    while i < n:
        buf[pos + i] ^= ks[i]
        i += 1
