"""Minimal test runner for firmware unit tests under the MicroPython Unix port.

The Unix port has no unittest; this runs every ``test_*`` function of one module and
prints one line per test, which ``host_tests/conftest.py`` turns into pytest results:

    PASS test_name
    FAIL test_name <exception type>: <message>

Usage: micropython host_tests/mptest.py MODULE   (MICROPYPATH=firmware:boards/unix:host_tests/fw)
"""

import sys

# The script's own folder (host_tests/) holds host-side helpers; firmware tests must only
# see MICROPYPATH (firmware, boards/unix, host_tests/fw).
sys.path[:] = [p for p in sys.path if p not in ("", "host_tests") and not p.endswith("/host_tests")]


def main():
    name = sys.argv[1]
    mod = __import__(name)
    names = [n for n in dir(mod) if n.startswith("test_")]
    names.sort()
    failed = 0
    for n in names:
        fn = getattr(mod, n)
        try:
            fn()
        except Exception as e:  # report and go on: one failure must not hide the others
            failed += 1
            msg = str(e).replace("\n", " ")
            print("FAIL", n, type(e).__name__ + ":", msg)
            sys.print_exception(e)
        else:
            print("PASS", n)
    print("DONE", len(names), failed)


main()
