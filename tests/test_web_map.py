"""The web map (issue 12) in a real browser: a real server, headless Chromium.

One gRPC server with its web map on OS-chosen ports (same process, same core), and one
browser session shared by the module. The page exposes its own state on
``window.skytwin`` (counts of what it draws, the flights and zones it holds, the events
it received); the tests compare it with what the service holds over gRPC. Browser tests
skip with the reason when Chromium, chromedriver or selenium is missing (.ci/run
installs them); the HTTP tests run everywhere.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import urllib.error
import urllib.request

import pytest
import shapely

from skytwin.server.auth import DEV_TOKENS, Authenticator
from skytwin.server.convert import timestamp
from skytwin.server.web import browser as web_browser
from skytwin.server.web.app import start_web
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import live_pb2 as lpb
from skytwin.v1 import live_pb2_grpc as lrpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, md, start_server

FROM = (24.94030, 60.17150)   # Railway Square
TO = (24.95240, 60.16760)     # Market Square


def now_s():
    """Now (departures are relative to the test, not to collection time)."""
    return time.time()


def ll(p):
    return apb.LonLat(lon_deg=p[0], lat_deg=p[1])


def route_req(depart_s, a=FROM, b=TO):
    return fpb.RouteRequest(start=ll(a), goal=ll(b), departure_time=timestamp(depart_s))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("web") / "store.db")
    web = asyncio.run_coroutine_threadsafe(
        start_web(s.core, Authenticator.from_file(DEV_TOKENS), hub=s.server.skytwin_hub),
        s.loop).result(30)
    s.web = web
    yield s
    asyncio.run_coroutine_threadsafe(web.stop(), s.loop).result(30)
    s.stop()


@pytest.fixture(scope="module")
def stubs(srv):
    ch = srv.channel()
    yield frpc.FlightServiceStub(ch), zrpc.ZoneServiceStub(ch)
    ch.close()


@pytest.fixture(scope="module")
def page(srv):
    why = web_browser.missing()
    if why:
        pytest.skip(f"no browser for the web map tests: {why}")
    drv = web_browser.new_browser()
    yield drv
    drv.quit()


def http(srv, path, token=None, method="GET", body=None, headers=None):
    """``(status, headers, body bytes)`` of one request to the map's server."""
    req = urllib.request.Request(srv.web.url.rstrip("/") + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def book(stubs, token, rid, depart_s, a=FROM, b=TO):
    return stubs[0].SubmitFlight(fpb.SubmitFlightRequest(
        request_id=rid, route=route_req(depart_s, a, b)), metadata=md(token)).flight


def js(page, expr):
    return page.execute_script("return " + expr)


# ------------------------------------------------------------------ HTTP only
def test_page_and_assets_are_served_here_only(srv):
    status, headers, body = http(srv, "/")
    assert status == 200
    html = body.decode()
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in headers
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 4, assets   # 2 vendored bundles, app.js, style.css
    url_to_host = re.compile(rb"https?://[A-Za-z0-9]")
    assert not url_to_host.search(body)
    for a in assets:
        assert a.startswith("/static/"), a
        st, h, data = http(srv, a)
        assert st == 200, a
        assert not url_to_host.search(data), (a, url_to_host.search(data))
    # licences ship beside the bundles
    for lic in ("deck.gl-core.LICENSE.txt", "deck.gl-layers.LICENSE.txt"):
        st, _, data = http(srv, f"/static/vendor/{lic}")
        assert st == 200 and b"Permission is hereby granted" in data
    assert http(srv, "/static/../app.py")[0] == 404


def test_api_auth_roles_and_closed_cors(srv):
    st, _, body = http(srv, "/api/session")
    assert st == 401 and json.loads(body)["error"]["code"] == "UNAUTHENTICATED"
    assert http(srv, "/api/session", token="not-a-token")[0] == 401
    st, _, body = http(srv, "/api/session", token=OP_A)
    assert st == 200 and json.loads(body)["operator_id"] == "op-a"
    # the token is never accepted in a URL
    st, _, body = http(srv, f"/api/session?token={REG}")
    assert st == 400 and "Authorization header" in json.loads(body)["error"]["message"]
    zone = {"circle": {"lon_deg": 24.945, "lat_deg": 60.17, "radius_m": 30},
            "lower": {"value_m": 0, "reference": "AGL"},
            "upper": {"value_m": 60, "reference": "AGL"}}
    # an operator cannot create a zone; another origin cannot even with a good token
    st, _, body = http(srv, "/api/zones", token=OP_A, method="POST", body=zone)
    assert st == 403 and json.loads(body)["error"]["code"] == "PERMISSION_DENIED"
    st, h, body = http(srv, "/api/zones", token=REG, method="POST", body=zone,
                       headers={"Origin": "http://evil.example"})
    assert st == 403 and "CORS" in json.loads(body)["error"]["message"]
    assert "Access-Control-Allow-Origin" not in h
    assert not any(z.circle is not None and z.circle.radius_m == 30
                   for z in srv.core.list_zones())
    # the ground layers: signed in only, a clear error for a bad parameter
    assert http(srv, "/api/ground")[0] == 401
    st, _, body = http(srv, "/api/ground?risk=2", token=OP_A)
    assert st == 400 and "risk must be 0 or 1" in json.loads(body)["error"]["message"]
    # a malformed zone is refused naming the field
    st, _, body = http(srv, "/api/zones", token=REG, method="POST",
                       body={**zone, "circle": {"lon_deg": 24.945, "lat_deg": 60.17}})
    assert st == 400 and "circle" in json.loads(body)["error"]["message"]


def test_point_panel_data(srv):
    twin = srv.core.twin
    b = max((b for b in twin.buildings if b.height_source != "unknown"),
            key=lambda b: b.footprint.area)
    p = b.footprint.representative_point()
    lon, lat = twin.frame.to_wgs84(p.x, p.y)
    st, _, body = http(srv, f"/api/point?lon={lon:.8f}&lat={lat:.8f}&alt_agl_m=0",
                       token=OP_B)
    d = json.loads(body)
    assert st == 200, d
    assert d["roof"]["building_id"] == str(b.id) or d["roof"]["roof_m"] >= b.top_m - 0.01
    assert d["blocked"] and {"kind": "building", "id": str(b.id)} in d["blocked_by"]
    import h3
    assert d["h3_cell"] == h3.latlng_to_cell(lat, lon, h3.get_resolution(d["h3_cell"]))
    assert d["beidou"].startswith("N") and len(d["beidou"]) > 10


# ------------------------------------------------------------------ in the browser
def test_map_draws_the_city_zones_and_flights(srv, stubs, page):
    zone = zpb.Zone(id="WEB-T1", circle=zpb.Circle(centre=ll((24.9450, 60.1690)),
                                                  radius_m=40.0),
                    lower=apb.Altitude(value_m=0, reference=apb.ALTITUDE_REFERENCE_AGL),
                    upper=apb.Altitude(value_m=80, reference=apb.ALTITUDE_REFERENCE_AGL),
                    reason="test")
    stubs[1].CreateZone(zpb.CreateZoneRequest(zone=zone), metadata=md(REG))
    fa = book(stubs, OP_A, "web-a1", now_s() + 5)
    fb = book(stubs, OP_B, "web-b1", now_s() + 400, a=TO, b=FROM)
    ms = web_browser.sign_in(page, srv.web.url, REG)
    assert ms < 30_000
    twin = srv.core.twin
    assert js(page, "window.skytwin.buildings") == len(twin.buildings)
    assert js(page, "window.skytwin.role") == "regulator"
    assert set(js(page, "window.skytwin.zoneIds")) == {z.id for z in srv.core.list_zones()}
    assert {fa.flight_id, fb.flight_id} <= set(js(page, "window.skytwin.flightIds"))
    # the deck.gl layers hold the same objects the counts say (scene deck: buildings as
    # binary attributes, one ring per footprint part; live deck: drones)
    n = js(page, "Object.fromEntries(window.skytwin.deck.props.layers.map("
                 "l => [l.id, l.props.data.length]))")
    assert n["flights"] == js(page, "window.skytwin.flightSegments") \
        >= js(page, "window.skytwin.flights")
    assert n["zones"] == js(page, "window.skytwin.zonesActive") >= 1
    assert n["buildings"] >= len(twin.buildings)
    # unknown-height buildings are drawn to the ceiling, in their own colour
    unknown = [k for k, b in enumerate(twin.buildings) if b.height_source == "unknown"]
    if unknown:
        got = js(page, f"window.skytwin.buildingInfo({unknown[0]})")
        assert got["unknown"] and got["colour"][:3] == [118, 118, 118]
        assert got["h"] == pytest.approx(twin.buildings[unknown[0]].top_m
                                         - min(twin.buildings[unknown[0]].base_m,
                                               twin.buildings[unknown[0]].ground_m), abs=0.02)
    # something is drawn: the canvas is not one colour
    from PIL import Image
    img = Image.open(io.BytesIO(page.get_screenshot_as_png())).convert("RGB")
    assert len(img.getcolors(1 << 20)) > 200
    # the airborne flight moves: its drone is on the map now
    web_browser.wait_for(page, "window.skytwin.drones >= 1", 10)


def test_booking_over_grpc_appears_within_1s(srv, stubs, page):
    if not js(page, "window.skytwin && window.skytwin.ready"):
        web_browser.sign_in(page, srv.web.url, REG)
    lat = []
    for k in range(3):
        f = book(stubs, OP_A, f"web-live-{k}", now_s() + 3600 + 300 * k)
        t_booked = time.time()
        # on the map: in the data of the flights layer (deck.gl draws it in its next
        # frame, which a software renderer takes ~0.3-0.5 s to finish: checked too)
        on_map = web_browser.wait_for(
            page, f"window.skytwin.layerUnixMs['{f.flight_id}']", 5, 0.01)
        drawn = web_browser.wait_for(
            page, f"window.skytwin.drawnUnixMs['{f.flight_id}']", 5, 0.01)
        assert f.flight_id in js(page, "window.skytwin.flightIds")
        assert js(page, f"window.skytwin.events.some(e => e.subject === '{f.flight_id}')")
        lat.append((on_map / 1000.0 - t_booked, drawn / 1000.0 - t_booked))
    assert max(a for a, _ in lat) < 1.0, lat
    assert max(b for _, b in lat) < 3.0, lat


def test_regulator_draws_a_circle_zone_that_exists_over_grpc(srv, stubs, page):
    from selenium.webdriver.common.action_chains import ActionChains
    if not js(page, "window.skytwin && window.skytwin.ready"):
        web_browser.sign_in(page, srv.web.url, REG)
    # a flight crossing the centre: the new zone must highlight it
    f = book(stubs, OP_A, "web-cross", now_s() + 1800)
    web_browser.wait_for(page, f"window.skytwin.flightIds.includes('{f.flight_id}')", 5)
    wp = f.route.waypoints[len(f.route.waypoints) // 2]
    centre = (wp.position.lon_deg, wp.position.lat_deg)
    js(page, f"window.skytwin.setView({{longitude: {centre[0]}, latitude: {centre[1]}, "
             "zoom: 17, pitch: 0, bearing: 0}) || true")
    time.sleep(0.5)
    page.find_element("id", "draw-circle").click()
    canvas = page.find_element("css selector", "#map canvas")
    cw, ch = canvas.size["width"], canvas.size["height"]
    pts = [js(page, f"window.skytwin.project({centre[0]}, {centre[1]}, 0)"),
           js(page, f"window.skytwin.project({centre[0] + 0.0004}, {centre[1]}, 0)")]
    for n, (x, y, *_) in enumerate(pts, 1):
        assert js(page, f"document.elementFromPoint({x}, {y}).tagName") == "CANVAS"
        ActionChains(page).move_to_element_with_offset(
            canvas, int(x - cw / 2), int(y - ch / 2)).click().perform()
        web_browser.wait_for(page, f"window.skytwin.draft.pts.length === {n}", 10)
    for el, v in (("z-lower", "0"), ("z-upper", "90"), ("z-start", "0"), ("z-dur", "120"),
                  ("z-name", "drawn-by-test")):
        box = page.find_element("id", el)
        box.clear()
        box.send_keys(v)
    page.find_element("id", "z-create").click()
    zid = web_browser.wait_for(page, "window.skytwin.createdZone", 15)
    got = stubs[1].GetZone(zpb.GetZoneRequest(zone_id=zid), metadata=md(OP_B)).zone
    assert got.name == "drawn-by-test"
    assert got.upper.value_m == 90 and got.upper.reference == apb.ALTITUDE_REFERENCE_AGL
    # the radius is the distance between the two clicks (~22 m at this latitude)
    assert 10.0 < got.circle.radius_m < 40.0, got.circle.radius_m
    assert abs(got.circle.centre.lon_deg - centre[0]) < 2e-4
    assert abs(got.circle.centre.lat_deg - centre[1]) < 1e-4
    assert got.active_until.seconds - got.active_from.seconds == pytest.approx(7200, abs=2)
    assert f.flight_id in js(page, "window.skytwin.highlighted")
    web_browser.wait_for(page, f"window.skytwin.events.find(e => e.subject === '{zid}')", 5)


def test_regulator_draws_a_polygon_zone_with_band_and_window(srv, stubs, page):
    """Four clicks on the canvas (real pointer events), an AMSL band and a window
    starting later in the form: the zone exists over gRPC with those corners, band
    and window, and the flight crossing it is highlighted."""
    from selenium.webdriver.common.action_chains import ActionChains
    if js(page, "window.skytwin && window.skytwin.role") != "regulator":
        web_browser.sign_in(page, srv.web.url, REG)
    # departs in 15 min: it crosses the zone inside its window (10 to 40 min from now)
    f = book(stubs, OP_B, "web-poly", now_s() + 900, a=TO, b=FROM)
    web_browser.wait_for(page, f"window.skytwin.flightIds.includes('{f.flight_id}')", 5)
    wp = f.route.waypoints[len(f.route.waypoints) // 2]
    c = (wp.position.lon_deg, wp.position.lat_deg)
    js(page, f"window.skytwin.setView({{longitude: {c[0]}, latitude: {c[1]}, "
             "zoom: 17, pitch: 0, bearing: 0}) || true")
    time.sleep(0.5)
    page.find_element("id", "draw-polygon").click()
    canvas = page.find_element("css selector", "#map canvas#live")
    cw, ch = canvas.size["width"], canvas.size["height"]
    d_lon, d_lat = 0.0006, 0.0003   # about 33 m each way
    corners = [(c[0] - d_lon, c[1] - d_lat), (c[0] + d_lon, c[1] - d_lat),
               (c[0] + d_lon, c[1] + d_lat), (c[0] - d_lon, c[1] + d_lat)]
    for n, (lon, lat) in enumerate(corners, 1):
        x, y, *_ = js(page, f"window.skytwin.project({lon}, {lat}, 0)")
        ActionChains(page).move_to_element_with_offset(
            canvas, int(x - cw / 2), int(y - ch / 2)).click().perform()
        web_browser.wait_for(page, f"window.skytwin.draft.pts.length === {n}", 10)
    from selenium.webdriver.support.ui import Select
    Select(page.find_element("id", "z-ref")).select_by_visible_text("AMSL")
    for el, v in (("z-lower", "20"), ("z-upper", "150"), ("z-start", "10"),
                  ("z-dur", "30"), ("z-name", "polygon-by-test")):
        box = page.find_element("id", el)
        box.clear()
        box.send_keys(v)
    js(page, "(window.skytwin.createdZone = null) || true")
    t_click = time.time()
    page.find_element("id", "z-create").click()
    zid = web_browser.wait_for(page, "window.skytwin.createdZone", 15)
    got = stubs[1].GetZone(zpb.GetZoneRequest(zone_id=zid), metadata=md(OP_A)).zone
    assert got.name == "polygon-by-test"
    assert got.lower.value_m == 20 and got.lower.reference == apb.ALTITUDE_REFERENCE_AMSL
    assert got.upper.value_m == 150 and got.upper.reference == apb.ALTITUDE_REFERENCE_AMSL
    ring = [(p.lon_deg, p.lat_deg) for p in got.polygon.vertices]
    assert len(ring) in (4, 5)
    for (a, b), (lon, lat) in zip(ring, corners, strict=False):
        # one screen pixel at zoom 17 is ~0.7 m: the click lands within a few pixels
        assert abs(a - lon) < 3e-5 and abs(b - lat) < 2e-5, (ring, corners)
    assert got.active_from.seconds == pytest.approx(t_click + 600, abs=30)
    assert got.active_until.seconds - got.active_from.seconds == pytest.approx(1800, abs=2)
    # the flight crossing it during the window is highlighted, drawn thick on top
    assert f.flight_id in js(page, "window.skytwin.highlighted")
    web_browser.wait_for(page, "window.skytwin.deck.props.layers.find(l => l.id === "
                               f"'highlighted').props.data.some(d => d.flight_id === "
                               f"'{f.flight_id}')", 5)


def test_click_shows_grid_code_heights_and_blockers(srv, page):
    from selenium.webdriver.common.action_chains import ActionChains
    if not js(page, "window.skytwin && window.skytwin.ready"):
        web_browser.sign_in(page, srv.web.url, REG)
    twin = srv.core.twin
    js(page, "window.skytwin.setView({pitch: 0, bearing: 0}) || true")
    time.sleep(0.5)
    canvas = page.find_element("css selector", "#map canvas")
    cw, ch = canvas.size["width"], canvas.size["height"]
    # the largest measured building that is on screen
    for b in sorted(twin.buildings, key=lambda b: -b.footprint.area):
        if b.height_source == "unknown":
            continue
        p = b.footprint.representative_point()
        lon, lat = twin.frame.to_wgs84(p.x, p.y)
        x, y, *_ = js(page, f"window.skytwin.project({lon}, {lat}, 0)")
        if 50 < x < cw - 50 and 50 < y < ch - 50 and \
                js(page, f"document.elementFromPoint({x}, {y}).tagName") == "CANVAS":
            break
    js(page, "(window.skytwin.point = null) || true")
    ActionChains(page).move_to_element_with_offset(
        canvas, int(x - cw / 2), int(y - ch / 2)).click().perform()
    d = web_browser.wait_for(page, "window.skytwin.point", 10)
    # the clicked point (page's own) lies in the building the panel names
    cx, cy = twin.frame.to_local(d["lon_deg"], d["lat_deg"])
    assert d["roof"] is not None
    named = next(bb for bb in twin.buildings if str(bb.id) == d["roof"]["building_id"])
    assert named.footprint.distance(shapely.Point(cx, cy)) < 0.01
    assert d["roof"]["roof_m"] == pytest.approx(named.top_m, abs=0.01)
    text = page.find_element("id", "info-body").text
    assert d["grid_code"] in text and d["beidou"] in text and "blocked" in text


def _report(rid, fid, t_s, lon, lat, alt):
    r = lpb.PositionReport(report_id=rid, flight_id=fid, time=timestamp(t_s),
                           alt_amsl_m=alt)
    r.position.lon_deg, r.position.lat_deg = lon, lat
    return r


def test_live_drone_from_telemetry_with_its_state(srv, stubs, page):
    """Telemetry sent over gRPC (LiveService.ReportBatch) reaches the page through
    its event stream: the drone is drawn where it reported, in its conformance state,
    instead of along its approved plan."""
    if js(page, "window.skytwin && window.skytwin.role") != "regulator":
        web_browser.sign_in(page, srv.web.url, REG)
    f = book(stubs, OP_A, "web-tele", now_s() + 1.0)
    web_browser.wait_for(page, f"window.skytwin.flightIds.includes('{f.flight_id}')", 5)
    live = lrpc.LiveServiceStub(srv.channel())
    pad = f.route.waypoints[0]
    lon, lat, alt = pad.position.lon_deg, pad.position.lat_deg, pad.alt_amsl_m
    rb = live.ReportBatch(lpb.ReportBatchRequest(reports=[
        _report(1, f.flight_id, time.time(), lon, lat, alt)]), metadata=md(OP_A))
    assert lpb.ReportStatus.Name(rb.acks[0].status) == "REPORT_STATUS_OK"
    got = web_browser.wait_for(
        page, f"(d => d && d.state === 'activated' && d)"
              f"(window.skytwin.liveDrones && window.skytwin.liveDrones['{f.flight_id}'])",
        10)
    assert got["pos"][0] == pytest.approx(lon, abs=1e-6)
    assert got["pos"][1] == pytest.approx(lat, abs=1e-6)
    assert got["pos"][2] == pytest.approx(alt, abs=0.01)
    # drawn from telemetry (not from the plan), in the live layer
    web_browser.wait_for(page, f"window.skytwin.droneStates['{f.flight_id}'] === "
                               "'activated'", 5)
    # 25 m east of the pad twice, 0.6 s apart: out of its volume -> nonconforming
    dlon = 25.0 / (111_320.0 * 0.4985)
    for rid in (2, 3):
        time.sleep(0.6)
        live.ReportBatch(lpb.ReportBatchRequest(reports=[
            _report(rid, f.flight_id, time.time(), lon + dlon, lat, alt)]),
            metadata=md(OP_A))
    state = live.GetFlightState(lpb.GetFlightStateRequest(flight_id=f.flight_id),
                                metadata=md(OP_A)).state
    assert state == lpb.LIFECYCLE_STATE_NONCONFORMING
    got = web_browser.wait_for(
        page, f"(d => d && d.state === 'nonconforming' && d)"
              f"(window.skytwin.liveDrones['{f.flight_id}'])", 10)
    assert got["pos"][0] == pytest.approx(lon + dlon, abs=1e-6)
    web_browser.wait_for(page, f"window.skytwin.droneStates['{f.flight_id}'] === "
                               "'nonconforming'", 5)
    colour = js(page, f"(l => l.props.getFillColor(l.props.data.find(d => d.id === "
                      f"'{f.flight_id}')))(window.skytwin.liveDeck.props.layers[0])")
    assert colour[:3] == [255, 200, 0]
    srv.tele_flight = f.flight_id


def test_ground_risk_and_derived_zone_layers_with_toggles(srv, page):
    """The risk layer (cells by SORA band) and the derived zones (by category) are
    drawn as the core holds them, and the legend's check boxes switch them."""
    if js(page, "window.skytwin && window.skytwin.role") != "regulator":
        web_browser.sign_in(page, srv.web.url, REG)
    g = srv.core.ground
    want = {z.id: z.derived.category for z in g.zones()}
    assert want, "the bundled city has derived zones"
    assert js(page, "window.skytwin.derivedCategories") == want
    layer = "window.skytwin.deck.props.layers.find(l => l.id === '{}')"
    assert js(page, layer.format("derived") + ".props.data.length") == len(want)
    assert js(page, layer.format("derived") + ".props.visible") is True
    assert js(page, layer.format("risk")) is None   # off until asked for
    page.find_element("id", "risk-toggle").click()
    got = web_browser.wait_for(page, "window.skytwin.risk", 15)
    cells = g.risk_cells(box=srv.core.twin.bounds_wgs84())["cells"]
    bands = {}
    for c in cells:
        bands[str(c["band_day"])] = bands.get(str(c["band_day"]), 0) + 1
    assert got["cells"] == len(cells) > 0 and got["bandsDay"] == bands
    web_browser.wait_for(page, layer.format("risk") + " && " + layer.format("risk")
                         + ".props.data.length === " + str(len(cells)), 10)
    # a cell of the highest band is drawn in that band's colour
    k = max(range(len(cells)), key=lambda n: cells[n]["band_day"])
    col = js(page, layer.format("risk") + f".props.data.attributes.getFillColor.value"
                   f".slice({20 * k}, {20 * k + 3})")
    expect = {6: [180, 20, 60], 5: [230, 80, 40], 4: [240, 150, 50]}
    if cells[k]["band_day"] in expect:
        assert list(col.values() if isinstance(col, dict) else col) == \
            expect[cells[k]["band_day"]]
    # the check boxes hide them again
    page.find_element("css selector", "#legend input[data-layer='derived']").click()
    page.find_element("id", "risk-toggle").click()
    web_browser.wait_for(page, "!" + layer.format("risk") + " && !"
                         + layer.format("derived") + ".props.visible", 10)


def test_operator_sees_only_own_flights(srv, stubs, page):
    mine = book(stubs, OP_B, "web-b2", now_s() + 7200)
    ms = web_browser.sign_in(page, srv.web.url, OP_B)
    assert ms > 0
    ids = set(js(page, "window.skytwin.flightIds"))
    own = {r.flight_id for r in srv.core.store.list_flights(operator_id="op-b",
                                                               status="accepted")}
    assert mine.flight_id in ids and ids <= own, ids - own
    # a new booking by B appears; one by A never does (nor its event)
    other = book(stubs, OP_A, "web-a-hidden", now_s() + 9000)
    again = book(stubs, OP_B, "web-b3", now_s() + 9600)
    web_browser.wait_for(page, f"window.skytwin.flightIds.includes('{again.flight_id}')", 5)
    time.sleep(0.3)
    assert other.flight_id not in js(page, "window.skytwin.flightIds")
    assert not js(page, f"window.skytwin.events.some(e => e.subject === '{other.flight_id}')")
    assert "op-a" not in page.page_source
    # nor A's drone from telemetry (pushed to regulators, filtered for operators)
    if getattr(srv, "tele_flight", None):
        web_browser.wait_for(page, "window.skytwin.liveDronesUnixMs", 5)
        assert srv.tele_flight not in js(page, "Object.keys(window.skytwin.liveDrones)")
    # and the operator has no zone drawing tools
    assert not page.find_element("id", "draw").is_displayed()
