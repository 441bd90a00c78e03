#!/usr/bin/env python3
"""Run one fuzz target under atheris (coverage-guided, libFuzzer inside CPython).

    .venv/bin/python host_tests/fuzz/run.py TARGET [libFuzzer options] [CORPUS_DIR ...]
    .venv/bin/python host_tests/fuzz/run.py --replay TARGET FILE_OR_DIR ...

The firmware modules (firmware/dlms, firmware/cosem, firmware/meter, firmware/app.py) are
instrumented for coverage when imported; the harness itself (targets.py) is not. An
uncaught exception other than the ones the target documents, a broken invariant
(targets.Violation) or a timeout (``-timeout=N``) is a crash: libFuzzer writes the input to
``<artifact_prefix>crash-<sha1>`` (or ``timeout-...``) and exits non-zero.

``--replay`` runs files (or every file of directories) through the target without atheris
and reports the first failure; it exits 1 if any input fails. ``campaign.py`` drives
this script for every target.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _files(paths):
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                f = os.path.join(p, name)
                if os.path.isfile(f):
                    yield f
        else:
            yield p


def replay(name, paths):
    import traceback

    import targets

    bad = 0
    n = 0
    for f in _files(paths):
        with open(f, "rb") as fh:
            data = fh.read()
        n += 1
        try:
            targets.run_one(name, data)
        except Exception:
            bad += 1
            print("FAIL %s" % f)
            traceback.print_exc()
    print("replayed %d input(s) through %s: %d failure(s)" % (n, name, bad))
    return 1 if bad else 0


# session targets: input = `skip` leading bytes (the HDLC link configuration), then records
# flags(1) | length(2) | payload (targets.encode_records)
SESSION_TARGETS = {"hdlc": 1, "stack_hdlc": 1, "wrapper": 0, "assoc_public": 0,
                   "assoc_reader": 0, "assoc_mgmt": 0, "iec21": 2}


def record_mutator(atheris, targets, skip):
    """Structure-aware mutation of session inputs: most of the time one record's payload is
    mutated by libFuzzer's own mutator (so sizes can change without shifting the records
    that follow), or its flags changed, or records duplicated, dropped or swapped; now and
    then the whole input is mutated as bytes (length lies in the record structure itself)."""
    import random

    def mutate(data, max_size, seed):
        rng = random.Random(seed)
        recs = targets.records(data[skip:]) if len(data) > skip else []
        if not recs or rng.random() < 0.15:
            return atheris.Mutate(data, max_size)
        head = bytes(data[:skip])
        k = rng.randrange(len(recs))
        flags, payload = recs[k]
        op = rng.random()
        if op < 0.65:
            room = max_size - (len(data) - len(payload))
            recs[k] = (flags, atheris.Mutate(payload, max(1, min(room, 2 * len(payload) + 64))))
        elif op < 0.75:
            recs[k] = (flags ^ (1 << rng.randrange(8)), payload)
        elif op < 0.85:
            recs.insert(k, recs[k])
        elif op < 0.93 and len(recs) > 1:
            del recs[k]
        else:
            j = rng.randrange(len(recs))
            recs[k], recs[j] = recs[j], recs[k]
        out = head + targets.encode_records(recs)
        return out[:max_size]

    return mutate


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "--replay":
        sys.exit(replay(argv[1], argv[2:]))
    if not argv:
        sys.exit(__doc__)
    name = argv[0]
    import atheris

    # the AES-GCM/GHASH and CRC arithmetic is data-independent: left uninstrumented (speed)
    with atheris.instrument_imports(
            include=["dlms", "cosem", "meter", "app"],
            exclude=["dlms.gcm", "dlms.ghash", "dlms.ghash_viper", "dlms.fcs",
                     "dlms.fcs_viper"]):
        import targets

        if name not in targets.TARGETS:
            sys.exit("unknown target %r; targets: %s" % (name, ", ".join(targets.TARGETS)))
        # import what the target uses now, under instrumentation (lazy imports inside the
        # harness functions would otherwise load them uninstrumented)
        import app  # noqa: F401
        from cosem import objects, profile_generic  # noqa: F401
        from dlms import acse, association, axdr, hdlc, iec21, security, wrapper, xdlms  # noqa: F401
        from meter import clock, history, profile_log  # noqa: F401

    run_one = targets.run_one

    def one(data):
        run_one(name, data)

    mutator = None
    if name in SESSION_TARGETS:
        mutator = record_mutator(atheris, targets, SESSION_TARGETS[name])

    # libFuzzer runs itself again for -merge/-fork through a shell with argv joined by
    # spaces: argv[0] carries the interpreter and the target
    me = "%s %s %s" % (sys.executable, os.path.abspath(__file__), name)
    atheris.Setup([me] + argv[1:], one, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
