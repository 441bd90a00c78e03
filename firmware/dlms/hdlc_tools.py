"""HDLC frame helpers for tools and tests (IEC 62056-46 clause 6.4): build and check whole
frames, encode and decode addresses, build and parse the SNRM/UA parameter field.

The server never imports this module: ``hdlc.Link`` has its own allocation-free codec on
the per-frame path, and keeping these helpers out of ``hdlc`` keeps their code out of the
board's RAM. Tests and tools (and a client, if one is ever written in MicroPython) use them
to produce the frames a client sends and to check the frames the server answers with. They
allocate freely.

Frame layout, addresses and parameters: see the ``hdlc`` module docstring.
"""

from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms.fcs import fcs16
from dlms.hdlc import _parse_params, _put_param

_FLAG = const(0x7E)
_FORMAT_TYPE3 = const(0xA0)  # 1010 in the top 4 bits of the format field
_FORMAT_S = const(0x08)  # segmentation bit
_MIN_FRAME_LEN = const(7)  # format 2 + dst 1 + src 1 + control 1 + FCS 2
_MAX_FRAME_LEN = const(0x7FF)
_FORMAT_ID = const(0x81)
_GROUP_ID = const(0x80)
_P_INFO_TX = const(0x05)
_P_INFO_RX = const(0x06)
_P_WINDOW_TX = const(0x07)
_P_WINDOW_RX = const(0x08)


def server_address(upper, lower, nbytes):
    """Combined server address value for encode_address: 1 byte -> upper; 2 bytes ->
    upper << 7 | lower; 4 bytes -> upper << 14 | lower (Gurux getServerAddress)."""
    if nbytes == 1:
        return upper
    if nbytes == 2:
        return (upper << 7) | lower
    return (upper << 14) | lower


def encode_address(value, nbytes):
    """HDLC address bytes: 7 bits per byte, most significant first, LSB=1 on the last.
    encode_address(16, 1) == b'\\x21'; encode_address(0x91, 2) == b'\\x02\\x23'."""
    out = bytearray(nbytes)
    for i in range(nbytes):
        out[nbytes - 1 - i] = ((value >> (7 * i)) & 0x7F) << 1
    out[nbytes - 1] |= 1
    return bytes(out)


def decode_address(buf, pos, end):
    """(value, nbytes) of the address starting at buf[pos]; (-1, 0) if malformed."""
    value = 0
    for i in range(4):
        if pos + i >= end:
            return -1, 0
        b = buf[pos + i]
        value = (value << 7) | (b >> 1)
        if b & 1:
            return value, i + 1
    return -1, 0


def build_frame(out, dst, src, control, info=None, info_start=0, info_end=None,
                segmented=False):
    """Write a complete frame (with flags) into out; return its length. dst/src are
    encoded address bytes; info[info_start:info_end] is the information field."""
    if info is None:
        info = b""
    if info_end is None:
        info_end = len(info)
    n = info_end - info_start
    hl = 2 + len(dst) + len(src) + 1
    flen = hl + (2 + n if n else 0) + 2
    if flen > _MAX_FRAME_LEN:
        raise ValueError("frame too long")
    out[0] = _FLAG
    out[1] = _FORMAT_TYPE3 | (_FORMAT_S if segmented else 0) | (flen >> 8)
    out[2] = flen & 0xFF
    p = 3
    for b in dst:
        out[p] = b
        p += 1
    for b in src:
        out[p] = b
        p += 1
    out[p] = control
    p += 1
    if n:
        hcs = fcs16(out, 1, p)
        out[p] = hcs & 0xFF
        out[p + 1] = hcs >> 8
        p += 2
        for i in range(info_start, info_end):
            out[p] = info[i]
            p += 1
    fcs = fcs16(out, 1, p)
    out[p] = fcs & 0xFF
    out[p + 1] = fcs >> 8
    out[p + 2] = _FLAG
    return p + 3


def frame(dst, src, control, info=b"", segmented=False):
    """build_frame returning bytes (tests and tools)."""
    out = bytearray(len(dst) + len(src) + len(info) + 10)
    n = build_frame(out, dst, src, control, info, 0, len(info), segmented)
    return bytes(out[:n])


def decode_frame(buf):
    """Check one complete frame (flags included) and split it:
    (segmented, dst_value, dst_len, src_value, src_len, control, info bytes), or None when
    the flags, format, length, addresses, HCS or FCS are wrong."""
    end = len(buf)
    if end < _MIN_FRAME_LEN + 2 or buf[0] != _FLAG or buf[end - 1] != _FLAG:
        return None
    if buf[1] & 0xF0 != _FORMAT_TYPE3:
        return None
    flen = ((buf[1] & 0x07) << 8) | buf[2]
    if flen != end - 2:
        return None
    dst, dl = decode_address(buf, 3, end - 3)
    if not dl:
        return None
    src, sl = decode_address(buf, 3 + dl, end - 3)
    if not sl:
        return None
    p = 3 + dl + sl
    control = buf[p]
    p += 1
    info = b""
    if p < end - 3:
        if p + 2 >= end - 3 or fcs16(buf, 1, p) != buf[p] | (buf[p + 1] << 8):
            return None
        info = bytes(buf[p + 2 : end - 3])
    if fcs16(buf, 1, end - 3) != buf[end - 3] | (buf[end - 2] << 8):
        return None
    return bool(buf[1] & _FORMAT_S), dst, dl, src, sl, control, info


def parse_params(info):
    """(max_info_tx, max_info_rx, window_tx, window_rx) of an SNRM/UA information field, from
    the sender's side; None when malformed."""
    out = array("i", [0, 0, 0, 0])
    if not _parse_params(info, 0, len(info), out):
        return None
    return out[0], out[1], out[2], out[3]


def snrm_info(max_info_tx=None, max_info_rx=None, window_tx=None, window_rx=None, size=None):
    """SNRM information field proposing the given parameters (client's side); size forces
    the value length (1, 2 or 4 bytes)."""
    items = bytearray()
    for pid, v in ((_P_INFO_TX, max_info_tx), (_P_INFO_RX, max_info_rx),
                   (_P_WINDOW_TX, window_tx), (_P_WINDOW_RX, window_rx)):
        if v is None:
            continue
        n = size or (1 if v < 256 else 2 if v < 65536 else 4)
        tmp = bytearray(2 + n)
        _put_param(tmp, 0, pid, v, n)
        items.extend(tmp)
    return bytes([_FORMAT_ID, _GROUP_ID, len(items)]) + bytes(items)
