"""AES-GCM-128 and GMAC (NIST SP 800-38D) over an injected AES block function.

DLMS security suite 0 (Green Book, "security suite 0": AES-GCM-128) uses it like this:
  * IV (96 bits) = system title of the sender (8 bytes) || invocation counter (4, big-endian);
  * AAD = SC || AK for authenticated+encrypted APDUs (SC = 0x30), SC || AK || ... for
    authentication only; HLS-GMAC (mechanism 5) is GMAC over SC || AK || challenge (SC = 0x10);
  * the tag is the first 12 bytes of the GCM tag; a ciphered payload is ciphertext || tag.
``security.py`` builds IV and AAD; this module only does the arithmetic.

How GCM works (SP 800-38D clause 7), for a 96-bit IV:
  1. H = E_K(0^128), the GHASH subkey (computed once per key in ``__init__``).
  2. J0 = IV || 00000001. The data is XORed with E_K(J0+1), E_K(J0+2), ... (CTR mode, the
     counter is the last 32 bits). Counter blocks are built in a buffer of up to 8 blocks and
     encrypted by one ECB call per buffer, so the AES engine is entered once per 128 bytes.
  3. S = GHASH_H(AAD, zero-padded || C, zero-padded || [len(AAD)]_64 || [len(C)]_64), bits.
  4. Tag = E_K(J0) xor S, truncated to tag_len bytes (12 in DLMS).
Decryption checks the tag first (constant-time comparison) and decrypts only if it matches,
so a forged message never produces plaintext.

The AES seam: ``aes_factory(key)`` returns an object whose ``encrypt(src, dst)`` encrypts
src into dst in ECB mode, any number of whole blocks (only the forward cipher is needed).
The default is ``cryptolib.aes(key, 1)`` (mbedtls, on ESP32 the AES peripheral); under
CPython, where there is no ``cryptolib``, host tools fall back to pyca ``cryptography``. A C
module or a hardware engine plugs in the same way.

GHASH comes from ``ghash_viper`` (MicroPython with the viper emitter) or ``ghash`` (pure
Python: CPython, or a port that cannot load viper code); ``GHASH_IMPL`` says which.

Buffers are the caller's: ``encrypt``/``decrypt`` copy into ``out`` and work there;
``encrypt_in_place``/``decrypt_in_place`` work on buf[start:end] directly (zero copy, for
the security layer that decodes and encodes APDUs in one buffer). ``aad`` is None, a
bytes-like object, or a tuple/list of bytes-like pieces that are hashed as their
concatenation (SC, AK and the challenge need not be copied together first).

RAM per key (one ``Gcm``): the GHASH table and state (336 bytes with viper), counter and
key-stream buffers (2 x 128 bytes) with 16 prebuilt memoryviews of them, J0, E_K(J0) and one
scratch block (48 bytes), and the AES object: under 1 KB. Per call, ``encrypt``,
``encrypt_in_place``, ``decrypt_in_place`` and a rejected ``decrypt`` allocate nothing
(proven under heap_lock by host_tests/fw/mp_test_ghash_alloc.py); an accepted ``decrypt``
makes one memoryview slice, ``gmac`` its 12-byte result. The key itself is kept only inside
the AES object, and never appears in exceptions or reprs.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


try:
    from dlms.ghash_viper import Ghash, xor_into

    GHASH_IMPL = "viper"
except (ImportError, SyntaxError, ValueError):  # CPython; a port without viper; wrong .mpy arch
    from dlms.ghash import Ghash, xor_into

    GHASH_IMPL = "pure"

BLOCK = const(16)
IV_LEN = const(12)  # 96-bit IV: system title (8) || invocation counter (4)
TAG_LEN = const(12)  # DLMS suite 0 tag length
_TAG_MIN = const(12)  # SP 800-38D clause 5.2.1.2: 96..128 bits for general use
_CHUNK_BLOCKS = const(8)  # counter blocks per ECB call
_CHUNK = const(128)  # _CHUNK_BLOCKS * BLOCK
_PIECES = (tuple, list)  # aad given in pieces (a module constant: a literal tuple would be
# built, i.e. allocated, on every call)


class _HostAes:
    """AES-ECB from pyca ``cryptography``, for host tools and tests under CPython only."""

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        cipher = Cipher(algorithms.AES(bytes(key)), modes.ECB())
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()

    def __repr__(self):
        return "<AES-ECB>"

    def encrypt(self, src, dst=None):
        data = self._enc.update(bytes(src))
        if dst is None:
            return data
        dst[0 : len(data)] = data
        return None

    def decrypt(self, src, dst=None):
        data = self._dec.update(bytes(src))
        if dst is None:
            return data
        dst[0 : len(data)] = data
        return None


def aes_ecb(key):
    """The default AES block function: an ECB object with ``encrypt(src, dst)`` (and
    ``decrypt``). cryptolib objects work in one direction only: use one per direction."""
    try:
        import cryptolib
    except ImportError:  # CPython host tools and tests
        return _HostAes(key)
    return cryptolib.aes(key, 1)  # mode 1 = ECB


class Gcm:
    """AES-GCM-128 / GMAC under one key (see the module docstring)."""

    def __init__(self, key, aes_factory=None):
        if len(key) != 16:
            raise ValueError("key length")
        self._aes = (aes_factory or aes_ecb)(key)
        self._ctr = bytearray(_CHUNK)  # counter blocks J0+1 .. for one ECB call
        self._ks = bytearray(_CHUNK)  # their encryption: the key stream
        mc = memoryview(self._ctr)
        mk = memoryview(self._ks)
        # views of 1..8 blocks, made once, so that a short message costs one short ECB call
        self._ctr_v = [mc[0 : BLOCK * (i + 1)] for i in range(_CHUNK_BLOCKS)]
        self._ks_v = [mk[0 : BLOCK * (i + 1)] for i in range(_CHUNK_BLOCKS)]
        self._j0 = bytearray(BLOCK)  # IV || 00000001
        self._j0[BLOCK - 1] = 1
        self._ekj0 = bytearray(BLOCK)  # E_K(J0)
        self._s = bytearray(BLOCK)  # scratch: H, the length block, then S
        self._aes.encrypt(self._s, self._ekj0)  # E_K(0^128) = H (ekj0 as scratch)
        self._gh = Ghash(self._ekj0)
        for i in range(BLOCK):
            self._ekj0[i] = 0

    def __repr__(self):
        return "<Gcm %s>" % GHASH_IMPL

    # -- public API ---------------------------------------------------------------------------

    def encrypt(self, iv, aad, plaintext, out, tag_len=TAG_LEN):
        """out[0:n] = ciphertext || tag; returns n = len(plaintext) + tag_len."""
        _check_tag_len(tag_len)
        if len(iv) != IV_LEN:
            raise ValueError("iv length")
        n = len(plaintext)
        if len(out) < n + tag_len:
            raise ValueError("output too small")
        out[0:n] = plaintext
        return self.encrypt_in_place(iv, aad, out, 0, n, tag_len)

    def decrypt(self, iv, aad, ct_and_tag, out, tag_len=TAG_LEN):
        """Check the tag of ct_and_tag; if it is right, out[0:n] = plaintext and return n,
        else return -1 and leave out untouched (no plaintext is ever produced)."""
        _check_tag_len(tag_len)
        n = len(ct_and_tag) - tag_len
        if n < 0:
            return -1
        if len(out) < n:
            raise ValueError("output too small")
        if not self._verify(iv, aad, ct_and_tag, 0, n, tag_len):
            return -1
        out[0:n] = memoryview(ct_and_tag)[0:n]
        self._ctr_xor(out, 0, n)
        return n

    def encrypt_in_place(self, iv, aad, buf, start, end, tag_len=TAG_LEN):
        """buf[start:end] holds plaintext: encrypt it there and write the tag at buf[end:];
        returns the length of ciphertext || tag (end - start + tag_len)."""
        _check_tag_len(tag_len)
        if start < 0 or end < start or end + tag_len > len(buf):
            raise ValueError("buffer range")
        self._start(iv)
        self._ctr_xor(buf, start, end - start)
        s = self._hash(aad, buf, start, end)
        ekj0 = self._ekj0
        for i in range(tag_len):
            buf[end + i] = s[i] ^ ekj0[i]
        return end - start + tag_len

    def decrypt_in_place(self, iv, aad, buf, start, end, tag_len=TAG_LEN):
        """buf[start:end] holds ciphertext || tag: if the tag is right, decrypt in place and
        return the plaintext length (plaintext at buf[start:start+n]); else return -1 and
        leave buf unchanged (it still holds the ciphertext)."""
        _check_tag_len(tag_len)
        if start < 0 or end > len(buf):
            raise ValueError("buffer range")
        ct_end = end - tag_len
        if ct_end < start:
            return -1
        if not self._verify(iv, aad, buf, start, ct_end, tag_len):
            return -1
        self._ctr_xor(buf, start, ct_end - start)
        return ct_end - start

    def gmac(self, iv, aad, tag_len=TAG_LEN):
        """GMAC: the GCM tag of empty plaintext, authenticating aad only (HLS-GMAC)."""
        _check_tag_len(tag_len)
        self._start(iv)
        s = self._hash(aad, self._s, 0, 0)
        ekj0 = self._ekj0
        tag = bytearray(tag_len)
        for i in range(tag_len):
            tag[i] = s[i] ^ ekj0[i]
        return bytes(tag)

    # -- the steps ----------------------------------------------------------------------------

    def _start(self, iv):
        """J0 = IV || 00000001; E_K(J0) for the tag; the IV into every counter block."""
        if len(iv) != IV_LEN:
            raise ValueError("iv length")
        j0 = self._j0
        j0[0:IV_LEN] = iv
        self._aes.encrypt(j0, self._ekj0)
        ctr = self._ctr
        for b in range(0, _CHUNK, BLOCK):
            ctr[b : b + IV_LEN] = iv

    def _ctr_xor(self, buf, pos, n):
        """buf[pos:pos+n] ^= E_K(J0+1) || E_K(J0+2) || ... (GCTR, SP 800-38D clause 6.5)."""
        ctr = self._ctr
        cnt = 2  # J0 + 1: the low 32 bits of J0 are 1; a buffer-sized message cannot wrap them
        while n > 0:
            take = _CHUNK if n > _CHUNK else n
            nb = (take + BLOCK - 1) >> 4
            b = IV_LEN
            for _ in range(nb):
                ctr[b] = (cnt >> 24) & 0xFF
                ctr[b + 1] = (cnt >> 16) & 0xFF
                ctr[b + 2] = (cnt >> 8) & 0xFF
                ctr[b + 3] = cnt & 0xFF
                cnt += 1
                b += BLOCK
            self._aes.encrypt(self._ctr_v[nb - 1], self._ks_v[nb - 1])
            xor_into(buf, pos, self._ks, take)
            pos += take
            n -= take

    def _hash(self, aad, data, start, end):
        """S = GHASH(aad, data[start:end], lengths) into the scratch block; returns it."""
        gh = self._gh
        gh.reset()
        alen = 0
        if aad is not None:
            if isinstance(aad, _PIECES):
                for piece in aad:
                    gh.update(piece)
                    alen += len(piece)
            else:
                gh.update(aad)
                alen = len(aad)
        gh.pad()
        gh.update(data, start, end)
        gh.pad()
        s = self._s
        _put_bits64(s, 0, alen)
        _put_bits64(s, 8, end - start)
        gh.update(s, 0, BLOCK)
        gh.digest_into(s)
        return s

    def _verify(self, iv, aad, buf, start, ct_end, tag_len):
        """True if buf[ct_end:ct_end+tag_len] is the tag of (aad, buf[start:ct_end]).
        Every tag byte is compared whatever the earlier ones were (constant time)."""
        self._start(iv)
        s = self._hash(aad, buf, start, ct_end)
        ekj0 = self._ekj0
        diff = 0
        for i in range(tag_len):
            diff |= s[i] ^ ekj0[i] ^ buf[ct_end + i]
        return diff == 0


def _check_tag_len(tag_len):
    if tag_len < _TAG_MIN or tag_len > BLOCK:
        raise ValueError("tag length")


def _put_bits64(buf, pos, nbytes):
    """buf[pos:pos+8] = nbytes * 8 as a 64-bit big-endian integer (buffer-sized: < 2**29)."""
    bits = nbytes << 3
    for i in range(7, -1, -1):
        buf[pos + i] = bits & 0xFF
        bits >>= 8


# Known answers for the boot self-test (shared/vectors/dlms-vectors.md 1.1 and 1.5).
_KAT_EK = b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
_KAT_AK = b"\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf"
_KAT_IV = b"MMM\x00\x00\xbc\x61\x4e\x01\x23\x45\x67"  # server system title || IC 01234567
_KAT_PT = b"\xc0\x01\x00\x00\x08\x00\x00\x01\x00\x00\xff\x02\x00"  # GET clock.2
_KAT_CT = (b"\x41\x13\x12\xff\x93\x5a\x47\x56\x68\x27\xc4\x67\xbc"
           b"\x7d\x82\x5c\x3b\xe4\xa7\x7c\x3f\xcc\x05\x6b\x6b")  # ciphertext || tag
_KAT_GMAC_IV = b"MMM\x00\x00\x00\x00\x01\x00\x00\x00\x01"  # client system title || IC 1
_KAT_STOC = b"P6wRJ21F"
_KAT_GMAC = b"\x1a\x52\xfe\x7d\xd3\xe7\x27\x48\x97\x3c\x1e\x28"


def self_test(aes_factory=None):
    """Known-answer test run at boot, before any ciphered association is accepted: encrypt
    and decrypt DLMS vector 1.1, reject it with one bit flipped, and compute the HLS-GMAC
    tag of vector 1.5. True if every answer is right."""
    g = Gcm(_KAT_EK, aes_factory)
    out = bytearray(len(_KAT_CT))
    aad = (b"\x30", _KAT_AK)
    if g.encrypt(_KAT_IV, aad, _KAT_PT, out) != len(_KAT_CT) or out != _KAT_CT:
        return False
    back = bytearray(len(_KAT_PT))
    if g.decrypt(_KAT_IV, aad, _KAT_CT, back) != len(_KAT_PT) or back != _KAT_PT:
        return False
    out[len(_KAT_PT)] ^= 1  # first tag byte
    if g.decrypt(_KAT_IV, aad, out, back) != -1:
        return False
    return g.gmac(_KAT_GMAC_IV, (b"\x10", _KAT_AK, _KAT_STOC)) == _KAT_GMAC
