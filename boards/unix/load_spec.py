"""The simulated mains of the virtual meter: ``--load SPEC``.

    230V,5A,pf0.95,50Hz                one spec for every phase
    230V,5A,pf0.95;231V,2A,pf-0.8;...  ';'-separated: L1, L2, L3

Fields (any order, each optional): ``<V>V`` RMS voltage, ``<A>A`` RMS current,
``pf<x>`` power factor (-1..1: negative = export, i.e. energy flowing to the grid),
``<f>Hz`` frequency (the same on every phase: the first spec's), ``lag``/``lead``
(inductive, the default, or capacitive: the sign of reactive power).

A phase is (volts, amps, pf, inductive); the physics: P = V I pf, S = V I,
Q = +/- sqrt(S^2 - P^2) (+ inductive), all in floats: this is the simulated world, not
firmware.
"""

DEFAULT = "230V,5A,pf0.95,50Hz"  # a plausible household load: about 1092.5 W per phase


class Phase:
    def __init__(self, volts=230.0, amps=5.0, pf=0.95, inductive=True):
        if volts < 0 or amps < 0 or not -1.0 <= pf <= 1.0:
            raise ValueError("load out of range")
        self.volts = volts
        self.amps = amps
        self.pf = pf
        self.inductive = inductive

    def active_w(self):
        return self.volts * self.amps * self.pf

    def apparent_va(self):
        return self.volts * self.amps

    def reactive_var(self):
        s = self.apparent_va()
        p = self.active_w()
        q = (s * s - p * p) ** 0.5 if s * s > p * p else 0.0
        return q if self.inductive else -q


def _one(text, base):
    ph = Phase(base.volts, base.amps, base.pf, base.inductive) if base else Phase()
    hz = None
    for field in text.split(","):
        f = field.strip().lower()
        if not f:
            continue
        try:
            if f.endswith("hz"):
                hz = float(f[:-2])
            elif f.endswith("v"):
                ph.volts = float(f[:-1])
            elif f.endswith("a"):
                ph.amps = float(f[:-1])
            elif f.startswith("pf"):
                ph.pf = float(f[2:])
            elif f == "lag":
                ph.inductive = True
            elif f == "lead":
                ph.inductive = False
            else:
                raise ValueError(field)
        except ValueError:
            raise ValueError("bad --load field: " + field)
    Phase(ph.volts, ph.amps, ph.pf)  # range check
    return ph, hz


def parse(spec=DEFAULT, phases=3):
    """-> (list of `phases` Phase, frequency Hz)."""
    parts = [p for p in spec.split(";") if p.strip()]
    if not parts or len(parts) > phases and phases > 1:
        raise ValueError("bad --load: " + spec)
    out = []
    hz = 50.0
    first = None
    for i, part in enumerate(parts[:phases]):
        ph, f = _one(part, first)
        if i == 0:
            first = ph
            if f is not None:
                hz = f
        out.append(ph)
    while len(out) < phases:
        out.append(Phase(first.volts, first.amps, first.pf, first.inductive))
    if not 40.0 <= hz <= 70.0:
        raise ValueError("frequency out of range")
    return out, hz
