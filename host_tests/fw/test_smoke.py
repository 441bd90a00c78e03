"""Harness self-check: runs under both CPython and MicroPython."""

import sys


def test_runtime_identifies_itself():
    assert sys.implementation.name in ("cpython", "micropython")
