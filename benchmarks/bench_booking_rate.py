"""Booking rate against fleet size: the live simulation's trips, booked one by one.

    python benchmarks/bench_booking_rate.py [--flights 5000] [--city-km 10] [--seed 0]
                                            [--bucket 500] [--json] [--twin PATH]

Issue 11 needs 5,000 drones booked in a few minutes, and issue 14 a booking cost that
does not grow with the fleet. In process, no transport: one
:class:`server.service.ServiceCore` on the synthetic ``--city-km`` twin (built once and
saved next to the live benchmark's, ``/tmp/bench_live_work``) with a temporary SQLite
store, and ``--flights`` trips drawn exactly as ``server/simulate.py`` draws them (start
and goal uniform in the twin, 40 m from its edges, at least ``--min-trip`` apart: 3 km
by default as in the simulator's 300 s runs; departures uniform in ``--spread`` s after
a common start ten minutes ahead; cruise floors 10, 40, 70, 100 m AGL in turn; 120 s
delay budget). Each trip is planned (``core.plan``, timed apart: the planner's cost,
not the booking's), held, then booked with ``submit_flight(plan_id=...)``: the booking
alone, i.e. placement against the accepted flights, the route validator, the
independent verifier against the flights near it, and the store's durable commit.

Reported per bucket of ``--bucket`` bookings (the fleet growing from 0 to N): bookings
per second of booking wall time, accepted / refused, and the wall time per booking
split into placement (``planner.deconflict.place``), validator
(``RouteValidator.check``), verifier (``planner.verify.verify``), store
(``Store.add_flight``: the group-committed fsync) and the rest; also the CPU time of
the booking thread (``time.thread_time``; the store's writer thread is apart) and the
mean number of accepted flights each booking looked at (``index.near``). At the end
the whole fleet is checked with :func:`planner.verify.verify` (0 conflicts expected).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    import skytwin  # noqa: F401 - installed (or a PYTHONPATH shim of another tree)
except ImportError:
    sys.path.insert(0, str(ROOT))

LAYERS_AGL_M = (10.0, 40.0, 70.0, 100.0)   # server/simulate.py SimConfig.layers_agl_m


def synthetic_twin(km: float, workdir: Path, seed: int = 7):
    """The live benchmark's synthetic twin (same generator and seed), built once."""
    from skytwin.airspace.twin import Twin, build_twin
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    path = workdir / f"synthetic_{km:g}km.npz"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        frame = synthetic_frame()
        twin = build_twin(generate_city(size_m=km * 1000.0, n_buildings=int(1500 * km * km),
                                        seed=seed, frame=frame), frame=frame)
        twin.save(path)
    return Twin.load(path), path


