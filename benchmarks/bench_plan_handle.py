"""CPU cost of one SubmitFlight with and without a held plan (issue 14, item 1).

    python benchmarks/bench_plan_handle.py [--deliveries 150] [--seed 0]

In process, no transport: one :class:`server.service.ServiceCore` on the bundled city and
a temporary SQLite store. For the same seeded deliveries (3 hubs, random destinations,
departures spread over an hour), each delivery is previewed (``core.plan``) and then
booked twice on two fresh cores: A) ``submit_flight`` with the route (plans again, the
behaviour before issue 14) and B) ``submit_flight(plan_id=...)`` booking the held
preview. The CPU time of the submit call alone is measured on the calling thread
(``time.thread_time``: the planning kernels run on it), so the figure does not depend on
how loaded the machine is, unlike the load test's rates. Reported: median and p90 CPU
ms per submit, the ratio, and bookings accepted by each (they must agree).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deliveries", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from skytwin.planner.route import PlanError, RouteRequest
    from skytwin.planner.timing import SpeedProfile
    from skytwin.server.app import ServerConfig, load_twin
    from skytwin.server.service import Caller, ServiceCore
    from skytwin.server.store import Store
    twin, ref = load_twin(ServerConfig())
    rng = np.random.default_rng(args.seed)
    g = twin.grid
    now = time.time()
    caller = Caller("bench", "operator", "op-1")
    meta = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cores = {k: ServiceCore(twin, Store(Path(tmp) / f"{k}.db"), clock=lambda: now)
                 for k in ("route", "plan_id")}
        for c in cores.values():
            c.warm_up()
        hubs = []
        while len(hubs) < 3:
            x, y = rng.uniform(g.x0_m, g.x1_m), rng.uniform(g.y0_m, g.y1_m)
            hubs.append(tuple(map(float, twin.frame.to_wgs84(x, y))))
        cpu = {k: [] for k in cores}
        ok = {k: 0 for k in cores}
        for n in range(args.deliveries):
            x, y = rng.uniform(g.x0_m, g.x1_m), rng.uniform(g.y0_m, g.y1_m)
            goal = tuple(map(float, twin.frame.to_wgs84(x, y)))
            req = RouteRequest(hubs[n % 3], goal, depart_s=now + 60 + rng.uniform(0, 3600),
                               speeds=SpeedProfile())
            m = dict(meta, speeds={"cruise_mps": req.speeds.cruise_mps,
                                   "climb_mps": req.speeds.climb_mps,
                                   "descent_mps": req.speeds.descent_mps})
            for k, core in cores.items():
                try:
                    route = core.plan(req)
                except (PlanError, ValueError):
                    break
                held = core.hold_plan(caller, "d", req, m, route)
                t0 = time.thread_time()
                try:
                    if k == "route":
                        core.submit_flight(caller, f"r{n}", req, m)
                    else:
                        core.submit_flight(caller, f"r{n}", None, None,
                                           plan_id=held.plan_id)
                    ok[k] += 1
                except Exception:  # noqa: BLE001 - refused bookings count too
                    pass
                cpu[k].append((time.thread_time() - t0) * 1e3)
        for c in cores.values():
            c.close()
    for k, v in cpu.items():
        a = np.array(v)
        out[k] = {"n": a.size, "accepted": ok[k], "median_ms": float(np.median(a)),
                  "p90_ms": float(np.percentile(a, 90)), "mean_ms": float(a.mean())}
    print("| SubmitFlight | calls | accepted | CPU median ms | p90 ms | mean ms |")
    print("|---|---|---|---|---|---|")
    for k, d in out.items():
        print(f"| {'route only (plans again)' if k == 'route' else 'plan_id (held plan)'} | "
              f"{d['n']} | {d['accepted']} | {d['median_ms']:.2f} | {d['p90_ms']:.2f} | "
              f"{d['mean_ms']:.2f} |")
    r = out["route"]["mean_ms"] / max(1e-9, out["plan_id"]["mean_ms"])
    print(f"\nmean CPU per submit: route only / plan_id = {r:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
