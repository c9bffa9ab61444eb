"""Twin fidelity on every real city model: the build's audit, and routes checked against
the source files by the independent oracle (tests/naive/citymodel.py).

Usage::

    python benchmarks/bench_twin_audit.py            # table (Markdown)
    python benchmarks/bench_twin_audit.py --routes 20 --json

For each model: objects seen (Building / BuildingPart / other obstacle types, as the
file has them), obstacles in the twin, how many were repaired, enclosed by a hull, and
where their heights came from (3D coordinates, attributes, other LoDs or parts of the
same building, unknown: blocked up to the ceiling). Then ``--routes`` seeded routes
across the model (endpoints at least 30 % of the twin's width apart) are planned and
every one is checked against the raw source faces by the oracle; the table gives the
routes planned and the routes with any violation (the goal is 0). The oracle's count of
Building/BuildingPart objects with coordinates, and how many of them are missing from
the twin, is given too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skytwin.airspace.io import load_city  # noqa: E402
from skytwin.airspace.twin import build_twin  # noqa: E402
from tests.naive import citymodel  # noqa: E402
from tests.test_twin_fidelity import MODELS, _oracle_obstacles, plan_seeded  # noqa: E402


def measure(name: str, n_routes: int) -> dict:
    path, reader, crs, lat_first = MODELS[name]
    t0 = time.perf_counter()
    res = load_city(path)
    twin = build_twin(res)
    build_s = time.perf_counter() - t0
    oracle = citymodel.ObstacleOracle(_oracle_obstacles(path, reader, lat_first), crs)
    want = {o.id for o in oracle.obstacles if o.kind in ("Building", "BuildingPart")}
    missing = want - {b.id for b in twin.buildings}
    routes, _tried = plan_seeded(twin, name, n_routes, max_tries=20 * n_routes)
    planned = len(routes)
    unsafe = sum(bool(oracle.violations(r.lonlat_deg, r.alt_amsl_m, twin.clearance_m))
                 for r in routes)
    a = res.audit[0]
    return {
        "model": name, "file": Path(path).name, "format": a["format"],
        "objects": a["objects_seen"], "obstacles": a["obstacles"],
        "repaired": a["repaired"], "hulled": a["hulled"], "heights": a["heights"],
        "skipped": a["skipped"], "oracle_buildings": len(want), "missing": len(missing),
        "routes": planned, "unsafe_routes": unsafe, "build_s": round(build_s, 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=10, help="seeded routes per model")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    args = ap.parse_args(argv)
    rows = []
    for name in MODELS:
        if not MODELS[name][0].exists():
            print(f"skipping {name}: {MODELS[name][0]} not found", file=sys.stderr)
            continue
        rows.append(measure(name, args.routes))
        print(f"{name}: done", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| model | objects seen | obstacles | repaired | hulled | heights from | skipped "
          "| oracle buildings (missing) | routes (unsafe by oracle) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        seen = ", ".join(f"{k} {v}" for k, v in r["objects"].items())
        heights = ", ".join(f"{k} {v}" for k, v in sorted(r["heights"].items()))
        print(f"| {r['model']} | {seen} | {r['obstacles']} | {r['repaired']} | "
              f"{r['hulled']} | {heights} | {r['skipped']} | {r['oracle_buildings']} "
              f"({r['missing']}) | {r['routes']} ({r['unsafe_routes']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
