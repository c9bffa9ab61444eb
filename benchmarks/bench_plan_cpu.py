"""CPU per PlanRoute in process, on the load test's own deliveries (issue 14).

    python benchmarks/bench_plan_cpu.py [--deliveries 400] [--seed 0] [--rounds 2]
                                        [--baseline REF] [--json]

What is measured: the work of one ``PlanRoute`` call of the server, without the
transport, on the endpoints ``benchmarks/bench_service.py`` draws (``server.loadtest``:
3 hubs found by previews between random points of the twin, then from hub ``i % 3`` to
a uniformly random point of the twin, 20 m inside its WGS84 bounds, departing 60 s to
10 min from now). Each call does what ``FlightServicer.PlanRoute`` does with the
bundled twin and the server's defaults: the request message is converted
(``convert.route_request_from_proto``), planned by ``ServiceCore.plan_local`` (the
thread's ``Planner`` with the server's checker and limits, through
``GroundLayers.plan``: derived zones, ground risk, the independent zone re-check and the
exposure report), the response converted (``convert.route_to_proto``) and the plan held
(``ServiceCore.hold_plan``). Planning tables are prepared first
(``ServiceCore.prepare_planning``, as the server does before forking planning
processes). The CPU time of each call is read on the calling thread
(``time.thread_time``: every kernel runs on it), so the machine's load enters only
through caches and frequency, not through waiting.

After an untimed warm-up pass over the deliveries (numba kernels compiled or loaded
from their cache, buffers grown), two passes over the same deliveries: the first one
times whole calls (the headline figures), the second one wraps the pipeline's steps to split the CPU (exclusive time
of each step, so nested steps are not counted twice): search grids, search at 2 m,
coarse search, the numba clearance screen and the exact (GEOS) clearance checks during
smoothing, the rest of smoothing,
timing, validation, exposure, conversion (request, response, plan hold) and the rest.

Before/after in one run: ``--baseline REF`` checks out ``REF`` in a git worktree
(``/tmp/skytwin_bench_base_<sha>``) and runs the same deliveries there in a child
process whose ``skytwin`` package is that worktree (each child prints the file its
planner was imported from); children alternate ``--rounds`` times (base, current, base,
current, ...) and each delivery's CPU is the mean of its rounds. Deliveries are drawn
once (by the current code) and given to every child, so both sides plan exactly the
same requests; route lengths of the deliveries both sides planned are compared too.
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
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

PHASES = ("grids", "search_2m", "search_coarse", "smooth_screen", "smooth_exact",
          "smooth_other", "timing",
          "validation", "exposure", "conversion", "other")


# ----------------------------------------------------------------------------- child
def _core():
    from skytwin.server.app import ServerConfig, load_twin
    from skytwin.server.service import ServiceCore
    from skytwin.server.store import Store
    twin, _ = load_twin(ServerConfig())
    store = Store(Path(tempfile.mkdtemp(prefix="bench_plan_cpu_")) / "s.db")
    core = ServiceCore(twin, store)
    core.warm_up()
    core.prepare_planning()
    return twin, core


def _bounds(twin):
    b = twin.summary()["bounds_wgs84"]
    return types.SimpleNamespace(min_lon_deg=b[0], min_lat_deg=b[1], max_lon_deg=b[2],
                                 max_lat_deg=b[3])


def _draw(twin, core, n, seed):
    """The load test's deliveries: hubs found by previews, then random goals."""
    from skytwin.planner.route import PlanError, RouteRequest
    from skytwin.server.loadtest import _dist_m, _local_frame, _random_point
    from skytwin.server.service import Caller
    bounds = _bounds(twin)
    frame = _local_frame(bounds)
    rng = random.Random(seed)
    caller = Caller("bench", "operator", "op-1")
    now = time.time()
    hubs = []
    for _ in range(180):
        if len(hubs) >= 3:
            break
        a = _random_point(bounds, rng, frame)
        if any(_dist_m(frame, a, h) < 150.0 for h in hubs):
            continue
        b = _random_point(bounds, rng, frame)
        try:
            core.plan_local(RouteRequest(a, b, depart_s=now + 60.0), caller)
        except (PlanError, ValueError):
            continue
        hubs.append(a)
    return [{"start": hubs[i % len(hubs)], "goal": _random_point(bounds, rng, frame),
             "depart_in_s": 60.0 + rng.uniform(0.0, 600.0)} for i in range(n)]


