"""Screenshots of the web map for the README (issue 12), with the browser the tests use.

Usage: ``python benchmarks/web_screenshots.py --out docs/img``

Starts a real server (the bundled city, a temporary store) with its web map on free
ports, creates two zones over the service core (a permanent circle, a temporary
polygon) and books flights as two operators through gRPC, then opens the map in
headless Chromium (Debian's chromium + chromedriver via selenium) as the development
regulator and saves:

* ``web_city.png``: the city overview (buildings coloured by height, unknown heights
  grey to the ceiling, zones, flights);
* ``web_zone.png``: a closer look at a zone volume;
* ``web_flight.png``: a flight in the air (time slider mid-flight), its 4D path and drone;
* ``web_gridcode.png``: the click panel on a building (grid code, Beidou code,
  ground and roof heights, what blocks the point, zones);
* ``web_ground.png``: the ground-risk layer (cells by SORA band) and the derived zones
  (by category), switched on in the legend.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FROM = (24.94030, 60.17150)   # Railway Square
TO = (24.95240, 60.16760)     # Market Square
MID = (24.94828, 60.17026)    # half-way along the route between them
OTHER = [(TO, FROM), (MID, FROM), (FROM, MID), (MID, TO)]


def start(db):
    """gRPC + web map on free ports, in a background loop (tests' fixture)."""
    from skytwin.server.auth import DEV_TOKENS, Authenticator
    from skytwin.server.web.app import start_web
    from tests.grpc_fixtures import start_server
    s = start_server(db)
    s.web = asyncio.run_coroutine_threadsafe(
        start_web(s.core, Authenticator.from_file(DEV_TOKENS), hub=s.server.skytwin_hub),
        s.loop).result(30)
    return s


def stop(s):
    asyncio.run_coroutine_threadsafe(s.web.stop(), s.loop).result(30)
    s.stop()


def populate(s, now):
    """Two zones and a few flights, through gRPC as a client would."""
    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    from skytwin.v1 import flights_pb2_grpc as frpc
    from skytwin.v1 import zones_pb2 as zpb
    from skytwin.v1 import zones_pb2_grpc as zrpc
    from tests.grpc_fixtures import OP_A, OP_B, REG, md
    ch = s.channel()
    f, z = frpc.FlightServiceStub(ch), zrpc.ZoneServiceStub(ch)
    agl = apb.ALTITUDE_REFERENCE_AGL

    def ll(p):
        return apb.LonLat(lon_deg=p[0], lat_deg=p[1])

    z.CreateZone(zpb.CreateZoneRequest(zone=zpb.Zone(
        id="HEL-PALACE", name="Presidential palace", circle=zpb.Circle(
            centre=ll((24.9560, 60.1685)), radius_m=120.0),
        lower=apb.Altitude(value_m=0, reference=agl),
        upper=apb.Altitude(value_m=150, reference=agl), reason="security")),
        metadata=md(REG))
    poly = [(24.9440, 60.1700), (24.9470, 60.1700), (24.9470, 60.1712), (24.9440, 60.1712)]
    z.CreateZone(zpb.CreateZoneRequest(zone=zpb.Zone(
        id="EVENT-1", name="concert", polygon=zpb.Polygon(vertices=[ll(p) for p in poly]),
        lower=apb.Altitude(value_m=0, reference=agl),
        upper=apb.Altitude(value_m=90, reference=agl), reason="public event",
        active_from=timestamp(now - 60), active_until=timestamp(now + 3 * 3600))),
        metadata=md(REG))
    flights = []
    for k, (a, b) in enumerate([(FROM, TO), *OTHER]):
        tok = OP_A if k % 2 == 0 else OP_B
        try:
            flights.append(f.SubmitFlight(fpb.SubmitFlightRequest(
                request_id=f"shot-{k}", route=fpb.RouteRequest(
                    start=ll(a), goal=ll(b), departure_time=timestamp(now + 20 + 40 * k))),
                metadata=md(tok)).flight)
        except grpc.RpcError as exc:   # a refused booking is no reason to stop
            print(f"booking {k} refused: {exc.details()}", file=sys.stderr)
    ch.close()
    return flights


def shoot(out: Path, width=1400, height=900) -> list[Path]:
    from skytwin.server.web import browser as wb
    from tests.grpc_fixtures import REG
    why = wb.missing()
    if why:
        raise SystemExit(f"no browser: {why}")
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as tmp:
        s = start(Path(tmp) / "store.db")
        drv = wb.new_browser(width, height)
        try:
            now = time.time()
            flights = populate(s, now)
            wb.sign_in(drv, s.web.url, REG)
            time.sleep(1.0)

            def save(name):
                time.sleep(1.5)
                p = out / name
                drv.save_screenshot(str(p))
                saved.append(p)

            save("web_city.png")
            drv.execute_script("window.skytwin.setView({longitude: 24.9560, latitude: "
                               "60.1655, zoom: 15.3, pitch: 45, bearing: -25})")
            save("web_zone.png")
            fl = flights[0]
            wps = fl.route.waypoints
            mid = wps[len(wps) // 2]
            t_mid = (wps[0].time.seconds + wps[-1].time.seconds) / 2
            drv.execute_script(f"window.skytwin.setTime({t_mid})")
            drv.execute_script(f"window.skytwin.setView({{longitude: {mid.position.lon_deg},"
                               f" latitude: {mid.position.lat_deg - 0.0015}, zoom: 15.5, "
                               "pitch: 50, bearing: 10})")
            save("web_flight.png")
            drv.execute_script("window.skytwin.setView({longitude: 24.9450, latitude: "
                               "60.1690, zoom: 16.5, pitch: 45, bearing: 0})")
            time.sleep(1.0)
            twin = s.core.twin
            b = max((b for b in twin.buildings if b.height_source != "unknown"),
                    key=lambda b: b.top_m - b.ground_m)
            p = b.footprint.representative_point()
            lon, lat = twin.frame.to_wgs84(p.x, p.y)
            drv.execute_script(f"window.skytwin.setView({{longitude: {lon}, latitude: "
                               f"{lat}, zoom: 15.7, pitch: 30, bearing: 0}})")
            time.sleep(1.0)
            from selenium.webdriver.common.action_chains import ActionChains
            canvas = drv.find_element("css selector", "#map canvas")
            x, y, *_ = drv.execute_script(f"return window.skytwin.project({lon}, {lat}, 0)")
            ActionChains(drv).move_to_element_with_offset(
                canvas, int(x - canvas.size["width"] / 2),
                int(y - canvas.size["height"] / 2)).click().perform()
            wb.wait_for(drv, "window.skytwin.point", 20)
            save("web_gridcode.png")
            drv.find_element("id", "risk-toggle").click()
            wb.wait_for(drv, "window.skytwin.risk", 20)
            drv.execute_script("window.skytwin.setView({longitude: 24.9470, latitude: "
                               "60.1655, zoom: 15.2, pitch: 35, bearing: -15})")
            save("web_ground.png")
        finally:
            drv.quit()
            stop(s)
    return saved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    a = ap.parse_args(argv)
    for p in shoot(a.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
