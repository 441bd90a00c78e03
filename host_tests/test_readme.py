"""The README is the front door: its client example must run, verbatim but for the port,
against the virtual meter, and print the logical device name."""

import os
import re
import subprocess
import sys

import running_meter as vm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_readme_names_the_front_door_commands():
    text = readme()
    assert "make run" in text and "make test" in text
    assert "12345678" in text and "development defaults" in text


def test_readme_python_example_reads_the_logical_device_name(tmp_path):
    code = re.search(r"```python\n(.*?)```", readme(), re.S).group(1)
    assert '("127.0.0.1", 4059)' in code
    m = vm.start_meter(tmp_path, serial_link="off")
    try:
        code = code.replace('("127.0.0.1", 4059)', '("127.0.0.1", %d)' % m.tcp)
        script = tmp_path / "example.py"
        script.write_text(code)
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert "MMM0000012345678" in out.stdout
    finally:
        m.stop()
