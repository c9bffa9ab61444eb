"""Web map figures (issue 12): first render, change-to-page latency, frame time.

Usage::

    python benchmarks/bench_web.py [--reloads 5] [--bookings 20] [--flights 1000]
                                   [--synthetic-km 10] [--workdir /tmp/skytwin-bench-web]

Everything is real: a gRPC server and its web map in one process on free ports
(``skytwin.server.web.start_web`` over the server's own ServiceCore), and the page in
headless Chromium (Debian's chromium + chromedriver via selenium, the browser the tests
use). This machine has no GPU: WebGL is SwiftShader (software), so frame times here are
an upper bound on what a person with any GPU sees.

1. **Bundled city, page load to first full render**: the page is reloaded with the
   token in its session (as a signed-in user pressing F5); ``window.skytwin.
   firstRenderMs`` is the page's own ``performance.now()`` (since navigation start) at
   the first frame deck.gl drew with every layer loaded (buildings, zones, flights).
2. **Change to page**: flights booked through gRPC ``SubmitFlight`` one by one; the
   latency is from the moment the RPC returned to the moment the page first rendered
   a frame holding the flight (``window.skytwin.drawnUnixMs``, same machine clock),
   to the moment it entered the flights layer's data (``layerUnixMs``) and to the
   moment the pushed event arrived (``events[].receivedUnixMs``; the core publishes
   before the RPC's reply reaches the client, so this can be slightly negative).
3. **Frame time, 10 km synthetic city + 1,000 flights**: the synthetic twin
   (``fixtures.synthetic_city``, 100,000 buildings, sent as minimum rotated rectangles:
   ``views.EXACT_MAX_BUILDINGS``) and 1,000 accepted flights written to the store
   before the server starts (straight 4D trajectories at 150-200 m AMSL over the city,
   ``fixtures.traffic.direct_route``/``timed``: the renderer's load, not the planner's;
   the server restores them as it does after a restart). Measured: first render, the
   full redraw time (``deck.redraw`` + a 1-pixel ``readPixels`` that waits for the GPU,
   mean of 10) in the overview and zoomed in to a district, and the animation frame
   interval while the drones move (median, p95 of ``requestAnimationFrame`` deltas).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FROM = (24.94030, 60.17150)
TO = (24.95240, 60.16760)


def _serve(db, twin=None, ref=None):
    """gRPC + web map on free ports in a background loop; ``(running, web)``."""
    import threading

    from skytwin.server.app import ServerConfig, build_server, start
    from skytwin.server.auth import DEV_TOKENS, Authenticator
    from skytwin.server.web.app import start_web
    from tests.grpc_fixtures import RunningServer, helsinki_twin
    if twin is None:
        twin, ref = helsinki_twin()
    cfg = ServerConfig(db=db, auth=DEV_TOKENS, port=0, workers=2)
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()

    async def boot():
        server, port = build_server(cfg, twin=twin, twin_ref=ref)
        await start(server)
        web = await start_web(server.skytwin_core, Authenticator.from_file(DEV_TOKENS))
        return server, port, web

    server, port, web = asyncio.run_coroutine_threadsafe(boot(), loop).result(600)
    rs = RunningServer(port, server.skytwin_core, loop, th, server)
    rs.web = web
    return rs


def _stop(rs):
    asyncio.run_coroutine_threadsafe(rs.web.stop(), rs.loop).result(30)
    rs.stop()


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs, float), q))


def bundled(reloads: int, bookings: int) -> dict:
    from skytwin.server.convert import timestamp
    from skytwin.server.web import browser as wb
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    from skytwin.v1 import flights_pb2_grpc as frpc
    from tests.grpc_fixtures import OP_A, REG, md
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        rs = _serve(Path(tmp) / "s.db")
        drv = wb.new_browser()
        try:
            wb.sign_in(drv, rs.web.url, REG)
            loads = []
            for _ in range(reloads):
                drv.refresh()
                wb.wait_for(drv, "window.skytwin && window.skytwin.ready", 60)
                loads.append(drv.execute_script("return window.skytwin.firstRenderMs"))
            out["first_render_ms"] = loads
            ch = rs.channel()
            f = frpc.FlightServiceStub(ch)
            now = time.time()
            drawn, pushed, layer = [], [], []
            pairs = [(FROM, TO), (TO, FROM)]
            for k in range(bookings):
                a, b = pairs[k % len(pairs)]
                r = f.SubmitFlight(fpb.SubmitFlightRequest(
                    request_id=f"bench-{k}", route=fpb.RouteRequest(
                        start=apb.LonLat(lon_deg=a[0], lat_deg=a[1]),
                        goal=apb.LonLat(lon_deg=b[0], lat_deg=b[1]),
                        departure_time=timestamp(now + 600 + 120 * k))),
                    metadata=md(OP_A)).flight
                t_ret = time.time()
                ms = wb.wait_for(drv, f"window.skytwin.drawnUnixMs['{r.flight_id}']", 10,
                                 0.005)
                ev = drv.execute_script(f"return window.skytwin.events.find(e => "
                                        f"e.subject === '{r.flight_id}').receivedUnixMs")
                lay = drv.execute_script(f"return window.skytwin.layerUnixMs['{r.flight_id}']")
                layer.append(lay / 1000.0 - t_ret)
                drawn.append(ms / 1000.0 - t_ret)
                pushed.append(ev / 1000.0 - t_ret)
            ch.close()
            out["drawn_s"], out["pushed_s"], out["layer_s"] = drawn, pushed, layer
        finally:
            drv.quit()
            _stop(rs)
    return out


def _synthetic(workdir: Path, km: float):
    from skytwin.airspace.twin import Twin, build_twin
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    p = workdir / f"synthetic_{km:g}km.npz"
    if not p.exists():
        frame = synthetic_frame()
        n = int(1000 * km * km)
        t = time.perf_counter()
        twin = build_twin(generate_city(size_m=km * 1000.0, n_buildings=n, seed=0,
                                        frame=frame), frame=frame)
        print(f"built the {km:g} km twin ({len(twin.buildings)} buildings) in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
        twin.save(p)
    return Twin.load(p), {"twin": str(p)}


def _fleet(twin, store, n: int, now: float) -> None:
    """``n`` accepted straight flights over the twin (two operators), into ``store``."""
    from skytwin.fixtures.traffic import direct_route, timed
    from skytwin.planner.trajectory import Trajectory
    from skytwin.server.store import FlightRecord
    g = twin.grid
    rng = np.random.default_rng(1)
    recs = []
    for k in range(n):
        a = rng.uniform([g.x0_m + 200, g.y0_m + 200], [g.x1_m - 200, g.y1_m - 200])
        b = rng.uniform([g.x0_m + 200, g.y0_m + 200], [g.x1_m - 200, g.y1_m - 200])
        z = 150.0 + 50.0 * rng.random()
        xyz = direct_route(a, b, z)
        xyz[[0, -1], 2] = 150.0   # the display needs no take-off: start in the air
        t = timed(xyz, now - 300.0 + 900.0 * rng.random())
        tr = Trajectory(f"F-bench{k:05d}", xyz, t)
        lon, lat = twin.frame.to_wgs84(xyz[:, 0], xyz[:, 1])
        recs.append(FlightRecord(
            flight_id=tr.flight_id, operator_id="op-a" if k % 2 else "op-b",
            request_id=f"bench-{k}", status="accepted", trajectory=tr,
            lonlat_deg=np.column_stack([lon, lat]), alt_amsl_m=xyz[:, 2].copy(),
            alt_agl_m=xyz[:, 2].copy(), priority=1.0, created_s=now, meta={}))
    store.add_flights(recs)


def synthetic(workdir: Path, km: float, flights: int) -> dict:
    from skytwin.server.store import Store
    from skytwin.server.web import browser as wb
    from tests.grpc_fixtures import REG
    twin, ref = _synthetic(workdir, km)
    out = {"buildings": len(twin.buildings)}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.db"
        st = Store(db)
        _fleet(twin, st, flights, time.time())
        st.close()
        rs = _serve(db, twin, ref)
        drv = wb.new_browser()
        try:
            wb.sign_in(drv, rs.web.url, REG, timeout_s=300)
            drv.refresh()
            wb.wait_for(drv, "window.skytwin && window.skytwin.ready", 300)
            out["first_render_ms"] = drv.execute_script("return window.skytwin.firstRenderMs")
            out["flights_drawn"] = drv.execute_script("return window.skytwin.flights")
            out["buildings_drawn"] = drv.execute_script("return window.skytwin.buildings")
            out["lod"] = drv.execute_script(
                "return window.skytwin.deck.props.layers[1].props.data.length")

            def redraw_ms():
                return drv.execute_script("""
                  const dk = window.skytwin.deck, gl = dk.device.gl, px = new Uint8Array(4);
                  const t0 = performance.now();
                  for (let i = 0; i < 10; i++) { dk.redraw('bench');
                    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); }
                  return (performance.now() - t0) / 10;""")
            out["redraw_overview_ms"] = redraw_ms()
            drv.execute_script("window.skytwin.setView({zoom: 15.5, pitch: 50})")
            time.sleep(2.0)
            out["redraw_district_ms"] = redraw_ms()
            drv.execute_script("window.skytwin.frameMs.length = 0")
            time.sleep(10.0)
            fr = drv.execute_script("return window.skytwin.frameMs.slice()")
            out["raf_ms"] = fr
            out["drones"] = drv.execute_script("return window.skytwin.drones")
        finally:
            drv.quit()
            _stop(rs)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--bookings", type=int, default=20)
    ap.add_argument("--flights", type=int, default=1000)
    ap.add_argument("--synthetic-km", type=float, default=10.0)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir())
                    / "skytwin-bench-web")
    a = ap.parse_args(argv)
    a.workdir.mkdir(parents=True, exist_ok=True)
    b = bundled(a.reloads, a.bookings)
    s = synthetic(a.workdir, a.synthetic_km, a.flights)
    rows = [
        ("bundled city (572 buildings): load to first full render [ms]",
         f"median {statistics.median(b['first_render_ms']):.0f}, max "
         f"{max(b['first_render_ms']):.0f} ({len(b['first_render_ms'])} reloads)", "< 3000"),
        ("booking over gRPC -> event on the page [ms]",
         f"median {1000 * statistics.median(b['pushed_s']):.0f}, p95 "
         f"{1000 * _pct(b['pushed_s'], 95):.0f}, max {1000 * max(b['pushed_s']):.0f}",
         "< 1000"),
        ("booking over gRPC -> in the page's flights layer [ms]",
         f"median {1000 * statistics.median(b['layer_s']):.0f}, p95 "
         f"{1000 * _pct(b['layer_s'], 95):.0f}, max {1000 * max(b['layer_s']):.0f}",
         "< 1000"),
        ("booking over gRPC -> frame drawn with it (SwiftShader) [ms]",
         f"median {1000 * statistics.median(b['drawn_s']):.0f}, p95 "
         f"{1000 * _pct(b['drawn_s'], 95):.0f}, max {1000 * max(b['drawn_s']):.0f} "
         f"({len(b['drawn_s'])} bookings)", "< 1000"),
        (f"{a.synthetic_km:g} km city ({s['buildings']} buildings, {s['lod']} boxes) + "
         f"{s['flights_drawn']} flights: load to first full render [ms]",
         f"{s['first_render_ms']:.0f}", ""),
        ("  full redraw, overview [ms]", f"{s['redraw_overview_ms']:.0f}", ""),
        ("  full redraw, district (zoom 15.5) [ms]", f"{s['redraw_district_ms']:.0f}", ""),
        (f"  animation frame interval, {s['drones']} drones moving [ms]",
         f"median {statistics.median(s['raf_ms']):.0f}, p95 {_pct(s['raf_ms'], 95):.0f}",
         ""),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'value':<48}  target")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<48}  {r[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
