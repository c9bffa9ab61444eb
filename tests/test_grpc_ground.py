"""Ground risk and derived zones over a real gRPC server (issue 13).

The oracles do not go through the code under test: the zone a rule must make is
computed here from the source GeoJSON (``json`` + ``pyproj`` to ETRS-TM35FIN +
``shapely`` buffer), never with :mod:`airspace.derived`; densities, bands and iGRC
come from a hand-computed table of a population file written here.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, shape

from skytwin.server.auth import DEV_TOKENS
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import airspace_pb2_grpc as arpc
from skytwin.v1 import changes_pb2 as cpb
from skytwin.v1 import changes_pb2_grpc as crpc
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, RunningServer, helsinki_twin, md

CITY = Path(__file__).resolve().parents[1] / "fixtures" / "city" / "helsinki_centre.geojson"
TM35 = Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True)
WGS = Transformer.from_crs("EPSG:3067", "EPSG:4326", always_xy=True)
BUFFER_M = 30.0
T0 = float(int(time.time()) + 7200)


def _rules(tmp_path, category="restricted") -> Path:
    p = tmp_path / f"rules_{category}.json"
    p.write_text(json.dumps({
        "schema": "skytwin-derived-zones/1",
        "sources": {"test": "a rule written for this test"},
        "rules": [
            {"id": "court", "category": category, "buffer_m": BUFFER_M,
             "match": {"keys": ["amenity"], "values": ["courthouse"]}, "sources": ["test"]},
            {"id": "fire", "category": "warning", "buffer_m": 50.0,
             "match": {"keys": ["amenity"], "values": ["fire_station"]},
             "sources": ["test"]}]}))
    return p


def _start(db_path, auth=DEV_TOKENS, **cfg) -> RunningServer:
    from skytwin.server.app import ServerConfig, build_server, start
    twin, ref = helsinki_twin()
    config = ServerConfig(db=db_path, auth=auth, port=0, workers=2, live=False, **cfg)
    loop = asyncio.new_event_loop()
    ready = {}

    async def boot():
        server, port = build_server(config, twin=twin, twin_ref=ref)
        await start(server)
        ready.update(server=server, port=port)

    th = threading.Thread(target=lambda: (asyncio.set_event_loop(loop), loop.run_forever()),
                          daemon=True)
    th.start()
    asyncio.run_coroutine_threadsafe(boot(), loop).result(120)
    return RunningServer(ready["port"], ready["server"].skytwin_core, loop, th,
                         ready["server"])


def _source_zone_m(key, value, buffer_m):
    """The oracle: union of the source features tagged ``key=value``, in EPSG:3067,
    grown by ``buffer_m`` (read from the GeoJSON here, not through the readers)."""
    doc = json.loads(CITY.read_text(encoding="utf-8"))
    geoms = [shapely.transform(shape(f["geometry"]),
                               lambda c: np.column_stack(TM35.transform(c[:, 0], c[:, 1])))
             for f in doc["features"] if (f.get("properties") or {}).get(key) == value]
    assert geoms, f"no {key}={value} in {CITY.name}"
    return shapely.union_all(geoms).buffer(buffer_m, quad_segs=64)


def _track_m(route):
    xy = [TM35.transform(w.position.lon_deg, w.position.lat_deg) for w in route.waypoints]
    return LineString(xy)


def _ll(x, y):
    lon, lat = WGS.transform(x, y)
    return apb.LonLat(lon_deg=lon, lat_deg=lat)


def _crossing_pairs(zone_m):
    """Start/goal pairs whose straight line crosses the zone (several directions)."""
    c = zone_m.centroid
    for half_m, side, deg in ((h, o, d) for h in (220.0, 170.0, 130.0)
                              for o in (0.0, -25.0, 25.0) for d in range(0, 180, 20)):
        ux, uy = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        cx, cy = c.x - side * uy, c.y + side * ux       # shifted across the line
        a, b = (cx - half_m * ux, cy - half_m * uy), (cx + half_m * ux, cy + half_m * uy)
        if LineString([a, b]).intersects(zone_m) and not zone_m.contains(
                shapely.Point(a)) and not zone_m.contains(shapely.Point(b)):
            yield a, b


def _plan(f, a, b, token, **kw):
    req = fpb.RouteRequest(start=_ll(*a), goal=_ll(*b), **kw)
    req.departure_time.FromSeconds(int(T0))
    return f.PlanRoute(fpb.PlanRouteRequest(route=req), metadata=md(token), timeout=120)


def _first_plannable(f, zone_m, token):
    for a, b in _crossing_pairs(zone_m):
        try:
            return a, b, _plan(f, a, b, token).route
        except grpc.RpcError as exc:   # a pad in a building, or outside the twin
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION and \
                    "outside the twin" not in exc.details():
                raise
    pytest.fail("no start/goal pair across the zone could be planned")


def _stubs(srv):
    ch = srv.channel()
    return (zrpc.ZoneServiceStub(ch), frpc.FlightServiceStub(ch),
            arpc.AirspaceServiceStub(ch), crpc.ChangeServiceStub(ch), ch)


def _dz_id(z, rule):
    zones = z.QueryDerivedZones(zpb.QueryDerivedZonesRequest(), metadata=md(OP_A)).zones
    ids = [x.id for x in zones if x.derived.rule == rule]
    assert len(ids) == 1, [x.id for x in zones]
    return ids[0]


def expect(code, text, fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    assert e.value.code() == code, (e.value.code(), e.value.details())
    assert text in e.value.details(), e.value.details()


# ----------------------------------------------------------------------------- tests
def test_restricted_zone_avoided_disabled_override_persists(tmp_path):
    rules = _rules(tmp_path)
    zone_m = _source_zone_m("amenity", "courthouse", BUFFER_M)
    db = tmp_path / "g.db"
    srv = _start(db, zone_rules=rules)
    try:
        z, f, _, c, ch = _stubs(srv)
        dz = _dz_id(z, "court")
        got = z.GetZone(zpb.GetZoneRequest(zone_id=dz), metadata=md(OP_B)).zone
        assert got.derived.category == "restricted" and got.derived.enabled
        assert got.derived.matched == "amenity=courthouse" and got.derived.sources == ["test"]
        # listed and exported like any zone, marked derived
        listed = {x.id: x for x in z.ListZones(zpb.ListZonesRequest(), metadata=md(OP_A)).zones}
        assert listed[dz].derived.rule == "court"
        assert dz not in [x.id for x in z.ListZones(zpb.ListZonesRequest(exclude_derived=True),
                                                     metadata=md(OP_A)).zones]
        doc = json.loads(z.ExportEd269(zpb.ExportEd269Request(country="FIN"),
                                       metadata=md(OP_A)).ed269_json)
        feat = next(x for x in doc["features"] if x["identifier"] == dz)
        assert feat["restriction"] == "PROHIBITED" and "rule court" in feat["message"]
        assert feat["country"] == "FIN"
        # the planned route keeps out of the zone the rule makes (independent oracle)
        a, b, route = _first_plannable(f, zone_m, OP_A)
        assert _track_m(route).distance(zone_m.buffer(-BUFFER_M)) >= BUFFER_M - 0.5
        near = {n.zone_id: n for n in route.exposure.derived_zones_near}
        assert near[dz].category == "restricted" and near[dz].distance_m >= 0
        assert route.exposure.people_overflown_unit == "people/km2 x km"
        # booking follows the same rule
        req = fpb.RouteRequest(start=_ll(*a), goal=_ll(*b))
        req.departure_time.FromSeconds(int(time.time()) + 600)
        sub = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="g1", route=req),
                             metadata=md(OP_A), timeout=120)
        fl = sub.flight
        assert _track_m(fl.route).distance(zone_m.buffer(-BUFFER_M)) >= BUFFER_M - 0.5
        assert sub.exposure.people_overflown_unit == "people/km2 x km"
        # a regulator disables it: a Watch event, and routes may cross it
        watch = c.Watch(cpb.WatchRequest(), metadata=md(OP_B), timeout=60)
        assert next(watch).kind == cpb.CHANGE_KIND_UNSPECIFIED
        expect(grpc.StatusCode.PERMISSION_DENIED, "only regulators", z.OverrideDerivedZone,
               zpb.OverrideDerivedZoneRequest(zone_id=dz, enabled=False, reason="x"),
               metadata=md(OP_A))
        out = z.OverrideDerivedZone(zpb.OverrideDerivedZoneRequest(
            zone_id=dz, enabled=False, reason="court closed"), metadata=md(REG))
        assert not out.zone.derived.enabled and out.zone.derived.overridden
        ev = next(watch)
        assert ev.kind == cpb.CHANGE_KIND_ZONE_REMOVED and ev.zone.id == dz
        assert not ev.zone.derived.enabled
        watch.cancel()
        open_route = _plan(f, a, b, OP_A).route
        assert _track_m(open_route).intersects(zone_m)     # now flown through
    finally:
        srv.stop()
    # the override survives a restart
    srv = _start(db, zone_rules=rules)
    try:
        z, f, *_ = _stubs(srv)
        got = z.GetZone(zpb.GetZoneRequest(zone_id=dz), metadata=md(OP_A)).zone
        assert not got.derived.enabled and got.derived.override_reason == "court closed"
        assert got.derived.override_by == "dev regulator"
        assert _track_m(_plan(f, a, b, OP_A).route).intersects(zone_m)
        # re-categorised as a warning: flown through with a warning
        z.OverrideDerivedZone(zpb.OverrideDerivedZoneRequest(
            zone_id=dz, enabled=True, category="warning", reason="events only"),
            metadata=md(REG))
        r = _plan(f, a, b, OP_A).route
        assert _track_m(r).intersects(zone_m)
        assert any(dz in w for w in r.exposure.warnings)
        # reset: the rule's restricted zone again
        z.OverrideDerivedZone(zpb.OverrideDerivedZoneRequest(zone_id=dz, reset=True),
                              metadata=md(REG))
        r = _plan(f, a, b, OP_A).route
        assert _track_m(r).distance(zone_m.buffer(-BUFFER_M)) >= BUFFER_M - 0.5
    finally:
        srv.stop()


def test_authorisation_zone_lifted_only_for_authorised_operator(tmp_path):
    rules = _rules(tmp_path, "authorisation")
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(DEV_TOKENS.read_text().replace(
        'operator_id = "op-a"', 'operator_id = "op-a"\nauthorisations = ["court"]'))
    zone_m = _source_zone_m("amenity", "courthouse", BUFFER_M)
    srv = _start(tmp_path / "a.db", auth=tokens, zone_rules=rules)
    try:
        z, f, *_ = _stubs(srv)
        a, b, route_b = _first_plannable(f, zone_m, OP_B)
        assert _track_m(route_b).distance(zone_m.buffer(-BUFFER_M)) >= BUFFER_M - 0.5
        route_a = _plan(f, a, b, OP_A).route
        assert _track_m(route_a).intersects(zone_m)
        assert any("under authorisation" in w for w in route_a.exposure.warnings)
    finally:
        srv.stop()


# the hand-computed table: people at one point, cells of 50 m (0.0025 km2)
# people  density [/km2]  band  iGRC (1 m / 25 m/s column of SORA 2.5 table 2)
HAND = [
    (0.01, 4.0, 1, 2),
    (1.0, 400.0, 3, 4),
    (3.0, 1_200.0, 4, 5),
    (20.0, 8_000.0, 5, 6),
    (125.0, 50_000.0, 6, 7),     # on the limit: the band above
]


def test_risk_query_matches_hand_table(tmp_path):
    twin, _ = helsinki_twin()
    lo0, la0, lo1, la1 = twin.bounds_wgs84()
    pts = [(lo0 + (lo1 - lo0) * (0.2 + 0.15 * n), la0 + (la1 - la0) * (0.25 + 0.12 * n))
           for n in range(len(HAND))]
    pop = tmp_path / "people.csv"
    pop.write_text("lon,lat,people,people_night\n" + "".join(
        f"{lo!r},{la!r},{p!r},{p / 100!r}\n" for (lo, la), (p, *_) in zip(pts, HAND,
                                                                          strict=True)))
    srv = _start(tmp_path / "r.db", population=pop)
    try:
        _, f, a, *_ = _stubs(srv)
        for (lo, la), (people, dens, band, igrc) in zip(pts, HAND, strict=True):
            box = apb.LonLatBox(min_lon_deg=lo - 1e-4, min_lat_deg=la - 1e-4,
                                max_lon_deg=lo + 1e-4, max_lat_deg=la + 1e-4)
            r = a.QueryGroundRisk(apb.QueryGroundRiskRequest(box=box), metadata=md(REG))
            assert r.cell_m == 50.0 and r.source == "population file people.csv"
            assert len(r.cells) == 1, [(c.i, c.j) for c in r.cells]
            cell = r.cells[0]
            assert cell.density_day_ppl_km2 == pytest.approx(dens, rel=1e-5)
            assert (cell.band_day, cell.igrc_day) == (band, igrc)
            assert cell.density_night_ppl_km2 == pytest.approx(dens / 100, rel=1e-5)
            assert r.worst_band_day == band
            code = a.EncodeGridCode(apb.EncodeGridCodeRequest(
                position=apb.LonLat(lon_deg=lo, lat_deg=la),
                altitude=apb.Altitude(value_m=30, reference=apb.ALTITUDE_REFERENCE_AGL)),
                metadata=md(OP_A)).code.code
            g = a.QueryGroundRisk(apb.QueryGroundRiskRequest(grid_code=code),
                                  metadata=md(OP_A))
            assert [(c.i, c.j, c.band_day) for c in g.cells] == [(cell.i, cell.j, band)]
        # night bands of the same people / 100: 0.04, 4, 12, 80, 500 -> 1, 1, 2, 3, 4
        nights = []
        for lo, la in pts:
            box = apb.LonLatBox(min_lon_deg=lo - 1e-4, min_lat_deg=la - 1e-4,
                                max_lon_deg=lo + 1e-4, max_lat_deg=la + 1e-4)
            nights.append(a.QueryGroundRisk(apb.QueryGroundRiskRequest(box=box),
                                            metadata=md(REG)).cells[0].band_night)
        assert nights == [1, 1, 2, 3, 4]
        expect(grpc.StatusCode.INVALID_ARGUMENT, "give box or grid_code",
               a.QueryGroundRisk, apb.QueryGroundRiskRequest(), metadata=md(REG))
        expect(grpc.StatusCode.UNAUTHENTICATED, "credentials", a.QueryGroundRisk,
               apb.QueryGroundRiskRequest(grid_code="x"))
    finally:
        srv.stop()


def test_exposure_always_reported_and_bad_input(tmp_path):
    srv = _start(tmp_path / "e.db")
    try:
        z, f, a, *_ = _stubs(srv)
        a_, b_ = (24.94030, 60.17150), (24.95240, 60.16760)
        req = fpb.RouteRequest(start=apb.LonLat(lon_deg=a_[0], lat_deg=a_[1]),
                               goal=apb.LonLat(lon_deg=b_[0], lat_deg=b_[1]))
        r0 = f.PlanRoute(fpb.PlanRouteRequest(route=req), metadata=md(OP_A), timeout=120)
        ex = r0.route.exposure
        assert ex.people_overflown > 0 and 1 <= ex.worst_band <= 6 and ex.period
        req.risk_weight = 20.0
        r1 = f.PlanRoute(fpb.PlanRouteRequest(route=req), metadata=md(OP_A), timeout=120)
        assert r1.route.exposure.risk_weight == 20.0
        assert r1.route.exposure.people_overflown <= ex.people_overflown * 1.05
        for field, v, text in (("risk_weight", -1.0, "risk_weight"),
                               ("risk_weight", math.nan, "risk_weight"),
                               ("max_band", 9, "max_band")):
            bad = fpb.RouteRequest()
            bad.CopyFrom(req)
            setattr(bad, field, v)
            expect(grpc.StatusCode.INVALID_ARGUMENT, text, f.PlanRoute,
                   fpb.PlanRouteRequest(route=bad), metadata=md(OP_A))
        dz = _dz_id(z, "government")
        for req_, code, text in (
                (zpb.OverrideDerivedZoneRequest(zone_id="DZ-nope", enabled=False,
                                                reason="x"),
                 grpc.StatusCode.NOT_FOUND, "no derived zone"),
                (zpb.OverrideDerivedZoneRequest(zone_id=dz, enabled=False),
                 grpc.StatusCode.INVALID_ARGUMENT, "reason is required"),
                (zpb.OverrideDerivedZoneRequest(zone_id=dz, category="forbidden",
                                                reason="x"),
                 grpc.StatusCode.INVALID_ARGUMENT, "category must be one of")):
            expect(code, text, z.OverrideDerivedZone, req_, metadata=md(REG))
        expect(grpc.StatusCode.INVALID_ARGUMENT, "OverrideDerivedZone", z.DeleteZone,
               zpb.DeleteZoneRequest(zone_id=dz), metadata=md(REG))
        # by grid code: the zone's layer band (0-150 m AGL) meets 30 m AGL, not 300 m
        zone = z.GetZone(zpb.GetZoneRequest(zone_id=dz), metadata=md(OP_A)).zone
        poly = shapely.Polygon([(v.lon_deg, v.lat_deg) for v in zone.polygon.vertices])
        p = poly.representative_point()
        for alt, hit in ((30.0, True), (300.0, False)):
            code = a.EncodeGridCode(apb.EncodeGridCodeRequest(
                position=apb.LonLat(lon_deg=p.x, lat_deg=p.y),
                altitude=apb.Altitude(value_m=alt, reference=apb.ALTITUDE_REFERENCE_AGL)),
                metadata=md(OP_A)).code.code
            ids = [x.id for x in z.QueryDerivedZones(
                zpb.QueryDerivedZonesRequest(grid_code=code), metadata=md(OP_B)).zones]
            assert (dz in ids) is hit, (alt, ids)
    finally:
        srv.stop()


def test_client_commands_for_ground_layers(tmp_path, capsys):
    from skytwin.server.cli import main
    srv = _start(tmp_path / "c.db")
    try:
        def run(token, *argv):
            rc = main(["client", "--target", srv.target, "--token", token, *argv])
            cap = capsys.readouterr()
            return rc, json.loads(cap.out if rc == 0 else cap.err)

        rc, out = run(OP_A, "zones", "derived", "--category", "authorisation")
        assert rc == 0 and out["counts"] == {"authorisation": 1}
        dz = out["zones"][0]["id"]
        rc, out = run(OP_A, "zones", "override", dz, "--disable", "--reason", "x")
        assert rc == 2 and out["error"]["code"] == "PERMISSION_DENIED"
        rc, out = run(REG, "zones", "override", dz, "--disable", "--reason", "event")
        assert rc == 0 and out["zone"]["derived"]["enabled"] is False
        rc, out = run(OP_B, "zones", "derived", "--include-disabled", "--category",
                      "authorisation")
        assert rc == 0 and out["zones"][0]["derived"]["override_reason"] == "event"
        twin, _ = helsinki_twin()
        b = twin.bounds_wgs84()
        box = f"{b[0]},{b[1]},{b[2]},{b[3]}"
        rc, out = run(OP_A, "risk", "--box", box)
        assert rc == 0 and out["cell_m"] == 50.0 and 1 <= out["worst_band_day"] <= 6
        rc, out = run(OP_A, "plan", "--from", "24.94030,60.17150", "--to",
                      "24.95240,60.16760", "--risk-weight", "5")
        ex = out["route"]["exposure"]
        assert rc == 0 and ex["risk_weight"] == 5 and ex["unit"] == "people/km2 x km"
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def pg():
    """A throw-away PostgreSQL server (None when it cannot run here)."""
    from tests.pg_server import start_postgres, why_not
    if why_not():
        yield None
        return
    srv = start_postgres()
    yield srv
    srv.stop()


def test_override_store_semantics_sqlite_and_postgresql(tmp_path, pg):
    """Overrides persist alike in both stores, each write with its zone_put event."""
    from skytwin.server.store import Store
    stores = [("sqlite", lambda: Store(tmp_path / "o.db"))]
    if pg is not None:
        from skytwin.server.pgstore import PgStore
        dsn = pg.new_database("t_ground")
        stores.append(("pg", lambda: PgStore(dsn)))
    seen = {}
    for name, opener in stores:
        with opener() as st:
            st.put_derived_override("DZ-a", {"enabled": False, "reason": "r"}, "reg", 10.0)
            st.put_derived_override("DZ-a", {"category": "warning", "reason": "s"},
                                    "reg2", 11.0)
            st.put_derived_override("DZ-b", {"enabled": False, "reason": "t"}, "reg", 12.0)
            st.delete_derived_override("DZ-b", "reg", 13.0)
            kinds = [(e["kind"], e["id"]) for e in st.events_since(0)]
        with opener() as st:                   # reopened: still there
            seen[name] = (st.list_derived_overrides(), kinds)
    for name, (ov, kinds) in seen.items():
        assert ov == {"DZ-a": ({"category": "warning", "reason": "s"}, "reg2", 11.0)}, name
        assert kinds == [("zone_put", "DZ-a")] * 2 + [("zone_put", "DZ-b")] * 2, name


def test_altitude_limited_zone_lowers_the_ceiling(tmp_path):
    """Inside an altitude-limited zone (band from 30 m AGL) the route stays below 30 m."""
    rules = tmp_path / "alt.json"
    rules.write_text(json.dumps({
        "schema": "skytwin-derived-zones/1", "sources": {"test": "test"},
        "rules": [{"id": "fire-low", "category": "altitude-limited", "buffer_m": 60.0,
                   "lower": {"value_m": 30.0, "reference": "AGL"},
                   "match": {"keys": ["amenity"], "values": ["fire_station"]},
                   "sources": ["test"]}]}))
    zone_m = _source_zone_m("amenity", "fire_station", 60.0)
    srv = _start(tmp_path / "l.db", zone_rules=rules)
    try:
        z, f, *_ = _stubs(srv)
        _, _, route = _first_plannable(f, zone_m, OP_A)
        pts = [(*TM35.transform(w.position.lon_deg, w.position.lat_deg), w.alt_agl_m)
               for w in route.waypoints]
        # the ground of this model is flat (no terrain: 0 m), so AGL is linear along a
        # segment: a segment meeting the zone must be below 30 m AGL at both ends
        crossing = [(a, b) for a, b in zip(pts[:-1], pts[1:], strict=True)
                    if LineString([a[:2], b[:2]]).intersects(zone_m)]
        assert crossing          # this pair's route does fly through the zone (low)
        assert all(max(a[2], b[2]) <= 30.0 + 0.01 for a, b in crossing), crossing
        near = [n.category for n in route.exposure.derived_zones_near]
        assert "altitude-limited" in near
    finally:
        srv.stop()


def test_plan_held_before_an_override_is_planned_again(tmp_path):
    """An operator previews with the zone disabled; the regulator enables it again; the
    booking of that preview is planned anew and avoids the zone."""
    rules = _rules(tmp_path, "authorisation")
    zone_m = _source_zone_m("amenity", "courthouse", BUFFER_M)
    srv = _start(tmp_path / "h.db", zone_rules=rules)
    try:
        z, f, *_ = _stubs(srv)
        dz = _dz_id(z, "court")
        z.OverrideDerivedZone(zpb.OverrideDerivedZoneRequest(
            zone_id=dz, enabled=False, reason="open day"), metadata=md(REG))
        for a, b in _crossing_pairs(zone_m):
            req = fpb.RouteRequest(start=_ll(*a), goal=_ll(*b))
            req.departure_time.FromSeconds(int(time.time()) + 900)
            try:
                prev = f.PlanRoute(fpb.PlanRouteRequest(route=req), metadata=md(OP_B),
                                   timeout=120)
            except grpc.RpcError:
                continue
            if _track_m(prev.route).intersects(zone_m):
                break
        else:
            pytest.fail("no preview through the disabled zone")
        z.OverrideDerivedZone(zpb.OverrideDerivedZoneRequest(zone_id=dz, reset=True),
                              metadata=md(REG))
        sub = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="held-1", route=req,
                                                     plan_id=prev.plan_id),
                             metadata=md(OP_B), timeout=120)
        assert sub.replanned
        assert _track_m(sub.flight.route).distance(zone_m.buffer(-BUFFER_M)) >= \
            BUFFER_M - 0.5
    finally:
        srv.stop()


def test_override_reaches_every_instance_on_postgresql(pg):
    """Two service cores on one PostgreSQL store: a regulator's override taken on one is
    in force and published (same sequence number) on the other, from the change feed."""
    if pg is None:
        from tests.pg_server import why_not
        pytest.skip(why_not())
    from skytwin.server.ground import override_derived_zone
    from skytwin.server.pgstore import PgStore
    from skytwin.server.service import Caller, ServiceCore
    twin, ref = helsinki_twin()
    cores = []
    try:
        dsn = pg.new_database("t_ground_feed")
        cores = [ServiceCore(twin, PgStore(dsn), twin_ref=ref) for _ in range(2)]
        seen = [[], []]
        for core, box in zip(cores, seen, strict=True):
            core.subscribe(box.append)
        dz = next(r.id for r in cores[0].ground.zones() if r.derived.rule == "government")
        override_derived_zone(cores[0], Caller("reg", "regulator"), dz, enabled=False,
                              reason="closed")
        deadline = time.monotonic() + 30
        while cores[1].ground.get(dz).derived.enabled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not cores[1].ground.get(dz).derived.enabled
        assert cores[1].ground.get(dz).derived.override_reason == "closed"
        while len(seen[1]) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        ch0 = [c for c in seen[0] if c.zone is not None and c.zone.id == dz]
        ch1 = [c for c in seen[1] if c.zone is not None and c.zone.id == dz]
        assert [c.kind for c in ch0] == [c.kind for c in ch1] == ["zone_removed"]
        assert ch0[0].sequence == ch1[0].sequence
    finally:
        for c in cores:
            c.close()


def test_generation_names_the_overrides_in_force():
    """Two processes with the same overrides agree on the generation (planning workers);
    a change and its undo give the first generation back (a held plan stays current)."""
    from skytwin.server.ground import GroundLayers
    twin, _ = helsinki_twin()
    a, b = GroundLayers(twin), GroundLayers(twin)
    first = a.generation
    assert first == b.generation
    dz = a.zones()[0].id
    a.set_override(dz, {"enabled": False, "reason": "x"}, "reg", 1.0)
    assert a.generation != first
    b.set_override(dz, {"enabled": False, "reason": "x"}, "reg", 1.0)
    assert a.generation == b.generation
    a.set_override(dz, None, "reg", 2.0)
    assert a.generation == first
