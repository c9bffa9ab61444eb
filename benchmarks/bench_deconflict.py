"""Fleet deconfliction: CP-SAT vs first-come-first-served, side by side.

    python benchmarks/bench_deconflict.py [--flights N] [--budget-s S] [--alternates K] [--json]

Scenario: ``fixtures.traffic.generate(N, seed)`` (8 delivery hubs x 16 pads + crossing
through-traffic, 10 km x 10 km, one hour, max delay 600 s, 10 % priority-3 flights).
Options: delays in 10 s steps, cruise-layer shifts 0/+1/-1/+2 (10 m), optional alternate
routes. Both methods share one exclusion-row build (``build_problem``), whose time is
counted in both solve times. CP-SAT (num_workers=2) gets a total budget of
``--budget-s`` including the build (default: 45 s up to 5,000 flights; above, the build
plus 60 s);
it re-optimises windows of 200 flights in departure order over several passes.
Residual conflicts are counted by the independent verifier (``planner.verify``), whose
time is reported separately. ``--json`` prints one object with keys ``flights``,
``conflicts_before``, ``residual``, ``total_delay_s``, ``solve_s`` and ``fcfs`` holding the
same keys (plus details); without ``--flights`` it holds the largest size, and ``runs``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from skytwin.fixtures.traffic import generate
from skytwin.planner.conflicts import Separation, detect
from skytwin.planner.deconflict import SolveParams, build_problem, deconflict, fcfs


def _summary(res, flights, solve_s, verify_s):
    d = np.array([c.delay_s for c in res.choices.values()]) if res.choices else np.zeros(1)
    n = len(flights)
    return {
        "residual": len(res.report.residual_conflicts),
        "violations": len(res.report.violations),
        "total_delay_s": float(d.sum()),
        "mean_delay_s": float(d.mean()),
        "p95_delay_s": float(np.percentile(d, 95)),
        "weighted_objective": res.objective,
        "relevelled_share": sum(c.layer_shift != 0 for c in res.choices.values()) / n,
        "rerouted_share": sum(c.route != 0 for c in res.choices.values()) / n,
        "unplaced": len(res.unplaced),
        "solve_s": solve_s,
        "verify_s": verify_s,
        "status": res.status,
    }


def run(n: int, budget_s: float | None, alternates: int, seed: int = 1) -> dict:
    flights, alts = generate(n, seed=seed, n_alternates=alternates)
    sep = Separation()
    conflicts_before = len(detect(flights, sep))
    t = time.perf_counter()
    problem = build_problem(flights, alts, sep)
    build_s = time.perf_counter() - t
    if budget_s is not None:
        budget = budget_s
    else:  # 45 s in all up to 5,000 flights; above, 60 s of search after the build
        budget = 45.0 if n <= 5000 else build_s + 60.0
    t = time.perf_counter()
    base = fcfs(flights, problem=problem)
    fcfs_total = time.perf_counter() - t
    fcfs_solve = build_s + base.stats["solve_s"]
    t = time.perf_counter()
    best = deconflict(flights, problem=problem,
                      params=SolveParams(max_time_in_seconds=max(1.0, budget - build_s),
                                         num_workers=2, random_seed=0))
    cp_total = time.perf_counter() - t
    cp_solve = build_s + best.stats["solve_s"]
    out = {"flights": n, "conflicts_before": conflicts_before, "build_s": build_s,
           "rows": int(problem.rows.shape[0])}
    out.update(_summary(best, flights, cp_solve, cp_total - best.stats["solve_s"]))
    out["passes"] = best.stats.get("passes")
    out["windows_solved"] = best.stats.get("windows_solved")
    out["fcfs"] = {"flights": n, "conflicts_before": conflicts_before,
                   **_summary(base, flights, fcfs_solve, fcfs_total - base.stats["solve_s"])}
    f_tot = out["fcfs"]["total_delay_s"]
    out["delay_ratio"] = out["total_delay_s"] / f_tot if f_tot else None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flights", type=int, nargs="+")
    ap.add_argument("--budget-s", type=float, default=None)
    ap.add_argument("--alternates", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    sizes = args.flights or [1000, 5000, 10000]
    runs = [run(n, args.budget_s, args.alternates, args.seed) for n in sizes]
    if args.json:
        obj = dict(runs[-1])
        if len(runs) > 1:
            obj["runs"] = runs
        print(json.dumps(obj))
        return
    hdr = (f"{'flights':>7} {'method':>6} {'confl.':>6} {'resid.':>6} {'total delay s':>13} "
           f"{'mean s':>7} {'p95 s':>6} {'relevel':>7} {'reroute':>7} {'unpl.':>5} "
           f"{'solve s':>7} {'verify s':>8} {'status':>13}")
    print(hdr)
    for r in runs:
        for name, x in (("CP-SAT", r), ("FCFS", r["fcfs"])):
            print(f"{r['flights']:>7} {name:>6} {r['conflicts_before']:>6} {x['residual']:>6} "
                  f"{x['total_delay_s']:>13.0f} {x['mean_delay_s']:>7.1f} "
                  f"{x['p95_delay_s']:>6.0f} {x['relevelled_share']:>7.1%} "
                  f"{x['rerouted_share']:>7.1%} {x['unplaced']:>5} {x['solve_s']:>7.1f} "
                  f"{x['verify_s']:>8.1f} {x['status']:>13}")
        ratio = r["delay_ratio"]
        print(f"{'':>7} CP-SAT / FCFS total delay = {ratio:.2f}" if ratio is not None else
              "", f"(build {r['build_s']:.1f} s, {r['rows']} rows, {r['passes']} passes, "
              f"{r['windows_solved']} windows)")


if __name__ == "__main__":
    main()
