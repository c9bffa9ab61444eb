"""Take-off capacity of the load test's hubs under the service's own placement.

    python benchmarks/bench_hub_capacity.py [--hubs-json '[[lon, lat], ...]'] [--hubs 3]
                                            [--spread-s 3600] [--requests 3000] [--seed 0]

For each hub (given, or random points of the bundled Helsinki twin from which routes
exist): 30 routes planned from the hub to random goals (``planner.route.Planner``), then

* ``accepted``: ``--requests`` departures drawn uniformly in ``[0, spread_s]``, arriving
  in random order, each placed FCFS with :func:`planner.deconflict.place` (max delay 600
  s, delay steps 10 s, layer shifts 0/+1/+2, the service's ``DeconflictOptions`` and the
  default :class:`planner.conflicts.Separation`) and accepted when placed: the most
  bookings the hub takes in the load test's pattern (``LoadConfig.spread_s``, max delay
  600 s), whatever the server's speed;
* ``pad_gap_s``: 30 flights all requested at t = 0, placed at 1 s delay steps: the gaps
  between successive departures (the pad's own minimum spacing, not rounded to 10 s).

The load test's hubs of seed 0 (3 hubs) on the bundled twin are printed by the load test
report (``hubs``) and by ``bench_service.py --json`` (``hub_lonlat``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skytwin.airspace.io import load_city
from skytwin.airspace.rules import load_rules
from skytwin.airspace.twin import build_twin
from skytwin.planner.conflicts import Separation
from skytwin.planner.deconflict import AcceptedIndex, DeconflictOptions, place
from skytwin.planner.route import Planner, RouteRequest
from skytwin.planner.trajectory import Trajectory
from skytwin.server.service import default_city


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hubs-json", default=None)
    ap.add_argument("--hubs", type=int, default=3)
    ap.add_argument("--spread-s", type=float, default=3600.0)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    twin = build_twin(load_city(str(default_city())))
    planner = Planner(twin)
    rng = random.Random(args.seed)
    g = twin.grid
    x0, y0 = g.x0_m, g.y0_m
    x1, y1 = x0 + g.nx * g.dx_m, y0 + g.ny * g.dx_m

    def point():
        lon, lat = twin.frame.to_wgs84(rng.uniform(x0 + 20, x1 - 20),
                                       rng.uniform(y0 + 20, y1 - 20))
        return float(lon), float(lat)
    ceil = float(load_rules().ceiling.value_m)
    lo, hi = float(twin.ground_m.min()), float(twin.ground_m.max()) + ceil
    opts = DeconflictOptions(layer_shifts=(0, 1, 2), min_cruise_m=lo, max_cruise_m=hi)
    opts1 = DeconflictOptions(delay_step_s=1.0, layer_shifts=(0, 1, 2), min_cruise_m=lo,
                              max_cruise_m=hi)
    given = json.loads(args.hubs_json) if args.hubs_json else []
    n_hubs = len(given) or args.hubs
    out = []
    while len(out) < n_hubs:
        hub = tuple(given[len(out)]) if given else point()
        routes = []
        for _ in range(400):
            if len(routes) >= 30:
                break
            try:
                routes.append(planner.plan(RouteRequest(hub, point())).trajectory)
            except Exception:       # no route to that goal (inside a building ...)
                continue
        if len(routes) < 30:
            if given:
                raise SystemExit(f"hub {hub}: fewer than 30 routes in 400 tries")
            continue
        climb = [float(tr.xyz_m[1, 2] - tr.xyz_m[0, 2]) for tr in routes]
        idx = AcceptedIndex(Separation(), opts)
        deps = [rng.uniform(0, args.spread_s) for _ in range(args.requests)]
        ok = 0
        for k in range(args.requests):
            tr = routes[k % len(routes)]
            p = place(Trajectory(f"h{k}", tr.xyz_m, tr.t_s - tr.t_s[0] + deps[k],
                                 max_delay_s=600.0), idx)
            if p.trajectory is not None:
                idx.accept(p.trajectory)
                ok += 1
        idx1, starts = AcceptedIndex(Separation(), opts1), []
        for k in range(30):
            tr = routes[k % len(routes)]
            p = place(Trajectory(f"u{k}", tr.xyz_m, tr.t_s - tr.t_s[0], max_delay_s=3600.0),
                      idx1)
            idx1.accept(p.trajectory)
            starts.append(p.choice.delay_s)
        gaps = np.diff(sorted(starts))
        out.append({"hub": hub, "take_off_climb_m": [min(climb), float(np.median(climb)),
                                                     max(climb)],
                    "accepted": ok, "of_requests": args.requests,
                    "per_hour": round(ok / (args.spread_s + 600.0) * 3600.0, 1),
                    "pad_gap_s_min_median_max": [float(gaps.min()), float(np.median(gaps)),
                                                 float(gaps.max())]})
        print(json.dumps(out[-1]), flush=True)
    print(json.dumps({"hubs": len(out), "accepted_total": sum(o["accepted"] for o in out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
