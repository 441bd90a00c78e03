"""viper twin of ``ghash.Ghash``: GHASH (NIST SP 800-38D clause 6.4) on 32-bit words.

Same class contract, same 4-bit table method (Shoup) and same tests as ``ghash.py``, whose
docstring explains the field arithmetic; only the four "core" methods differ. One block costs
32 nibble steps of shifts, two table look-ups and XORs on four machine words, and nothing is
allocated, so ``gcm.py`` can run with the heap locked. Also holds the viper ``xor_into`` (the
CTR XOR step), the other per-byte loop of GCM.

Layout. A 128-bit field element is four words w0..w3, each the big-endian value of 4 bytes
of the block: w0 = bytes 0..3 (coefficients of x^0..x^31, x^0 in bit 31), w3 = bytes 12..15
(x^96..x^127, x^127 in bit 0). One ``bytearray`` per key, addressed with ``ptr32``:

    words  0 ..  3   Y, the running state
    words  4 .. 67   T[n] = p(n) * H, entry n at 4 + 4n (16 entries x 16 bytes)
    words 68 .. 83   LAST4[r] << 16, the reduction of the nibble shifted out (see ghash.py)

336 bytes per key. The words are stored and loaded only through ``ptr32``, so their byte order
in memory does not matter; blocks are read with ``ptr8``, byte by byte, because a ``ptr32``
load from an odd address faults on Cortex-M0 (RP2040) and data offsets are arbitrary.

32-bit correctness (design/platform.md, "viper / native on 32-bit targets"). viper ``int``
is 32 bits on the boards and 64 bits on the Unix port, so the code is written so that every
value fits in 32 bits on both, and no step depends on the width:
  * every word is a ``uint`` (logical ``>>``); a load from ``ptr8``/``ptr32`` is wrapped in
    ``uint()`` before it is shifted, because on the boards a ``ptr32`` word with bit 31 set
    read as ``int`` is negative and ``>>`` on it would copy the sign bit in;
  * a left shift never pushes bits past bit 31: the carry between words is taken as
    ``(w & 0xF) << 28`` or ``(w & 1) << 31`` (mask first, then shift), never ``w << 28``, so
    the 64-bit port cannot grow bits 32..63 that the boards would silently drop;
  * no literal is >= 2**30 (it would become a Python object and mpy-cross for armv6m, armv7m
    and xtensawin stops with ViperTypeError): R = 0xE1000000 is built as ``uint(0xE1) << 24``;
  * ``ptr32`` stores keep the low 32 bits on every target, loads give them back.
CI compiles this file with ``mpy-cross -march=armv6m|armv7m|xtensawin`` (``make cross``).
viper functions here take at most 4 arguments (the historic viper limit).
"""

import micropython

from dlms.ghash import LAST4, Ghash as _PureGhash, _check_range

_CTX_BYTES = 336  # 84 words: Y (4), T (64), LAST4 (16)


@micropython.viper
def _setup_table(ctx, h, last4):
    """Fill T and LAST4 in ctx from the 16-byte subkey h and the tuple ghash.LAST4."""
    c = ptr32(ctx)  # noqa: F821 (viper built-in)
    k = ptr8(h)  # noqa: F821
    r = uint(0xE1) << 24  # x^128 mod P as the top byte of w0; 0xE1000000 built at run time
    # H as four big-endian words
    a0 = (uint(k[0]) << 24) | (uint(k[1]) << 16) | (uint(k[2]) << 8) | uint(k[3])
    a1 = (uint(k[4]) << 24) | (uint(k[5]) << 16) | (uint(k[6]) << 8) | uint(k[7])
    a2 = (uint(k[8]) << 24) | (uint(k[9]) << 16) | (uint(k[10]) << 8) | uint(k[11])
    a3 = (uint(k[12]) << 24) | (uint(k[13]) << 16) | (uint(k[14]) << 8) | uint(k[15])
    # T[8] = H, T[4] = H*x, T[2] = H*x^2, T[1] = H*x^3: multiply by x = shift the 128-bit value
    # right by one; the bit shifted out of w3 (x^127) comes back as R.
    i = 8
    while i > 0:
        j = 4 + 4 * i
        c[j] = a0
        c[j + 1] = a1
        c[j + 2] = a2
        c[j + 3] = a3
        carry = a3 & 1
        a3 = (a3 >> 1) | ((a2 & 1) << 31)
        a2 = (a2 >> 1) | ((a1 & 1) << 31)
        a1 = (a1 >> 1) | ((a0 & 1) << 31)
        a0 = a0 >> 1
        if carry:
            a0 = a0 ^ r
        i = i >> 1
    # T[n] for the other nibble values: T[hi] xor T[n - hi], hi the top set bit of n.
    # Increasing n builds both parts before they are needed.
    n = 3
    while n < 16:
        hi = 8
        while hi > n:
            hi = hi >> 1
        if hi != n:
            d = 4 + 4 * n
            p = 4 + 4 * hi
            q = 4 + 4 * (n - hi)
            c[d] = uint(c[p]) ^ uint(c[q])
            c[d + 1] = uint(c[p + 1]) ^ uint(c[q + 1])
            c[d + 2] = uint(c[p + 2]) ^ uint(c[q + 2])
            c[d + 3] = uint(c[p + 3]) ^ uint(c[q + 3])
        n += 1
    # T[0] = 0
    c[4] = 0
    c[5] = 0
    c[6] = 0
    c[7] = 0
    # LAST4 values are < 2**16; stored shifted into the top half of w0 (< 2**32).
    n = 0
    while n < 16:
        c[68 + n] = uint(int(last4[n])) << 16
        n += 1


