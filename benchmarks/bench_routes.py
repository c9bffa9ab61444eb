"""End-to-end route latency in real cities and the synthetic city (issue 3).

For each city: build the twin (2 m, clearance 5 m), then plan routes between seeded
random origin/destination pairs spread over the whole twin, check every route with the
independent validator, and report latency percentiles of the successful plans, outcome
counts and the smoothed length against the voxel path and the straight line.

Peer, same run: scikit-image's ``MCP_Geometric`` (Dijkstra, 26-connected, Euclidean step
costs) on exactly the search grid our planner built for the query, from the same start
cell to the same goal cell; it is timed on the first ``--peer-limit`` successful queries
and compared with our search time on the same queries (search only: both sides get the
same prepared grid).

    python benchmarks/bench_routes.py                     # all real cities + synthetic
    python benchmarks/bench_routes.py --pairs 1000 --long 100 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skytwin.airspace.errors import AirspaceError  # noqa: E402
from skytwin.airspace.io import load_city  # noqa: E402
from skytwin.airspace.twin import build_twin  # noqa: E402
from skytwin.planner.route import Planner, PlanError, RouteRequest  # noqa: E402
from skytwin.planner.validate import RouteValidator  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "city"
CITIES = {
    "Helsinki (OSM, bundled)": ROOT / "fixtures" / "city" / "helsinki_centre.geojson",
    "Den Haag (CityJSON LoD2)": DATA / "denhaag" / "DenHaag_01.city.json",
    "Yokosuka (PLATEAU CityGML)": DATA / "plateau" / "52397519_bldg_6697_op.gml",
    "Sapporo (PLATEAU CityGML)": DATA / "plateau" / "64413325_bldg_6697_op.gml",
}


def _pairs_anywhere(twin, n, rng):
    g = twin.grid
    x = rng.uniform(g.x0_m, g.x1_m, size=(n, 2))
    y = rng.uniform(g.y0_m, g.y1_m, size=(n, 2))
    return [((x[k, 0], y[k, 0]), (x[k, 1], y[k, 1])) for k in range(n)]


def _pairs_long(twin, n, rng, lo_m=5000.0, hi_m=10000.0):
    g = twin.grid
    out = []
    while len(out) < n:
        x0, y0 = rng.uniform(g.x0_m, g.x1_m), rng.uniform(g.y0_m, g.y1_m)
        a, d = rng.uniform(0, 2 * math.pi), rng.uniform(lo_m, hi_m)
        x1, y1 = x0 + d * math.cos(a), y0 + d * math.sin(a)
        if g.contains(x1, y1):
            out.append(((x0, y0), (x1, y1)))
    return out


def _peer_search_ms(planner, req, route):
    """skimage MCP_Geometric on the same grid, start and goal cell as our search."""
    from skimage.graph import MCP_Geometric
    tw = planner.twin
    s_xy = tw.frame.to_local(*req.start_lonlat)
    e_xy = tw.frame.to_local(*req.goal_lonlat)
    s_col, e_col = tw.grid.column_of(*s_xy), tw.grid.column_of(*e_xy)
    level = route.level
    _, win = planner._choose_window(s_col, e_col, math.dist(s_xy, e_xy), level)
    wgrid, blocked = planner._window_grid(win, level, req, [])
    gs, ge = float(tw.ground_m[s_col]), float(tw.ground_m[e_col])
    si = planner._start_cell(wgrid, s_xy, gs, blocked, "start", PlanError, req)
    gi = planner._start_cell(wgrid, e_xy, ge, blocked, "goal", PlanError, req)
    costs = np.where(blocked > 0, np.inf, 1.0)
    t0 = time.perf_counter()
    m = MCP_Geometric(costs, fully_connected=True)
    m.find_costs([si], [gi])
    m.traceback(gi)
    return 1e3 * (time.perf_counter() - t0)


def run_city(name, twin, pairs, peer_limit):
    planner = Planner(twin)
    validator = RouteValidator(twin.buildings, twin.clearance_m)
    # warm-up: numba kernels and per-level caches, outside the timed region
    for s, e in pairs[:5]:
        try:
            planner.plan(RouteRequest(twin.frame.to_wgs84(*s), twin.frame.to_wgs84(*e)))
        except AirspaceError:
            pass
    lat, search_ms, expansions, r_vox, r_line = [], [], [], [], []
    outcome = {"ok": 0, "start_or_goal_blocked": 0, "no_route": 0, "violations": 0}
    peer_ms, ours_same = [], []
    for s, e in pairs:
        req = RouteRequest(twin.frame.to_wgs84(*s), twin.frame.to_wgs84(*e),
                           depart_s=1_800_000_000.0)
        t0 = time.perf_counter()
        try:
            r = planner.plan(req)
        except PlanError as exc:
            key = "no_route" if exc.code in ("no_route",) else "start_or_goal_blocked"
            outcome[key] += 1
            continue
        except AirspaceError:
            outcome["start_or_goal_blocked"] += 1
            continue
        lat.append(1e3 * (time.perf_counter() - t0))
        outcome["ok"] += 1
        if not validator.check(r.xyz_m, r.trajectory.t_s, req.speeds).ok:
            outcome["violations"] += 1
        search_ms.append(r.search_ms)
        expansions.append(r.expansions)
        r_vox.append(r.length_m / r.voxel_length_m)
        r_line.append(r.length_m / max(r.straight_m, 1e-9))
        if len(peer_ms) < peer_limit:
            try:
                peer_ms.append(_peer_search_ms(planner, req, r))
                ours_same.append(r.search_ms)
            except Exception as exc:  # the peer is informative only
                print(f"  peer failed: {exc}", file=sys.stderr)
    lat = np.asarray(lat)
    row = {
        "city": name, "pairs": len(pairs), **outcome,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        "search_p50_ms": float(np.median(search_ms)) if search_ms else None,
        "expansions_p50": float(np.median(expansions)) if expansions else None,
        "smoothed_over_voxel": float(np.mean(r_vox)) if r_vox else None,
        "smoothed_over_straight": float(np.mean(r_line)) if r_line else None,
        "peer": "skimage MCP_Geometric (same grid)",
        "peer_queries": len(peer_ms),
        "peer_search_ms_median": float(np.median(peer_ms)) if peer_ms else None,
        "ours_search_ms_median_same": float(np.median(ours_same)) if ours_same else None,
    }
    if peer_ms:
        row["peer_ratio"] = float(np.median(np.asarray(peer_ms) / np.maximum(ours_same, 1e-3)))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1000, help="random pairs per real city")
    ap.add_argument("--long", type=int, default=100, help="5-10 km routes, synthetic city")
    ap.add_argument("--peer-limit", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-synthetic", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = []
    for name, path in CITIES.items():
        if not path.exists():
            print(f"skipping {name}: {path} not found", file=sys.stderr)
            continue
        twin = build_twin(load_city(str(path)))
        rng = np.random.default_rng(a.seed)
        rows.append(run_city(name, twin, _pairs_anywhere(twin, a.pairs, rng), a.peer_limit))
        print(f"done {name}", file=sys.stderr)
    if not a.no_synthetic and a.long > 0:
        from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
        f = synthetic_frame()
        twin = build_twin(generate_city(frame=f), frame=f)
        rng = np.random.default_rng(a.seed)
        rows.append(run_city("synthetic 10 km, 5-10 km routes", twin,
                             _pairs_long(twin, a.long, rng), min(a.peer_limit, 10)))
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    hdr = ("| city | pairs | ok | blocked end | no route | violations | p50 ms | p99 ms | "
           "search p50 ms | expansions p50 | smoothed/voxel | smoothed/straight | "
           "peer search ms (n) | ours same | peer/ours |")
    print(hdr)
    print("|" + "---|" * 15)
    for r in rows:
        f = lambda v, p=1: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        print(f"| {r['city']} | {r['pairs']} | {r['ok']} | {r['start_or_goal_blocked']} | "
              f"{r['no_route']} | {r['violations']} | {f(r['p50_ms'])} | {f(r['p99_ms'])} | "
              f"{f(r['search_p50_ms'], 2)} | {f(r['expansions_p50'], 0)} | "
              f"{f(r['smoothed_over_voxel'], 3)} | {f(r['smoothed_over_straight'], 3)} | "
              f"{f(r['peer_search_ms_median'])} ({r['peer_queries']}) | "
              f"{f(r['ours_search_ms_median_same'], 2)} | {f(r.get('peer_ratio'), 0)}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