class _Split:
    """Exclusive thread CPU per step, by wrapping the pipeline's functions."""

    def __init__(self, twin):
        self.acc = dict.fromkeys(PHASES, 0.0)
        self.stack = []
        self.dx = twin.grid.dx_m
        self.missing = []

    def wrap(self, owner, name, phase):
        f = getattr(owner, name, None)
        if f is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        split = self

        def w(*a, **k):
            split.stack.append(0.0)
            t = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                dt = time.thread_time() - t
                inner = split.stack.pop()
                ph = phase(*a) if callable(phase) else phase
                split.acc[ph] += dt - inner
                if split.stack:
                    split.stack[-1] += dt
        setattr(owner, name, w)

    def install(self):
        from skytwin.planner import exact, route, validate
        from skytwin.server import convert, ground, service
        P = route.Planner
        self.wrap(P, "_window_grid", "grids")
        self.wrap(P, "_run_search", lambda self_, wgrid, *a: (
            "search_2m" if wgrid.dx_m <= self.dx else "search_coarse"))
        self.wrap(route, "shortcut_quantized", "smooth_other")
        self.wrap(exact.ExactChecker, "segment_violation", "smooth_exact")
        self.wrap(exact.ExactChecker, "segment_blocked_fast", "smooth_screen")
        self.wrap(route, "to_trajectory", "timing")
        self.wrap(validate.RouteValidator, "check", "validation")
        self.wrap(P, "_exposure", "exposure")
        self.wrap(ground.GroundLayers, "exposure", "exposure")
        self.wrap(convert, "route_to_proto", "conversion")
        self.wrap(convert, "route_request_from_proto", "conversion")
        self.wrap(service.ServiceCore, "hold_plan", "conversion")

    def take(self):
        out = dict(self.acc)
        for k in self.acc:
            self.acc[k] = 0.0
        return out


def _plan_route_call(core, caller, msg):
    """What FlightServicer.PlanRoute does, without the transport."""
    from skytwin.server import convert
    from skytwin.server.services.flights import route_digest
    from skytwin.v1 import flights_pb2 as fpb
    req, meta = convert.route_request_from_proto(msg, core.clock(), core.ceiling_agl_m,
                                                 core.limits)
    route = core.plan_local(req, caller)
    out = fpb.PlanRouteResponse(route=convert.route_to_proto(route))
    held = core.hold_plan(caller, route_digest(msg), req, meta, route)
    if held is not None:
        out.plan_id = held.plan_id
    return route


def _message(d, now):
    from google.protobuf.duration_pb2 import Duration

    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    return fpb.RouteRequest(start=apb.LonLat(lon_deg=d["start"][0], lat_deg=d["start"][1]),
                            goal=apb.LonLat(lon_deg=d["goal"][0], lat_deg=d["goal"][1]),
                            departure_time=timestamp(now + d["depart_in_s"]),
                            max_delay=Duration(seconds=600))


def _passes(core, twin, draw):
    from skytwin.server.service import Caller
    caller = Caller("bench", "operator", "op-1")
    now = time.time()
    msgs = [_message(d, now) for d in draw]
    for m in msgs:                      # warm-up: kernels compiled or loaded, buffers
        try:                            # grown, caches filled (not timed)
            _plan_route_call(core, caller, m)
        except Exception:  # noqa: BLE001, S110
            pass
    rows = []
    for m in msgs:                      # pass 1: whole calls
        t0 = time.thread_time()
        try:
            r = _plan_route_call(core, caller, m)
            code, length, wp, level, exp = "OK", r.length_m, len(r.xyz_m), r.level, \
                r.expansions
        except Exception as exc:  # noqa: BLE001 - refusals are answers too
            code = getattr(exc, "code", None) or type(exc).__name__
            length, wp, level, exp = None, 0, 0, 0
        rows.append({"cpu_ms": 1e3 * (time.thread_time() - t0), "code": code,
                     "length_m": length, "waypoints": wp, "level": level,
                     "expansions": exp})
    split = _Split(twin)
    split.install()
    for m, row in zip(msgs, rows, strict=True):    # pass 2: the same calls, split
        t0 = time.thread_time()
        try:
            _plan_route_call(core, caller, m)
        except Exception:  # noqa: BLE001, S110
            pass
        tot = time.thread_time() - t0
        ph = split.take()
        ph["other"] += tot - sum(ph.values())
        row["split_ms"] = {k: 1e3 * v for k, v in ph.items()}
    return rows, split.missing


