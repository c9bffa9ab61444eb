"""Twin build speed and memory: numba rasterization vs a straightforward shapely baseline.

Usage::

    python benchmarks/bench_raster.py                 # every real city + synthetic 10 km
    python benchmarks/bench_raster.py --city PATH ... # only these files
    python benchmarks/bench_raster.py --synthetic     # only the synthetic city
    python benchmarks/bench_raster.py --json          # one JSON object instead of a table

For each input, in one child process (so that peak memory is per input): load the model
(not timed), warm the JIT cache on a tiny twin, then time ``build_twin`` at the chosen
resolution and clearance ``--repeat`` times (median and min reported). Peak memory is the
child's peak resident set size (``ru_maxrss``), input included; ``input_mb`` is the
resident size after loading, before any build.

In the same child the baseline rasterizes the same buildings on the same grid with shapely
(``tests/naive/raster.py: shapely_rasterize``: per building, every cell of its bounding
box expanded by the clearance tested with ``intersects`` and ``dwithin``; prepared
geometries, vectorised over cells). It only computes the top and clearance fields, less
than ``build_twin`` does (ground, floor layers), so the ratio favours the baseline. On the
synthetic 10 km city both sides run on two ``--tile-m`` square tiles (the dense centre
and a suburb; buildings whose centroid is inside), and the table says so; with
``--full-baseline`` the baseline also runs on the whole city (a minute or more). Everything is single-threaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITY_DIR = ROOT.parent / "shared" / "data" / "city"
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _default_cities() -> list[str]:
    out = []
    for p in sorted(CITY_DIR.glob("*/*")):
        if p.suffix in (".json", ".gml", ".geojson") or p.name.endswith(".city.json"):
            out.append(str(p))
    return out


def run_case(spec: dict) -> dict:
    """One input, in this process: load, warm up, time ours, time the baseline."""
    import numpy as np
    import shapely
    from shapely.geometry import box

    from skytwin.airspace.building import Building
    from skytwin.airspace.frame import Frame
    from skytwin.airspace.twin import build_twin

    res_m, clr_m, repeat = spec["resolution_m"], spec["clearance_m"], spec["repeat"]
    # warm the numba cache so no build pays for loading compiled kernels
    build_twin([Building("w", box(0, 0, 3, 3), 0.0, 5.0, 0.0)], frame=Frame(0.0, 0.0))
    t0 = time.perf_counter()
    if spec["kind"] == "synthetic":
        from skytwin.fixtures.synthetic_city import synthetic_result

        src = synthetic_result(spec["size_m"], spec["n_buildings"], spec["seed"])
        name = f"synthetic {spec['size_m'] / 1000:g} km (seed {spec['seed']})"
    else:
        from skytwin.airspace.io import load_city

        src = load_city(spec["path"])
        name = Path(spec["path"]).name
    load_s = time.perf_counter() - t0
    input_mb = _rss_mb()

    times = []
    twin = None
    for _ in range(repeat):
        twin = None  # free the previous build so the peak is that of one build
        t0 = time.perf_counter()
        twin = build_twin(src, resolution_m=res_m, clearance_m=clr_m)
        times.append(time.perf_counter() - t0)
    peak_mb = _peak_mb()
    g = twin.grid
    area_km2 = g.nx * g.ny * g.dx_m * g.dx_m / 1e6
    build_s = statistics.median(times)
    row = {
        "name": name, "buildings": len(src.buildings), "area_km2": area_km2,
        "grid": [g.nx, g.ny, g.nz], "load_s": load_s, "build_s": build_s,
        "build_min_s": min(times), "buildings_per_s": len(src.buildings) / build_s,
        "km2_per_s": area_km2 / build_s, "peak_mem_mb": peak_mb, "input_mb": input_mb,
        "blocked_fraction": twin.blocked_fraction(),
    }

    # -- baseline on the same input (or the same tiles) -----------------------------
    row["baselines"] = []
    if spec["kind"] == "synthetic":
        c = shapely.get_coordinates(shapely.centroid([b.footprint for b in src.buildings]))
        half = spec["tile_m"] / 2.0
        for label, (tx, ty) in (("central", (0.0, 0.0)),
                                ("suburban", tuple(spec["suburb_xy_m"]))):
            keep = np.flatnonzero((np.abs(c[:, 0] - tx) <= half)
                                  & (np.abs(c[:, 1] - ty) <= half))
            blds = [src.buildings[k] for k in keep]
            on = (f"{label} {spec['tile_m'] / 1000:g} km tile at ({tx:g}, {ty:g}) m, "
                  f"{len(blds)} buildings")
            row["baselines"].append(_baseline(blds, src.frame, on, spec))
        if spec.get("full_baseline"):
            row["baselines"].append(_baseline(src.buildings, src.frame, "whole city",
                                              spec, ours_build_s=build_s))
    else:
        row["baselines"].append(_baseline(src.buildings, src.frame, "same input", spec,
                                          ours_build_s=build_s))
    return row


def _baseline(blds, frame, on, spec, ours_build_s=None) -> dict:
    """Time ours (full build and kernel only) and the shapely baseline on ``blds``."""
    import numpy as np

    from skytwin.airspace.raster import flatten_footprints, rasterize_footprints
    from skytwin.airspace.twin import build_twin
    from tests.naive.raster import shapely_rasterize

    res_m, clr_m, repeat = spec["resolution_m"], spec["clearance_m"], spec["repeat"]
    build_times, kernel_times = [], []
    sub = None
    for _ in range(1 if ours_build_s is not None else repeat):
        sub = None
        t0 = time.perf_counter()
        sub = build_twin(blds, frame=frame, resolution_m=res_m, clearance_m=clr_m)
        build_times.append(time.perf_counter() - t0)
    g = sub.grid
    polys = [b.footprint for b in blds]
    tops = np.array([b.top_m for b in blds])
    grounds = np.array([b.ground_m for b in blds])
    for _ in range(repeat):
        t0 = time.perf_counter()
        rasterize_footprints(flatten_footprints(polys), tops, grounds, x0_m=g.x0_m,
                             y0_m=g.y0_m, dx_m=g.dx_m, nx=g.nx, ny=g.ny,
                             clearance_m=clr_m)
        kernel_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    btop, bctop = shapely_rasterize(polys, tops, clr_m, g.x0_m, g.y0_m, g.dx_m, g.nx,
                                    g.ny)
    base_s = time.perf_counter() - t0
    have = np.isfinite(btop)
    chave = np.isfinite(bctop)
    conservative = bool(np.all(sub.top_m[have] >= btop[have])
                        and np.all(sub.clear_top_m[chave] >= bctop[chave]))
    ours_top = np.where(sub.top_m > sub.ground_m, sub.top_m, -np.inf)
    build_s = ours_build_s if ours_build_s is not None else statistics.median(build_times)
    kernel_s = statistics.median(kernel_times)
    return {"on": on, "buildings": len(blds), "ours_build_s": build_s,
            "ours_kernel_s": kernel_s, "baseline_s": base_s,
            "ratio_build": base_s / build_s, "ratio_kernel": base_s / kernel_s,
            "conservative_ok": conservative,
            "touched_cells_agree": float(np.mean(np.isfinite(ours_top) == have))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--city", nargs="*", default=None, help="city model files")
    ap.add_argument("--synthetic", action="store_true", help="the synthetic city")
    ap.add_argument("--size-m", type=float, default=10_000.0)
    ap.add_argument("--n-buildings", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile-m", type=float, default=1000.0,
                    help="side of the synthetic tile the baseline runs on")
    ap.add_argument("--suburb-xy-m", type=float, nargs=2, default=(3500.0, -3500.0),
                    help="centre of the synthetic suburban baseline tile")
    ap.add_argument("--full-baseline", action="store_true",
                    help="also run the shapely baseline on the whole synthetic city "
                         "(about a minute or more)")
    ap.add_argument("--resolution", type=float, default=2.0)
    ap.add_argument("--clearance", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.case:
        print(json.dumps(run_case(json.loads(a.case))))
        return 0
    common = {"resolution_m": a.resolution, "clearance_m": a.clearance, "repeat": a.repeat}
    specs = []
    cities = a.city if a.city is not None else ([] if a.synthetic else _default_cities())
    specs += [dict(kind="city", path=p, **common) for p in cities]
    if a.synthetic or a.city is None:
        specs.append(dict(kind="synthetic", size_m=a.size_m, n_buildings=a.n_buildings,
                          seed=a.seed, tile_m=a.tile_m,
                          suburb_xy_m=list(a.suburb_xy_m),
                          full_baseline=a.full_baseline, **common))
    rows = []
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    for spec in specs:
        out = subprocess.run([sys.executable, __file__, "--case", json.dumps(spec)],
                             capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    report = {"resolution_m": a.resolution, "clearance_m": a.clearance,
              "repeat": a.repeat, "machine": f"{platform.processor() or platform.machine()}"
              f", {os.cpu_count()} cores, Python {platform.python_version()}, load "
              f"average {os.getloadavg()[0]:.1f} (machine shared with other jobs)",
              "rows": rows}
    if a.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"resolution {a.resolution} m, clearance {a.clearance} m, median of "
          f"{a.repeat} builds, single-threaded; {report['machine']}\n")
    print("| input | buildings | area km2 | grid | build s (min) | buildings/s | km2/s "
          "| peak MB (input) | blocked |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['buildings']:,} | {r['area_km2']:.2f} | "
              f"{'x'.join(map(str, r['grid']))} | {r['build_s']:.3f} "
              f"({r['build_min_s']:.3f}) | {r['buildings_per_s']:,.0f} | "
              f"{r['km2_per_s']:.1f} | {r['peak_mem_mb']:.0f} ({r['input_mb']:.0f}) | "
              f"{r['blocked_fraction']:.3f} |")
    print("\nShapely baseline (same buildings, same grid):\n")
    print("| input | baseline on | ours: build s | ours: kernel s | shapely s "
          "| ratio vs build | ratio vs kernel | ours >= shapely | touched agree |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        for b in r["baselines"]:
            print(f"| {r['name']} | {b['on']} | {b['ours_build_s']:.4f} | "
                  f"{b['ours_kernel_s']:.4f} | {b['baseline_s']:.3f} | "
                  f"{b['ratio_build']:.0f}x | {b['ratio_kernel']:.0f}x | "
                  f"{'yes' if b['conservative_ok'] else 'NO'} | "
                  f"{b['touched_cells_agree']:.5f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
