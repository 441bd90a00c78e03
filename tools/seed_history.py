"""Give a fresh virtual meter a history: N days of load-profile rows (every 15 minutes) and
daily billing rows (local midnight, UTC here), ending at a given time, written into the
state directory's flash image by the firmware's own code (``meter.profile_log`` and
``cosem.profile_generic`` under the MicroPython Unix port), exactly as the meter would have
captured them. Then start the meter on that state with ``--start-time`` = the end time.

    .venv/bin/python tools/seed_history.py --state DIR --days 40 --end 2026-03-01T00:00:00
    .venv/bin/python tools/virtual_meter.py --state DIR --start-time 2026-03-01T00:00:00

The values are synthetic: the energies grow by a constant power (``--watts``, default 1000
W import, a third of it reactive), the AMR status is 0. ``--shape household`` varies the
power over the day instead (``HOUSEHOLD``: a percentage of ``--watts`` per hour of the UTC
day, night base load, morning and evening peaks), so that a load curve has something to
show; the default ``flat`` writes exactly the constant-power rows. Used by the tests and
benchmarks that need a 40-day profile without waiting 40 days of virtual time. Refuses a
state directory whose meter has already run (it has a ``meter`` record).
"""

# --shape household: percent of --watts during each hour of the (UTC) day
HOUSEHOLD = (30, 25, 22, 22, 22, 25, 45, 80, 70, 50, 40, 45,
             55, 45, 40, 45, 55, 75, 100, 95, 85, 70, 50, 38)

import sys

if sys.implementation.name != "micropython":
    import argparse
    import datetime
    import os

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def main():
        p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        p.add_argument("--state", required=True)
        p.add_argument("--days", type=float, required=True)
        p.add_argument("--end", required=True, metavar="ISO8601", help="UTC if no offset")
        p.add_argument("--watts", type=int, default=1000)
        p.add_argument("--shape", choices=("flat", "household"), default="flat",
                       help="constant power (default) or a daily household curve")
        a = p.parse_args()
        end = datetime.datetime.fromisoformat(a.end)
        if end.tzinfo is None:
            end = end.replace(tzinfo=datetime.timezone.utc)
        epoch = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        end_s = int((end - epoch).total_seconds())
        os.makedirs(a.state, exist_ok=True)
        mp = os.environ.get("MICROPYTHON") or os.path.join(ROOT, ".venv", "bin", "micropython")
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join(
            [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix")])
        os.execve(mp, [mp, "-X", "heapsize=4M", os.path.abspath(__file__), a.state,
                       str(int(a.days * 86400)), str(end_s), str(a.watts), a.shape], env)

    main()
else:
    import os

    import flash
    from cosem import objects
    from meter.clock import Clock
    from meter.profile_log import ProfileLog

    class _FixedRTC:
        def datetime(self, t=None):
            return (2000, 1, 1, 5, 0, 0, 0, 0)

    class _Energy:
        """Synthetic metering: energy(q, 0) sources, the integral of the power (W s) so
        far; advance() adds one interval at the power of the hour it starts in."""

        def __init__(self, watts, shape):
            self.watts = watts
            self.shape = shape
            self.ws = [0, 0, 0, 0]  # +A, -A, +R, -R in W s (var s)
            self.phases = 1

        def advance(self, t, seconds):
            w = self.watts
            if self.shape == "household":
                w = w * HOUSEHOLD[(t % 86400) // 3600] // 100
            for q, per_s in enumerate((w, 0, w // 3, 0)):
                self.ws[q] += per_s * seconds

        def energy(self, q, p):
            return lambda: self.ws[q] // 3600

    class _History:
        last_code = 0

        def amr_status(self, utc=None):
            return 0

        def status_column(self):
            return 0

    def seed(state, span, end, watts, shape):
        flash.mount(state + "/flash.img", "/flash")
        if "meter" in os.listdir("/flash"):
            raise SystemExit("seed_history: this meter has run already: use a fresh --state")
        logs = {"load": ProfileLog("/flash", "lp", 22, objects.LOAD_PROFILE_ENTRIES),
                "billing": ProfileLog("/flash", "bill", 21, objects.BILLING_ENTRIES)}
        dev = objects.LogicalDevice(b"MMM0000012345678")
        metering = _Energy(watts, shape)
        load, billing, _events = objects.add_history(dev, Clock(_FixedRTC()), _History(),
                                                     logs, metering)
        t = end - span
        t -= t % 900
        rows = 0
        metering.advance(t, t - (end - span))  # from end - span to the first boundary
        while t < end:
            load.capture(t, 0)
            rows += 1
            if t % 86400 == 0:
                billing.capture(t, 0)
            metering.advance(t, 900)
            t += 900
        for log in logs.values():
            log.close()
        print("seed_history: %d load-profile rows, %d shown" % (rows, logs["load"].in_use()))

    seed(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
         sys.argv[5] if len(sys.argv) > 5 else "flat")
