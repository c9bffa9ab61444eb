"""CPU per booking of a held plan, in process, before/after (issue 14).

    python benchmarks/bench_booking_cpu.py [--deliveries 1200] [--hubs 20] [--seed 0]
                                           [--rounds 2] [--baseline REF] [--json]

Why: the load test (``bench_service.py``) is closed-loop and its server process is bound
by one core's worth of Python (the GIL; RESULTS.md scale parts 9 and 10), so the rate it
reaches follows the CPU each booking costs that process; this measures that CPU without
the transport, the other threads or the machine's load.

What is measured: the bundled Helsinki twin, the server's defaults
(``ServiceCore.warm_up``, ``prepare_planning``). ``--deliveries`` deliveries from
``--hubs`` hubs (found by previews, 150 m apart, as ``server.loadtest`` does) to random
points of the twin, departing uniformly within the next hour; each is planned
(``ServiceCore.plan_local``, what a planning process runs) and held
(``hold_plan``), then all are booked one after the other by their ``plan_id``
(``ServiceCore.submit_flight``, what a booking thread runs: place, checks, reserve,
store with its fsync). Reported: CPU of the calling thread per plan and per booking
(``time.thread_time``; the store's writer thread is not included) and the outcome of
every booking (delay, layer shift, or the refusal), which must be the same on both sides.

``--baseline REF`` runs the same deliveries (drawn once by the current code) with the
package of ``REF`` in a git worktree (``bench_plan_cpu.py``'s worktree and shim), the
children alternating ``--rounds`` times; the figures are the means over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _child(out: Path, draw: Path | None, n: int, hubs: int, seed: int) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_plan_cpu import _bounds, _core

    import skytwin.server.service as svc
    from skytwin.planner.route import PlanError, RouteRequest
    from skytwin.planner.timing import SpeedProfile
    from skytwin.server.loadtest import _dist_m, _local_frame, _random_point
    from skytwin.server.service import BookingRejectedError, Caller
    twin, core = _core()
    caller = Caller("bench", "operator", "op-1")
    now = time.time()
    if draw is None or not draw.exists():
        bounds = _bounds(twin)
        frame = _local_frame(bounds)
        rng = random.Random(seed)
        hub_pts = []
        for _ in range(60 * hubs):
            if len(hub_pts) >= hubs:
                break
            a = _random_point(bounds, rng, frame)
            if any(_dist_m(frame, a, h) < 150.0 for h in hub_pts):
                continue
            try:
                core.plan_local(RouteRequest(a, _random_point(bounds, rng, frame),
                                             depart_s=now + 60.0), caller)
            except (PlanError, ValueError):
                continue
            hub_pts.append(a)
        items = [{"start": hub_pts[i % len(hub_pts)],
                  "goal": _random_point(bounds, rng, frame),
                  "depart_in_s": 60.0 + rng.uniform(0.0, 3600.0)} for i in range(n)]
        if draw is not None:
            draw.write_text(json.dumps(items))
            return
    else:
        items = json.loads(draw.read_text())
    speeds = SpeedProfile()
    meta = {"priority": 1.0, "max_delay_s": 600.0,
            "speeds": {"cruise_mps": speeds.cruise_mps, "climb_mps": speeds.climb_mps,
                       "descent_mps": speeds.descent_mps}}
    _warm_up(twin, items[:40], now, speeds, meta, caller)
    held, plan_ms = [], []
    for it in items:
        req = RouteRequest(tuple(it["start"]), tuple(it["goal"]),
                           depart_s=now + it["depart_in_s"], speeds=speeds)
        t = time.thread_time()
        try:
            route = core.plan_local(req, caller)
        except (PlanError, ValueError):
            held.append(None)
            continue
        plan_ms.append(1e3 * (time.thread_time() - t))
        held.append(core.hold_plan(caller, "d", req, meta, route))
    rows = []
    for k, hp in enumerate(held):
        if hp is None:
            rows.append({"outcome": "not planned"})
            continue
        t = time.thread_time()
        try:
            rec, _ = core.submit_flight(caller, f"r-{k}", None, None, plan_id=hp.plan_id)
            outcome = f"delay {rec.meta['delay_s']:g} shift {rec.meta['layer_shift']}"
        except BookingRejectedError:
            outcome = "refused"
        rows.append({"outcome": outcome, "cpu_ms": 1e3 * (time.thread_time() - t)})
    out.write_text(json.dumps({"service_file": svc.__file__, "plan_ms": plan_ms,
                               "rows": rows}))


def _warm_up(twin, items, now, speeds, meta, caller) -> None:
    """Plan and book ``items`` on a throwaway core (same twin, its own store), so that
    every numba kernel of the booking path is compiled or loaded before timing."""
    from skytwin.planner.route import PlanError, RouteRequest
    from skytwin.server.service import BookingRejectedError, ServiceCore
    from skytwin.server.store import Store
    core = ServiceCore(twin, Store(Path(tempfile.mkdtemp(prefix="bench_book_")) / "w.db"))
    for k, it in enumerate(items):
        req = RouteRequest(tuple(it["start"]), tuple(it["goal"]),
                           depart_s=now + it["depart_in_s"], speeds=speeds)
        try:
            hp = core.hold_plan(caller, "d", req, meta, core.plan_local(req, caller))
            core.submit_flight(caller, f"w-{k}", None, None, plan_id=hp.plan_id)
        except (PlanError, ValueError, BookingRejectedError):
            continue
    core.close()


def _run(label, pythonpath, args, draw, tmp) -> dict:
    out = Path(tmp) / f"{label}.json"
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    else:
        env.pop("PYTHONPATH", None)
    subprocess.check_call([sys.executable, str(Path(__file__).resolve()), "--child",
                           str(out), "--draw", str(draw), "--deliveries",
                           str(args.deliveries), "--hubs", str(args.hubs), "--seed",
                           str(args.seed)], env=env, cwd=tempfile.gettempdir())
    return json.loads(out.read_text())


def _side(runs) -> dict:
    rows = runs[0]["rows"]
    booked = [i for i, r in enumerate(rows) if "cpu_ms" in r]
    cpu = np.array([[r["rows"][i]["cpu_ms"] for i in booked] for r in runs]).mean(axis=0)
    plan = np.mean([np.mean(r["plan_ms"]) for r in runs])
    return {"service_file": runs[0]["service_file"], "bookings": len(booked),
            "refused": sum(r["outcome"] == "refused" for r in rows),
            "booking_cpu_ms": {"mean": float(cpu.mean()),
                               "p50": float(np.percentile(cpu, 50)),
                               "p90": float(np.percentile(cpu, 90))},
            "plan_cpu_ms_mean": float(plan),
            "outcomes": [r["outcome"] for r in rows]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deliveries", type=int, default=1200)
    ap.add_argument("--hubs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", metavar="REF")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--draw", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(Path(args.child), Path(args.draw) if args.draw else None,
               args.deliveries, args.hubs, args.seed)
        return 0
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_plan_cpu import _baseline_tree
    with tempfile.TemporaryDirectory() as tmp:
        draw = Path(tmp) / "draw.json"
        subprocess.check_call([sys.executable, str(Path(__file__).resolve()), "--child",
                               str(Path(tmp) / "x"), "--draw", str(draw), "--deliveries",
                               str(args.deliveries), "--hubs", str(args.hubs),
                               "--seed", str(args.seed)], cwd=tempfile.gettempdir())
        shim = base_sha = None
        if args.baseline:
            shim, base_sha = _baseline_tree(args.baseline)
        cur, base = [], []
        for r in range(args.rounds):
            if args.baseline:
                print(f"round {r + 1}/{args.rounds}: baseline {base_sha[:8]}",
                      file=sys.stderr)
                base.append(_run(f"base{r}", shim, args, draw, tmp))
            print(f"round {r + 1}/{args.rounds}: current", file=sys.stderr)
            cur.append(_run(f"cur{r}", None, args, draw, tmp))
    res = {"deliveries": args.deliveries, "hubs": args.hubs, "seed": args.seed,
           "rounds": args.rounds, "current": _side(cur)}
    if base:
        res["baseline"] = _side(base)
        res["baseline"]["sha"] = base_sha
        res["same_outcomes"] = res["current"]["outcomes"] == res["baseline"]["outcomes"]
        res["booking_cpu_ratio"] = (res["current"]["booking_cpu_ms"]["mean"]
                                    / res["baseline"]["booking_cpu_ms"]["mean"])
    for side in ("current", "baseline"):
        if side in res:
            res[side]["outcome_counts"] = {
                k: res[side]["outcomes"].count(k) for k in ("refused", "not planned")}
            res[side]["outcome_counts"]["booked"] = res[side]["bookings"]
            del res[side]["outcomes"]
    if args.json:
        print(json.dumps(res))
    else:
        for side in ("baseline", "current"):
            if side in res:
                s = res[side]
                print(f"{side}: {s['service_file']}\n  CPU per booking mean "
                      f"{s['booking_cpu_ms']['mean']:.2f} ms (p50 "
                      f"{s['booking_cpu_ms']['p50']:.2f}, p90 "
                      f"{s['booking_cpu_ms']['p90']:.2f}); CPU per plan mean "
                      f"{s['plan_cpu_ms_mean']:.2f} ms; {s['outcome_counts']}")
        if base:
            print(f"booking CPU current / baseline: {res['booking_cpu_ratio']:.3f}; "
                  f"same outcome for every booking: {res['same_outcomes']}")
    return 0 if res.get("same_outcomes", True) else 1


if __name__ == "__main__":
    sys.exit(main())
