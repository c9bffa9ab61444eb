"""Another operator's single bookings while a 1,000-route batch is booked (issue 14).

    python benchmarks/bench_batch_fairness.py [--batch 1000] [--pairs 20]

In process, no transport: one :class:`server.service.ServiceCore` on the bundled city
and a temporary SQLite store, run twice: with the batch placed in chunks of
``BATCH_CHUNK`` (fair booking, the default) and in one go (``BATCH_CHUNK`` = batch size:
the behaviour before). Operator A submits a batch of ``--batch`` deliveries (``--pairs``
start/goal pairs found by planning, repeated with departures spread over two hours);
from the moment its placement starts, operator B books one held plan every 0.1 s from
another thread. Reported:
the batch's wall time, and the latency of B's bookings that overlapped the batch's
placement phase (median, p99, max).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(twin, pairs, n_batch, chunk, tmp) -> dict:
    import skytwin.server.service as svc
    from skytwin.planner.route import RouteRequest
    from skytwin.planner.timing import SpeedProfile
    from skytwin.server.service import Caller, ServiceCore
    from skytwin.server.store import Store
    svc.BATCH_CHUNK = chunk
    now = time.time()
    core = ServiceCore(twin, Store(Path(tmp) / f"c{chunk}.db"), clock=time.time)
    core.warm_up()
    sp = SpeedProfile()
    meta = {"priority": 1.0, "max_delay_s": 600.0,
            "speeds": {"cruise_mps": sp.cruise_mps, "climb_mps": sp.climb_mps,
                       "descent_mps": sp.descent_mps}}
    a, b = Caller("a", "operator", "op-a"), Caller("b", "operator", "op-b")
    reqs = [RouteRequest(*pairs[k % len(pairs)], depart_s=now + 300 + 7.2 * k, speeds=sp)
            for k in range(n_batch)]
    # B's deliveries, previewed before the batch starts (their bookings only place)
    held = []
    for k in range(400):
        r = RouteRequest(*pairs[(k * 7) % len(pairs)], depart_s=now + 320 + 18.0 * k,
                         speeds=sp)
        held.append(core.hold_plan(b, "d", r, meta, core.plan(r)))
    lat = []
    stop = threading.Event()
    placing = threading.Event()

    def singles():
        placing.wait()          # start with the batch's placement phase
        for k, hp in enumerate(held):
            if stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                core.submit_flight(b, f"s{k}", None, None, plan_id=hp.plan_id)
            except Exception:  # noqa: BLE001 - refused bookings are timed too
                pass
            lat.append((t0, time.perf_counter()))
            time.sleep(0.1)
    th = threading.Thread(target=singles)
    phase = {}
    real_place = core._place_checked

    def place(*args, **kw):
        phase.setdefault("t0", time.perf_counter())
        placing.set()
        phase["t1"] = time.perf_counter()
        return real_place(*args, **kw)
    t0 = time.perf_counter()
    th.start()
    holder = threading.current_thread()

    def marked(*args, **kw):
        if threading.current_thread() is holder:
            return place(*args, **kw)
        return real_place(*args, **kw)
    core._place_checked = marked
    recs, _, status = core.submit_batch(a, "batch", reqs, [meta] * n_batch)
    wall = time.perf_counter() - t0
    stop.set()
    placing.set()
    th.join()
    core.close()
    p0, p1 = phase["t0"], phase["t1"]
    during = np.array([(e - s) * 1e3 for s, e in lat if e >= p0 and s <= p1])
    return {"chunk": chunk, "batch_flights": len(recs), "status": status,
            "batch_wall_s": wall, "placement_s": p1 - p0, "singles_during": during.size,
            "median_ms": float(np.median(during)) if during.size else None,
            "p99_ms": float(np.percentile(during, 99)) if during.size else None,
            "max_ms": float(during.max()) if during.size else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from skytwin.airspace.zones import ZoneLayer
    from skytwin.planner.route import PlanError, Planner, RouteRequest
    from skytwin.server.app import ServerConfig, load_twin
    twin, _ = load_twin(ServerConfig())
    rng = np.random.default_rng(args.seed)
    g = twin.grid
    planner = Planner(twin, ZoneLayer(twin.frame, []))
    pairs = []
    while len(pairs) < args.pairs:
        pts = [tuple(map(float, twin.frame.to_wgs84(rng.uniform(g.x0_m, g.x1_m),
                                                    rng.uniform(g.y0_m, g.y1_m))))
               for _ in range(2)]
        try:
            planner.plan(RouteRequest(pts[0], pts[1], depart_s=time.time() + 600))
        except (PlanError, ValueError):
            continue
        pairs.append(tuple(pts))
    from skytwin.server.service import BATCH_CHUNK
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for chunk in (BATCH_CHUNK, args.batch):
            out.append(run(twin, pairs, args.batch, chunk, tmp))
    print("| batch placement | batch flights | batch wall s | placement s | B bookings "
          "during placement | B median ms | B p99 ms | B max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for d in out:
        name = (f"chunks of {d['chunk']}" if d["chunk"] < args.batch
                else "one go (before)")
        print(f"| {name} | {d['batch_flights']} ({d['status']}) | {d['batch_wall_s']:.1f} | "
              f"{d['placement_s']:.1f} | {d['singles_during']} | {d['median_ms'] or 0:.0f} | "
              f"{d['p99_ms'] or 0:.0f} | {d['max_ms'] or 0:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
