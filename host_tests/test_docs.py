"""The docs check: every runnable block of docs/tutorial.md and docs/labs.md is run, and what
the docs say it prints is compared with what it prints today.

Conventions in those two files (see the top of docs/labs.md):

* A fenced ``console`` block is a shell session. Every line starting with ``$ `` is a command
  (run by bash in the repository root); the lines after it, up to the next ``$ `` line, are
  its expected output (stdout and stderr together). Expected lines are compared one by one;
  ``...`` inside a line matches any text, and a line that is only ``...`` matches any number
  of lines (values that change from meter to meter: energy, clock).
  Trace decoder output pasted this way is regenerated from the hex on every run, so a change
  of the decoder or of the firmware's codecs shows up here.
* A fenced ``python`` block is a program run by the venv's Python in the repository root;
  it must exit 0 (its asserts are part of the check). When the next fenced block is an
  ``output`` block, the program's stdout must equal it (same ``...`` rule).
* Any other fence (``text``, ``diff``, none) is prose: not run.

Commands that talk to a meter use ``$METER_TTY`` (the HDLC pty) and ``$METER_TCP``
(``127.0.0.1:PORT``): the test starts one virtual meter for the module and sets both; a
reader of the docs exports them after ``make run`` (the docs say how).
"""

import os
import re
import subprocess

import pytest

from running_meter import PYTHON, ROOT, start_meter

DOCS = ("docs/tutorial.md", "docs/labs.md")
TIMEOUT = 60
_FENCE = re.compile(r"^```(\w*)\s*$")


def fenced_blocks(path):
    """[(language, first line number, text)] of every fenced block of a Markdown file."""
    blocks = []
    lang = None
    body = []
    start = 0
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = _FENCE.match(line)
            if lang is None:
                if m:
                    lang, body, start = m.group(1), [], n + 1
            elif line.strip() == "```":
                blocks.append((lang, start, "\n".join(body)))
                lang = None
            else:
                body.append(line)
    assert lang is None, "%s: unterminated fence at line %d" % (path, start - 1)
    return blocks


def runnable(path):
    """[(id, kind, line, text, expected output or None)]"""
    out = []
    blocks = fenced_blocks(path)
    for i, (lang, line, text) in enumerate(blocks):
        name = "%s:%d" % (os.path.basename(path), line)
        if lang == "console":
            out.append((name, "console", line, text, None))
        elif lang == "python":
            expected = None
            if i + 1 < len(blocks) and blocks[i + 1][0] == "output":
                expected = blocks[i + 1][2]
            out.append((name, "python", line, text, expected))
    return out


def console_steps(text):
    """[(command, [expected lines])] of a console block."""
    steps = []
    for line in text.split("\n"):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, "a console block must start with a '$ ' command: %r" % line
            steps[-1][1].append(line)
    return steps


def _line_re(expected):
    return re.compile(".*".join(re.escape(p) for p in expected.split("...")) + r"\Z")


def matches(expected, actual):
    """expected/actual: lists of lines; '...' inside a line matches any text, a line of only
    '...' any number of lines. Returns None or the first mismatch explained."""
    def walk(i, j):
        if i == len(expected):
            return None if j == len(actual) else "unexpected line %d: %r" % (j + 1, actual[j])
        e = expected[i]
        if e.strip() == "...":
            for k in range(j, len(actual) + 1):
                if walk(i + 1, k) is None:
                    return None
            return "nothing matches after the '...' of expected line %d" % (i + 1)
        if j == len(actual):
            return "missing line: %r" % e
        if not _line_re(e.rstrip()).match(actual[j].rstrip()):
            return "line %d differs:\n  docs: %r\n  now:  %r" % (j + 1, e, actual[j])
        return walk(i + 1, j + 1)

    return walk(0, 0)


def _strip_trailing_blank(lines):
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


CASES = [c for p in DOCS for c in runnable(p)]


def test_the_docs_have_runnable_blocks():
    kinds = [c[1] for c in CASES]
    assert kinds.count("console") >= 5 and kinds.count("python") >= 4, kinds
    traced = [c for c in CASES if "tools/trace.py" in c[3]]
    assert len(traced) >= 3, "the tutorial and labs paste trace decoder output"


@pytest.fixture(scope="module")
def doc_env(tmp_path_factory):
    m = start_meter(tmp_path_factory.mktemp("docs-meter"))
    env = dict(os.environ)
    env["METER_TTY"] = m.link
    env["METER_TCP"] = "127.0.0.1:%d" % m.tcp
    env["PATH"] = os.path.dirname(PYTHON) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleaved as on a terminal
    try:
        yield env
    finally:
        m.stop()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_doc_block(case, doc_env):
    name, kind, line, text, expected = case
    if kind == "console":
        for cmd, exp in console_steps(text):
            p = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=doc_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=TIMEOUT)
            got = _strip_trailing_blank(p.stdout.decode("utf-8", "replace").split("\n"))
            why = matches(_strip_trailing_blank(exp), got)
            assert why is None, "%s: `%s` (exit %d): %s\nfull output:\n%s" % (
                name, cmd, p.returncode, why, "\n".join(got))
    else:
        p = subprocess.run([PYTHON, "-c", text], cwd=ROOT, env=doc_env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, "%s: the python block failed:\n%s%s" % (
            name, out, p.stderr.decode("utf-8", "replace"))
        if expected is not None:
            why = matches(_strip_trailing_blank(expected.split("\n")),
                          _strip_trailing_blank(out.split("\n")))
            assert why is None, "%s: output differs: %s\nfull output:\n%s" % (name, why, out)


def test_matcher():
    assert matches(["a ... c"], ["a bb c"]) is None
    assert matches(["x", "...", "z"], ["x", "1", "2", "z"]) is None
    assert matches(["x", "...", "z"], ["x", "z"]) is None
    assert matches(["a"], ["b"]) is not None
    assert matches(["a"], ["a", "b"]) is not None
    assert console_steps("$ echo hi\nhi") == [("echo hi", ["hi"])]
