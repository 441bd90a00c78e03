"""Scratch directories for the firmware tests (CPython and MicroPython: no tempfile there)."""

import binascii
import os
import sys


def tmpdir(tag):
    """A fresh, empty directory under /tmp, unique per runtime and call."""
    d = "/tmp/dlms-mpy-%s-%s-%s" % (tag, sys.implementation.name,
                                   binascii.hexlify(os.urandom(4)).decode())
    os.mkdir(d)
    return d


def rmtree(d):
    """Remove d and everything below it."""
    for name in os.listdir(d):
        try:
            os.remove(d + "/" + name)
        except OSError:  # a directory
            rmtree(d + "/" + name)
    os.rmdir(d)
