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
2. **Change to page** (and **telemetry to page**: one flight reports its position over
   gRPC ``LiveService.ReportBatch`` every 0.5 s; the latency is from the RPC's return to
   the page holding that report, ``window.skytwin.liveDronesUnixMs``): flights booked through gRPC ``SubmitFlight`` one by one; the
   latency is from the moment the RPC returned to the moment the page first rendered
   a frame holding the flight (``window.skytwin.drawnUnixMs``, same machine clock),
   to the moment it entered the flights layer's data (``layerUnixMs``) and to the
   moment the pushed event arrived (``events[].receivedUnixMs``; the core publishes
   before the RPC's reply reaches the client, so this can be slightly negative).
3. **Frame time, 10 km synthetic city + 1,000 flights, with the bundled city as the
   peer in the same browser session**: the synthetic twin (``fixtures.synthetic_city``,
   100,000 buildings: blocks in the overview, the district's buildings once zoomed in,
   ``views.EXACT_MAX_BUILDINGS``) and 1,000 accepted flights written to the store
   before the server starts (straight 4D trajectories at 150-200 m AMSL over the city,
   ``fixtures.traffic.direct_route``/``timed``: the renderer's load, not the planner's;
   the server restores them as it does after a restart). On each page: the interval
   between ``requestAnimationFrame`` callbacks (what a person sees as frames) while the
   drones move and nothing else happens (8 s), and while the camera turns every frame
   (6 s of ``setView`` from ``requestAnimationFrame``, as a drag does), p50 / p95 / max
   and the share of frames over 100 ms; the same turn with the motion level of detail
   off (``skytwin.adaptive = false``: full resolution, flight lines kept) as the A/B;
   and the cost of one full redraw of each deck (``deck.redraw`` + a 1-pixel
   ``readPixels`` that waits for the renderer, mean of 4, the page's loop paused).
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
        web = await start_web(server.skytwin_core, Authenticator.from_file(DEV_TOKENS),
                              hub=server.skytwin_hub)
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


PAN = """
  const S = window.skytwin, done = arguments[arguments.length - 1], t0 = performance.now();
  const b0 = S.deck.props.viewState.bearing;
  let last = null; const out = [];
  function step(ts) {
    if (last !== null) out.push(ts - last);
    last = ts;
    S.setView({bearing: b0 + (ts - t0) / 100});
    if (ts - t0 < arguments_s * 1000) requestAnimationFrame(step); else done(out);
  }
  requestAnimationFrame(step);"""

REDRAW = """
  const dk = arguments[0] === 'live' ? window.skytwin.liveDeck : window.skytwin.deck;
  const gl = dk.device.gl, px = new Uint8Array(4);
  dk.redraw('bench'); gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
  const t0 = performance.now();
  for (let i = 0; i < 4; i++) { dk.redraw('bench');
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); }
  return (performance.now() - t0) / 4;"""


def frame_figures(drv, anim_s: float = 8.0, pan_s: float = 6.0) -> dict:
    """Frame intervals on the open page: drones moving, camera turning (with and
    without the motion level of detail), and one full redraw of each deck [ms]."""
    out = {}
    drv.set_script_timeout(120)
    drv.execute_script("window.skytwin.frameMs.length = 0")
    time.sleep(anim_s)
    out["anim"] = drv.execute_script("return window.skytwin.frameMs.slice()")
    out["drones"] = drv.execute_script("return window.skytwin.drones")
    for key, adaptive in (("pan", True), ("pan_full", False)):
        drv.execute_script(f"window.skytwin.adaptive = {str(adaptive).lower()}")
        out[key] = drv.execute_async_script(PAN.replace("arguments_s", str(pan_s)))
        time.sleep(1.5)   # the camera rests: full resolution again
    drv.execute_script("window.skytwin.adaptive = true; window.skytwin.paused = true")
    time.sleep(0.5)
    out["redraw_scene"] = drv.execute_script(REDRAW, "scene")
    out["redraw_live"] = drv.execute_script(REDRAW, "live")
    drv.execute_script("window.skytwin.paused = false")
    return out


def _frames_row(xs) -> str:
    xs = np.asarray(xs, float)
    if not len(xs):
        return "no frames"
    return (f"p50 {np.median(xs):.0f}, p95 {_pct(xs, 95):.0f}, max {xs.max():.0f}, "
            f"{100.0 * np.mean(xs > 100):.0f}% > 100 ms ({len(xs)} frames)")


def _telemetry_latency(rs, ch, drv, fstub, pairs, n: int) -> list:
    """Telemetry over gRPC ``ReportBatch`` -> the drone at that report on the page [s]:
    one flight reports its planned position every 0.5 s, ``n`` times."""
    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    from skytwin.v1 import live_pb2 as lpb
    from skytwin.v1 import live_pb2_grpc as lrpc
    from tests.grpc_fixtures import OP_A, md
    a, b = pairs[0]
    fl = fstub.SubmitFlight(fpb.SubmitFlightRequest(
        request_id="bench-tele", route=fpb.RouteRequest(
            start=apb.LonLat(lon_deg=a[0], lat_deg=a[1]),
            goal=apb.LonLat(lon_deg=b[0], lat_deg=b[1]),
            departure_time=timestamp(time.time() + 1.0))), metadata=md(OP_A)).flight
    live = lrpc.LiveServiceStub(ch)
    pad = fl.route.waypoints[0]
    out = []
    for k in range(n):
        t = round(time.time(), 3)
        r = lpb.PositionReport(report_id=k + 1, flight_id=fl.flight_id,
                               time=timestamp(t), alt_amsl_m=pad.alt_amsl_m + 0.5 * k)
        r.position.lon_deg, r.position.lat_deg = pad.position.lon_deg, pad.position.lat_deg
        live.ReportBatch(lpb.ReportBatchRequest(reports=[r]), metadata=md(OP_A))
        t_ret = time.time()
        wb_wait = (f"(d => d && Math.abs(d.t - {t}) < 0.002)(window.skytwin.liveDrones && "
                   f"window.skytwin.liveDrones['{fl.flight_id}']) && "
                   "window.skytwin.liveDronesUnixMs")
        from skytwin.server.web import browser as wb
        ms = wb.wait_for(drv, wb_wait, 10, 0.005)
        out.append(ms / 1000.0 - t_ret)
        time.sleep(0.5)
    return out


def bundled(drv, reloads: int, bookings: int) -> dict:
    from skytwin.server.convert import timestamp
    from skytwin.server.web import browser as wb
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    from skytwin.v1 import flights_pb2_grpc as frpc
    from tests.grpc_fixtures import OP_A, REG, md
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        rs = _serve(Path(tmp) / "s.db")
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
            out["drawn_s"], out["pushed_s"], out["layer_s"] = drawn, pushed, layer
            # the peer for the frame figures: a few drones in the air over the city
            t0 = time.time()
            for k in range(6):
                a, b = pairs[k % len(pairs)]
                f.SubmitFlight(fpb.SubmitFlightRequest(
                    request_id=f"bench-air-{k}", route=fpb.RouteRequest(
                        start=apb.LonLat(lon_deg=a[0], lat_deg=a[1]),
                        goal=apb.LonLat(lon_deg=b[0], lat_deg=b[1]),
                        departure_time=timestamp(t0 - 20 - 15 * k))), metadata=md(OP_A))
            wb.wait_for(drv, "window.skytwin.drones >= 3", 20)
            out["telemetry_s"] = _telemetry_latency(rs, ch, drv, f, pairs, 10)
            ch.close()
            out["frames"] = frame_figures(drv)
        finally:
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


def synthetic(drv, workdir: Path, km: float, flights: int) -> dict:
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
        try:
            wb.sign_in(drv, rs.web.url, REG, timeout_s=300)
            drv.refresh()
            wb.wait_for(drv, "window.skytwin && window.skytwin.ready", 300)
            out["first_render_ms"] = drv.execute_script("return window.skytwin.firstRenderMs")
            out["flights_drawn"] = drv.execute_script("return window.skytwin.flights")
            out["buildings_drawn"] = drv.execute_script("return window.skytwin.buildings")
            out["lod"] = drv.execute_script("return window.skytwin.buildingsDrawn")
            out["overview"] = frame_figures(drv)
            drv.execute_script("window.skytwin.setView({zoom: 15.5, pitch: 50})")
            if drv.execute_script("return window.skytwin.buildingsLod") == "blocks":
                wb.wait_for(drv, "window.skytwin.detail", 60)
            time.sleep(2.0)
            out["detail"] = drv.execute_script("return window.skytwin.detail") or {
                "count": out["buildings_drawn"], "lod": "exact"}
            out["district"] = frame_figures(drv)
        finally:
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
    from skytwin.server.web import browser as wb
    drv = wb.new_browser()
    try:
        b = bundled(drv, a.reloads, a.bookings)
        s = synthetic(drv, a.workdir, a.synthetic_km, a.flights)
    finally:
        drv.quit()
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
        ("telemetry over gRPC (ReportBatch) -> drone at that report on the page [ms]",
         f"median {1000 * statistics.median(b['telemetry_s']):.0f}, p95 "
         f"{1000 * _pct(b['telemetry_s'], 95):.0f}, max "
         f"{1000 * max(b['telemetry_s']):.0f} ({len(b['telemetry_s'])} reports)", "< 1000"),
        (f"{a.synthetic_km:g} km city ({s['buildings']} buildings, {s['lod']} blocks) + "
         f"{s['flights_drawn']} flights: load to first full render [ms]",
         f"{s['first_render_ms']:.0f}", ""),
    ]
    for name, fr in (("bundled city (peer)", b["frames"]),
                     (f"{a.synthetic_km:g} km + {s['flights_drawn']} flights, overview",
                      s["overview"]),
                     (f"{a.synthetic_km:g} km, district (zoom 15.5, "
                      f"{s['detail']['count']} buildings {s['detail']['lod']})",
                      s["district"])):
        rows += [
            (f"{name}: frame interval, {fr['drones']} drones moving [ms]",
             _frames_row(fr["anim"]), ""),
            (f"{name}: frame interval, camera turning [ms]", _frames_row(fr["pan"]), ""),
            (f"{name}: same, motion LOD off (A/B) [ms]", _frames_row(fr["pan_full"]), ""),
            (f"{name}: one redraw, scene / live deck [ms]",
             f"{fr['redraw_scene']:.0f} / {fr['redraw_live']:.0f}", ""),
        ]
    bo, so = b["frames"], s["overview"]
    rows.append(("ratio 10 km / bundled, p95 frame interval: drones moving, camera "
                 "turning", f"{_pct(so['anim'], 95) / _pct(bo['anim'], 95):.1f}x, "
                 f"{_pct(so['pan'], 95) / _pct(bo['pan'], 95):.1f}x", ""))
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'value':<62}  target")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<62}  {r[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
