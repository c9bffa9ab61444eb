"""Stress the booking path from many threads at a tiny GIL switch interval (race hunt).

    python benchmarks/stress_booking_threads.py [SEED] [SWITCH_S] [SECONDS]
    # defaults: 0 1e-5 120

Why: one load-test run at a 0.1 ms switch interval (2026-11-30 22:44 UTC, RESULTS.md scale
part 9) had one SubmitFlight fail inside the core with a numpy shape error ("operands could
not be broadcast together with shapes (10,) (11,)"): some shared state read while another
thread changed it. This drives :meth:`ServiceCore.submit_flight` (held plans, ``plan_id``)
from 8 threads on the bundled Helsinki twin, cancels one booking in ten, with
``sys.setswitchinterval(SWITCH_S)`` while booking, 400 plans a round, until SECONDS have
passed or an exception other than a refusal is raised; it prints each round and the first
tracebacks. No gRPC, no planning processes, no zones, no live hub: at 23:08 UTC (seed 1,
1e-5 s, 300 s) 36 rounds, 6,570 bookings, 0 errors, so the race is in something the load
test has and this lacks (those, or the Watch streams).
"""
import sys, time, threading, traceback, random, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from tests.grpc_fixtures import helsinki_twin
from skytwin.planner.route import RouteRequest, PlanError
from skytwin.planner.timing import SpeedProfile
from skytwin.server.service import BookingRejectedError, Caller, ServiceCore
from skytwin.server.store import Store

twin, _ = helsinki_twin()
tmp = tempfile.mkdtemp()
core = ServiceCore(twin, Store(Path(tmp) / "s.db"))
core.warm_up()
g = twin.grid
rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
x0, y0, x1, y1 = g.x0_m + 60, g.y0_m + 60, g.x1_m - 60, g.y1_m - 60
callers = [Caller(f"c{k}", "operator", f"op-{k}") for k in range(8)]
def plans(n):
    out = []
    t_dep0 = time.time() + 120
    while len(out) < n:
        a = rng.uniform([x0, y0], [x1, y1]); b = rng.uniform([x0, y0], [x1, y1])
        la, lb = twin.frame.to_wgs84(*a), twin.frame.to_wgs84(*b)
        req = RouteRequest((float(la[0]), float(la[1])), (float(lb[0]), float(lb[1])),
                           depart_s=t_dep0 + rng.uniform(0, 1800), speeds=SpeedProfile())
        meta = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {"cruise_mps": req.speeds.cruise_mps,
                "climb_mps": req.speeds.climb_mps, "descent_mps": req.speeds.descent_mps}}
        try:
            route = core.plan(req, None)
        except (PlanError, ValueError):
            continue
        c = callers[len(out) % len(callers)]
        out.append((c, core.hold_plan(c, "d", req, meta, route)))
    return out
errors = []
booked = []
lock = threading.Lock()
def worker(items):
    for c, held in items:
        try:
            rec, _ = core.submit_flight(c, "r-" + held.plan_id, None, None, plan_id=held.plan_id)
            with lock: booked.append((c, rec.flight_id))
            if random.random() < 0.1:
                core.cancel_flight(c, rec.flight_id)
        except BookingRejectedError:
            pass
        except Exception:  # noqa: BLE001 - the point is to see it
            with lock: errors.append(traceback.format_exc())
sys.setswitchinterval(float(sys.argv[2]) if len(sys.argv) > 2 else 1e-5)
t_end = time.time() + float(sys.argv[3]) if len(sys.argv) > 3 else time.time() + 120
rounds = 0; nb = 0
while time.time() < t_end and not errors:
    sys.setswitchinterval(0.005)
    items = plans(400)
    sys.setswitchinterval(float(sys.argv[2]) if len(sys.argv) > 2 else 1e-5)
    ths = [threading.Thread(target=worker, args=(items[k::8],)) for k in range(8)]
    [t.start() for t in ths]; [t.join() for t in ths]
    rounds += 1; nb = len(booked)
    print("round", rounds, "booked", nb, "errors", len(errors), flush=True)
for e in errors[:3]: print(e)
