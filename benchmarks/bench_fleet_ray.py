"""Fleet-days on Ray vs one process (issue 14 part 5).

A 24 h fleet-day of N delivery flights over the 10 km synthetic city
(``fixtures/synthetic_city.py: generate_city(10_000, 100_000, seed=0)``, built at the
default 2 m), planned and deconflicted by :mod:`skytwin.planner.fleetday`, once in this
process (:class:`LocalExecutor`, the peer) and once through a local Ray instance
(:class:`skytwin.server.fleet_ray.RayExecutor`), side by side: wall times, the ratio, whether
routes and choices are identical, residual conflicts from the independent verifier (must
be 0), and per-flight / per-window costs for the cluster projection in RESULTS.md.

    flock /tmp/skytwin_bench.lock .venv/bin/python benchmarks/bench_fleet_ray.py \\
        --flights 2000 10000 [--ray-cpus 2] [--json] [--skip-single]

The Ray instance is started once (its start-up time is reported apart) and reused for
every size; each size plans its own fleet (same seed). ``--skip-single`` runs Ray only
(when the single-process run would not fit the time available; reported as such).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from skytwin.airspace.twin import build_twin
from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
from skytwin.fixtures.traffic import city_options
from skytwin.planner import fleetday
from skytwin.planner.conflicts import Separation


def _uptime() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def _progress(tag):
    t0 = time.perf_counter()
    last = [0.0]

    def cb(done, total):
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(f"  {tag}: {done}/{total} after {now - t0:.0f} s (load {_uptime()})",
                  file=sys.stderr, flush=True)
    return cb


def run_one(twin, executor, spec, params, tag):
    sep = Separation()
    opts = city_options(twin)
    t0 = time.perf_counter()
    flights = fleetday.plan_day(twin, executor, spec, progress=_progress(f"{tag} plan"))
    t1 = time.perf_counter()
    res = fleetday.deconflict_day(flights, executor, sep, opts, params,
                                  progress=_progress(f"{tag} windows"),
                                  verify_result=False)
    t2 = time.perf_counter()
    rep = fleetday.verify_day(res, flights, sep, opts)   # planner.verify, whole day
    t3 = time.perf_counter()
    return {"flights": flights, "res": res, "report": rep, "plan_s": t1 - t0,
            "deconflict_s": t2 - t1, "verify_s": t3 - t2}


def _same_routes(a, b):
    return len(a) == len(b) and all(
        x.flight_id == y.flight_id and np.array_equal(x.xyz_m, y.xyz_m)
        and np.array_equal(x.t_s, y.t_s) for x, y in zip(a, b, strict=True))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flights", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count())
    ap.add_argument("--duration", type=float, default=86_400.0)
    ap.add_argument("--method", choices=("cpsat", "fcfs"), default="cpsat")
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--city-m", type=float, default=10_000.0)
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--passes", type=int, default=2, help="CP-SAT passes per window")
    ap.add_argument("--component-s", type=float, default=2.0,
                    help="CP-SAT deterministic time limit per component")
    ap.add_argument("--ray-first", action="store_true",
                    help="run Ray before the single process at each size")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from skytwin.server.fleet_ray import RayExecutor, numba_cache_counts

    print(f"load at start {_uptime()}", file=sys.stderr)
    t = time.perf_counter()
    frame = synthetic_frame()
    twin = build_twin(generate_city(args.city_m, args.buildings, seed=0, frame=frame),
                      frame=frame)
    twin_s = time.perf_counter() - t
    print(f"twin: {len(twin.buildings)} buildings in {twin_s:.1f} s", file=sys.stderr)
    params = fleetday.WindowParams(method=args.method, max_passes=args.passes,
                                   component_deterministic_s=args.component_s)
    local = fleetday.LocalExecutor(twin)
    # warm-up (numba kernels compiled or loaded from the cache, planner pyramids) on a
    # tiny fleet, in the driver, before anything is timed
    warm = fleetday.FleetDaySpec(20, seed=99, duration_s=3600.0)
    run_one(twin, local, warm, params, "warm-up")
    driver_cache = numba_cache_counts()
    t = time.perf_counter()
    ray_ex = RayExecutor(twin, "local", num_cpus=args.ray_cpus)
    ray_start_s = time.perf_counter() - t
    # every actor: twin unpickled once (constructor), planner and its caches built
    hubs = fleetday.draw_hubs(twin, warm)
    ray_ex.broadcast(fleetday.warm_up, (warm, hubs, 20))
    run_one(twin, ray_ex, warm, params, "ray warm-up")
    rows = []
    for n in args.flights:
        spec = fleetday.FleetDaySpec(n, seed=0, duration_s=args.duration)
        load0 = _uptime()
        if args.ray_first:
            ray = run_one(twin, ray_ex, spec, params, f"{n} ray")
            load1 = _uptime()
            print(f"  {n} ray: plan {ray['plan_s']:.1f} s, deconflict "
                  f"{ray['deconflict_s']:.1f} s, residual "
                  f"{len(ray['report'].residual_conflicts)}", file=sys.stderr, flush=True)
        single = None if args.skip_single else run_one(twin, local, spec, params,
                                                       f"{n} single")
        if not args.ray_first:
            load1 = _uptime()
            ray = run_one(twin, ray_ex, spec, params, f"{n} ray")
        load2 = _uptime()
        row = {"flights_asked": n, "flights": len(ray["flights"]),
               "hubs": spec.hubs, "windows": ray["res"].stats["windows"],
               "window_s": round(ray["res"].stats["window_s"], 1),
               "flights_per_window_max": ray["res"].stats["flights_per_window_max"],
               "rows": ray["res"].stats["rows"],
               "ray_plan_s": round(ray["plan_s"], 2),
               "ray_deconflict_s": round(ray["deconflict_s"], 2),
               "verify_s": round(ray["verify_s"], 2),
               "ray_residual": len(ray["report"].residual_conflicts),
               "ray_verifier_ok": bool(ray["report"].ok),
               "unplaced": len(ray["res"].unplaced),
               "total_delay_s": float(sum(c.delay_s for c in ray["res"].choices.values())),
               "relevelled": sum(c.layer_shift != 0 for c in ray["res"].choices.values()),
               "load": [load0, load1, load2]}
        if single is not None:
            row.update(
                single_plan_s=round(single["plan_s"], 2),
                single_deconflict_s=round(single["deconflict_s"], 2),
                single_residual=len(single["report"].residual_conflicts),
                plan_ratio=round(single["plan_s"] / ray["plan_s"], 2),
                deconflict_ratio=round(single["deconflict_s"] / ray["deconflict_s"], 2),
                total_ratio=round((single["plan_s"] + single["deconflict_s"])
                                  / (ray["plan_s"] + ray["deconflict_s"]), 2),
                same_routes=_same_routes(single["flights"], ray["flights"]),
                same_choices=(single["res"].choices == ray["res"].choices
                              and single["res"].unplaced == ray["res"].unplaced),
                plan_ms_per_flight=round(1000 * single["plan_s"] / n, 2),
                deconflict_s_per_window=round(single["deconflict_s"]
                                              / single["res"].stats["windows"], 2))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    cache = ray_ex.numba_cache_stats()
    ray_ex.close()
    out = {"twin_s": round(twin_s, 1), "ray_start_s": round(ray_start_s, 1),
           "ray_cpus": args.ray_cpus, "driver_numba": driver_cache, "worker_numba": cache,
           "peak_rss_driver_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                       / 1024), "load_end": _uptime(), "sizes": rows}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"twin built in {out['twin_s']} s; Ray local ({args.ray_cpus} CPUs) started in "
          f"{out['ray_start_s']} s; workers' numba cache: "
          f"{sum(c['hits'] for c in cache)} loaded, {sum(c['misses'] for c in cache)} "
          f"compiled")
    print("| flights | windows (s) | single plan s | Ray plan s | ratio | single deconflict s "
          "| Ray deconflict s | ratio | total ratio | same routes | same choices | "
          "residual single / Ray | unplaced | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|---:|---:|---|")
    for r in rows:
        print(f"| {r['flights']:,} | {r['windows']} ({r['window_s']:.0f}) | "
              f"{r.get('single_plan_s', '-')} | {r['ray_plan_s']} | {r.get('plan_ratio', '-')} | "
              f"{r.get('single_deconflict_s', '-')} | {r['ray_deconflict_s']} | "
              f"{r.get('deconflict_ratio', '-')} | {r.get('total_ratio', '-')} | "
              f"{r.get('same_routes', '-')} | {r.get('same_choices', '-')} | "
              f"{r.get('single_residual', '-')} / {r['ray_residual']} | {r['unplaced']} | "
              f"{r['load']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
