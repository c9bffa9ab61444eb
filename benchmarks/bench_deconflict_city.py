"""Deconfliction of planned routes over a real city (issue 4, real-city scenario).

Builds the twin of a city (default: the bundled Helsinki centre), plans N delivery flights
from a few hubs with the real planner (`fixtures.traffic.city_scenario`), then resolves
them with CP-SAT and with the FCFS baseline side by side. Residual conflicts come from the
independent verifier; every final trajectory is also re-checked for building clearance.

    python benchmarks/bench_deconflict_city.py [--city PATH] [--flights N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skytwin.airspace.io import load_city  # noqa: E402
from skytwin.airspace.twin import build_twin  # noqa: E402
from skytwin.fixtures.traffic import city_options, city_scenario  # noqa: E402
from skytwin.planner.conflicts import Separation, detect  # noqa: E402
from skytwin.planner.deconflict import SolveParams, deconflict, fcfs  # noqa: E402
from skytwin.planner.validate import RouteValidator  # noqa: E402


def summarise(res, flights, validator, solve_s):
    delays = np.array([c.delay_s for c in res.choices.values()] or [0.0])
    bad = sum(not validator.check(t.xyz_m, t.t_s).ok for t in res.trajectories)
    return {"residual": len(res.report.residual_conflicts) if res.report else None,
            "clearance_violations": bad, "unplaced": len(res.unplaced),
            "total_delay_s": float(delays.sum()), "mean_delay_s": float(delays.mean()),
            "p95_delay_s": float(np.percentile(delays, 95)),
            "relevelled_share": float(np.mean([c.layer_shift != 0
                                               for c in res.choices.values()] or [0])),
            "solve_s": solve_s, "status": res.status}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--city", default=str(ROOT / "fixtures" / "city" /
                                          "helsinki_centre.geojson"))
    ap.add_argument("--flights", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--budget", type=float, default=45.0, help="CP-SAT time budget [s]")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    twin = build_twin(load_city(a.city))
    t0 = time.perf_counter()
    flights = city_scenario(twin, a.flights, seed=a.seed, duration_s=a.duration)
    plan_s = time.perf_counter() - t0
    sep = Separation()
    conflicts = detect(flights, sep)
    opts = city_options(twin)
    validator = RouteValidator(twin.buildings, twin.clearance_m)
    t0 = time.perf_counter()
    cp = deconflict(flights, sep=sep, options=opts,
                    params=SolveParams(max_time_in_seconds=a.budget, num_workers=2,
                                       random_seed=a.seed))
    cp_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc = fcfs(flights, sep=sep, options=opts)
    fc_s = time.perf_counter() - t0
    out = {"city": Path(a.city).name, "flights": len(flights), "plan_s": plan_s,
           "conflicts_before": len(conflicts), **summarise(cp, flights, validator, cp_s),
           "fcfs": summarise(fc, flights, validator, fc_s)}
    out["delay_ratio"] = (out["total_delay_s"] / out["fcfs"]["total_delay_s"]
                          if out["fcfs"]["total_delay_s"] else None)
    if a.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{out['city']}: {out['flights']} planned flights in {plan_s:.1f} s, "
          f"{out['conflicts_before']} conflicts before")
    print("| method | residual (verifier) | clearance violations | unplaced | total delay s | "
          "mean s | p95 s | re-levelled | solve s | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in (("CP-SAT", out), ("FCFS", out["fcfs"])):
        print(f"| {name} | {r['residual']} | {r['clearance_violations']} | {r['unplaced']} | "
              f"{r['total_delay_s']:.0f} | {r['mean_delay_s']:.1f} | {r['p95_delay_s']:.0f} | "
              f"{100 * r['relevelled_share']:.1f} % | {r['solve_s']:.1f} | {r['status']} |")
    if out["delay_ratio"] is not None:
        print(f"CP-SAT / FCFS total delay: {out['delay_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
