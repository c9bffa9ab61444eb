"""Route validator CPU per route: piecewise R-tree selection vs the old whole-box one.

Same routes, same process, both selections (``RouteValidator(..., _whole_box=True)`` is
the old one), full ``check(xyz, t, speeds)`` as the service calls it. Two sets:

* ``synthetic``: the 10 km synthetic twin (150,000 buildings, built as
  ``bench_booking_rate.synthetic_twin`` builds it), routes between random points
  3-6 km apart (``min_agl_m`` 10/40/70/100 m);
* ``helsinki``: the bundled Helsinki centre, load-test-like routes (a few hubs, each
  route hub -> random goal, default request, like ``server/loadtest.py``).

Also checks that both selections give the same problems on every route and on the
route pushed 60 m and 200 m down. Prints a JSON summary (CPU ms per route, process time).

    flock /tmp/skytwin_bench.lock .venv/bin/python benchmarks/bench_validate.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _routes_synthetic(twin, n, seed):
    from skytwin.planner.route import PlanError, Planner, RouteRequest
    g, rng, planner, out = twin.grid, np.random.default_rng(seed), Planner(twin), []
    lo, hi = [g.x0_m + 40, g.y0_m + 40], [g.x1_m - 40, g.y1_m - 40]
    while len(out) < n:
        a, b = rng.uniform(lo, hi), rng.uniform(lo, hi)
        if not 3000.0 <= np.hypot(*(a - b)) <= 6000.0:
            continue
        try:
            r = planner.plan(RouteRequest(tuple(map(float, twin.frame.to_wgs84(*a))),
                                          tuple(map(float, twin.frame.to_wgs84(*b))),
                                          depart_s=1_800_000_000.0,
                                          min_agl_m=float(rng.choice([10, 40, 70, 100]))))
        except PlanError:
            continue
        out.append((r.xyz_m, r.trajectory.t_s))
    return out


def _routes_hubs(twin, n, seed, n_hubs=8):
    from skytwin.planner.route import PlanError, Planner, RouteRequest
    g, rng, planner = twin.grid, np.random.default_rng(seed), Planner(twin)
    lo, hi = [g.x0_m + 20, g.y0_m + 20], [g.x1_m - 20, g.y1_m - 20]
    hubs, out = [], []
    for _ in range(60 * n_hubs):
        if len(hubs) >= n_hubs:
            break
        a, b = rng.uniform(lo, hi), rng.uniform(lo, hi)
        try:
            planner.plan(RouteRequest(tuple(map(float, twin.frame.to_wgs84(*a))),
                                      tuple(map(float, twin.frame.to_wgs84(*b)))))
        except PlanError:
            continue
        hubs.append(a)
    for _ in range(20 * n):
        if len(out) >= n:
            break
        a, b = hubs[len(out) % len(hubs)], rng.uniform(lo, hi)
        try:
            r = planner.plan(RouteRequest(tuple(map(float, twin.frame.to_wgs84(*a))),
                                          tuple(map(float, twin.frame.to_wgs84(*b))),
                                          depart_s=1_800_000_000.0))
        except PlanError:
            continue
        out.append((r.xyz_m, r.trajectory.t_s))
    return out


def _measure(twin, routes, repeats):
    from skytwin.planner.timing import SpeedProfile
    from skytwin.planner.validate import RouteValidator
    new = RouteValidator(twin.buildings, twin.clearance_m)
    old = RouteValidator(twin.buildings, twin.clearance_m, _whole_box=True)
    sp = SpeedProfile()
    mism = n_bad = 0
    for xyz, t in routes:
        for dz in (0.0, -60.0, -200.0):
            r = xyz.copy()
            r[1:-1, 2] += dz
            a, b = sorted(old.check(r).problems), sorted(new.check(r).problems)
            mism += a != b
            n_bad += bool(a)
    cpu = {"old": [], "new": []}
    verdicts = {"old": 0, "new": 0}
    for _ in range(repeats):        # interleaved, so load changes hit both alike
        for name, v in (("old", old), ("new", new)):
            t0 = time.process_time()
            ok = sum(v.check(xyz, t, sp).ok for xyz, t in routes)
            cpu[name].append((time.process_time() - t0) / len(routes) * 1e3)
            verdicts[name] = ok
    lengths = [float(np.sum(np.hypot(*np.diff(x[:, :2], axis=0).T))) for x, _ in routes]
    return {"routes": len(routes), "length_m_median": round(float(np.median(lengths))),
            "old_ms_per_route": round(min(cpu["old"]), 2),
            "new_ms_per_route": round(min(cpu["new"]), 2),
            "old_ms_all_repeats": [round(x, 2) for x in cpu["old"]],
            "new_ms_all_repeats": [round(x, 2) for x in cpu["new"]],
            "valid_routes_old_new": [verdicts["old"], verdicts["new"]],
            "pushed_down_checks": 3 * len(routes), "with_violations": n_bad,
            "problem_mismatches": mism}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/bench_live_work")
    ap.add_argument("--only", choices=["synthetic", "helsinki"])
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    out = {"loadavg_before": load0}
    if args.only in (None, "helsinki"):
        from skytwin.airspace.io import load_city
        from skytwin.airspace.twin import build_twin
        root = Path(__file__).resolve().parents[1]
        tw = build_twin(load_city(str(root / "fixtures" / "city" / "helsinki_centre.geojson")))
        out["helsinki"] = _measure(tw, _routes_hubs(tw, args.routes, seed=2), args.repeats)
        out["helsinki"]["buildings"] = len(tw.buildings)
    if args.only in (None, "synthetic"):
        from bench_booking_rate import synthetic_twin
        tw, _ = synthetic_twin(10.0, Path(args.workdir))
        out["synthetic"] = _measure(tw, _routes_synthetic(tw, args.routes, seed=1),
                                    args.repeats)
        out["synthetic"]["buildings"] = len(tw.buildings)
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    bad = sum(out[k]["problem_mismatches"] for k in ("helsinki", "synthetic") if k in out)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
