"""The README is the front door: its client example must run, verbatim but for the port,
against the virtual meter, and print the logical device name."""

import os
import re
import subprocess
import sys
import time

import running_meter as vm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_readme_names_the_front_door_commands():
    text = readme()
    assert "make run" in text and "make test" in text
    assert "12345678" in text and "development defaults" in text


def _run_example(code, port, tmp_path, name):
    assert '("127.0.0.1", 4059)' in code
    script = tmp_path / name
    script.write_text(code.replace('("127.0.0.1", 4059)', '("127.0.0.1", %d)' % port))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_readme_python_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", readme(), re.S)
    assert len(blocks) == 2
    # virtual time runs 1000x so that the default load has put energy in the register
    m = vm.start_meter(tmp_path, serial_link="off", extra_args=["--clock-rate", "1000"])
    try:
        assert "MMM0000012345678" in _run_example(blocks[0], m.tcp, tmp_path, "public.py")
        time.sleep(1.0)  # > 15 virtual minutes: energy persisted and revealed
        out = _run_example(blocks[1], m.tcp, tmp_path, "secure.py")
        # the energy register, read with authentication and encryption, scaled by gurux
        # with the scaler the meter sent: the default load (about 1092.5 W) for minutes
        energy = float(out.split("energy")[1].split()[0])
        assert energy > 100, out
        # HLS + ciphered reads: the meter accepted the client's counters (1 for the AARQ,
        # then the HLS reply and the reads), and says so
        assert "last client invocation counter" in out
        last = int(out.split("last client invocation counter")[1].split()[0])
        assert last >= 3
    finally:
        m.stop()
