"""--load parser of the virtual meter. CPython and MicroPython."""

import load_spec


def test_default_household_load():
    phases, hz = load_spec.parse()
    assert len(phases) == 3 and hz == 50.0
    assert abs(phases[0].active_w() - 1092.5) < 1e-6  # 230 V x 5 A x 0.95


def test_one_spec_for_all_phases_and_per_phase():
    phases, hz = load_spec.parse("240V,10A,pf1,60Hz")
    assert hz == 60.0 and [p.volts for p in phases] == [240.0] * 3
    phases, _ = load_spec.parse("230V,5A,pf0.95;231V,2A,pf-0.8,lead;229V")
    assert phases[1].pf == -0.8 and not phases[1].inductive
    assert phases[1].active_w() < 0 and phases[1].reactive_var() < 0
    assert phases[2].volts == 229.0 and phases[2].amps == 5.0  # unspecified: from L1


def test_single_phase_chip_takes_the_first_spec():
    phases, _ = load_spec.parse("230V,5A", phases=1)
    assert len(phases) == 1


def test_bad_specs_are_refused():
    for bad in ("230X", "pf2", "230V,5A,30Hz", "", "-5A"):
        try:
            load_spec.parse(bad)
        except ValueError:
            continue
        raise AssertionError("accepted " + bad)
