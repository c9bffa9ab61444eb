"""Live operations (issue 11): in-process kernels and the gRPC fleet simulation.

    python benchmarks/bench_live.py kernels [--drones 1000 5000 20000] [--peer-max 5000]
    python benchmarks/bench_live.py grpc --drones 1000 --duration 300 [--fault-share 0.1]

``kernels`` (single process, numba warm):

* **tactical**: :func:`skytwin.live.tactical.loss_arrays` (spatial hash) on ``N`` drones
  predicted 30 s ahead at 1 s over a 10 km x 10 km area at 40-120 m, vs the dense
  all-pairs peer (BlueSky's state-based detection generalised to the same piecewise
  prediction: every pair, every step, numpy-vectorised per step); the loss sets must be
  identical; ratio = peer / hash.
* **sweep**: one :meth:`Monitor.sweep` over ``N`` activated flights, and one
  :meth:`Monitor.update` of ``N`` reports (one per flight), vs Flight Blender's design
  (one task per flight checking the latest point: here a Python loop calling the
  per-flight check), ratio = loop / vectorised.
* **ingest**: :meth:`LiveOps.ingest` of ``N`` reports per simulated second, as one batch
  and as batches of 20, reports/s of engine time.

``grpc``: builds (or loads) a synthetic 6 km x 6 km twin, starts ``skytwin serve`` on it
in a child process, runs ``skytwin simulate`` against it and prints its JSON plus the
server's CPU time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def dense_peer(xyz, valid, h_m=30.0, v_m=10.0):
    """All pairs, every step, numpy: {(i, j)} of pairs that lose separation."""
    n, k1, _ = xyz.shape
    found = set()
    iu, ju = np.triu_indices(n, 1)
    for k in range(k1 - 1):
        ok = valid[iu, k] & valid[iu, k + 1] & valid[ju, k] & valid[ju, k + 1]
        a, b = iu[ok], ju[ok]
        c = xyz[a, k] - xyz[b, k]
        d = (xyz[a, k + 1] - xyz[a, k]) - (xyz[b, k + 1] - xyz[b, k])
        lo = np.zeros(a.size)
        hi = np.ones(a.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (-v_m - c[:, 2]) / d[:, 2]
            w = (v_m - c[:, 2]) / d[:, 2]
            flat = d[:, 2] == 0
            lo = np.where(flat, np.where(np.abs(c[:, 2]) < v_m, 0.0, 2.0),
                          np.maximum(lo, np.minimum(u, w)))
            hi = np.where(flat, hi, np.minimum(hi, np.maximum(u, w)))
            qa = d[:, 0] ** 2 + d[:, 1] ** 2
            qb = 2 * (c[:, 0] * d[:, 0] + c[:, 1] * d[:, 1])
            qc = c[:, 0] ** 2 + c[:, 1] ** 2 - h_m * h_m
            disc = qb * qb - 4 * qa * qc
            sq = np.sqrt(np.maximum(disc, 0))
            r0 = np.where(qa == 0, np.where(qc < 0, -np.inf, np.inf), (-qb - sq) / (2 * qa))
            r1 = np.where(qa == 0, np.where(qc < 0, np.inf, -np.inf), (-qb + sq) / (2 * qa))
            r0 = np.where((qa > 0) & (disc <= 0), np.inf, r0)
            lo = np.maximum(lo, r0)
            hi = np.minimum(hi, r1)
        hit = hi - lo > 1e-9
        found.update(zip(a[hit].tolist(), b[hit].tolist(), strict=True))
    return found


def scene(n, seed=1, area_m=10_000.0, k=30):
    rng = np.random.default_rng(seed)
    p0 = np.column_stack([rng.uniform(0, area_m, n), rng.uniform(0, area_m, n),
                          rng.uniform(40, 120, n)])
    ang = rng.uniform(0, 2 * np.pi, n)
    v = np.column_stack([12 * np.cos(ang), 12 * np.sin(ang), rng.normal(0, 0.5, n)])
    t = np.arange(k + 1, dtype=float)
    xyz = p0[:, None, :] + v[:, None, :] * t[None, :, None]
    valid = np.ones((n, k + 1), bool)
    return xyz, valid


def bench_tactical(sizes, peer_max):
    from skytwin.live.tactical import loss_arrays
    x, v = scene(100)
    loss_arrays(x, v)
    rows = []
    for n in sizes:
        xyz, valid = scene(n)
        t = time.perf_counter()
        i, j, *_ = loss_arrays(xyz, valid)
        hash_s = time.perf_counter() - t
        row = {"drones": n, "hash_ms": round(1e3 * hash_s, 1), "pairs": int(i.size)}
        if n <= peer_max:
            t = time.perf_counter()
            peer = dense_peer(xyz, valid)
            peer_s = time.perf_counter() - t
            row.update(peer_ms=round(1e3 * peer_s, 1), ratio=round(peer_s / hash_s, 1),
                       same=peer == set(zip(i.tolist(), j.tolist(), strict=True)))
        rows.append(row)
    return rows


def bench_sweep(sizes):
    from skytwin.live.conformance import Monitor, conforms
    from skytwin.planner.timing import to_trajectory
    rows = []
    for n in sizes:
        rng = np.random.default_rng(2)
        mon = Monitor()
        trs = []
        for i in range(n):
            x0, y0 = rng.uniform(0, 10_000, 2)
            a = rng.uniform(0, 2 * np.pi)
            x1, y1 = x0 + 2000 * np.cos(a), y0 + 2000 * np.sin(a)
            tr = to_trajectory(f"f{i}", [[x0, y0, 0], [x0, y0, 60], [x1, y1, 60],
                                          [x1, y1, 0]], 0.0)
            trs.append(tr)
            mon.activate(tr.flight_id, tr, 0.0)
        slots = mon.slots_of([t.flight_id for t in trs])
        pts = np.array([t.position_at(60.0) for t in trs])
        mon.update(slots[:10], np.full(10, 59.0), pts[:10])
        t = time.perf_counter()
        ok, _ = mon.update(slots, np.full(n, 60.0), pts)
        upd = time.perf_counter() - t
        t = time.perf_counter()
        mon.sweep(60.5)
        sw = time.perf_counter() - t
        m = min(n, 2000)
        t = time.perf_counter()
        for k in range(m):     # Flight Blender's shape: one check per flight
            conforms(trs[k], [60.0], pts[k:k + 1])
        loop = (time.perf_counter() - t) * n / m
        rows.append({"flights": n, "update_ms": round(1e3 * upd, 2),
                     "sweep_ms": round(1e3 * sw, 2), "per_flight_loop_ms": round(1e3 * loop, 1),
                     "ratio": round(loop / upd, 1), "all_conform": bool(ok.all())})
    return rows


def bench_ingest(sizes):
    from skytwin.airspace.frame import Frame
    from skytwin.live.engine import LiveOps
    from skytwin.planner.timing import to_trajectory
    rows = []
    frame = Frame(114.06, 22.54)
    for n in sizes:
        ops = LiveOps(frame=frame)
        rng = np.random.default_rng(3)
        trs = []
        for i in range(n):
            x0, y0 = rng.uniform(-4000, 4000, 2)
            tr = to_trajectory(f"f{i}", [[x0, y0, 0], [x0, y0, 60], [x0 + 3000, y0, 60],
                                          [x0 + 3000, y0, 0]], 0.0)
            trs.append(tr)
            ops.register(tr.flight_id, "op", tr)
        ids = [t.flight_id for t in trs]
        out = {}
        for label, batch in (("one_batch", n), ("batches_of_20", 20)):
            total = 0.0
            for sec in range(20, 30):
                t_s = float(sec) + (0.0 if label == "one_batch" else 0.5)
                p = np.array([t.position_at(t_s) for t in trs])
                lon, lat = frame.to_wgs84(p[:, 0], p[:, 1])
                t = time.perf_counter()
                for a in range(0, n, batch):
                    sl = slice(a, a + batch)
                    ops.ingest("op", ids[sl], np.full(len(ids[sl]), t_s), lon[sl],
                               lat[sl], p[sl, 2], now_s=t_s)
                total += time.perf_counter() - t
            out[label] = round(10 * n / total)
        rows.append({"flights": n, "reports_per_s_one_batch": out["one_batch"],
                     "reports_per_s_batches_of_20": out["batches_of_20"],
                     "accepted": ops.stats["accepted"]})
    return rows


def table(rows):
    keys = list(rows[0])
    w = [max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys]
    print("  ".join(k.rjust(x) for k, x in zip(keys, w, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(k, "")).rjust(x) for k, x in zip(keys, w, strict=True)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kernels")
    k.add_argument("--drones", type=int, nargs="+", default=[1000, 5000, 20000])
    k.add_argument("--peer-max", type=int, default=5000)
    k.add_argument("--json", action="store_true")
    g = sub.add_parser("grpc")
    g.add_argument("--drones", type=int, default=1000)
    g.add_argument("--duration", type=float, default=300.0)
    g.add_argument("--fault-share", type=float, default=0.1)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--city-km", type=float, default=6.0)
    g.add_argument("--lead", type=float, default=None,
                   help="departures this long after booking starts (all after booking)")
    g.add_argument("--spread", type=float, default=None,
                   help="departures spread over this many seconds")
    g.add_argument("--min-trip", type=float, default=None, help="shortest trip [m]")
    g.add_argument("--rate", type=float, default=None, help="reports per drone per s")
    g.add_argument("--book-budget", type=float, default=None,
                   help="stop booking after this many seconds (fly what is booked)")
    g.add_argument("--workdir", default="/tmp/bench_live_work")
    a = ap.parse_args(argv)
    if a.cmd == "kernels":
        res = {"tactical": bench_tactical(a.drones, a.peer_max),
               "sweep": bench_sweep(a.drones), "ingest": bench_ingest(a.drones[:2])}
        if a.json:
            print(json.dumps(res))
            return
        for name, rows in res.items():
            print(f"\n{name}")
            table(rows)
    else:
        print(json.dumps(run_grpc(a), indent=1))


def _synthetic_twin(path, km, seed=7):
    """A synthetic city twin saved to ``path`` (built once, then reused)."""
    from pathlib import Path
    p = Path(path)
    if p.exists():
        return p
    from skytwin.airspace.twin import build_twin
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    frame = synthetic_frame()
    n = int(1500 * km * km)
    twin = build_twin(generate_city(size_m=km * 1000.0, n_buildings=n, seed=seed,
                                    frame=frame), frame=frame)
    twin.save(p)
    return p


def _cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    import os
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def run_grpc(a):
    """Serve a synthetic twin in a child process and fly ``skytwin simulate`` at it."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path
    wd = Path(a.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    twin = _synthetic_twin(wd / f"synthetic_{a.city_km:g}km.npz", a.city_km)
    db = wd / f"live_{a.drones}_{int(time.time())}.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = [sys.executable, "-m", "skytwin.server.cli"]
    srv = subprocess.Popen(exe + ["serve", "--twin", str(twin), "--db", str(db), "--port",
                                  str(port), "--workers", "2"],
                           stdout=subprocess.DEVNULL, stderr=open(wd / "server.log", "w"))
    try:
        t0 = time.time()
        import grpc
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        fut = grpc.channel_ready_future(ch)
        while True:
            try:
                fut.result(timeout=1.0)
                break
            except grpc.FutureTimeoutError:
                if srv.poll() is not None or time.time() - t0 > 300:
                    raise RuntimeError("server did not start; see "
                                       f"{wd / 'server.log'}") from None
        ch.close()
        ready_s = time.time() - t0
        cpu0 = _cpu_s(srv.pid)
        t1 = time.time()
        sim = subprocess.run(
            [sys.executable, "-m", "skytwin.server.simulate", "--target",
             f"127.0.0.1:{port}", "--drones", str(a.drones), "--duration", str(a.duration),
             "--fault-share", str(a.fault_share), "--seed", str(a.seed), "--json",
             *(["--lead", str(a.lead)] if a.lead is not None else []),
             *(["--spread", str(a.spread)] if a.spread is not None else []),
             *(["--min-trip", str(a.min_trip)] if a.min_trip is not None else []),
             *(["--book-budget", str(a.book_budget)] if a.book_budget is not None
               else []),
             *(["--rate", str(a.rate)] if a.rate is not None else [])],
            capture_output=True, text=True, timeout=a.duration * 4 + 1800)
        wall = time.time() - t1
        cpu = _cpu_s(srv.pid) - cpu0
        try:
            rep = json.loads(sim.stdout)
        except ValueError:
            rep = {"stdout": sim.stdout[-2000:], "stderr": sim.stderr[-2000:]}
        rep["exit_code"] = sim.returncode
        rep["server_ready_s"] = round(ready_s, 1)
        rep["server_cpu_s"] = round(cpu, 1)
        rep["server_cpu_share_of_wall"] = round(cpu / wall, 2)
        rep["db_bytes"] = os.path.getsize(db)
        return rep
    finally:
        srv.terminate()
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    main()