class Timers:
    """Wall time per component, wrapped around the functions the booking calls."""

    def __init__(self):
        self.s = {}

    def wrap(self, name, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.s[name] = self.s.get(name, 0.0) + time.perf_counter() - t0
        return timed

    def take(self):
        out, self.s = self.s, {}
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flights", type=int, default=5000)
    ap.add_argument("--city-km", type=float, default=10.0)
    ap.add_argument("--min-trip", type=float, default=3000.0)
    ap.add_argument("--spread", type=float, default=20.0)
    ap.add_argument("--max-delay", type=float, default=120.0)
    ap.add_argument("--bucket", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp/bench_live_work")
    ap.add_argument("--no-final-verify", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()

    import skytwin.planner.deconflict as dc
    import skytwin.planner.verify as pv
    from skytwin.planner.route import PlanError, RouteRequest
    from skytwin.planner.timing import SpeedProfile
    from skytwin.server.service import BookingRejectedError, Caller, ServiceCore
    from skytwin.server.store import Store

    twin, twin_path = synthetic_twin(args.city_km, Path(args.workdir))
    rng = np.random.default_rng(args.seed)
    g = twin.grid
    x0, y0, x1, y1 = g.x0_m + 40, g.y0_m + 40, g.x1_m - 40, g.y1_m - 40
    caller = Caller("bench", "operator", "op-1")
    timers = Timers()
    dc.place = timers.wrap("place", dc.place)
    pv.verify = timers.wrap("verify", pv.verify)
    rows, refused = [], {}
    plan_s = []
    with tempfile.TemporaryDirectory() as tmp:
        core = ServiceCore(twin, Store(Path(tmp) / "rate.db"))
        core.warm_up()
        core.validator.check = timers.wrap("validator", core.validator.check)
        core.store.add_flight = timers.wrap("store", core.store.add_flight)
        near_fn = core.index._index.near
        near_n = []

        def near(trajs, *a, **k):
            out = near_fn(trajs, *a, **k)
            near_n.append(len(out))
            return out
        core.index._index.near = near
        t_dep0 = time.time() + 600.0
        cur = {"n": 0, "ok": 0, "wall": 0.0, "cpu": 0.0, "parts": {}, "near": 0,
               "near_calls": 0}
        n = 0
        while n < args.flights:
            a = rng.uniform([x0, y0], [x1, y1])
            for _ in range(50):
                b = rng.uniform([x0, y0], [x1, y1])
                if np.hypot(*(a - b)) >= args.min_trip:
                    break
            la, lb = twin.frame.to_wgs84(*a), twin.frame.to_wgs84(*b)
            dep = t_dep0 + rng.uniform(0.0, args.spread)
            req = RouteRequest((float(la[0]), float(la[1])), (float(lb[0]), float(lb[1])),
                               depart_s=dep, min_agl_m=LAYERS_AGL_M[n % len(LAYERS_AGL_M)],
                               speeds=SpeedProfile())
            meta = {"priority": 1.0, "max_delay_s": args.max_delay,
                    "speeds": {"cruise_mps": req.speeds.cruise_mps,
                               "climb_mps": req.speeds.climb_mps,
                               "descent_mps": req.speeds.descent_mps}}
            t0 = time.perf_counter()
            try:
                route = core.plan(req, caller)
            except (PlanError, ValueError) as exc:
                refused["plan: " + type(exc).__name__] = \
                    refused.get("plan: " + type(exc).__name__, 0) + 1
                continue
            plan_s.append(time.perf_counter() - t0)
            held = core.hold_plan(caller, "d", req, meta, route)
            timers.take()
            del near_n[:]
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                core.submit_flight(caller, f"b{n}", None, None, plan_id=held.plan_id)
                cur["ok"] += 1
            except BookingRejectedError as exc:
                key = "no slot" if "no conflict-free" in exc.reason else "final checks"
                refused[key] = refused.get(key, 0) + 1
            cur["wall"] += time.perf_counter() - w0
            cur["cpu"] += time.thread_time() - c0
            for k, v in timers.take().items():
                cur["parts"][k] = cur["parts"].get(k, 0.0) + v
            cur["near"] += sum(near_n)
            cur["near_calls"] += len(near_n)
            cur["n"] += 1
            n += 1
            if cur["n"] == args.bucket or n == args.flights:
                parts = {k: round(1e3 * v / cur["n"], 2) for k, v in cur["parts"].items()}
                parts["other"] = round(1e3 * cur["wall"] / cur["n"] - sum(parts.values()), 2)
                rows.append({"fleet_from": len(core.index) - cur["ok"],
                             "fleet_to": len(core.index), "bookings": cur["n"],
                             "accepted": cur["ok"],
                             "bookings_per_s": round(cur["n"] / cur["wall"], 1),
                             "wall_ms": round(1e3 * cur["wall"] / cur["n"], 2),
                             "cpu_ms": round(1e3 * cur["cpu"] / cur["n"], 2),
                             "ms": parts,
                             "near_flights": round(cur["near"] / max(1, cur["near_calls"]),
                                                   1)})
                if not args.json:
                    r = rows[-1]
                    print(f"{r['fleet_from']:5d}-{r['fleet_to']:5d}: {r['bookings_per_s']:6.1f}"
                          f" bookings/s, {r['wall_ms']:6.2f} ms ({r['cpu_ms']:.2f} CPU) "
                          f"{r['ms']} near {r['near_flights']}", file=sys.stderr, flush=True)
                cur = {"n": 0, "ok": 0, "wall": 0.0, "cpu": 0.0, "parts": {}, "near": 0,
                       "near_calls": 0}
        final = None
        if not args.no_final_verify:
            t0 = time.perf_counter()
            rep = pv.verify(core.index.trajectories, core.sep)
            final = {"flights": len(core.index), "residual_conflicts":
                     len(rep.residual_conflicts), "s": round(time.perf_counter() - t0, 1)}
        core.close()
    out = {"flights": args.flights, "city_km": args.city_km, "twin": str(twin_path),
           "min_trip_m": args.min_trip, "spread_s": args.spread,
           "max_delay_s": args.max_delay, "loadavg_before": load0,
           "loadavg_after": os.getloadavg(), "refused": refused,
           "plan_ms_median": round(1e3 * float(np.median(plan_s)), 1) if plan_s else None,
           "buckets": rows, "final_verify": final}
    if args.json:
        print(json.dumps(out))
    else:
        print("| accepted flights | bookings/s | accepted | wall ms/booking | CPU ms | "
              "place | validator | verify | store | other | flights looked at |")
        print("|" + "---|" * 11)
        for r in rows:
            m = r["ms"]
            print(f"| {r['fleet_from']:,}-{r['fleet_to']:,} | {r['bookings_per_s']} | "
                  f"{r['accepted']}/{r['bookings']} | {r['wall_ms']} | {r['cpu_ms']} | "
                  f"{m.get('place', 0)} | {m.get('validator', 0)} | {m.get('verify', 0)} | "
                  f"{m.get('store', 0)} | {m.get('other', 0)} | {r['near_flights']} |")
        print(f"\nrefused {refused}; plan median {out['plan_ms_median']} ms (not in the "
              f"booking figures); final verify {final}; load average before {load0}, "
              f"after {out['loadavg_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
