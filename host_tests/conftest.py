"""pytest glue: one `make test` reports both runtimes.

* ``host_tests/fw/test_*.py`` are firmware unit tests. pytest runs them under CPython as
  usual, and *also* under the MicroPython Unix port (the runtime that ships): each file is
  executed once by ``host_tests/mptest.py`` and every ``test_*`` function becomes a pytest
  item named ``mp::<name>``.
* ``host_tests/fw/mp_test_*.py`` run only under MicroPython (heap_lock proofs, viper).
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FW_TESTS = os.path.join(ROOT, "host_tests", "fw")
for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix"), FW_TESTS,
          os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)
# host-side helpers (running_meter, clients) come after the firmware on the path
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))


def micropython_cmd():
    """The Unix-port command: $MICROPYTHON, else the one installed in .venv."""
    exe = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
    return [exe]


def mp_env():
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(
        [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix"), FW_TESTS,
         ".frozen", "~/.micropython/lib", "/usr/lib/micropython"])
    return env


_TEST_DEF = re.compile(r"^def (test_\w+)\s*\(", re.M)
_results = {}


def run_mp_file(path, heap="2m"):
    """Run one firmware test module under MicroPython; return {name: (ok, detail)}."""
    if path in _results:
        return _results[path]
    mod = os.path.splitext(os.path.basename(path))[0]
    cmd = micropython_cmd() + ["-X", "heapsize=" + heap,
                               os.path.join(ROOT, "host_tests", "mptest.py"), mod]
    try:
        proc = subprocess.run(cmd, env=mp_env(), cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        out, err = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    res = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if parts[0] == "PASS" and len(parts) >= 2:
            res[parts[1]] = (True, "")
        elif parts[0] == "FAIL" and len(parts) >= 2:
            res[parts[1]] = (False, line + "\n" + out + err)
    res["__output__"] = (None, out + err)
    _results[path] = res
    return res


class MpItem(pytest.Item):
    def __init__(self, *, name, testname, **kw):
        super().__init__(name=name, **kw)
        self.testname = testname

    def runtest(self):
        res = run_mp_file(str(self.path))
        if self.testname not in res:
            raise AssertionError("test did not run under MicroPython:\n" + res["__output__"][1])
        ok, detail = res[self.testname]
        if not ok:
            raise AssertionError(detail)

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, 0, "micropython: " + self.testname


class MpFile(pytest.File):
    def collect(self):
        with open(self.path) as f:
            src = f.read()
        for name in _TEST_DEF.findall(src):
            yield MpItem.from_parent(self, name="mp::" + name, testname=name)


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".py" and str(file_path.parent) == FW_TESTS and (
            file_path.name.startswith("test_") or file_path.name.startswith("mp_test_")):
        return MpFile.from_parent(parent, path=file_path)
    return None


# ------------------------------------------------------------ hardware in the loop (hil.py)
def pytest_addoption(parser):
    import hil

    hil.add_options(parser)


def pytest_configure(config):
    import hil

    hil.configure(config)


def pytest_collection_modifyitems(config, items):
    import hil

    if not hil.enabled():
        return
    for item in items:
        why = hil.skip_reason(item)
        if why:
            item.add_marker(pytest.mark.skip(reason=why))