def child(args) -> int:
    twin, core = _core()
    from skytwin.planner import route
    draw_path = Path(args.draw)
    if not draw_path.exists():
        draw_path.write_text(json.dumps(_draw(twin, core, args.deliveries, args.seed)))
    if args.draw_only:
        return 0
    draw = json.loads(draw_path.read_text())
    rows, missing = _passes(core, twin, draw)
    Path(args.child).write_text(json.dumps({"planner_file": route.__file__,
                                            "rows": rows, "unwrapped": missing}))
    return 0


# ----------------------------------------------------------------------------- parent
def _baseline_tree(ref: str) -> tuple[Path, str]:
    """A worktree of ``ref`` and a package shim exposing it as ``skytwin``."""
    sha = subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", ref],
                                  text=True).strip()
    tree = Path(f"/tmp/skytwin_bench_base_{sha[:12]}")
    if not tree.exists():
        subprocess.check_call(["git", "-C", str(ROOT), "worktree", "add", "--detach",
                               str(tree), sha], stdout=subprocess.DEVNULL)
    shim = tree.parent / f"{tree.name}_pkg"
    pkg = shim / "skytwin"
    if not pkg.exists():
        pkg.mkdir(parents=True)
        for name in ("__init__.py", "__main__.py", "v1"):
            (pkg / name).symlink_to(tree / "skytwin" / name)
        for sub in ("airspace", "planner", "server", "fixtures", "live"):
            (pkg / sub).symlink_to(tree / sub)
    return shim, sha


def _run_child(label, pythonpath, draw, args, tmp, draw_only=False) -> dict | None:
    out = Path(tmp) / f"{label}.json"
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    else:
        env.pop("PYTHONPATH", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(out),
           "--draw", str(draw), "--deliveries", str(args.deliveries),
           "--seed", str(args.seed)] + (["--draw-only"] if draw_only else [])
    subprocess.check_call(cmd, env=env, cwd=tempfile.gettempdir())
    return None if draw_only else json.loads(out.read_text())


def _stats(v):
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "p50": float(np.percentile(v, 50)),
            "p90": float(np.percentile(v, 90)), "p99": float(np.percentile(v, 99)),
            "mean": float(v.mean()), "max": float(v.max()),
            "mean_without_max": float(np.sort(v)[:-1].mean()) if v.size > 1 else None}


def _summary(runs: list[dict]) -> dict:
    rows0 = runs[0]["rows"]
    n = len(rows0)
    cpu = np.array([[r["rows"][i]["cpu_ms"] for r in runs] for i in range(n)]).mean(axis=1)
    ok = np.array([r["code"] == "OK" for r in rows0])
    split = {k: float(np.mean([np.mean([r["rows"][i]["split_ms"][k] for r in runs])
                               for i in range(n) if ok[i]])) if ok.any() else 0.0
             for k in PHASES}
    return {"planner_file": runs[0]["planner_file"], "unwrapped": runs[0]["unwrapped"],
            "ok": _stats(cpu[ok]), "refused": _stats(cpu[~ok]), "all": _stats(cpu),
            "split_ok_mean_ms": split,
            "codes": {c: int(sum(r["code"] == c for r in rows0))
                      for c in sorted({r["code"] for r in rows0})},
            "refused_by_code": {c: _stats(cpu[[r["code"] == c for r in rows0]])
                                for c in sorted({r["code"] for r in rows0}) if c != "OK"},
            "levels_ok": {str(lv): int(sum(r["level"] == lv for r in rows0 if
                                           r["code"] == "OK"))
                          for lv in sorted({r["level"] for r in rows0 if r["code"] == "OK"})},
            "expansions_ok_mean": float(np.mean([r["expansions"] for r in rows0
                                                 if r["code"] == "OK"] or [0]))}


