"""HCS/FCS of HDLC frames: CRC-16/X.25 (IEC 62056-46 clause 6.4.1 and Annex A, ISO/IEC 13239).

Parameters of the CRC, as IEC 62056-46 Annex A defines it:

    polynomial  x^16 + x^12 + x^5 + 1 (0x1021), processed bit-reversed: 0x8408
    initial register value 0xFFFF, final XOR 0xFFFF, bytes processed LSB first
    the 16-bit result goes on the wire low byte first

The same CRC protects two spans of a frame: the HCS covers format..control, the FCS covers
format..end of the information field (HCS included).

How the table works: feeding one byte into a reflected CRC register ``crc`` is
``crc = (crc >> 8) ^ TABLE[(crc ^ byte) & 0xFF]``, where TABLE[i] is the register after
shifting the 8 bits of i through the polynomial. The 256 entries are computed once at import.

RAM: one ``array('H')`` of 256 entries (512 bytes). The functions allocate nothing, so they
may run with the heap locked. ``fcs_viper.py`` holds an optional viper twin of
``fcs16_update`` with identical tests; ``hdlc.py`` uses it when the port can load it.
"""

from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_POLY_REFLECTED = const(0x8408)
FCS_INIT = const(0xFFFF)  # register value before the first byte
FCS_XOROUT = const(0xFFFF)  # applied to the register after the last byte


def _make_table():
    table = array("H", bytes(512))
    for i in range(256):
        crc = i
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ _POLY_REFLECTED
            else:
                crc >>= 1
        table[i] = crc
    return table


TABLE = _make_table()
del _make_table  # run once: its code need not stay in RAM


def fcs16_update(crc, buf, start, end):
    """Run the CRC register ``crc`` over buf[start:end]; returns the new register (no XOR).

    Use it to compute a CRC over pieces (start with FCS_INIT, finish with ``^ FCS_XOROUT``).
    """
    table = TABLE
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
    return crc


def fcs16(buf, start, end):
    """The HCS/FCS value of buf[start:end]; put it on the wire as (fcs & 0xFF, fcs >> 8)."""
    return fcs16_update(FCS_INIT, buf, start, end) ^ FCS_XOROUT
