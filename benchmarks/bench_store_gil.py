"""The store's durable commit, alone and beside a thread that wants the GIL.

    python benchmarks/bench_store_gil.py [--writes 300] [--waypoints 40]
                                         [--switch 0.005 0.0005 0.0001] [--json]

Why (issue 14, RESULTS.md scale part 9): in the 20-hub load test a booking thread spends
about a quarter of its wall time waiting for :meth:`server.store.Store.add_flight`,
whose SQLite commit alone is well under a millisecond. The store writes on its own
thread (group commit), and every ``sqlite3`` call releases the GIL and takes it back;
each take-back waits for a thread that holds the GIL to give it up, which CPython
forces only every ``sys.getswitchinterval()`` (5 ms by default). A booking's write
takes the GIL back a dozen or more times (queue hand-over, BEGIN, SAVEPOINT, the
idempotency SELECT, two INSERTs, RELEASE, COMMIT, the result hand-back).

What it does: a temporary :class:`~server.store.Store` (WAL, ``synchronous=FULL``, as
served) and ``--writes`` accepted flight records of ``--waypoints`` waypoints, stored
one by one with ``add_flight``, timed per call; first with nothing else running, then
with one pure-Python thread spinning (a stand-in for the planner, placement, the event
loop), for each ``--switch`` interval given (each in a fresh child process, so that one
setting cannot leak into the next). Printed: p50 / p90 / max ms per write.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _measure(writes: int, waypoints: int, switch_s: float) -> dict:
    import tempfile
    import threading
    import time

    import numpy as np

    from skytwin.planner.trajectory import Trajectory
    from skytwin.server.store import FlightRecord, Store

    sys.setswitchinterval(switch_s)
    rng = np.random.default_rng(0)
    out = {"switch_s": switch_s}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as st:
        k = 0

        def record():
            nonlocal k
            k += 1
            fid = f"F-{k:012x}"
            xyz = np.round(rng.random((waypoints, 3)) * 1000.0, 2)
            t = 1.8e9 + 5.0 * np.arange(waypoints)
            return FlightRecord(
                flight_id=fid, operator_id="bench", request_id=f"r{k}", status="accepted",
                trajectory=Trajectory(fid, xyz, t), lonlat_deg=rng.random((waypoints, 2)),
                alt_amsl_m=xyz[:, 2], alt_agl_m=xyz[:, 2], priority=0.0,
                created_s=time.time(), cancelled_s=None, meta={"delay_s": 0.0})

        def run():
            ms = []
            for _ in range(writes):
                r = record()
                t0 = time.perf_counter()
                st.add_flight(r)
                ms.append(1e3 * (time.perf_counter() - t0))
            a = np.array(ms)
            return {"p50_ms": round(float(np.median(a)), 2),
                    "p90_ms": round(float(np.percentile(a, 90)), 2),
                    "max_ms": round(float(a.max()), 1)}

        out["alone"] = run()
        stop = threading.Event()

        def spin():
            x = 0
            while not stop.is_set():
                x += 1

        th = threading.Thread(target=spin, daemon=True)
        th.start()
        try:
            out["beside_a_busy_thread"] = run()
        finally:
            stop.set()
            th.join()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--waypoints", type=int, default=40)
    ap.add_argument("--switch", type=float, nargs="+", default=[0.005, 0.0005, 0.0001],
                    help="sys.setswitchinterval values [s] (0.005 is CPython's default)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        print(json.dumps(_measure(a.writes, a.waypoints, a.child)))
        return 0
    rows = []
    for sw in a.switch:
        r = subprocess.run([sys.executable, __file__, "--writes", str(a.writes),
                            "--waypoints", str(a.waypoints), "--child", repr(sw)],
                           capture_output=True, text=True, check=True)
        rows.append(json.loads(r.stdout))
    if a.json:
        print(json.dumps({"writes": a.writes, "waypoints": a.waypoints, "runs": rows}))
        return 0
    print(f"add_flight, {a.writes} writes of {a.waypoints} waypoints (ms p50 / p90 / max)")
    print("| switch interval | alone | beside one busy Python thread | ratio of p50 |")
    print("|---|---|---|---|")
    for r in rows:
        al, bz = r["alone"], r["beside_a_busy_thread"]
        print(f"| {r['switch_s'] * 1e3:g} ms | {al['p50_ms']} / {al['p90_ms']} / {al['max_ms']} "
              f"| {bz['p50_ms']} / {bz['p90_ms']} / {bz['max_ms']} "
              f"| {bz['p50_ms'] / al['p50_ms']:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