@micropython.viper
def _ghash_blocks(ctx, buf, start: int, end: int):
    """Absorb the whole blocks buf[start:end] into Y (ctx words 0..3)."""
    c = ptr32(ctx)  # noqa: F821
    d = ptr8(buf)  # noqa: F821
    p = start
    while p < end:
        # X = Y xor block, as big-endian words
        x0 = uint(c[0]) ^ ((uint(d[p]) << 24) | (uint(d[p + 1]) << 16) |
                           (uint(d[p + 2]) << 8) | uint(d[p + 3]))
        x1 = uint(c[1]) ^ ((uint(d[p + 4]) << 24) | (uint(d[p + 5]) << 16) |
                           (uint(d[p + 6]) << 8) | uint(d[p + 7]))
        x2 = uint(c[2]) ^ ((uint(d[p + 8]) << 24) | (uint(d[p + 9]) << 16) |
                           (uint(d[p + 10]) << 8) | uint(d[p + 11]))
        x3 = uint(c[3]) ^ ((uint(d[p + 12]) << 24) | (uint(d[p + 13]) << 16) |
                           (uint(d[p + 14]) << 8) | uint(d[p + 15]))
        z0 = uint(0)
        z1 = uint(0)
        z2 = uint(0)
        z3 = uint(0)
        # Horner over the 32 nibbles, last one (low nibble of x3) first: Z = Z * x^4 xor T[n].
        # At the first step Z is 0, so the shift there is harmless and needs no special case.
        w = 3
        while w >= 0:
            if w == 3:
                x = x3
            elif w == 2:
                x = x2
            elif w == 1:
                x = x1
            else:
                x = x0
            s = 0
            while s < 8:
                # Z * x^4: shift the 128 bits right by 4; nibble r of w3 comes back via LAST4.
                r = int(z3 & 0xF)
                z3 = (z3 >> 4) | ((z2 & 0xF) << 28)
                z2 = (z2 >> 4) | ((z1 & 0xF) << 28)
                z1 = (z1 >> 4) | ((z0 & 0xF) << 28)
                z0 = (z0 >> 4) ^ uint(c[68 + r])
                # xor T[n] for this nibble of X
                t = 4 + (int(x & 0xF) << 2)
                z0 = z0 ^ uint(c[t])
                z1 = z1 ^ uint(c[t + 1])
                z2 = z2 ^ uint(c[t + 2])
                z3 = z3 ^ uint(c[t + 3])
                x = x >> 4
                s += 1
            w -= 1
        c[0] = z0
        c[1] = z1
        c[2] = z2
        c[3] = z3
        p += 16


@micropython.viper
def _clear_state(ctx):
    c = ptr32(ctx)  # noqa: F821
    c[0] = 0
    c[1] = 0
    c[2] = 0
    c[3] = 0


@micropython.viper
def _state_bytes(ctx, out):
    """out[0:16] = Y as 16 big-endian bytes."""
    c = ptr32(ctx)  # noqa: F821
    o = ptr8(out)  # noqa: F821
    i = 0
    while i < 4:
        w = uint(c[i])
        o[4 * i] = int(w >> 24)  # a ptr8 store keeps the low 8 bits
        o[4 * i + 1] = int(w >> 16)
        o[4 * i + 2] = int(w >> 8)
        o[4 * i + 3] = int(w)
        i += 1


@micropython.viper
def _xor(buf, pos: int, ks, n: int):
    b = ptr8(buf)  # noqa: F821
    k = ptr8(ks)  # noqa: F821
    i = 0
    while i < n:
        b[pos + i] = b[pos + i] ^ k[i]
        i += 1


def xor_into(buf, pos, ks, n):
    """buf[pos:pos+n] ^= ks[0:n] (the CTR step of GCM). Checked here: viper does not check."""
    if n < 0 or pos < 0 or pos + n > len(buf) or n > len(ks):
        raise ValueError("xor range")
    _xor(buf, pos, ks, n)


class Ghash(_PureGhash):
    """``ghash.Ghash`` with the viper core (see the module docstring for the word layout)."""

    def _setup(self, h):
        self._ctx = bytearray(_CTX_BYTES)
        _setup_table(self._ctx, h, LAST4)

    def _clear(self):
        _clear_state(self._ctx)

    def _blocks(self, buf, start, end):
        _check_range(buf, start, end)  # viper reads raw memory
        _ghash_blocks(self._ctx, buf, start, end)

    def _state_into(self, out):
        _state_bytes(self._ctx, out)
