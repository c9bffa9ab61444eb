"""Telemetry ingestion over gRPC alone (issue 11): ack latency at a fixed report rate.

    python benchmarks/bench_live_ingest.py [--drones 1000] [--rate 5] [--duration 40]

What it isolates: ``skytwin simulate`` measures ingestion inside a whole fleet run
(booking, prediction, advisories, a 10 km twin); this measures the telemetry path alone,
to find and compare its costs. A server on the bundled small city (its own process:
``python benchmarks/bench_live_ingest.py --serve``) with ``--drones`` flights
registered in its live hub directly (straight 10 km lines at 60 m, departing before
the run: every drone airborne and conforming; no booking), and this process streaming
their reports: ``--rate`` per drone per second, spread over ten slots per second, 20
reports per message, two operator streams (half the drones each), noise 1.5 m. Ack
latency is from handing a message to gRPC to its acks arriving (per report), as in
``skytwin simulate``. The server also reports, every 10 s on stderr, its hub calls'
duration, its event loop's lag and the collector's pauses over 5 ms.

The prediction thread runs as in the service (the random lines cross: it predicts
losses and tries re-plans, which fail off the small twin: realistic contention).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

OP_A = "dev-operator-a-NOT-SECRET"
OP_B = "dev-operator-b-NOT-SECRET"


def _md(token):
    return (("authorization", f"Bearer {token}"),)


def lines(n, t0, seed=1):
    """``n`` straight flights (local frame of the bundled city) departing at t0 - 15 s."""
    from skytwin.planner.timing import to_trajectory
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-800, 800, 2)
        ang = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(ang), np.sin(ang)]) * 12.0 * 900
        out.append(to_trajectory(f"L{i:05d}", [[x, y, 20], [x, y, 60],
                                               [x + d[0], y + d[1], 60],
                                               [x + d[0], y + d[1], 20]], t0 - 15.0))
    return out


def serve(portfile, n, t0):
    import gc

    from skytwin.server.app import ServerConfig, build_server, load_twin, start
    from skytwin.server.auth import DEV_TOKENS
    twin, ref = load_twin(ServerConfig())
    db = Path(tempfile.mkdtemp()) / "ingest.db"
    loop = asyncio.new_event_loop()
    box = {}

    async def boot():
        server, port = build_server(ServerConfig(db=db, auth=DEV_TOKENS, port=0,
                                                 workers=2), twin=twin, twin_ref=ref)
        await start(server)
        box.update(server=server, port=port)

    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(boot(), loop).result(300)
    hub = box["server"].skytwin_hub
    for i, tr in enumerate(lines(n, t0)):
        hub.ops.register(tr.flight_id, "op-a" if i % 2 == 0 else "op-b", tr)
    # diagnostics: hub call duration, event loop lag, collector pauses
    import skytwin.server.services.live as sl
    orig = sl.LiveServicer._ingest_many
    calls, lags, pauses, started = [], [], [], {}

    async def timed(self, op, parts):
        t = time.perf_counter()
        r = await orig(self, op, parts)
        calls.append((time.perf_counter() - t, sum(len(p) for p in parts)))
        return r

    sl.LiveServicer._ingest_many = timed

    async def lagger():
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    def on_gc(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            pauses.append((info["generation"], time.perf_counter() - started["t"]))

    gc.callbacks.append(on_gc)
    asyncio.run_coroutine_threadsafe(lagger(), loop)
    Path(portfile).write_text(str(box["port"]))
    while True:
        time.sleep(10)
        if calls:
            d = np.array([c[0] for c in calls]) * 1e3
            k = np.mean([c[1] for c in calls])
            lg = np.array(lags) * 1e3
            slow = [(g, round(1e3 * x, 1)) for g, x in pauses if x > 0.005]
            print(f"server: {len(d)} hub calls, {k:.1f} reports each, duration p50 "
                  f"{np.percentile(d, 50):.1f} p99 {np.percentile(d, 99):.1f} max "
                  f"{d.max():.1f} ms; event loop lag p99 {np.percentile(lg, 99):.1f} max "
                  f"{lg.max():.1f} ms; collector pauses > 5 ms: {slow[:6]}",
                  file=sys.stderr, flush=True)
            calls.clear()
            lags.clear()
            pauses.clear()


async def stream(port, n, rate, duration, t0):
    import grpc

    from skytwin.server.app import ServerConfig, load_twin
    from skytwin.server.convert import timestamp
    from skytwin.server.simulate import _plan_positions
    from skytwin.v1 import live_pb2, live_pb2_grpc
    frame = load_twin(ServerConfig())[0].frame
    trs = lines(n, t0)
    off = np.concatenate([[0], np.cumsum([len(t.t_s) for t in trs])]).astype(np.int64)
    tt = np.concatenate([t.t_s for t in trs])
    txyz = np.ascontiguousarray(np.concatenate([t.xyz_m for t in trs]))
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = live_pb2_grpc.LiveServiceStub(ch)
    sent, lat, statuses = {}, [], {}
    queues = [asyncio.Queue(), asyncio.Queue()]

    async def gen(q):
        while (m := await q.get()) is not None:
            yield m

    calls = [stub.StreamTelemetry(gen(queues[k]), metadata=_md(tok))
             for k, tok in enumerate((OP_A, OP_B))]

    async def reader(c):
        async for resp in c:
            t_rx = time.time()
            for a in resp.acks:
                t = sent.pop(a.report_id, None)
                if t is not None:
                    lat.append(t_rx - t)
                name = live_pb2.ReportStatus.Name(a.status)
                statuses[name] = statuses.get(name, 0) + 1

    readers = [asyncio.create_task(reader(c)) for c in calls]
    slot = np.arange(n) % 10
    rng = np.random.default_rng(2)
    rid, late = 1, 0
    step = 1.0 / rate
    t_next = time.time() + 0.5
    t_end = t_next + duration
    pos = np.empty((n, 3))
    while t_next < t_end:
        for j in range(10):
            ts = t_next + j * step / 10
            d = ts - time.time()
            if d > 0:
                await asyncio.sleep(d)
            elif d < -step:
                late += 1
            _plan_positions(off, tt, txyz, np.full(n, ts), pos)
            who = np.flatnonzero(slot == j)
            p = pos[who].copy()
            p[:, :2] += rng.normal(0, 1.5, (len(who), 2))
            lon, lat_ = frame.to_wgs84(p[:, 0], p[:, 1])
            t_tx = time.time()
            for k in (0, 1):
                mine = np.flatnonzero(who % 2 == k)
                for a in range(0, len(mine), 20):
                    msg = live_pb2.TelemetryRequest()
                    for q in mine[a:a + 20]:
                        r = msg.reports.add(report_id=rid, flight_id=trs[who[q]].flight_id,
                                            time=timestamp(ts), alt_amsl_m=float(p[q, 2]))
                        r.position.lon_deg = float(lon[q])
                        r.position.lat_deg = float(lat_[q])
                        sent[rid] = t_tx
                        rid += 1
                    queues[k].put_nowait(msg)
        t_next += step
    t_wait = time.time() + 10
    while sent and time.time() < t_wait:
        await asyncio.sleep(0.05)
    for q in queues:
        q.put_nowait(None)
    for c in calls:
        c.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await ch.close()
    ms = np.array(lat) * 1e3
    return {"drones": n, "rate_hz": rate, "reports": rid - 1,
            "reports_per_s": round((rid - 1) / duration), "acked": int(ms.size),
            "unacked": len(sent), "ingest_p50_ms": round(float(np.percentile(ms, 50)), 1),
            "ingest_p99_ms": round(float(np.percentile(ms, 99)), 1),
            "ingest_max_ms": round(float(ms.max()), 1), "ticks_late": late,
            "statuses": statuses}


def _cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drones", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--serve", nargs=3, metavar=("PORTFILE", "N", "T0"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        serve(a.serve[0], int(a.serve[1]), float(a.serve[2]))
        return
    t0 = time.time()                 # every flight departed 15 s ago (15 min long)
    portfile = Path(tempfile.mkdtemp()) / "port"
    srv = subprocess.Popen([sys.executable, __file__, "--serve", str(portfile),
                            str(a.drones), str(t0)])
    try:
        while not portfile.exists() or not portfile.read_text():
            if srv.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.5)
        cpu0, w0 = _cpu_s(srv.pid), time.time()
        rep = asyncio.run(stream(int(portfile.read_text()), a.drones, a.rate,
                                 a.duration, t0))
        rep["server_cpu_share"] = round((_cpu_s(srv.pid) - cpu0) / (time.time() - w0), 2)
        rep["load_avg"] = open("/proc/loadavg").read().split()[:3]
        print(json.dumps(rep))
    finally:
        srv.terminate()
        srv.wait(30)


if __name__ == "__main__":
    main()