def _print(label, s):
    print(f"\n== {label}: planner from {s['planner_file']}")
    if s["unwrapped"]:
        print(f"   (not split: {', '.join(s['unwrapped'])})")
    print(f"   outcomes: {s['codes']}; search levels of OK plans: {s['levels_ok']}; "
          f"mean expansions {s['expansions_ok_mean']:.0f}")
    print("   CPU ms per call      n      p50      p90      p99     mean      max  "
          "mean w/o max")
    for k in ("ok", "refused", "all"):
        t = s[k]
        if t["n"]:
            print(f"   {k:<16} {t['n']:6d} {t['p50']:8.2f} {t['p90']:8.2f} {t['p99']:8.2f} "
                  f"{t['mean']:8.2f} {t['max']:8.1f} {t['mean_without_max'] or 0:8.2f}")
    for c, t in s["refused_by_code"].items():
        print(f"     refused {c:<22} {t['n']:4d}   p50 {t['p50']:6.2f}  mean "
              f"{t['mean']:6.2f}  max {t['max']:6.2f} ms")
    tot = sum(s["split_ok_mean_ms"].values()) or 1.0
    print("   split of an OK call (mean ms, share):")
    for k, v in s["split_ok_mean_ms"].items():
        print(f"     {k:<14} {v:7.2f}  {100 * v / tot:5.1f} %")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deliveries", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="children per side, alternated (each delivery: mean of rounds)")
    ap.add_argument("--baseline", metavar="REF",
                    help="git ref to compare with (run from a worktree, same deliveries)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--draw", help=argparse.SUPPRESS)
    ap.add_argument("--draw-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    load0 = os.getloadavg()
    head = subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                   text=True).strip()
    dirty = bool(subprocess.check_output(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "planner", "airspace"],
        text=True).strip())
    sides = [("current", None)]
    base_sha = None
    if args.baseline:
        shim, base_sha = _baseline_tree(args.baseline)
        sides = [("base", shim), ("current", None)]
    with tempfile.TemporaryDirectory() as tmp:
        draw = Path(tmp) / "draw.json"
        # the current code draws the deliveries (hub previews) once, for every child
        _run_child("draw", None, draw, args, tmp, draw_only=True)
        runs = {lab: [] for lab, _ in sides}
        for k in range(args.rounds):
            for lab, pp in sides:
                runs[lab].append(_run_child(f"{lab}{k}", pp, draw, args, tmp))
    load1 = os.getloadavg()
    res = {"deliveries": args.deliveries, "seed": args.seed, "rounds": args.rounds,
           "head": head, "planner_dirty": dirty, "baseline": base_sha,
           "loadavg_before": load0, "loadavg_after": load1,
           "sides": {lab: _summary(r) for lab, r in runs.items()}}
    if args.baseline:
        a, b = runs["base"][0]["rows"], runs["current"][0]["rows"]
        same = [i for i in range(len(a)) if a[i]["code"] == "OK" and b[i]["code"] == "OK"]
        ratio = [b[i]["length_m"] / a[i]["length_m"] for i in same]
        res["compare"] = {
            "both_ok": len(same),
            "outcome_differs": sum(a[i]["code"] != b[i]["code"] for i in range(len(a))),
            "length_ratio_mean": float(np.mean(ratio)) if ratio else None,
            "length_ratio_max": float(np.max(ratio)) if ratio else None,
            "length_ratio_min": float(np.min(ratio)) if ratio else None,
            "longer_by_1pct": int(sum(r > 1.01 for r in ratio)),
            "cpu_ratio_ok_mean": res["sides"]["base"]["ok"]["mean"]
            / res["sides"]["current"]["ok"]["mean"],
            "cpu_ratio_ok_p50": res["sides"]["base"]["ok"]["p50"]
            / res["sides"]["current"]["ok"]["p50"],
            "cpu_ratio_all_mean": res["sides"]["base"]["all"]["mean"]
            / res["sides"]["current"]["all"]["mean"]}
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"{args.deliveries} deliveries (seed {args.seed}), {args.rounds} round(s); "
          f"HEAD {head}{' + uncommitted planner/airspace changes' if dirty else ''}; "
          f"load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    for lab in runs:
        _print(lab if lab == "current" else f"base {base_sha[:10]}", res["sides"][lab])
    if "compare" in res:
        c = res["compare"]
        print(f"\nbase / current CPU: OK mean {c['cpu_ratio_ok_mean']:.2f}x, OK p50 "
              f"{c['cpu_ratio_ok_p50']:.2f}x, all calls mean {c['cpu_ratio_all_mean']:.2f}x")
        if c["both_ok"]:
            print(f"route length current / base on the {c['both_ok']} deliveries both "
                  f"planned: mean {c['length_ratio_mean']:.4f}, min "
                  f"{c['length_ratio_min']:.4f}, max {c['length_ratio_max']:.4f} "
                  f"({c['longer_by_1pct']} longer by > 1 %); outcome differs on "
                  f"{c['outcome_differs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
