"""Risk-aware routing and derived zones over real cities (issue 13).

For each city: read the model, build the twin (2 m, clearance 5 m), derive zones from
its semantics (``fixtures/rules/derived_zones.json``; restricted and authorisation
zones are put in the planner's zone layer: no operator holds an authorisation here),
estimate people per km² from the buildings (``airspace.risk``), then plan seeded
random origin/destination pairs with ``risk_weight`` 0 and each tested weight. Pairs
that fail at w = 0 (start or goal inside or beside a building, enclosed...) are
skipped for every weight.

Reported per city and weight, against w = 0 on the same pairs: mean and median
reduction of people overflown (person·km per km², i.e. people in a 1 km strip), mean
length increase, median search-time ratio, planning p99 [ms] and its ratio to w = 0's
p99; plus the derived zones by category, and how many times a route crosses a blocking
derived zone (shapely on the zone polygons projected with a fresh pyproj transformer to
the city's UTM zone, not the planner's code: must be 0).

Server path (``--server-path``): the gRPC service plans every route through
:meth:`server.ground.GroundLayers.plan` (derived zones of the caller, risk layer,
independent zone re-check, exposure with derived zones near), also at w = 0. It is
measured against two peers on the same seeded pairs in the same run, interleaved per
pair: today's ``Planner.plan`` with no derived zones, and ``Planner.plan`` with the
derived zones (all but warnings) in its zone layer, without the risk layer: p50 / p99
and the ratios.

    python benchmarks/bench_risk.py                 # all cities, 40 pairs each
    python benchmarks/bench_risk.py --pairs 100 --weights 1,3,10 --json
    python benchmarks/bench_risk.py --server-path --pairs 100 --cities helsinki,berlin
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

from skytwin.airspace.derived import blocking_zones, category_counts, derive_zones  # noqa: E402
from skytwin.airspace.errors import AirspaceError  # noqa: E402
from skytwin.airspace.io import load_city  # noqa: E402
from skytwin.airspace.risk import estimate_population  # noqa: E402
from skytwin.airspace.twin import build_twin  # noqa: E402
from skytwin.airspace.zones import ZoneLayer  # noqa: E402
from skytwin.planner.route import Planner, RouteRequest  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "city"
CITIES = {
    "Helsinki (OSM, bundled)": ROOT / "fixtures" / "city" / "helsinki_centre.geojson",
    "Den Haag (CityJSON)": DATA / "denhaag" / "DenHaag_01.city.json",
    "Yokosuka (PLATEAU)": DATA / "plateau" / "52397519_bldg_6697_op.gml",
    "Sapporo (PLATEAU)": DATA / "plateau" / "64413325_bldg_6697_op.gml",
    "Nijmegen (3DTop10NL)": DATA / "more" / "3dtop10nl_nijmegen_3db_sub.city.json",
    "Berlin Kreuzberg (CityGML)": DATA / "more" / "berlin_kreuzberg_3910_5817.gml",
    "Lorup (LGLN LoD1)": DATA / "more" / "lgln_lorup_LoD1_24085862_2_2021-01-25.gml",
    "Selfkant (NRW LoD2)": DATA / "more" / "nrw_selfkant_LoD2_32_280_5659_1_NW.gml",
    "Ina (PLATEAU)": DATA / "more" / "plateau_ina_53375768_bldg_6697_op.gml",
    "Niiza (PLATEAU)": DATA / "more" / "plateau_niiza_53395404_bldg_6697_op.gml",
    "Rotterdam (CityJSON)": DATA / "more" / "rotterdam_Example_CityGML_Converted.city.json",
    "Tsinghua (OSM)": DATA / "more" / "tsinghua_osm_buildings.geojson",
}
DEPART_S = 1_800_000_000.0 + 3 * 3600.0   # a fixed time (mid-day in Europe)


def independent_violations(route_lonlat, zones) -> int:
    """Blocking zones the route crosses, checked with shapely in UTM."""
    import pyproj
    from shapely.geometry import LineString, Polygon
    lon0, lat0 = route_lonlat[0]
    utm = pyproj.CRS.from_dict({"proj": "utm", "zone": int((lon0 + 180) // 6) + 1,
                                "south": lat0 < 0})
    tr = pyproj.Transformer.from_crs("EPSG:4326", utm, always_xy=True)
    x, y = tr.transform(route_lonlat[:, 0], route_lonlat[:, 1])
    line = LineString(np.column_stack([x, y]))
    bad = 0
    for z in zones:
        zx, zy = tr.transform(*np.array(z.polygon).T)
        # the route flies 10-120 m AGL inside every derived band (0-150 m AGL), except
        # an altitude-limited zone's band starts higher
        if z.lower.value_m > 0:
            continue
        if line.intersects(Polygon(np.column_stack([zx, zy]))):
            bad += 1
    return bad


def run_city(name, path, n_pairs, weights, seed):
    t0 = time.perf_counter()
    res = load_city(str(path))
    twin = build_twin(res)
    derived = derive_zones(res.buildings, res.frame)
    block = blocking_zones(derived)
    risk = estimate_population(twin.buildings, twin.grid)
    build_s = time.perf_counter() - t0
    planner = Planner(twin, ZoneLayer(twin.frame, block), risk=risk, derived=derived)
    rng = np.random.default_rng(seed)
    g = twin.grid
    rows = {w: {"exp": [], "len": [], "search": [], "total": []} for w in (0.0, *weights)}
    viol = tried = 0
    warm = 0
    while len(rows[0.0]["exp"]) < n_pairs and tried < 20 * n_pairs:
        tried += 1
        x = rng.uniform(g.x0_m, g.x1_m, 2)
        y = rng.uniform(g.y0_m, g.y1_m, 2)
        s, e = twin.frame.to_wgs84(x[0], y[0]), twin.frame.to_wgs84(x[1], y[1])
        got = {}
        try:
            for w in (0.0, *weights):
                t = time.perf_counter()
                r = planner.plan(RouteRequest(s, e, depart_s=DEPART_S, risk_weight=w))
                got[w] = (r, 1e3 * (time.perf_counter() - t))
        except AirspaceError:
            continue
        if warm < 3:          # numba kernels and caches warm outside the figures
            warm += 1
            continue
        for w, (r, ms) in got.items():
            rows[w]["exp"].append(r.exposure["people_overflown"])
            rows[w]["len"].append(r.length_m)
            rows[w]["search"].append(r.search_ms)
            rows[w]["total"].append(ms)
            viol += independent_violations(r.lonlat_deg, block)
    base = rows[0.0]
    out = []
    e0, l0 = np.array(base["exp"]), np.array(base["len"])
    p99_0 = float(np.percentile(base["total"], 99)) if base["total"] else float("nan")
    for w in (0.0, *weights):
        rw = rows[w]
        if not rw["exp"]:
            continue
        e, L = np.array(rw["exp"]), np.array(rw["len"])
        red = np.where(e0 > 0, 1.0 - e / np.maximum(e0, 1e-12), 0.0)
        p99 = float(np.percentile(rw["total"], 99))
        out.append({
            "city": name, "weight": w, "routes": len(e),
            "mean_exposure_reduction_pct": 100 * float(red.mean()),
            "median_exposure_reduction_pct": 100 * float(np.median(red)),
            "total_exposure_reduction_pct": 100 * float(1 - e.sum() / max(e0.sum(), 1e-12)),
            "mean_length_increase_pct": 100 * float((L / l0 - 1).mean()),
            "median_search_ratio": float(np.median(np.array(rw["search"]) /
                                                   np.maximum(base["search"], 1e-3))),
            "p50_ms": float(np.percentile(rw["total"], 50)),
            "p99_ms": p99, "p99_ratio": p99 / p99_0,
        })
    meta = {"city": name, "buildings": len(twin.buildings), "build_s": round(build_s, 1),
            "derived": category_counts(derived), "blocking_zones": len(block),
            "independent_violations": viol, "pairs_tried": tried,
            "people_day": risk.summary()["people_day"]}
    return out, meta


def run_server_path(name, path, n_pairs, seed):
    """Today's planner, the planner with the derived zones, and the server's ground-layer
    path (w = 0), on the same pairs, interleaved per pair."""
    from skytwin.server.ground import GroundLayers
    twin = build_twin(load_city(str(path)))
    ground = GroundLayers(twin)
    bare = Planner(twin, ZoneLayer(twin.frame))
    zoned = Planner(twin, ZoneLayer(twin.frame, [
        r for r in ground.zones() if r.derived.category != "warning"]))
    served = Planner(twin, ZoneLayer(twin.frame))
    rng = np.random.default_rng(seed)
    g = twin.grid
    times = {"bare": [], "zoned": [], "served": []}
    tried = warm = 0
    while len(times["bare"]) < n_pairs and tried < 20 * n_pairs:
        tried += 1
        x, y = rng.uniform(g.x0_m, g.x1_m, 2), rng.uniform(g.y0_m, g.y1_m, 2)
        req = RouteRequest(twin.frame.to_wgs84(x[0], y[0]), twin.frame.to_wgs84(x[1], y[1]),
                           depart_s=DEPART_S)
        got = {}
        try:
            for key, fn in (("bare", lambda: bare.plan(req)),
                            ("zoned", lambda: zoned.plan(req)),
                            ("served", lambda: ground.plan(served, req))):
                t = time.perf_counter()
                fn()
                got[key] = 1e3 * (time.perf_counter() - t)
        except AirspaceError:
            continue
        if warm < 3:
            warm += 1
            continue
        for k, v in got.items():
            times[k].append(v)
    pc = {k: np.percentile(v, [50, 99]) for k, v in times.items()}
    return {"city": name, "routes": len(times["bare"]), "pc": pc,
            "derived_blocking": len(ground.blocking())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--weights", default="1,3,10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cities", default=None,
                    help="comma-separated substrings of city names (default: all)")
    ap.add_argument("--server-path", action="store_true",
                    help="measure the server's ground-layer planning path instead")
    a = ap.parse_args(argv)
    weights = tuple(float(v) for v in a.weights.split(","))
    if a.server_path:
        print("| city | routes | blocking derived zones | planner, no derived zones p50 / "
              "p99 ms | planner + derived zones p50 / p99 ms | server path p50 / p99 ms | "
              "server / no zones p50 / p99 | server / + zones p50 / p99 |")
        print("|---|---|---|---|---|---|---|---|")
        for name, path in CITIES.items():
            if a.cities and not any(c.lower() in name.lower()
                                    for c in a.cities.split(",")):
                continue
            if not path.exists():
                continue
            r = run_server_path(name, path, a.pairs, a.seed)
            b, z, v = r["pc"]["bare"], r["pc"]["zoned"], r["pc"]["served"]
            print(f"| {r['city']} | {r['routes']} | {r['derived_blocking']} | "
                  f"{b[0]:.1f} / {b[1]:.0f} | {z[0]:.1f} / {z[1]:.0f} | "
                  f"{v[0]:.1f} / {v[1]:.0f} | {v[0] / b[0]:.2f} / {v[1] / b[1]:.2f} | "
                  f"{v[0] / z[0]:.2f} / {v[1] / z[1]:.2f} |", flush=True)
        return 0
    table, metas = [], []
    for name, path in CITIES.items():
        if a.cities and not any(c.lower() in name.lower() for c in a.cities.split(",")):
            continue
        if not path.exists():
            print(f"skip {name}: {path} not found", file=sys.stderr)
            continue
        rows, meta = run_city(name, path, a.pairs, weights, a.seed)
        table += rows
        metas.append(meta)
        print(f"{name}: {meta}", file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps({"rows": table, "cities": metas}, indent=1))
        return 0
    print("| city | w | routes | exposure cut mean / median / total | length + | "
          "search x (median) | p50 ms | p99 ms | p99 / p99(w=0) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['city']} | {r['weight']:g} | {r['routes']} | "
              f"{r['mean_exposure_reduction_pct']:.1f} % / "
              f"{r['median_exposure_reduction_pct']:.1f} % / "
              f"{r['total_exposure_reduction_pct']:.1f} % | "
              f"{r['mean_length_increase_pct']:.1f} % | {r['median_search_ratio']:.2f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['p99_ratio']:.2f} |")
    print()
    print("| city | buildings | derived (restricted / authorisation / altitude-limited / "
          "warning) | blocking | people (day, est.) | routes crossing a blocking zone |")
    print("|---|---|---|---|---|---|")
    for m in metas:
        d = m["derived"]
        print(f"| {m['city']} | {m['buildings']} | {d['restricted']} / "
              f"{d['authorisation']} / {d['altitude-limited']} / {d['warning']} | "
              f"{m['blocking_zones']} | {m['people_day']} | "
              f"{m['independent_violations']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
